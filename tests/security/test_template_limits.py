"""Template bombs: every way a client-authored template could exhaust the machine is
refused inside the sandbox, fast and in-process, and the message is held with the reason while
the rest of the run goes out (both engines). `herald campaign preview` renders through the same
enqueue path, so it obeys the same limits."""

from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path

import pytest

from herald.campaigns.enqueue import enqueue_planned
from herald.campaigns.links import Links
from herald.messages.render import Renderer, TemplateError
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES
from tests.integration.test_enqueue import NOW, PLAN_DDL, outbox, plan_row

LINKS = Links("https://herald.example", "test-secret")

BOMBS = {
    "tilde doubling": (
        "{% set s = namespace(v='ab') %}{% for i in range(40) %}{% set s.v = s.v ~ s.v %}{% endfor %}{{ s.v }}",
        "'~' would build",
    ),
    "tilde chain": ("{% set a = 'x' * 100000 %}{{ (a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a)|length }}", "'~'"),
    "center filter": ("{{ 'a'|center(500000000)|length }}", "filter center would build"),
    "format filter": ("{{ '%500000000d'|format(1)|length }}", "filter format would build"),
    "percent formatting": ("{{ ('%500000000d' % 1)|length }}", "'%' would build"),
    "percent star width": ("{{ ('%*d' % (500000000, 1))|length }}", "'*' width"),
    "indent filter": ("{{ ('a\n' * 50000)|indent(100000)|length }}", "filter indent would build"),
    "replace filter": ("{{ ('a' * 100000)|replace('a', 'b' * 100000)|length }}", "filter replace would build"),
    "wordwrap filter": ("{{ ('a ' * 50000)|wordwrap(1, wrapstring='x' * 100000)|length }}", "filter wordwrap"),
    "power": ("{{ 2 ** 100000 }}", "'**' would build an integer"),
    "lipsum": ("{{ lipsum(100000, max=1000)|length }}", "lipsum of more than"),
    "nested loops": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}x",
        "more than 1000000 steps",
    ),
    "str.ljust": ("{{ 'a'.ljust(500000000)|length }}", "str.ljust would build"),
    "str.format width": ("{{ '{:>500000000}'.format(1)|length }}", "str.format would build"),
    "join filter": ("{{ (['x' * 100000] * 100000)|join|length }}", "filter join would build"),
    "str.join": ("{{ ''.join(['x' * 100000] * 100000)|length }}", "str.join would build"),
    "shared-list repr": ("{% set l = ['x' * 100000] * 100000 %}{{ l }}", "an output expression would build"),
    "list.extend doubling": (
        "{% set l = [1] %}{% for i in range(40) %}{% set _ = l.extend(l) %}{% endfor %}{{ l|length }}",
        "list.extend would build",
    ),
    "batch fill": ("{{ [1]|batch(1000000000, 'x')|list|length }}", "filter batch of"),
    "append in a loop": (
        "{% set l = [] %}{% for i in range(100000) %}{% set _ = l.append('a' * 100000) %}{% endfor %}{{ l|length }}",
        "characters in all",
    ),
    "expandtabs": ("{{ ('\t' * 100000).expandtabs(100000)|length }}", "str.expandtabs would build"),
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_template_bomb_is_refused_fast_and_small(renderer: Renderer, name: str) -> None:
    source, reason = BOMBS[name]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(TemplateError) as caught:
        renderer.render_sms("bomb.sms.j2", source, {}, "c_1")
    assert time.perf_counter() - started < 1.5
    assert reason in caught.value.reason
    assert str(caught.value).endswith("for contact c_1")
    # the peak memory of the process grew by less than 100 MB (ru_maxrss is in KiB on Linux)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 * 1024


def test_a_slow_template_stops_at_the_wall_clock_limit() -> None:
    renderer = Renderer(max_render_seconds=0.2, max_steps=10**12)
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=r"rendering took longer than 0.2 s for contact c_1"):
        renderer.render_sms("slow.sms.j2", BOMBS["nested loops"][0], {}, "c_1")
    assert time.perf_counter() - started < 1.0


def test_the_limit_is_per_message_not_per_renderer(renderer: Renderer) -> None:
    """A message near the step limit, then another: the second has a budget of its own."""
    source = "{% for a in range(900) %}{% for b in range(1000) %}{% endfor %}{% endfor %}ok"
    assert renderer.render_sms("big.sms.j2", source, {}, "c_1", include_opt_out=False).body == "ok"
    assert renderer.render_sms("big.sms.j2", source, {}, "c_2", include_opt_out=False).body == "ok"


def test_ordinary_templates_still_render(renderer: Renderer) -> None:
    source = (
        "Hi {{ first_name|title }}, your {{ service }} is on {{ when }}."
        "{% if balance > 0 %} Balance: ${{ '%.2f'|format(balance) }}.{% endif %}"
        "{% for p in pets %} {{ p ~ '!' }}{% endfor %} {{ '{:>6}'.format('x') }} {{ pets|join(', ') }}"
        " {{ 'x'|center(5) }}|{{ lipsum(1, html=False, min=3, max=5)|length > 0 }}"
    )
    variables = {"first_name": "ana", "service": "cleaning", "when": "Tue 3pm", "balance": 12.5, "pets": ["Rex", "Tom"]}
    body = renderer.render_sms("ok.sms.j2", source, variables, "c_1").body
    assert body.startswith("Hi Ana, your cleaning is on Tue 3pm. Balance: $12.50. Rex! Tom!      x Rex, Tom   x  |True")


def test_an_email_bomb_in_the_subject_or_body_is_refused(renderer: Renderer) -> None:
    mjml = "<mjml><mj-body><mj-text>{{ 'a'|center(500000000) }}</mj-text></mj-body></mjml>"
    with pytest.raises(TemplateError, match="filter center would build"):
        renderer.render_email(
            "bomb.mjml.j2", "Hi", mjml, {}, "c_1",
            unsubscribe_url="https://h.example/u/t", one_click_url="https://h.example/u/t/one-click",
        )  # fmt: skip
    with pytest.raises(TemplateError, match="'~' would build"):
        renderer.render_email(
            "bomb.mjml.j2", "{% set s = namespace(v='ab') %}{% for i in range(40) %}{% set s.v = s.v ~ s.v %}"
            "{% endfor %}{{ s.v }}", "<mjml><mj-body><mj-text>x</mj-text></mj-body></mjml>", {}, "c_1",
            unsubscribe_url="https://h.example/u/t", one_click_url="https://h.example/u/t/one-click",
        )  # fmt: skip


@pytest.fixture
def config_with_bombs(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    templates = config / "clients" / "bright_smiles_dental" / "templates"
    (templates / "loops.sms.j2").write_text(BOMBS["nested loops"][0], encoding="utf-8")
    (templates / "doubling.sms.j2").write_text(BOMBS["tilde doubling"][0], encoding="utf-8")
    return config


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_bomb_holds_its_message_with_the_reason_and_the_run_goes_on(
    warehouse: Warehouse, deployment, config_with_bombs: Path
) -> None:
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    variables = {"first_name": "Ana", "client_name": "Bright Smiles Dental", "appointment_at": "2026-11-21 15:00:00"}
    with warehouse.session() as s:
        s.execute(PLAN_DDL.format(json=json_type))
        rows = [
            plan_row("k1", "ana", variables, template="loops.sms.j2"),
            plan_row("k2", "bob", variables, template="doubling.sms.j2"),
            plan_row("k3", "cy", variables),  # the client's real reminder
        ]
        for row in rows:
            s.execute(f"insert into marts.message_plan values ({', '.join('?' * len(row))})", row)
    started = time.perf_counter()
    with warehouse.session() as s:
        report = enqueue_planned(s, deployment, config_with_bombs, LINKS, NOW)
    assert time.perf_counter() - started < 10
    assert (report.considered, report.enqueued, report.held) == (3, 3, 2)
    messages = outbox(warehouse)
    assert messages["k1"]["status"] == "held"
    assert "render limit: more than 1000000 steps" in messages["k1"]["status_reason"]
    assert "loops.sms.j2" in messages["k1"]["status_reason"]
    assert messages["k2"]["status"] == "held" and "'~' would build" in messages["k2"]["status_reason"]
    assert messages["k3"]["status"] == "queued" and "Ana" in messages["k3"]["body_text"]
    assert not messages["k1"]["body_text"]  # a held message carries no body
