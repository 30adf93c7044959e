"""Two Twilio accounts, without a server or a warehouse: which account signed a webhook, the
polling cursors per account (and the one-account cursor stored before), which accounts are
polled, and which client a reply to a secondary number belongs to."""

from __future__ import annotations

from datetime import datetime

import pytest
from twilio.request_validator import RequestValidator

from herald.compliance.inbound import clients_by_sender
from herald.config import Deployment
from herald.config.models import ChannelProviders, ClientProviders
from herald.events.polling import AccountCursors, PollCursor, twilio_clients_from_env
from herald.settings import SettingsError
from herald.web.twilio import SigningAccount, signed_by, signing_accounts

URL = "https://herald.example/webhooks/twilio/status"
PARAMS = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": "AC2"}
BOTH = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t1",
        "TWILIO_SECONDARY_ACCOUNT_SID": "AC2", "TWILIO_SECONDARY_AUTH_TOKEN": "t2"}  # fmt: skip


def sign(token: str, params: dict[str, str] = PARAMS) -> str:
    return RequestValidator(token).compute_signature(URL, params)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, []),
        ({"TWILIO_AUTH_TOKEN": "t1"}, [("twilio", None)]),
        ({"TWILIO_SECONDARY_AUTH_TOKEN": "t2", "TWILIO_SECONDARY_ACCOUNT_SID": "AC2"}, [("twilio_secondary", "AC2")]),
        (BOTH, [("twilio", "AC1"), ("twilio_secondary", "AC2")]),
        ({"TWILIO_AUTH_TOKEN": "  ", "TWILIO_SECONDARY_AUTH_TOKEN": "t2"}, [("twilio_secondary", None)]),
    ],
)
def test_signing_accounts_are_those_with_a_token(environ: dict[str, str], expected: list[tuple]) -> None:
    assert [(a.provider, a.account_sid) for a in signing_accounts(environ)] == expected


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (sign("t1"), "twilio"),
        (sign("t2"), "twilio_secondary"),
        (sign("t3"), None),  # an unknown token
        (sign("t2", {**PARAMS, "MessageStatus": "failed"}), None),  # signed over other parameters
        ("", None),
    ],
)
def test_signed_by_names_the_account_whose_token_signed(signature: str, expected: str | None) -> None:
    found = signed_by(signing_accounts(BOTH), URL, PARAMS, signature)
    assert (found.provider if found else None) == expected


def test_two_accounts_sharing_a_token_land_under_the_account_the_request_names() -> None:
    accounts = [SigningAccount("twilio", "AC1", "same"), SigningAccount("twilio_secondary", "AC2", "same")]
    assert signed_by(accounts, URL, PARAMS, sign("same")).provider == "twilio_secondary"  # AccountSid AC2
    named_first = {**PARAMS, "AccountSid": "AC1"}
    assert signed_by(accounts, URL, named_first, sign("same", named_first)).provider == "twilio"
    assert "same" not in repr(accounts[0])  # the token stays out of reprs (and so out of logs)


def test_account_cursors_round_trip_and_read_a_one_account_cursor_as_the_primary() -> None:
    cursors = AccountCursors({"twilio": PollCursor(datetime(2026, 1, 2, 3), frozenset({"SMa:sent"})),
                              "twilio_secondary": PollCursor(datetime(2026, 1, 2, 4), frozenset())})  # fmt: skip
    assert AccountCursors.from_json(cursors.to_json()) == cursors
    old = PollCursor(datetime(2026, 1, 1), frozenset({"SMb:delivered"})).to_json()
    assert AccountCursors.from_json(old).accounts == {
        "twilio": PollCursor(datetime(2026, 1, 1), frozenset({"SMb:delivered"}))
    }
    assert AccountCursors.from_json(None).get("twilio_secondary") == PollCursor()


def test_polled_accounts_follow_the_credentials() -> None:
    assert sorted(twilio_clients_from_env(BOTH)) == ["twilio", "twilio_secondary"]
    primary_only = {k: v for k, v in BOTH.items() if "SECONDARY" not in k}
    assert sorted(twilio_clients_from_env(primary_only)) == ["twilio"]
    half_set = {**primary_only, "TWILIO_SECONDARY_ACCOUNT_SID": "AC2"}
    with pytest.raises(SettingsError, match="TWILIO_SECONDARY_AUTH_TOKEN") as error:
        twilio_clients_from_env(half_set)
    assert "AC2" not in str(error.value)
    with pytest.raises(SettingsError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        twilio_clients_from_env({})


def with_secondary_sender(deployment: Deployment, client_id: str, number: str) -> Deployment:
    client = deployment.clients[client_id]
    providers = ClientProviders(sms=ChannelProviders(secondary="twilio_secondary", secondary_sender=number))
    config = client.config.model_copy(update={"providers": providers})
    return deployment.model_copy(
        update={"clients": {**deployment.clients, client_id: client.model_copy(update={"config": config})}}
    )


def test_a_reply_to_a_secondary_number_belongs_to_the_client_sending_from_it(deployment: Deployment) -> None:
    assert "+15125550199" not in clients_by_sender(deployment)
    configured = with_secondary_sender(deployment, "bright_smiles_dental", "+15125550199")
    senders = clients_by_sender(configured)
    assert senders["+15125550199"].config.client_id == "bright_smiles_dental"
    assert senders["+15125550100"].config.client_id == "bright_smiles_dental"  # its own number still
    # another client's own number is never taken over by a secondary naming it
    clash = with_secondary_sender(deployment, "bright_smiles_dental", "+13035550177")
    assert clients_by_sender(clash)["+13035550177"].config.client_id == "summit_roofing"
