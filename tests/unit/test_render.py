"""herald.messages: sandboxed SMS/email rendering, GSM-7/UCS-2 segments, unsubscribe tokens."""

from __future__ import annotations

import re
import string
import time

import pytest

from herald.messages import render as render_module
from herald.messages.render import (
    LIST_UNSUBSCRIBE,
    LIST_UNSUBSCRIBE_POST,
    Renderer,
    TemplateError,
    html_to_text,
)
from herald.messages.sms import is_gsm7, sms_info
from herald.messages.unsubscribe import InvalidToken, TokenData, make_token, read_token, unsubscribe_urls

SECRET = "test-secret-not-for-production"
UNSUB = "https://herald.example.com/u/TOKEN"
ONE_CLICK = "https://herald.example.com/u/TOKEN/one-click"
WELCOME_MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hello {{ first_name }}, your visit is {{ appointment_at }}.</mj-text>
<mj-raw>{% if vip %}</mj-raw><mj-text>Thanks for being a member.</mj-text><mj-raw>{% endif %}</mj-raw>
<mj-text><a href="https://clinic.example.com/book">Book online</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"""
MJML_WITH_OWN_LINK = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hi {{ first_name }}. <a href="{{ unsubscribe_url }}">Stop these emails</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"""


@pytest.fixture
def renderer() -> Renderer:
    return Renderer()


def email(renderer: Renderer, mjml: str = WELCOME_MJML, **variables: object):
    values = {"first_name": "Ana", "appointment_at": "Mon 9:00", "vip": False, **variables}
    return renderer.render_email(
        "welcome.mjml", "Hi {{ first_name }}", mjml, values, "c_9", unsubscribe_url=UNSUB, one_click_url=ONE_CLICK
    )


# -- template errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "variables", "variable"),
    [
        ("See you {{ appointment_at }}", {}, "appointment_at"),
        ("Hi {{ first_name }}, {{ appointment_at }}", {"first_name": "Ana"}, "appointment_at"),
        ("{% if clinic %}x{% endif %}", {}, "clinic"),
        ("{{ clinic.name }}", {"clinic": {}}, "name"),
    ],
)
def test_missing_variable_names_template_variable_and_contact(
    renderer: Renderer, source: str, variables: dict, variable: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        renderer.render_sms("reminder_a.sms.j2", source, variables, "c_123")
    assert str(caught.value) == (f"template 'reminder_a.sms.j2': variable '{variable}' is undefined for contact c_123")
    assert (caught.value.template, caught.value.variable, caught.value.contact_id) == (
        "reminder_a.sms.j2",
        variable,
        "c_123",
    )


def test_missing_variable_in_email_body_is_a_template_error(renderer: Renderer) -> None:
    with pytest.raises(TemplateError, match="variable 'appointment_at' is undefined for contact c_9"):
        renderer.render_email(
            "welcome.mjml",
            "Hi",
            WELCOME_MJML,
            {"first_name": "Ana", "vip": False},
            "c_9",
            unsubscribe_url=UNSUB,
            one_click_url=ONE_CLICK,
        )


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 10**8 }}",
        "{{ 10**8 * 'a' }}",
        "{{ ['a'] * 10**8 }}",
        "{{ ('ab' * 50000) + ('ab' * 50000) }}",
        "{{ 2 ** (10**8) }}",  # Jinja's ** is left-associative: 2 ** 10**8 is 2**80
        "{{ (10**1000) * (10**1000) }}",
    ],
)
def test_amplification_fails_fast(renderer: Renderer, source: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=r"'(\*|\*\*|\+)' would build .* for contact c_1$") as caught:
        renderer.render_sms("evil.sms.j2", source, {}, "c_1")
    assert time.perf_counter() - started < 1.0
    assert caught.value.variable is None


def _a_function() -> None:
    """A plain Python function handed to a template, to probe `__code__`."""


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("{{ ''.__class__ }}", "__class__"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "__class__"),
        ("{{ cycler.__init__.__globals__ }}", "__init__"),
        ("{{ f.__code__ }}", "__code__"),
    ],
)
def test_sandbox_blocks_unsafe_attributes(renderer: Renderer, source: str, needle: str) -> None:
    with pytest.raises(TemplateError, match=f"access to attribute '{needle}'"):
        renderer.render_sms("evil.sms.j2", source, {"f": _a_function}, "c_1")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% for i in range(2000) %}x{% endfor %}", "rendered output exceeds 1600 characters"),
        ("{{ 'x' * 1601 }}", "rendered output exceeds 1600 characters"),
        ("{{ 'x' * 1590 }}", "exceeds 1600 characters with opt-out text"),
        ("x" * 20_001, r"source is 20001 characters \(limit 20000\)"),
        ("{% if %}", "syntax error on line 1"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ],
)
def test_sms_limits_and_errors(renderer: Renderer, source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        renderer.render_sms("big.sms.j2", source, {}, "c_1")


def test_sms_at_the_output_cap_renders(renderer: Renderer) -> None:
    sms = renderer.render_sms("x.sms.j2", "{{ 'x' * 1600 }}", {}, "c_1", include_opt_out=False)
    assert len(sms.body) == 1600


def test_html_output_cap(renderer: Renderer) -> None:
    loop = "{% for i in range(600) %}{{ 'y' * 1000 }}{% endfor %}"
    mjml = f"<mjml><mj-body><mj-text>{loop}</mj-text></mj-body></mjml>"
    with pytest.raises(TemplateError, match="rendered output exceeds 524288 characters"):
        email(renderer, mjml)


# -- caching -------------------------------------------------------------------------------------


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(owner, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_same_sms_source_is_compiled_once(renderer: Renderer, monkeypatch: pytest.MonkeyPatch) -> None:
    compiles = count_calls(monkeypatch, renderer.text_env, "from_string")
    bodies = [
        renderer.render_sms("r.sms.j2", "Hi {{ name }}", {"name": name}, f"c_{i}", include_opt_out=False).body
        for i, name in enumerate(["Ana", "Bo", "Cy"])
    ]
    assert bodies == ["Hi Ana", "Hi Bo", "Hi Cy"]
    assert len(compiles) == 1
    renderer.render_sms("r.sms.j2", "Hello {{ name }}", {"name": "Ana"}, "c_1")  # edited source
    renderer.render_sms("other.sms.j2", "Hi {{ name }}", {"name": "Ana"}, "c_1")  # other template
    assert len(compiles) == 3


def test_mjml_compiled_once_for_two_recipients(renderer: Renderer, monkeypatch: pytest.MonkeyPatch) -> None:
    mjml_calls = count_calls(monkeypatch, render_module.mrml, "to_html")
    html_compiles = count_calls(monkeypatch, renderer.html_env, "from_string")
    first = email(renderer, first_name="Ana")
    second = email(renderer, first_name="Bo", vip=True)
    assert len(mjml_calls) == 1 and len(html_compiles) == 1 and renderer.mjml_compilations == 1
    assert "Hello Ana" in first.html and "member" not in first.html
    assert "Hello Bo" in second.html and "Thanks for being a member." in second.html


# -- SMS encoding and segments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "units"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 1, 160),
        ("a" * 161, "GSM-7", 2, 161),
        ("a" * 306, "GSM-7", 2, 306),
        ("a" * 307, "GSM-7", 3, 307),
        ("€" * 80, "GSM-7", 1, 160),  # extension chars count 2
        ("€" * 81, "GSM-7", 2, 162),
        ("{" + "a" * 159, "GSM-7", 2, 161),
        ("a" * 152 + "€" + "a" * 8, "GSM-7", 2, 162),  # escape pair not split across parts
        ("a" * 152 + "[" + "a" * 154, "GSM-7", 3, 308),
        ("Café à Zürich, ¿Ñandù? Δ@£$¥", "GSM-7", 1, 28),
        ("Ñandú", "UCS-2", 1, 5),  # ú is not in GSM 03.38 (ù is)
        ("Hi 😀", "UCS-2", 1, 5),  # emoji: UCS-2, a surrogate pair counts 2
        ("ж" * 70, "UCS-2", 1, 70),
        ("ж" * 71, "UCS-2", 2, 71),
        ("ж" * 134, "UCS-2", 2, 134),
        ("ж" * 135, "UCS-2", 3, 135),
        ("😀" * 35, "UCS-2", 1, 70),
        ("😀" * 36, "UCS-2", 2, 72),
        ("a" * 66 + "😀" + "a" * 4, "UCS-2", 2, 72),  # surrogate pair not split across parts
        ("a" * 159 + "ç", "UCS-2", 3, 160),  # lower-case ç is not GSM-7 (only Ç is)
    ],
)
def test_sms_encoding_and_segments(text: str, encoding: str, segments: int, units: int) -> None:
    info = sms_info(text)
    assert (info.encoding, info.segments, info.units, info.characters) == (encoding, segments, units, len(text))


@pytest.mark.parametrize(
    ("char", "gsm"),
    [("€", True), ("{", True), ("\\", True), ("~", True), ("`", False), ("’", False)],
)
def test_gsm7_membership(char: str, gsm: bool) -> None:
    assert is_gsm7(char) is gsm


def test_rendered_sms_reports_encoding_and_segments(renderer: Renderer) -> None:
    sms = renderer.render_sms("r.sms.j2", "{{ greeting }} " + "a" * 130, {"greeting": "Hi 😀"}, "c_1")
    assert sms.encoding == "UCS-2" and sms.characters == len(sms.body) and sms.segments == 3


# -- opt-out wording ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kwargs", "body"),
    [
        ("See you {{ at }}", {}, "See you Mon\nReply STOP to opt out."),
        ("See you {{ at }}. Reply STOP to opt out.", {}, "See you Mon. Reply STOP to opt out."),
        ("See you {{ at }}. Text STOP to end.", {}, "See you Mon. Text STOP to end."),
        ("Don't stop by {{ at }}", {}, "Don't stop by Mon\nReply STOP to opt out."),
        ("See you {{ at }}", {"opt_out_text": "STOP = fin"}, "See you Mon\nSTOP = fin"),
        ("See you {{ at }}", {"include_opt_out": False}, "See you Mon"),
    ],
)
def test_opt_out_appended_once(renderer: Renderer, source: str, kwargs: dict, body: str) -> None:
    sms = renderer.render_sms("r.sms.j2", source, {"at": "Mon"}, "c_1", **kwargs)
    assert sms.body == body
    assert sms.body.count("STOP") == (0 if kwargs.get("include_opt_out") is False else 1)


# -- email -------------------------------------------------------------------------------------


def test_email_has_subject_html_text_and_one_click_headers(renderer: Renderer) -> None:
    message = email(renderer, first_name="Ana")
    assert message.subject == "Hi Ana"
    assert "Hello Ana, your visit is Mon 9:00." in message.html
    assert f'href="{UNSUB}"' in message.html
    assert "Hello Ana, your visit is Mon 9:00." in message.text
    assert "Book online (https://clinic.example.com/book)" in message.text
    assert f"Unsubscribe ({UNSUB})" in message.text
    assert "<" not in message.text and "mso" not in message.text
    assert message.headers == {
        "List-Unsubscribe": f"<{ONE_CLICK}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert (LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST) == ("List-Unsubscribe", "List-Unsubscribe-Post")


def test_template_own_unsubscribe_link_suppresses_footer(renderer: Renderer) -> None:
    message = email(renderer, MJML_WITH_OWN_LINK)
    assert message.html.count(UNSUB) == 1
    assert f"Stop these emails ({UNSUB})" in message.text
    assert ">Unsubscribe<" not in message.html


def test_subject_cannot_inject_headers(renderer: Renderer) -> None:
    message = email(renderer, first_name="Ana\r\nBcc: victim@example.com")
    assert message.subject == "Hi Ana Bcc: victim@example.com"


@pytest.mark.parametrize(
    "url", ["http://herald.example.com/u/T/one-click", "https://h.example.com/u/T>, <https://x", "/u/T"]
)
def test_one_click_url_must_be_https(renderer: Renderer, url: str) -> None:
    with pytest.raises(ValueError, match="RFC 8058"):
        renderer.render_email("w.mjml", "Hi", WELCOME_MJML, {}, "c_1", unsubscribe_url=UNSUB, one_click_url=url)


def test_invalid_mjml_is_a_template_error(renderer: Renderer) -> None:
    with pytest.raises(TemplateError, match=re.escape("template 'welcome.mjml': MJML does not compile")):
        email(renderer, "<mjml><mj-body><mj-section>")


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>One</p><p>Two &amp; three</p>", "One\n\nTwo & three"),
        ('<a href="https://a.example/x">Go</a>', "Go (https://a.example/x)"),
        ('<a href="https://a.example/x">https://a.example/x</a>', "https://a.example/x"),
        ('<a href="https://a.example/x"><img src="i.png"></a>', "https://a.example/x"),
        ("<head><style>p{color:red}</style><title>T</title></head><body>Hi<br>there</body>", "Hi\nthere"),
        ("<!--[if mso]><table><tr><td><![endif]-->Hi<!--[if mso]></td></tr></table><![endif]-->", "Hi"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


# -- escaping ----------------------------------------------------------------------------------


def test_html_is_escaped_in_email_but_not_in_sms(renderer: Renderer) -> None:
    name = "<script>alert(1)</script>"
    message = email(renderer, first_name=name)
    assert "<script>" not in message.html
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;," in message.html
    assert f"Hello {name}," in message.text  # text/plain carries the literal name
    assert message.subject == f"Hi {name}"
    sms = renderer.render_sms("r.sms.j2", "Hi {{ name }}", {"name": name}, "c_1", include_opt_out=False)
    assert sms.body == f"Hi {name}"


# -- unsubscribe tokens ------------------------------------------------------------------------


def test_token_round_trip_and_urls() -> None:
    token = make_token(SECRET, "acme", "c_123", "email", "marketing")
    assert read_token(SECRET, token) == TokenData("acme", "c_123", "email", "marketing")
    assert len(token) < 80
    assert set(token) <= set(string.ascii_letters + string.digits + "-_.")
    assert unsubscribe_urls("https://h.example.com/", token) == (
        f"https://h.example.com/u/{token}",
        f"https://h.example.com/u/{token}/one-click",
    )


def test_every_single_character_tamper_is_rejected() -> None:
    token = make_token(SECRET, "acme", "c_123", "sms", "all")
    alphabet = string.ascii_letters + string.digits + "-_.=+/!"
    tampered = 0
    for i, original in enumerate(token):
        for replacement in alphabet:
            if replacement == original:
                continue
            forged = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(InvalidToken):
                read_token(SECRET, forged)
            tampered += 1
    assert tampered == len(token) * (len(alphabet) - 1)


@pytest.mark.parametrize(
    "forged",
    [
        "",
        ".",
        "abc",
        "abc.def.ghi",
        "not base64!.x",
        make_token("another-secret", "acme", "c_123", "sms", "all"),
        make_token(SECRET, "acme", "c_123", "sms", "all")[:-1],
        make_token(SECRET, "acme", "c_123", "sms", "all") + "A",
        "A" * 5000,
    ],
)
def test_garbage_tokens_are_rejected(forged: str) -> None:
    with pytest.raises(InvalidToken):
        read_token(SECRET, forged)


def test_swapped_payload_is_rejected() -> None:
    mine = make_token(SECRET, "acme", "c_1", "sms", "all")
    theirs = make_token(SECRET, "acme", "c_2", "sms", "all")
    with pytest.raises(InvalidToken):
        read_token(SECRET, theirs.split(".")[0] + "." + mine.split(".")[1])
