"""Outbound webhooks against a real HTTP receiver on 127.0.0.1 that verifies every signature with
its own secret (the standardwebhooks library) and can answer 500, 410, 400 or too slowly.

The dispatcher's clock (``now``) is advanced by hand to walk the retry schedule; nothing sleeps
for a backoff. Both engines."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from herald.warehouse.connection import Warehouse
from herald.webhooks.config import WebhookSubscription, subscription_id
from herald.webhooks.dispatch import MAX_ATTEMPTS, RETRY_DELAYS, dispatch
from tests.conftest import ENGINES

T0 = datetime(2026, 3, 2, 12, 0)
TIMEOUT = 0.3  # the dispatcher's HTTP timeout in these tests; a "slow" answer waits longer


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass
class Receipt:
    path: str
    webhook_id: str
    verified: bool
    body: dict[str, Any] | None
    raw: str


@dataclass
class Receiver:
    """One HTTP server; each path is an endpoint with its own secret and scripted answers."""

    secrets: dict[str, str] = field(default_factory=dict)
    script: dict[str, list[str]] = field(default_factory=dict)  # path -> answers to give, in order; then "200"
    receipts: list[Receipt] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    base_url: str = ""

    def endpoint(self, path: str, *answers: str) -> str:
        self.secrets[path] = new_secret()
        self.script[path] = list(answers)
        return self.base_url + path

    def at(self, path: str) -> list[Receipt]:
        return [r for r in self.receipts if r.path == path]


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            headers = dict(self.headers.items())
            try:
                body = Webhook(receiver.secrets[self.path]).verify(raw, headers)
                verified = True
            except (WebhookVerificationError, KeyError):
                body, verified = None, False
            receiver.receipts.append(Receipt(self.path, headers.get("webhook-id", ""), verified, body, raw))
            queue = receiver.script.get(self.path, [])
            answer = queue.pop(0) if queue else "200"
            if answer == "slow":
                receiver.release.wait(5)  # longer than the dispatcher waits
                answer = "200"
            try:
                self.send_response(int(answer))
                self.end_headers()
                self.wfile.write(b"ok" if answer.startswith("2") else b"no")
            except OSError:
                pass  # the dispatcher gave up waiting

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(r))
    server.daemon_threads = True
    r.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


EVENT_COLUMNS = [
    ("event_id", "varchar"), ("client_id", "varchar"), ("event_type", "varchar"), ("occurred_at", "timestamp"),
    ("contact_id", "varchar"), ("external_id", "varchar"), ("campaign", "varchar"), ("step", "varchar"),
    ("message_key", "varchar"), ("channel", "varchar"), ("detail", "varchar"),
]  # fmt: skip


def add_events(warehouse: Warehouse, *events: tuple[str, str, datetime]) -> None:
    """(event_id, event_type, occurred_at) rows of the clinic in marts.client_events (made by hand here)."""
    with warehouse.session() as s:
        s.execute(f"create table if not exists marts.client_events ({', '.join(f'{n} {t}' for n, t in EVENT_COLUMNS)})")
        s.insert_rows(
            "marts.client_events",
            [n for n, _ in EVENT_COLUMNS],
            [(eid, "clinic", etype, at, f"contact-{eid}", f"ext-{eid}", "reminders", "day_before", f"mk-{eid}",
              "sms", None) for eid, etype, at in events],
        )  # fmt: skip


def sub(receiver: Receiver, url: str, env: str, **kw: Any) -> tuple[str, WebhookSubscription]:
    return ("clinic", WebhookSubscription(url=url, secret_env=env, **kw))


def env_of(receiver: Receiver, **paths: str) -> dict[str, str]:
    return {name: receiver.secrets[path] for name, path in paths.items()}


def rows(warehouse: Warehouse, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    with warehouse.session(read_only=True) as s:
        names, values = s.query(sql, params)
    return [dict(zip(names, v, strict=True)) for v in values]


def run(warehouse: Warehouse, subs: list[tuple[str, WebhookSubscription]], env: dict[str, str], now: datetime):
    return dispatch(warehouse, subs, now=now, environ=env, timeout=TIMEOUT)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_events_are_posted_signed_with_the_event_id_and_no_addresses(warehouse: Warehouse, receiver: Receiver) -> None:
    url = receiver.endpoint("/crm")
    subs = [sub(receiver, url, "CRM_SECRET", events=["sent", "delivered"])]
    env = env_of(receiver, CRM_SECRET="/crm")
    run(warehouse, subs, env, T0)  # the subscription starts now: earlier events are not sent
    add_events(
        warehouse,
        ("old", "delivered", T0 - timedelta(hours=1)),
        ("e1", "sent", T0 + timedelta(minutes=1)),
        ("e2", "delivered", T0 + timedelta(minutes=2)),
        ("e3", "replied", T0 + timedelta(minutes=3)),  # not subscribed
    )
    result = run(warehouse, subs, env, T0 + timedelta(minutes=5))

    assert (result.enqueued, result.delivered, result.failed) == (2, 2, 0)
    assert [(r.webhook_id, r.verified) for r in receiver.at("/crm")] == [("e1", True), ("e2", True)]
    first = receiver.at("/crm")[1].body
    assert first is not None and first["type"] == "message.delivered"
    assert first["timestamp"] == "2026-03-02T12:02:00Z"
    assert first["data"]["contact_id"] == "contact-e2" and first["data"]["message_key"] == "mk-e2"
    assert not any("@" in r.raw or "+1" in r.raw for r in receiver.receipts)
    sid = subscription_id("clinic", url)
    deliveries = rows(warehouse, "select event_id, status, attempts from herald_ops.webhook_deliveries order by 1")
    assert deliveries == [{"event_id": "e1", "status": "delivered", "attempts": 1},
                          {"event_id": "e2", "status": "delivered", "attempts": 1}]  # fmt: skip
    attempts = rows(warehouse, "select subscription_id, status_code, outcome from herald_ops.webhook_attempts")
    assert attempts == [{"subscription_id": sid, "status_code": 200, "outcome": "delivered"}] * 2


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_500_and_timeout_are_retried_with_backoff_under_the_same_webhook_id(
    warehouse: Warehouse, receiver: Receiver
) -> None:
    flaky = receiver.endpoint("/flaky", "500")
    slow = receiver.endpoint("/slow", "slow")
    subs = [sub(receiver, flaky, "FLAKY"), sub(receiver, slow, "SLOW")]
    env = env_of(receiver, FLAKY="/flaky", SLOW="/slow")
    run(warehouse, subs, env, T0)
    add_events(warehouse, ("e1", "delivered", T0 + timedelta(seconds=1)))

    first = run(warehouse, subs, env, T0 + timedelta(seconds=10))
    assert (first.delivered, first.retrying) == (0, 2)
    state = rows(warehouse, "select s.url, d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error "
                            "from herald_ops.webhook_deliveries d join herald_ops.webhook_subscriptions s "
                            "using (subscription_id) order by s.url")  # fmt: skip
    assert [(r["status"], r["attempts"], r["next_attempt_at"]) for r in state] == [
        ("pending", 1, T0 + timedelta(seconds=15))
    ] * 2
    assert state[0]["last_status_code"] == 500 and state[0]["last_error"].startswith("HTTP 500")
    assert state[1]["last_status_code"] is None and state[1]["last_error"] == "timed out after 0.3 s"

    # before the backoff is over nothing is sent again
    early = run(warehouse, subs, env, T0 + timedelta(seconds=14))
    assert (early.delivered, early.retrying, len(receiver.receipts)) == (0, 0, 2)

    later = run(warehouse, subs, env, T0 + timedelta(seconds=15))
    assert later.delivered == 2
    for path in ("/flaky", "/slow"):
        assert [(r.webhook_id, r.verified) for r in receiver.at(path)] == [("e1", True), ("e1", True)]
        assert receiver.at(path)[0].raw == receiver.at(path)[1].raw
    outcomes = rows(warehouse, "select attempt_number, outcome from herald_ops.webhook_attempts order by 1, 2")
    assert [(r["attempt_number"], r["outcome"]) for r in outcomes] == [
        (1, "retry"), (1, "retry"), (2, "delivered"), (2, "delivered")
    ]  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_endpoint_failing_for_more_than_a_day_fails_the_delivery_after_the_whole_schedule(
    warehouse: Warehouse, receiver: Receiver
) -> None:
    assert sum(RETRY_DELAYS, timedelta()) >= timedelta(hours=24)
    down = receiver.endpoint("/down", *["503"] * 20)
    subs = [sub(receiver, down, "DOWN")]
    env = env_of(receiver, DOWN="/down")
    run(warehouse, subs, env, T0)
    add_events(warehouse, ("e1", "failed", T0 + timedelta(seconds=1)))
    now = T0 + timedelta(seconds=2)
    waits = []
    for _ in range(MAX_ATTEMPTS):
        run(warehouse, subs, env, now)
        (d,) = rows(warehouse, "select status, next_attempt_at, last_error from herald_ops.webhook_deliveries")
        if d["next_attempt_at"] is None:
            break
        waits.append(d["next_attempt_at"] - now)
        now = d["next_attempt_at"]
    assert tuple(waits) == RETRY_DELAYS
    assert d["status"] == "failed" and d["last_error"].startswith(f"gave up after {MAX_ATTEMPTS} attempts")
    assert len(receiver.at("/down")) == MAX_ATTEMPTS
    assert {r.webhook_id for r in receiver.at("/down")} == {"e1"}
    # nothing more is tried
    run(warehouse, subs, env, now + timedelta(days=2))
    assert len(receiver.at("/down")) == MAX_ATTEMPTS


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_410_gone_disables_the_subscription_and_400_fails_at_once(warehouse: Warehouse, receiver: Receiver) -> None:
    gone = receiver.endpoint("/gone", "410")
    bad = receiver.endpoint("/bad", "400")
    subs = [sub(receiver, gone, "GONE"), sub(receiver, bad, "BAD")]
    env = env_of(receiver, GONE="/gone", BAD="/bad")
    run(warehouse, subs, env, T0)
    add_events(warehouse, ("e1", "sent", T0 + timedelta(seconds=1)), ("e2", "sent", T0 + timedelta(seconds=2)))

    result = run(warehouse, subs, env, T0 + timedelta(minutes=1))
    assert result.disabled == 1
    (disabled,) = rows(warehouse, "select url, disabled_at, disabled_reason from herald_ops.webhook_subscriptions "
                                  "where disabled_at is not null")  # fmt: skip
    assert disabled["url"] == gone and disabled["disabled_reason"].startswith("410 Gone")
    gone_rows = rows(warehouse, "select event_id, status, last_error from herald_ops.webhook_deliveries d join "
                                "herald_ops.webhook_subscriptions s using (subscription_id) where s.url = ? order by 1",
                     [gone])  # fmt: skip
    assert gone_rows[0]["status"] == "failed" and "410 Gone" in gone_rows[0]["last_error"]
    assert len(receiver.at("/gone")) == 1  # e2 is not sent to a gone endpoint
    (audit_row,) = rows(warehouse, "select action, client_id, subject from herald_ops.audit_log")
    assert audit_row == {"action": "webhook_disabled", "client_id": "clinic", "subject": gone}
    # 400: both events tried once each, failed, never again
    bad_rows = rows(warehouse, "select status, attempts, last_status_code from herald_ops.webhook_deliveries d join "
                               "herald_ops.webhook_subscriptions s using (subscription_id) where s.url = ?", [bad])  # fmt: skip
    assert sorted((r["status"], r["attempts"], r["last_status_code"]) for r in bad_rows) == [
        ("delivered", 1, 200), ("failed", 1, 400)
    ]  # fmt: skip
    add_events(warehouse, ("e3", "sent", T0 + timedelta(minutes=2)))
    after = run(warehouse, subs, env, T0 + timedelta(days=1))
    assert len(receiver.at("/gone")) == 1 and after.totals["disabled_subscriptions"] == 1
    assert [r.webhook_id for r in receiver.at("/bad")] == ["e1", "e2", "e3"]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_event_seen_twice_is_sent_once(warehouse: Warehouse, receiver: Receiver) -> None:
    url = receiver.endpoint("/crm")
    subs = [sub(receiver, url, "CRM")]
    env = env_of(receiver, CRM="/crm")
    run(warehouse, subs, env, T0)
    add_events(
        warehouse, ("e1", "opted_out", T0 + timedelta(seconds=1)), ("e1", "opted_out", T0 + timedelta(seconds=1))
    )
    run(warehouse, subs, env, T0 + timedelta(minutes=1))
    add_events(warehouse, ("e1", "opted_out", T0 + timedelta(seconds=1)))  # the feed repeats it later
    again = run(warehouse, subs, env, T0 + timedelta(minutes=2))
    assert again.enqueued == 0
    assert [r.webhook_id for r in receiver.at("/crm")] == ["e1"]
    assert rows(warehouse, "select count(*) as n from herald_ops.webhook_deliveries") == [{"n": 1}]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_dead_endpoint_does_not_hold_back_other_subscriptions(warehouse: Warehouse, receiver: Receiver) -> None:
    dead = receiver.endpoint("/dead", *["slow"] * 10)
    alive = receiver.endpoint("/alive")
    subs = [sub(receiver, dead, "DEAD"), sub(receiver, alive, "ALIVE")]
    env = env_of(receiver, DEAD="/dead", ALIVE="/alive")
    run(warehouse, subs, env, T0)
    add_events(warehouse, *[(f"e{i}", "delivered", T0 + timedelta(seconds=i)) for i in range(1, 6)])

    result = run(warehouse, subs, env, T0 + timedelta(minutes=1))
    assert [r.webhook_id for r in receiver.at("/alive")] == ["e1", "e2", "e3", "e4", "e5"]
    assert len(receiver.at("/dead")) == 1  # one timeout per run, the rest wait
    assert (result.delivered, result.retrying, result.deferred) == (5, 1, 4)
    assert result.totals["pending"] == 5 and result.totals["retrying"] == 1


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_missing_secret_holds_that_subscription_only(warehouse: Warehouse, receiver: Receiver) -> None:
    alive = receiver.endpoint("/alive")
    nosecret = receiver.endpoint("/nosecret")
    subs = [sub(receiver, nosecret, "NOT_SET"), sub(receiver, alive, "ALIVE")]
    env = env_of(receiver, ALIVE="/alive")
    run(warehouse, subs, env, T0)
    add_events(warehouse, ("e1", "sent", T0 + timedelta(seconds=1)))
    result = run(warehouse, subs, env, T0 + timedelta(minutes=1))
    assert result.delivered == 1 and receiver.at("/nosecret") == []
    assert result.problems == [
        f"clinic: environment variable NOT_SET (the signing secret of {nosecret}) is not set; its deliveries wait"
    ]


# --- the feed: marts.client_events built by dbt over hand-made upstream marts ------------------

F = datetime(2026, 3, 2, 9, 0)
FEED_UPSTREAM: dict[str, list[tuple[str, str]]] = {
    "marts.contacts": [("contact_id", "varchar"), ("client_id", "varchar"), ("external_id", "varchar")],
    "marts.messages": [("message_key", "varchar"), ("client_id", "varchar"), ("campaign", "varchar"),
                       ("step", "varchar"), ("contact_id", "varchar"), ("channel", "varchar"),
                       ("sent_at", "timestamp")],
    "marts.deliveries": [("message_key", "varchar"), ("client_id", "varchar"), ("campaign", "varchar"),
                         ("step", "varchar"), ("contact_id", "varchar"), ("channel", "varchar"),
                         ("final_status", "varchar"), ("delivered_at", "timestamp"), ("failed_at", "timestamp"),
                         ("bounced_at", "timestamp")],
    "marts.conversation_messages": [("conversation_message_id", "varchar"), ("client_id", "varchar"),
                                    ("contact_id", "varchar"), ("channel", "varchar"), ("direction", "varchar"),
                                    ("inbound_action", "varchar"), ("occurred_at", "timestamp")],
    "marts.suppressions": [("suppression_key", "varchar"), ("client_id", "varchar"), ("channel", "varchar"),
                           ("reason", "varchar"), ("contact_id", "varchar"), ("created_at", "timestamp")],
    "marts.engagement_events": [("event_id", "varchar"), ("message_key", "varchar"), ("client_id", "varchar"),
                                ("campaign", "varchar"), ("step", "varchar"), ("contact_id", "varchar"),
                                ("channel", "varchar"), ("event", "varchar"), ("url", "varchar"),
                                ("occurred_at", "timestamp")],
    "analytics.conversions": [("conversion_id", "varchar"), ("client_id", "varchar"), ("contact_id", "varchar"),
                              ("kind", "varchar"), ("occurred_at", "timestamp")],
}  # fmt: skip


def feed_build() -> Any:
    from tests.dbt_harness import MartBuild, row

    return MartBuild(
        name="client_events",
        models=["client_events"],
        sources=["herald_ops.enrollment_events"],
        hand_made=FEED_UPSTREAM,
        rows={
            "marts.contacts": [("c1", "clinic", "EXT-1"), ("c2", "clinic", None)],
            "marts.messages": [("m1", "clinic", "reminders", "day_before", "c1", "sms", F),
                               ("m2", "clinic", "reminders", "day_before", "c2", "email", F),
                               ("m3", "clinic", "reminders", "day_before", "c2", "sms", None)],  # never sent
            "marts.deliveries": [
                ("m1", "clinic", "reminders", "day_before", "c1", "sms", "delivered", F + timedelta(minutes=1), None, None),
                ("m2", "clinic", "reminders", "day_before", "c2", "email", "bounced", None, None,
                 F + timedelta(minutes=2)),
            ],
            "marts.conversation_messages": [
                ("in:i1", "clinic", "c1", "sms", "inbound", "opt_out", F + timedelta(minutes=3)),
                ("out:m1", "clinic", "c1", "sms", "outbound", None, F),  # outbound: not a reply
            ],
            "marts.suppressions": [
                ("s1", "clinic", "sms", "opt_out", "c1", F + timedelta(minutes=3)),
                ("s2", "*", "email", "hard_bounce", "c2", F + timedelta(minutes=2)),  # global bounce: no event
                ("s3", "clinic", "*", "manual_block", "c2", F),  # support's block: no event
            ],
            "analytics.conversions": [("v1", "clinic", "c2", "funnel_event", F + timedelta(hours=1))],
            "marts.engagement_events": [
                ("k1", "m2", "clinic", "reminders", "day_before", "c2", "email", "clicked",
                 "https://brightsmiles.example/book?email=someone@example.com", F + timedelta(minutes=5)),
                ("k2", "m2", "clinic", "reminders", "day_before", "c2", "email", "opened", None, F + timedelta(minutes=4)),
            ],
            "herald_ops.enrollment_events": [
                row("herald_ops.enrollment_events", event_id="j1", enrollment_id="en1", client_id="clinic",
                    campaign="nurture", contact_id="c2", step="welcome", event="enrolled", occurred_at=F,
                    recorded_at=F),
                row("herald_ops.enrollment_events", event_id="j2", enrollment_id="en1", client_id="clinic",
                    campaign="nurture", contact_id="c2", step="welcome", event="waiting", occurred_at=F,
                    recorded_at=F),
                row("herald_ops.enrollment_events", event_id="j3", enrollment_id="en1", client_id="clinic",
                    campaign="nurture", contact_id="c2", step="follow_up", event="exited", reason="replied",
                    occurred_at=F + timedelta(minutes=4), recorded_at=F),
            ],
        },
    )  # fmt: skip


@pytest.fixture(scope="module", params=ENGINES)
def feed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.dbt_harness import build_marts

    with build_marts(request, tmp_path_factory, feed_build()) as built:
        yield built


def test_the_feed_has_one_row_per_event_with_ids_only(feed: Any) -> None:
    from tests.dbt_harness import failed_nodes

    assert failed_nodes(feed) == {}
    got = rows(feed.warehouse, "select event_type, contact_id, external_id, campaign, step, message_key, channel, "
                               "detail from marts.client_events order by occurred_at, event_type, contact_id")  # fmt: skip
    assert [tuple(r.values()) for r in got] == [
        ("enrolled", "c2", None, "nurture", "welcome", None, None, None),
        ("sent", "c1", "EXT-1", "reminders", "day_before", "m1", "sms", None),
        ("sent", "c2", None, "reminders", "day_before", "m2", "email", None),
        ("delivered", "c1", "EXT-1", "reminders", "day_before", "m1", "sms", None),
        ("failed", "c2", None, "reminders", "day_before", "m2", "email", "bounced"),
        ("opted_out", "c1", "EXT-1", None, None, None, "sms", "opt_out"),
        ("replied", "c1", "EXT-1", None, None, None, "sms", "opt_out"),
        ("exited", "c2", None, "nurture", "follow_up", None, None, "replied"),
        ("clicked", "c2", None, "reminders", "day_before", "m2", "email", "https://brightsmiles.example/book"),
        ("converted", "c2", None, None, None, None, None, "funnel_event"),
    ]
    ids = rows(feed.warehouse, "select event_id from marts.client_events where event_type = 'sent' order by 1")
    import hashlib

    assert {r["event_id"] for r in ids} == {hashlib.md5(f"sent|{k}".encode()).hexdigest() for k in ("m1", "m2")}


def test_the_built_feed_is_dispatched_to_a_subscriber(feed: Any, receiver: Receiver) -> None:
    url = receiver.endpoint("/journeys")
    subs = [sub(receiver, url, "JOURNEYS", events=["enrolled", "exited", "opted_out"])]
    env = env_of(receiver, JOURNEYS="/journeys")
    feed.warehouse.ensure_schema()  # the build made only the tables the model reads
    result = run(feed.warehouse, subs, env, F - timedelta(days=1))  # subscribed the day before
    assert (result.enqueued, result.delivered) == (3, 3)
    assert [(r.verified, r.body["type"] if r.body else None) for r in receiver.at("/journeys")] == [
        (True, "journey.enrolled"), (True, "contact.opted_out"), (True, "journey.exited")
    ]  # fmt: skip


# --- Dagster: the asset in its own job, the sensor ---------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_the_asset_dispatches_with_the_deployments_config_and_reports_counts(
    engine: str, receiver: Receiver, herald_env: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import dagster as dg

    from assets.webhooks.deliveries import webhook_deliveries
    from herald.settings import Settings
    from resources import HeraldConfigResource, WarehouseResource
    from tests.conftest import CONFIG_DIR

    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    url = receiver.endpoint("/dental")
    client_yaml = config / "clients" / "bright_smiles_dental" / "client.yaml"
    client_yaml.write_text(client_yaml.read_text() + f"\nwebhooks:\n  - url: {url}\n    secret_env: DENTAL_HOOK\n")
    env = {**herald_env(engine), "HERALD_CONFIG_DIR": str(config), "DENTAL_HOOK": receiver.secrets["/dental"]}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    warehouse = Warehouse(Settings.from_env().warehouse)
    warehouse.ensure_schema()

    resources = {"herald_config": HeraldConfigResource(), "warehouse": WarehouseResource()}
    first = dg.materialize([webhook_deliveries], resources=resources)  # subscribes; the feed is not built yet
    assert first.success
    with warehouse.session() as s:
        s.execute(f"create table marts.client_events ({', '.join(f'{n} {t}' for n, t in EVENT_COLUMNS)})")
        s.insert_rows("marts.client_events", [n for n, _ in EVENT_COLUMNS],
                      [("e1", "bright_smiles_dental", "sent", datetime(2100, 1, 1), "c1", None, "reminders",
                        "day_before", "mk1", "sms", None)])  # fmt: skip
    second = dg.materialize([webhook_deliveries], resources=resources)
    (materialization,) = second.asset_materializations_for_node("herald_ops__webhook_deliveries")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert (metadata["subscriptions"], metadata["enqueued"], metadata["delivered"], metadata["failed"]) == (1, 1, 1, 0)
    assert (metadata["retrying"], metadata["disabled"], metadata["disabled_subscriptions"]) == (0, 0, 0)
    assert [(r.webhook_id, r.verified) for r in receiver.at("/dental")] == [("e1", True)]


def test_the_sensor_requests_a_run_only_with_subscriptions_and_none_in_flight() -> None:
    import dagster as dg

    from sensors.webhooks import build_webhooks_sensor

    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance)
        skipped = build_webhooks_sensor(0).evaluate_tick(context)
        assert skipped.run_requests == [] and "no client subscribes" in (skipped.skip_message or "")
        requested = build_webhooks_sensor(2).evaluate_tick(dg.build_sensor_context(instance=instance))
        assert len(requested.run_requests or []) == 1


# --- the CLI ------------------------------------------------------------------------------------


def cli(env: dict[str, str], *args: str) -> Any:
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    return subprocess.run([sys.executable, "-m", "herald.cli", "webhooks", *args], env={**os.environ, **env},
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_cli_test_pings_each_subscription_and_list_shows_the_state(
    engine: str, receiver: Receiver, herald_env: Any, tmp_path: Any
) -> None:
    import shutil

    from herald.settings import Settings
    from tests.conftest import CONFIG_DIR

    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    ok, gone = receiver.endpoint("/ok"), receiver.endpoint("/gone", "410", "410")
    client_yaml = config / "clients" / "bright_smiles_dental" / "client.yaml"
    client_yaml.write_text(client_yaml.read_text() + f"\nwebhooks:\n  - url: {ok}\n    secret_env: OK_HOOK\n"
                           f"  - url: {gone}\n    secret_env: GONE_HOOK\n    events: [sent]\n")  # fmt: skip
    env = {**herald_env(engine), "HERALD_CONFIG_DIR": str(config), "OK_HOOK": receiver.secrets["/ok"],
           "GONE_HOOK": receiver.secrets["/gone"]}  # fmt: skip

    pinged = cli(env, "test", "bright_smiles_dental")
    assert pinged.returncode == 1, pinged.stderr  # one endpoint did not answer 2xx
    assert f"{ok}: ok HTTP 200" in pinged.stdout and f"{gone}: failed HTTP 410" in pinged.stdout
    assert [(r.path, r.verified, r.body["type"] if r.body else None) for r in receiver.receipts] == [
        ("/ok", True, "webhook.ping"), ("/gone", True, "webhook.ping")
    ]  # fmt: skip

    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    from herald.config import load_deployment
    from herald.webhooks.dispatch import configured_subscriptions

    subs = configured_subscriptions(load_deployment(config))
    secrets = {"OK_HOOK": receiver.secrets["/ok"], "GONE_HOOK": receiver.secrets["/gone"]}
    dispatch(warehouse, subs, now=T0, environ=secrets, timeout=TIMEOUT)
    with warehouse.session() as s:
        s.execute(f"create table marts.client_events ({', '.join(f'{n} {t}' for n, t in EVENT_COLUMNS)})")
        s.insert_rows("marts.client_events", [n for n, _ in EVENT_COLUMNS],
                      [("e1", "bright_smiles_dental", "sent", T0, "c1", None, None, None, "mk1", "sms", None)])  # fmt: skip
    dispatch(warehouse, subs, now=T0 + timedelta(minutes=1), environ=secrets, timeout=TIMEOUT)

    listed = cli({**env, "COLUMNS": "400"}, "list", "bright_smiles_dental")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines() if "http://" in line}
    assert "active" in lines[ok] and "disabled" in lines[gone] and "410 Gone" in lines[gone]

    enabled = cli(env, "enable", "bright_smiles_dental", gone)
    assert enabled.returncode == 0 and "enabled" in enabled.stdout
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_ops.webhook_subscriptions where disabled_at is not null") == 0
