"""The portal's Inbox through HTTP (FastAPI's test client on the real app), on DuckDB and
PostgreSQL, with two clients' conversations in hand-made marts (the columns dbt's
marts.conversations, conversation_messages, contacts, appointments and consent_status have):
the filters (unread, open, closed, assigned to me), a reply that goes through `herald reply`'s
path into the outbox and out through the sandbox provider to its journal, a refused reply to an
opted-out contact, assignment, internal notes, quick replies with variables, the after-hours
auto-reply override the auto-responder reads, another client's conversation (404), a viewer
(403), hidden contact details masked and hostile message text escaped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from herald.clock import utcnow
from herald.config import load_deployment
from herald.conversations.autoresponder import effective_auto_reply, queue_auto_reply
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.portal.audit import query
from herald.portal.reads import publish_snapshot, reader_for
from herald.providers.factory import providers_from_env
from herald.providers.sandbox import read_journal
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.portal import PREFIX
from tests.conftest import CONFIG_DIR, ENGINES
from tests.integration.portal_support import cheap_argon2, engine_url, made_warehouse, portal_env  # noqa: F401
from tests.integration.test_portal_web import add, client_routes, csrf, sign_in, store

A, B = "bright_smiles_dental", "lakeside_realty"
ANA, CY, BEA = "+15125550142", "+15125550144", "+13125550177"
STRANGER = "+15125550199"
HOSTILE = '<script>alert("x")</script> call me at 512-555-0142 or ana@example.com'
MARTS = {
    "marts.contacts": "contact_id varchar, client_id varchar, external_id varchar, first_name varchar, "
    "last_name varchar, email varchar, phone_e164 varchar, is_phone_valid boolean, time_zone varchar, "
    "postal_code varchar, first_packet_id varchar, updated_at timestamp",
    "marts.conversation_messages": "conversation_message_id varchar, conversation_id varchar, client_id varchar, "
    "contact_id varchar, channel varchar, address_masked varchar, direction varchar, kind varchar, campaign varchar, "
    "message_type varchar, message_key varchar, inbound_id varchar, body varchar, status varchar, "
    "inbound_action varchar, is_answer boolean, occurred_at timestamp, send_after timestamp",
    "marts.conversations": "conversation_id varchar, client_id varchar, contact_id varchar, channel varchar, "
    "address_masked varchar, first_activity_at timestamp, last_activity_at timestamp, last_direction varchar, "
    "last_kind varchar, inbound_count bigint, outbound_count bigint, last_inbound_at timestamp, "
    "last_answered_at timestamp, status varchar",
    "marts.appointments": "appointment_key varchar, client_id varchar, contact_id varchar, appointment_id varchar, "
    "appointment_at timestamp, appointment_type varchar, provider_name varchar, location_name varchar, status varchar",
    "marts.consent_status": "client_id varchar, contact_id varchar, channel varchar, address varchar, scope varchar, "
    "status varchar, consent_level varchar, source varchar, since timestamp",
    "marts.messages": "message_key varchar, client_id varchar, contact_id varchar, campaign varchar, step varchar, "
    "channel varchar, to_address_masked varchar, status varchar, failure_reason varchar, enqueued_at timestamp, "
    "sent_at timestamp",
}
# conversation id → (client, contact or None, address, messages: (direction, kind, body, minutes ago))
CONVERSATIONS: dict[str, tuple[str, str | None, str, list[tuple[str, str, str, int]]]] = {
    "conv-ana": (A, "c-ana", ANA, [("outbound", "automated", "Reminder: cleaning on Friday", 300),
                                   ("inbound", "inbound", HOSTILE, 60)]),
    "conv-ben": (A, "c-ben", "+15125550143", [("inbound", "inbound", "Can I come at 4?", 500),
                                              ("outbound", "manual", "Yes, see you at 4.", 480)]),
    "conv-cy": (A, "c-cy", CY, [("inbound", "inbound", "STOP", 200)]),
    "conv-stranger": (A, None, STRANGER, [("inbound", "inbound", "Who is this?", 30)]),
    "conv-bea": (B, "c-bea", BEA, [("inbound", "inbound", "Is the house still for sale?", 10)]),
}  # fmt: skip


def masked(address: str) -> str:
    return address[:2] + "*" * (len(address) - 4) + address[-2:]


def make_inbox(warehouse: Warehouse, now: datetime) -> None:
    """Two clients' contacts and conversations in hand-made marts (as dbt builds them)."""
    with warehouse.session() as s:
        for table, columns in MARTS.items():
            s.execute(f"drop table if exists {table}")
            s.execute(f"create table {table} ({columns})")
        contacts = [("c-ana", A, "Ana", "O'Neil", "ana@example.com", ANA), ("c-ben", A, "Ben", "Lee", None,
                     "+15125550143"), ("c-cy", A, "Cy", "Stone", None, CY), ("c-bea", B, "Bea", "Other", None, BEA)]  # fmt: skip
        for contact_id, client, first, last, email, phone in contacts:
            s.execute("insert into marts.contacts values (?, ?, ?, ?, ?, ?, ?, true, null, null, 'p1', ?)",
                      [contact_id, client, f"X-{contact_id}", first, last, email, phone, now - timedelta(days=3)])  # fmt: skip
        for cid, (client, contact, address, messages) in CONVERSATIONS.items():
            last_in, last_answer = None, None
            for n, (direction, kind, body, ago) in enumerate(messages):
                at = now - timedelta(minutes=ago)
                answer = kind == "manual"
                last_in = at if direction == "inbound" else last_in
                last_answer = at if answer else last_answer
                s.execute(
                    "insert into marts.conversation_messages values (?, ?, ?, ?, 'sms', ?, ?, ?, ?, null, ?, null, ?, "
                    "?, null, ?, ?, null)",
                    [f"{cid}-{n}", cid, client, contact, masked(address), direction, kind,
                     None if direction == "inbound" else "_manual", f"key-{cid}-{n}", body,
                     "received" if direction == "inbound" else "sent", answer, at],
                )  # fmt: skip
            status = "open" if last_in and (last_answer is None or last_answer < last_in) else "closed"
            first_at, last_at = (now - timedelta(minutes=messages[i][3]) for i in (0, -1))
            s.execute(
                "insert into marts.conversations values (?, ?, ?, 'sms', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [cid, client, contact, masked(address), first_at, last_at, messages[-1][0], messages[-1][1],
                 sum(m[0] == "inbound" for m in messages), sum(m[0] == "outbound" for m in messages), last_in,
                 last_answer, status],
            )  # fmt: skip
        s.execute("insert into marts.appointments values ('ap1', ?, 'c-ana', 'A-1', ?, 'cleaning', 'Dr. Ruiz', "
                  "'Main St', 'scheduled')", [A, now + timedelta(days=2)])  # fmt: skip
        s.execute("insert into marts.consent_status values (?, 'c-ana', 'sms', ?, 'all', 'granted', "
                  "'express_written', 'packet', ?)", [A, ANA, now - timedelta(days=30)])  # fmt: skip
        s.execute(
            "insert into herald_ops.suppressions values (?, 'sms', ?, 'all', 'opt_out', 'sms_keyword', 'STOP', "
            "'c-cy', ?)",
            [A, CY, now - timedelta(minutes=200)],
        )


@pytest.fixture(scope="module", params=ENGINES)
def portal(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp(f"inbox-{request.param}")
    env = portal_env(home, "inbox-secret", engine_url(request))
    settings, warehouse = made_warehouse(env, lambda w: make_inbox(w, utcnow()))
    yield {"app": create_app(settings, environ=env), "warehouse": warehouse, "home": home, "env": env,
           "settings": settings, "engine": request.param}  # fmt: skip
    reader_for(settings.warehouse).close()


def browser_of(portal: dict[str, Any], role: str, client: str | None = A, **kw: Any) -> tuple[Any, Any]:
    user, secret = add(portal, role, client, **kw)
    return sign_in(portal, user.email, secret), user


def ids(page: str) -> list[str]:
    return re.findall(r'data-conversation="([^"]+)"', page)


def rows(portal: dict[str, Any], sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with portal["warehouse"].session(read_only=True) as s:
        return s.query(sql, params)[1]


def inbox_url(path: str = "") -> str:
    return f"{PREFIX}/c/{A}/inbox{path}"


def test_the_route_matrix_of_test_portal_web_covers_the_inbox(portal: dict[str, Any]) -> None:
    routes = set(client_routes(portal["app"]))
    for path in ("inbox", "inbox/settings", "inbox/{conversation_id}"):
        assert ("GET", f"{PREFIX}/c/{{client_id}}/{path}") in routes, path
    for path in ("reply", "note", "status", "assign", "unread"):
        assert ("POST", f"{PREFIX}/c/{{client_id}}/inbox/{{conversation_id}}/{path}") in routes, path
    for path in ("quick-replies", "quick-replies/{reply_id}/delete", "auto-reply"):
        assert ("POST", f"{PREFIX}/c/{{client_id}}/inbox/settings/{path}") in routes, path


def test_the_filters_unread_open_closed_and_mine(portal: dict[str, Any]) -> None:
    browser, user = browser_of(portal, "staff")
    page = browser.get(inbox_url())
    assert page.status_code == 200
    # latest activity first; never the other client's
    assert ids(page.text) == ["conv-stranger", "conv-ana", "conv-cy", "conv-ben"]
    assert "Is the house still for sale?" not in page.text and "Bea" not in page.text
    assert ids(browser.get(inbox_url("?filter=open")).text) == ["conv-stranger", "conv-ana", "conv-cy"]
    assert ids(browser.get(inbox_url("?filter=closed")).text) == ["conv-ben"]
    assert ids(browser.get(inbox_url("?filter=unread")).text) == ["conv-stranger", "conv-ana", "conv-cy", "conv-ben"]
    assert ids(browser.get(inbox_url("?filter=mine")).text) == []
    # reading a conversation marks it read for this user only
    assert browser.get(inbox_url("/conv-ana")).status_code == 200
    assert "conv-ana" not in ids(browser.get(inbox_url("?filter=unread")).text)
    other, _ = browser_of(portal, "staff")
    assert "conv-ana" in ids(other.get(inbox_url("?filter=unread")).text)
    # mark unread again; close and reopen by hand
    token = csrf(browser.get(inbox_url("/conv-ana")).text)
    r = browser.post(inbox_url("/conv-ana/unread"), data={"csrf_token": token})
    assert r.status_code == 200 and "conv-ana" in ids(r.text)
    r = browser.post(inbox_url("/conv-cy/status"), data={"csrf_token": token, "status": "closed"})
    assert r.status_code == 200 and "Conversation closed." in r.text
    assert ids(browser.get(inbox_url("?filter=closed")).text) == ["conv-cy", "conv-ben"]
    r = browser.post(inbox_url("/conv-cy/status"), data={"csrf_token": token, "status": "sideways"})
    assert r.status_code == 400 and "Nothing was changed: choose open or closed." in r.text
    browser.post(inbox_url("/conv-cy/status"), data={"csrf_token": token, "status": "open"})
    assert "conv-cy" in ids(browser.get(inbox_url("?filter=open")).text)
    # assigned to me
    r = browser.post(inbox_url("/conv-ben/assign"), data={"csrf_token": token, "user_id": user.user_id})
    assert (
        r.status_code == 200
        and "Assignment saved." in r.text
        and f'<dd id="assignee" class="wrap">{user.email}' in r.text
    )
    assert ids(browser.get(inbox_url("?filter=mine")).text) == ["conv-ben"]
    assert ids(other.get(inbox_url("?filter=mine")).text) == []
    assert f"→ {user.email}" in other.get(inbox_url()).text
    with store(portal).session(read_only=True) as s:
        actions = [(r.action, r.subject, r.detail.get("assigned_to")) for r in query(s, user=user.email)
                   if r.action.startswith("portal_inbox")]  # fmt: skip
    assert actions[0] == ("portal_inbox_assign", "conv-ben", user.email)
    assert [a[0] for a in actions[1:]] == ["portal_inbox_status"] * 2 + ["portal_inbox_unread"]


def test_assigning_to_someone_of_another_client_is_refused(portal: dict[str, Any]) -> None:
    browser, _ = browser_of(portal, "staff")
    stranger, _ = add(portal, "staff", B)
    viewer, _ = add(portal, "viewer", A)
    token = csrf(browser.get(inbox_url("/conv-ben")).text)
    for target in (stranger, viewer):
        r = browser.post(inbox_url("/conv-ben/assign"), data={"csrf_token": token, "user_id": target.user_id})
        assert r.status_code == 400 and "not an active user of this client" in r.text
        assert stranger.email not in r.text
    assert rows(portal, "select count(*) from herald_ops.inbox_threads where assigned_user_id in (?, ?)",
                [stranger.user_id, viewer.user_id]) == [(0,)]  # fmt: skip


def test_a_reply_goes_through_the_outbox_and_the_sandbox_provider(portal: dict[str, Any]) -> None:
    browser, user = browser_of(portal, "staff")
    page = browser.get(inbox_url("/conv-ana"))
    text = "Hi Ana, Friday at 3 works. See you then!"
    r = browser.post(inbox_url("/conv-ana/reply"), data={"csrf_token": csrf(page.text), "text": text},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].endswith("/inbox/conv-ana?notice=replied")
    [(key, campaign, contact, to, body, status, send_after)] = rows(
        portal, "select message_key, campaign, contact_id, to_address, body_text, status, send_after "
        "from herald_ops.outbox where client_id = ?", [A])  # fmt: skip
    assert (campaign, contact, to, body, status) == ("_manual", "c-ana", ANA, text, "queued")
    # the thread shows it at once (the mart has it after dbt's next build), and the conversation is answered
    thread = browser.get(inbox_url("/conv-ana?notice=replied")).text
    assert "Reply queued" in thread and f'{text}<span class="meta">Reply by {user.email} · queued' in thread
    assert '<span class="badge status-closed" id="status">closed</span>' in thread
    # a double submit in the same minute is sent once
    r = browser.post(inbox_url("/conv-ana/reply"), data={"csrf_token": csrf(thread), "text": text})
    assert "already queued this minute" in r.text
    assert rows(portal, "select count(*) from herald_ops.outbox") == [(1,)]
    # delivery sends it through the sandbox provider, which writes its journal
    providers = providers_from_env({**portal["env"], "HERALD_SMS_PROVIDER": "sandbox"}, home=portal["home"])
    deliver_due(portal["warehouse"], providers, now=send_after + timedelta(seconds=1),
                options=DeliveryOptions(batch_size=10))  # fmt: skip
    journal = [e for e in read_journal(portal["home"] / "sandbox" / "sms.jsonl") if e.get("message_key") == key]
    assert [(e["to"], e["sender"], e["text"]) for e in journal] == [("+1•••••••142", "+15125550100", text)]
    assert rows(portal, "select status from herald_ops.outbox where message_key = ?", [key]) == [("sent",)]
    assert "· sent" in browser.get(inbox_url("/conv-ana")).text
    with portal["warehouse"].session(read_only=True) as s:  # reply.py's row, in the reply's transaction
        audit = query(s, client_id=A, limit=50)
    with store(portal).session(read_only=True) as s:  # the portal's (the portal store on DuckDB)
        audit += query(s, client_id=A, limit=50)
    assert any(
        r.action == "send" and r.actor == f"portal:{user.email}" and r.detail["message_key"] == key for r in audit
    )
    assert any(r.action == "portal_inbox_reply" and r.subject == "conv-ana" for r in audit)


def test_a_reply_to_an_opted_out_contact_or_a_stranger_is_refused_and_nothing_is_queued(
    portal: dict[str, Any],
) -> None:
    browser, _ = browser_of(portal, "staff")
    before = rows(portal, "select count(*) from herald_ops.outbox")
    page = browser.get(inbox_url("/conv-cy"))
    assert 'id="opted-out"' in page.text
    r = browser.post(inbox_url("/conv-cy/reply"), data={"csrf_token": csrf(page.text), "text": "Please come back"})
    assert r.status_code == 400
    assert "Nothing was sent: +1•••••••144 is suppressed for bright_smiles_dental (opt_out (all))" in r.text
    assert "Please come back</textarea>" in r.text  # the text is kept to rewrite
    stranger = browser.get(inbox_url("/conv-stranger"))
    assert 'id="reply"' not in stranger.text and "not one of your contacts" in stranger.text
    r = browser.post(inbox_url("/conv-stranger/reply"), data={"csrf_token": csrf(stranger.text), "text": "Hello"})
    assert r.status_code == 400 and "the Inbox can only reply to a contact" in r.text
    r = browser.post(inbox_url("/conv-ana/reply"), data={"csrf_token": csrf(page.text), "text": "  "})
    assert r.status_code == 400 and "Nothing was sent: the reply is empty." in r.text
    assert rows(portal, "select count(*) from herald_ops.outbox") == before


def test_notes_and_hostile_text_are_shown_escaped(portal: dict[str, Any]) -> None:
    browser, user = browser_of(portal, "staff")
    page = browser.get(inbox_url("/conv-ana"))
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    r = browser.post(inbox_url("/conv-ana/note"), data={"csrf_token": csrf(page.text), "text": "<b>VIP</b> patient"})
    assert r.status_code == 200 and "Note added" in r.text
    assert '&lt;b&gt;VIP&lt;/b&gt; patient<span class="meta">Internal note by ' + user.email in r.text
    r = browser.post(inbox_url("/conv-ana/note"), data={"csrf_token": csrf(page.text), "text": ""})
    assert r.status_code == 400 and "Nothing was changed: the note is empty." in r.text
    assert rows(portal, "select kind, body, author_email from herald_ops.inbox_entries where kind = 'note' "
                "and author_user_id = ?", [user.user_id]) == [("note", "<b>VIP</b> patient", user.email)]  # fmt: skip
    # the contact's context: upcoming appointment, consent, the contact's details
    assert "cleaning" in page.text and "Dr. Ruiz" in page.text and "<strong>granted</strong>" in page.text
    assert f'<dd id="phone">{ANA}</dd>' in page.text


def test_another_clients_conversation_is_404_on_every_route(portal: dict[str, Any]) -> None:
    browser, _ = browser_of(portal, "client_admin")
    token = csrf(browser.get(inbox_url()).text)
    assert browser.get(inbox_url("/conv-bea")).status_code == 404
    assert browser.get(inbox_url("/no-such-conversation")).status_code == 404
    for action in ("reply", "note", "status", "assign", "unread"):
        r = browser.post(inbox_url(f"/conv-bea/{action}"), data={"csrf_token": token, "text": "x", "status": "closed"})
        assert r.status_code == 404 and "Is the house" not in r.text, action
    assert rows(portal, "select count(*) from herald_ops.inbox_entries where conversation_id = 'conv-bea'") == [(0,)]
    assert rows(portal, "select count(*) from herald_ops.inbox_threads where conversation_id = 'conv-bea'") == [(0,)]
    # and from client B's own user: its conversation, not A's
    other, _ = browser_of(portal, "staff", B)
    assert ids(other.get(f"{PREFIX}/c/{B}/inbox").text) == ["conv-bea"]
    assert other.get(f"{PREFIX}/c/{B}/inbox/conv-ana").status_code == 404


def test_a_viewer_reads_but_every_action_is_403(portal: dict[str, Any]) -> None:
    browser, viewer = browser_of(portal, "viewer")
    page = browser.get(inbox_url("/conv-ana"))
    assert page.status_code == 200 and 'id="reply"' not in page.text and 'id="note"' not in page.text
    token = csrf(page.text)
    for action in ("reply", "note", "status", "assign", "unread"):
        r = browser.post(inbox_url(f"/conv-ana/{action}"), data={"csrf_token": token, "text": "x", "status": "closed"})
        assert r.status_code == 403 and "Read-only access" in r.text, action
    for path in ("quick-replies", "auto-reply"):
        r = browser.post(inbox_url(f"/settings/{path}"), data={"csrf_token": token, "title": "t", "body": "b"})
        assert r.status_code == 403
    assert rows(portal, "select count(*) from herald_ops.inbox_entries where author_user_id = ?",
                [viewer.user_id]) == [(0,)]  # fmt: skip


def test_hidden_contact_details_are_masked(portal: dict[str, Any]) -> None:
    colleague, _ = browser_of(portal, "staff")
    token = csrf(colleague.get(inbox_url("/conv-ben")).text)
    colleague.post(inbox_url("/conv-ben/note"), data={"csrf_token": token, "text": "His wife: +1 512 555 0188"})
    browser, _ = browser_of(portal, "staff", hide_contact_details=True)
    ben = browser.get(inbox_url("/conv-ben")).text
    assert "His wife: +1•••••••188" in ben and "0188" not in ben
    listed = browser.get(inbox_url()).text
    page = browser.get(inbox_url("/conv-ana")).text
    for text in (listed, page):
        assert ANA not in text and "512-555-0142" not in text and "ana@example.com" not in text
    assert '<dd id="phone">+1•••••••142</dd>' in page and "a•••@example.com" in page
    assert "call me at •••••••142 or a•••@example.com" in page


def test_quick_replies_with_variables(portal: dict[str, Any]) -> None:
    admin, _ = browser_of(portal, "client_admin")
    page = admin.get(inbox_url("/settings"))
    assert page.status_code == 200 and "{{ first_name }}" in page.text
    r = admin.post(inbox_url("/settings/quick-replies"),
                   data={"csrf_token": csrf(page.text), "title": "Confirm", "body": "Hi {{ first_name }}, see you on "
                         "{{ next_appointment }}. {{ client_name }}"})  # fmt: skip
    assert r.status_code == 200 and "Quick reply saved." in r.text
    r = admin.post(inbox_url("/settings/quick-replies"),
                   data={"csrf_token": csrf(page.text), "title": "Bad", "body": "Hi {{ nickname }}"})  # fmt: skip
    assert r.status_code == 400 and "Nothing was saved: {{ nickname }} is not a variable" in r.text
    assert "Hi {{ nickname }}</textarea>" in r.text
    staff, _ = browser_of(portal, "staff")
    conversation = staff.get(inbox_url("/conv-ana")).text
    r = staff.post(inbox_url("/settings/quick-replies"), data={"csrf_token": csrf(conversation), "title": "x",
                                                               "body": "y"})  # fmt: skip
    assert r.status_code == 403 and "Administrators only" in r.text
    [reply_id] = re.findall(r'data-quick="([^"]+)">Confirm<', conversation)
    filled = staff.get(inbox_url(f"/conv-ana?quick={reply_id}")).text
    assert re.search(r">Hi Ana, see you on \w{3} \d{1,2} \w{3} at \d{1,2}:\d\d [AP]M\. Bright Smiles Dental</textarea>",
                     filled), filled[-3000:]  # fmt: skip
    r = admin.post(inbox_url(f"/settings/quick-replies/{reply_id}/delete"), data={"csrf_token": csrf(page.text)})
    assert r.status_code == 200 and "Quick reply deleted." in r.text
    assert rows(portal, "select count(*) from herald_ops.inbox_quick_replies where reply_id = ?", [reply_id]) == [(0,)]


def test_a_client_admin_changes_the_after_hours_auto_reply_the_autoresponder_reads(portal: dict[str, Any]) -> None:
    deployment = load_deployment(CONFIG_DIR)
    client = deployment.clients[A]
    admin, user = browser_of(portal, "client_admin")
    page = admin.get(inbox_url("/settings"))
    assert '<dd id="auto-state">On</dd>' in page.text and "Bright Smiles Dental is closed right now" in page.text
    phi = "Closed. Your SSN 123-45-6789 is on file."
    r = admin.post(
        inbox_url("/settings/auto-reply"), data={"csrf_token": csrf(page.text), "enabled": "on", "text": phi}
    )
    assert r.status_code == 400 and "Nothing was saved: refused by the PHI guard: SSN-like number" in r.text
    r = admin.post(inbox_url("/settings/auto-reply"), data={"csrf_token": csrf(page.text), "text": "We are closed."})
    assert r.status_code == 200 and '<dd id="auto-state">Off</dd>' in r.text
    with portal["warehouse"].session() as s:
        assert effective_auto_reply(s, client) is None
        assert queue_auto_reply(s, deployment, client, address=STRANGER, contact_id=None, sender="+15125550100",
                                received_at=datetime(2026, 11, 24, 5, 0), now=datetime(2026, 11, 24, 5, 0)) is None  # fmt: skip
    r = admin.post(inbox_url("/settings/auto-reply"),
                   data={"csrf_token": csrf(page.text), "enabled": "on", "text": "We are closed; back at 8."})  # fmt: skip
    assert '<dd id="auto-state">On</dd>' in r.text and "We are closed; back at 8." in r.text
    with portal["warehouse"].session(read_only=True) as s:
        effective = effective_auto_reply(s, client)
    assert effective is not None and effective.text == "We are closed; back at 8."
    assert effective.business_hours == client.config.auto_reply.business_hours  # type: ignore[union-attr]
    # the auto-responder answers a text at 23:00 in Austin with the new text
    night = datetime(2026, 11, 24, 5, 0)
    with portal["warehouse"].session() as s:
        key = queue_auto_reply(s, deployment, client, address=STRANGER, contact_id=None, sender="+15125550100",
                               received_at=night, now=night)  # fmt: skip
    assert rows(portal, "select body_text from herald_ops.outbox where message_key = ?", [key]) == [
        ("We are closed; back at 8.",)
    ]
    r = admin.post(inbox_url("/settings/auto-reply"), data={"csrf_token": csrf(page.text), "reset": "1"})
    assert "back to the configured one" in r.text
    with portal["warehouse"].session(read_only=True) as s:
        assert effective_auto_reply(s, client) == client.config.auto_reply
    with store(portal).session(read_only=True) as s:
        audit = query(s, user=user.email, action="portal_auto_reply_changed")
    assert [r.detail for r in audit][::-1] == [
        {"enabled": False, "text": "We are closed."},
        {"enabled": True, "text": "We are closed; back at 8."},
        {"reset": True},
    ]
    assert json.dumps([r.subject for r in audit]) == json.dumps(["auto_reply"] * 3)


def test_inbox_pages_work_before_any_conversation(tmp_path: Path) -> None:
    env = {"HERALD_HOME": str(tmp_path), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_SECRET_KEY": "s",
           "HERALD_PUBLIC_URL": "http://127.0.0.1:8000", "HERALD_SANDBOX_RECEIPTS": "off"}  # fmt: skip
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    portal = {"app": create_app(settings, environ=env), "warehouse": warehouse}
    browser, _ = browser_of(portal, "staff")
    page = browser.get(inbox_url())
    assert page.status_code == 200 and "No conversations yet" in page.text
    assert browser.get(inbox_url("/conv-ana")).status_code == 404
    # a warehouse not upgraded to the Inbox's migration: "try again" (and the fix in the log), not a 500
    with warehouse.session() as s:
        s.execute("drop table herald_ops.inbox_threads")
    publish_snapshot(settings.warehouse)  # the pages read the snapshot: the next one (a run's end) lacks it
    page = browser.get(inbox_url())
    assert page.status_code == 503 and "Please try again" in page.text


def test_the_retention_purge_blanks_old_inbox_texts(portal: dict[str, Any]) -> None:
    from herald.compliance.retention import purge
    from herald.config.models import Retention

    browser, user = browser_of(portal, "staff")
    page = browser.get(inbox_url("/conv-cy"))
    browser.post(inbox_url("/conv-cy/note"), data={"csrf_token": csrf(page.text), "text": "Old note"})
    with portal["warehouse"].session() as s:
        counts = purge(s, Retention(message_content_days=30), utcnow() + timedelta(days=31))
    assert counts["herald_ops.inbox_entries"] >= 1
    assert rows(portal, "select body from herald_ops.inbox_entries where author_user_id = ?", [user.user_id]) == [
        ("[purged]",)
    ]


def test_an_export_holds_and_an_erasure_empties_the_inbox_notes_and_replies_about_the_person(
    portal: dict[str, Any],
) -> None:
    """Last in the module: it erases Ana."""
    from herald.privacy.erase import erase
    from herald.privacy.export import collect

    browser, _ = browser_of(portal, "staff")
    page = browser.get(inbox_url("/conv-ana"))
    browser.post(inbox_url("/conv-ana/note"), data={"csrf_token": csrf(page.text), "text": "Ana prefers mornings"})
    browser.post(inbox_url("/conv-ben/note"), data={"csrf_token": csrf(page.text), "text": "Ben pays cash"})
    with portal["warehouse"].session() as s:  # an access request first: the notes are the person's data too
        export = collect(s, A, "c-ana", "US", "cli:test", utcnow())
    assert "Ana prefers mornings" in [r["body"] for r in export.sections["herald_ops__inbox_entries"]]
    with portal["warehouse"].session() as s:
        erase(s, A, "c-ana", "US", "cli:test", utcnow())
    bodies = rows(portal, "select conversation_id, kind, body from herald_ops.inbox_entries order by conversation_id")
    assert {b for cid, _, b in bodies if cid == "conv-ana"} == {"[erased]"}
    assert ("conv-ben", "note", "Ben pays cash") in bodies


def test_the_hand_made_marts_have_dbt_s_column_names() -> None:
    """The marts above stand in for dbt's: every column they have is one the dbt model documents."""
    import yaml

    models = {}
    for path in (Path(__file__).parents[2] / "dbt_project" / "models" / "marts").glob("_marts__*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            models[model["name"]] = {c["name"] for c in model.get("columns", [])}
    for table, columns in MARTS.items():
        documented = models[table.split(".")[1]]
        names = {c.strip().split()[0] for c in columns.split(",")}
        assert names - documented == set(), table
