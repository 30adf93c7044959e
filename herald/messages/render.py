"""Render message templates per recipient: sandboxed Jinja for SMS, MJML + Jinja for email.

Templates are client-authored, so they run in Jinja's `SandboxedEnvironment` with
`StrictUndefined` (a missing variable is an error, never an empty string), a cap on source
length and on rendered size, and the resource limits of :mod:`herald.messages.limits`: a
wall-clock deadline, a step count and a size check on everything that can build a large value
(the sandbox alone happily evaluates `'a' * 10**8`). Compiled templates are cached by kind, name and source
hash. MJML is compiled to HTML once per template with the Jinja placeholders left in it; Jinja
then renders that HTML per recipient (Jinja logic between components must sit inside
`<mj-raw>`: mrml drops tags it does not know).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import jinja2
import mrml
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from herald.campaigns.tracking import TRACK_FUNCTION, untracked
from herald.messages import limits
from herald.messages.limits import MAX_INT_BITS, MAX_SEQUENCE_LEN  # noqa: F401 (re-exported)
from herald.messages.sms import Encoding, sms_info

MAX_SOURCE_CHARS = 20_000  # SMS bodies and subjects
MAX_MJML_SOURCE_CHARS = 100_000  # MJML markup is verbose
MAX_SMS_CHARS = 1_600  # Twilio's body limit
MAX_HTML_CHARS = 512 * 1024
MAX_SUBJECT_CHARS = 998  # RFC 5322 line length
CACHE_SIZE = 512

DEFAULT_OPT_OUT_TEXT = "Reply STOP to opt out."
DEFAULT_UNSUBSCRIBE_TEXT = "Unsubscribe"
UNSUBSCRIBE_VAR = "unsubscribe_url"
UNSUBSCRIBE_TEXT_VAR = "unsubscribe_text"
LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
ONE_CLICK = "List-Unsubscribe=One-Click"

_OPT_OUT_RE = re.compile(r"\bSTOP\b")
_UNDEFINED_RE = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTRIBUTE_RE = re.compile(r"has no attribute '([^']+)'$")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class TemplateError(Exception):
    """A template could not be rendered for one contact; the message names template, variable
    (when one is missing) and contact."""

    def __init__(self, template: str, contact_id: str, reason: str, *, variable: str | None = None) -> None:
        self.template = template
        self.contact_id = contact_id
        self.variable = variable
        self.reason = reason
        if variable is not None:
            message = f"template {template!r}: variable {variable!r} is undefined for contact {contact_id}"
        else:
            message = f"template {template!r}: {reason.rstrip('.')} for contact {contact_id}"
        super().__init__(message)


@dataclass(frozen=True)
class RenderedSms:
    body: str
    encoding: Encoding
    segments: int
    characters: int


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)


class _GuardedSandbox(SandboxedEnvironment):
    """The sandbox with resource limits (herald.messages.limits): `*`, `**`, `+` and `%` checked
    before they allocate, `~` and `for` rewritten to count, every call, filter and output sized."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        limits.guard_filters(self.filters)
        self.filters.update(limits.INTERNAL_FILTERS)
        self.globals["lipsum"] = limits.bounded_lipsum(self.globals["lipsum"])

    def _parse(self, source: str, name: str | None, filename: str | None) -> jinja2.nodes.Template:
        tree = super()._parse(source, name, filename)
        return limits.BoundLoopsAndConcat(self).visit(tree)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limits.step()
        if operator == "*":
            limits.check_repeat(left, right)
        elif operator == "**":
            limits.check_power(left, right)
        elif operator == "+":
            limits.check_concat(left, right)
        elif operator == "%":
            limits.check_percent_format(left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        limits.step()
        owner = getattr(__obj, "__self__", None)
        if owner is not None:
            limits.check_str_method(owner, getattr(__obj, "__name__", ""), args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str):
            limits.check_value(result, "a call")
            limits.charge(len(result))
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            limits.check_format_string(template, args, kwargs)
            return wrapper(*args, **kwargs)

        return bounded


def _finalize(value: Any) -> Any:
    """Every `{{ ... }}` is sized before it is turned into text."""
    return limits.check_value(value, "an output expression")


def _source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _check_one_click_url(url: str) -> None:
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS)
    if not secure or not parts.hostname or any(c in url for c in "<>\r\n\t "):
        raise ValueError(f"one-click unsubscribe URL must be an https URL (RFC 8058), got {url!r}")


class Renderer:
    """Renders SMS and email templates; keep one per process so compiled templates are reused."""

    def __init__(
        self,
        *,
        cache_size: int = CACHE_SIZE,
        max_render_seconds: float = limits.MAX_RENDER_SECONDS,
        max_steps: int = limits.MAX_STEPS,
    ) -> None:
        self.max_render_seconds = max_render_seconds
        self.max_steps = max_steps
        self.text_env = _GuardedSandbox(undefined=jinja2.StrictUndefined, autoescape=False)
        self.html_env = _GuardedSandbox(undefined=jinja2.StrictUndefined, autoescape=True)
        # {{ track(url) }}: the message builder passes its own (signed /l/ links); elsewhere the URL
        for env in (self.text_env, self.html_env):
            env.globals[TRACK_FUNCTION] = untracked
        self._cache: OrderedDict[tuple[str, str, str], jinja2.Template] = OrderedDict()
        self._cache_size = cache_size
        self.mjml_compilations = 0

    # -- compile (cached) ---------------------------------------------------------------

    def _cached(
        self, kind: str, name: str, source: str, contact_id: str, build: Callable[[], jinja2.Template]
    ) -> jinja2.Template:
        key = (kind, name, _source_hash(source))
        template = self._cache.get(key)
        if template is not None:
            self._cache.move_to_end(key)
            return template
        try:
            template = build()
        except jinja2.exceptions.TemplateSyntaxError as exc:
            reason = f"syntax error on line {exc.lineno}: {exc.message}"
            raise TemplateError(name, contact_id, reason) from exc
        self._cache[key] = template
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return template

    def _text_template(self, kind: str, name: str, source: str, contact_id: str) -> jinja2.Template:
        if len(source) > MAX_SOURCE_CHARS:
            reason = f"source is {len(source)} characters (limit {MAX_SOURCE_CHARS})"
            raise TemplateError(name, contact_id, reason)
        return self._cached(kind, name, source, contact_id, lambda: self.text_env.from_string(source))

    def _html_template(self, name: str, mjml_source: str, contact_id: str) -> jinja2.Template:
        if len(mjml_source) > MAX_MJML_SOURCE_CHARS:
            reason = f"source is {len(mjml_source)} characters (limit {MAX_MJML_SOURCE_CHARS})"
            raise TemplateError(name, contact_id, reason)

        def build() -> jinja2.Template:
            try:
                self.mjml_compilations += 1
                html = mrml.to_html(mjml_source).content
            except Exception as exc:  # mrml raises its own error types for invalid MJML
                raise TemplateError(name, contact_id, f"MJML does not compile: {exc}") from exc
            if UNSUBSCRIBE_VAR not in meta.find_undeclared_variables(self.html_env.parse(html)):
                html = _add_unsubscribe_footer(html)
            return self.html_env.from_string(html)

        return self._cached("mjml", name, mjml_source, contact_id, build)

    # -- render ---------------------------------------------------------------------------

    def _render(
        self,
        template: jinja2.Template,
        name: str,
        variables: Mapping[str, Any],
        contact_id: str,
        limit: int,
    ) -> str:
        chunks: list[str] = []
        size = 0
        try:
            for chunk in template.generate(**variables):
                size += len(chunk)
                if size > limit:
                    raise TemplateError(name, contact_id, f"rendered output exceeds {limit} characters")
                chunks.append(chunk)
        except TemplateError:
            raise
        except jinja2.exceptions.UndefinedError as exc:
            message = str(exc.message or exc)
            found = _UNDEFINED_RE.match(message) or _NO_ATTRIBUTE_RE.search(message)
            if found and not isinstance(exc, jinja2.exceptions.SecurityError):
                raise TemplateError(name, contact_id, message, variable=found.group(1)) from exc
            raise TemplateError(name, contact_id, message) from exc
        except jinja2.exceptions.TemplateError as exc:  # SecurityError, runtime TemplateRuntimeError
            raise TemplateError(name, contact_id, str(exc.message or exc)) from exc
        except Exception as exc:  # errors raised by template expressions (1/0, bad types)
            raise TemplateError(name, contact_id, f"{type(exc).__name__}: {exc}") from exc
        return "".join(chunks)

    def render_sms(
        self,
        template_name: str,
        source: str,
        variables: Mapping[str, Any],
        contact_id: str,
        *,
        opt_out_text: str = DEFAULT_OPT_OUT_TEXT,
        include_opt_out: bool = True,
    ) -> RenderedSms:
        template = self._text_template("sms", template_name, source, contact_id)
        with limits.budget(self.max_render_seconds, self.max_steps):
            body = self._render(template, template_name, variables, contact_id, MAX_SMS_CHARS).strip()
        if include_opt_out and not _OPT_OUT_RE.search(body):
            body = f"{body}\n{opt_out_text}" if body else opt_out_text
        if len(body) > MAX_SMS_CHARS:
            reason = f"rendered output exceeds {MAX_SMS_CHARS} characters with opt-out text"
            raise TemplateError(template_name, contact_id, reason)
        info = sms_info(body)
        return RenderedSms(body=body, encoding=info.encoding, segments=info.segments, characters=info.characters)

    def render_email(
        self,
        template_name: str,
        subject_source: str,
        mjml_source: str,
        variables: Mapping[str, Any],
        contact_id: str,
        *,
        unsubscribe_url: str,
        one_click_url: str,
        unsubscribe_text: str = DEFAULT_UNSUBSCRIBE_TEXT,
        sender_name: str | None = None,
        postal_address: str | None = None,
    ) -> RenderedEmail:
        """One email for one recipient. Whatever the template holds, the HTML ends with an
        unsubscribe link (unless the template placed its own) and, when given, the sender's
        name and postal address (CAN-SPAM), added here so that no template can leave them out."""
        _check_one_click_url(one_click_url)
        context = {
            **variables,
            UNSUBSCRIBE_VAR: unsubscribe_url,
            UNSUBSCRIBE_TEXT_VAR: unsubscribe_text,
        }
        subject_template = self._text_template("subject", template_name, subject_source, contact_id)
        html_template = self._html_template(template_name, mjml_source, contact_id)
        with limits.budget(self.max_render_seconds, self.max_steps):  # one budget for the whole message
            subject = self._render(subject_template, template_name, context, contact_id, MAX_SUBJECT_CHARS)
            html = self._render(html_template, template_name, context, contact_id, MAX_HTML_CHARS)
        subject = " ".join(subject.split())  # no CR/LF may reach a header
        identification = sender_identification(sender_name, postal_address)
        if identification:
            html = _add_sender_footer(html, identification)
        text = html_to_text(html)
        if unsubscribe_url not in text:
            text = f"{text}\n\n{unsubscribe_text}: {unsubscribe_url}".lstrip()
        headers = {LIST_UNSUBSCRIBE: f"<{one_click_url}>", LIST_UNSUBSCRIBE_POST: ONE_CLICK}
        return RenderedEmail(subject=subject, html=html, text=text, headers=headers)


def sender_identification(sender_name: str | None, postal_address: str | None) -> str:
    """The footer line naming who sends and where they are: 'Name · street, city, state ZIP'."""
    parts = [" ".join(p.split()) for p in (sender_name, postal_address) if p and p.strip()]
    return " · ".join(parts)


def _add_sender_footer(html: str, identification: str) -> str:
    """The sender's name and postal address, escaped, as the last block before </body>."""
    footer = (
        '<div class="herald-sender" style="margin:8px auto 24px;max-width:600px;text-align:center;'
        'font-size:12px;font-family:Arial,sans-serif;color:#666666;">'
        f"{escape(identification)}</div>"
    )
    at = html.rfind("</body>")
    return html + footer if at < 0 else html[:at] + footer + html[at:]


def _add_unsubscribe_footer(html: str) -> str:
    """Append an unsubscribe link (Jinja placeholders, filled per recipient) before </body>."""
    footer = (
        '<div style="margin:24px auto;max-width:600px;text-align:center;font-size:12px;'
        'font-family:Arial,sans-serif;color:#666666;">'
        f'<a href="{{{{ {UNSUBSCRIBE_VAR} }}}}" style="color:#666666;">'
        f"{{{{ {UNSUBSCRIBE_TEXT_VAR} }}}}</a></div>"
    )
    at = html.rfind("</body>")
    return html + footer if at < 0 else html[:at] + footer + html[at:]


_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "table", "li", "ul", "ol", "hr", "section"} | {f"h{level}" for level in range(1, 7)}
)
_SKIP_TAGS = frozenset({"head", "style", "script", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(self._skip - 1, 0)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            if href and href.startswith(("http://", "https://", "mailto:")):
                label = " ".join("".join(self.parts[start:]).split())
                if not label:
                    self.parts.append(href)
                elif href not in label:
                    self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain-text alternative of an HTML email: visible text, block breaks, link URLs kept."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_default_renderer: Renderer | None = None


def default_renderer() -> Renderer:
    """A process-wide Renderer, so the template cache is shared."""
    global _default_renderer
    if _default_renderer is None:
        _default_renderer = Renderer()
    return _default_renderer


def render_sms(
    template_name: str,
    source: str,
    variables: Mapping[str, Any],
    contact_id: str,
    *,
    opt_out_text: str = DEFAULT_OPT_OUT_TEXT,
    include_opt_out: bool = True,
) -> RenderedSms:
    return default_renderer().render_sms(
        template_name,
        source,
        variables,
        contact_id,
        opt_out_text=opt_out_text,
        include_opt_out=include_opt_out,
    )


def render_email(
    template_name: str,
    subject_source: str,
    mjml_source: str,
    variables: Mapping[str, Any],
    contact_id: str,
    *,
    unsubscribe_url: str,
    one_click_url: str,
    sender_name: str | None = None,
    postal_address: str | None = None,
) -> RenderedEmail:
    return default_renderer().render_email(
        template_name,
        subject_source,
        mjml_source,
        variables,
        contact_id,
        unsubscribe_url=unsubscribe_url,
        one_click_url=one_click_url,
        sender_name=sender_name,
        postal_address=postal_address,
    )
