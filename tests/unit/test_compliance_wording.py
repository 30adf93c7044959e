"""herald.compliance.wording: contact > client > herald.yaml wording, HELP and opt-in/opt-out
replies; and the enqueue hooks that use it and the PHI guard."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from herald.campaigns.enqueue import MessageBuilder
from herald.campaigns.links import Links
from herald.compliance.wording import (
    WORDING_KEYS,
    contact_attribute,
    help_reply,
    opt_in_confirmation,
    opt_out_confirmation,
    resolve_wording,
)
from herald.config.loader import load_deployment
from herald.config.models import ClientConfig, Compliance, Deployment, HeraldConfig, Verbiage, VerbiageOverrides

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO_ROOT / "config"
HERALD = Verbiage(unsubscribe="Global: unsubscribed from {client_name}.")
CLIENT = VerbiageOverrides(unsubscribe="Client: {client_name} will stop.")
DENTAL = ClientConfig(
    client_id="bright_smiles_dental", name="Bright Smiles Dental",
    contact={"email": "frontdesk@brightsmiles.example", "phone": "+1 512 555 0100"},
    program_name="Bright Smiles Dental appointment reminders", message_frequency="Up to 4 msgs/month",
)  # fmt: skip


@pytest.mark.parametrize(
    ("client", "contact", "expected"),
    [
        (None, {}, "Global: unsubscribed from Bright Smiles Dental."),
        (VerbiageOverrides(), {}, "Global: unsubscribed from Bright Smiles Dental."),
        (CLIENT, {}, "Client: Bright Smiles Dental will stop."),
        (CLIENT, {"unsubscribe_wording": "Ya no recibirá mensajes de {client_name}."},
         "Ya no recibirá mensajes de Bright Smiles Dental."),
        (None, {"unsubscribe_wording": "Contact wording."}, "Contact wording."),
        # unusable overrides fall through
        (CLIENT, {"unsubscribe_wording": "   "}, "Client: Bright Smiles Dental will stop."),
        (CLIENT, {"unsubscribe_wording": 42}, "Client: Bright Smiles Dental will stop."),
    ],
)  # fmt: skip
def test_precedence_contact_then_client_then_global(
    client: VerbiageOverrides | None, contact: dict[str, Any], expected: str
) -> None:
    assert resolve_wording("unsubscribe", HERALD, client, contact, client_name="Bright Smiles Dental") == expected


def test_client_name_comes_from_the_contact_variables_when_not_given() -> None:
    variables = {"client_name": "Northfield College"}
    assert resolve_wording("unsubscribe", HERALD, None, variables) == "Global: unsubscribed from Northfield College."


def test_placeholders_are_substituted_not_formatted() -> None:
    # contact wording is client data: no format-string evaluation, unknown braces left alone
    contact = {"confirmation_wording": "{client_name.__class__} {0} {client_name}!"}
    text = resolve_wording("confirmation", Verbiage(), None, contact, client_name="Acme")
    assert text == "{client_name.__class__} {0} Acme!"


def test_opt_out_defaults_and_overrides_must_mention_stop() -> None:
    assert resolve_wording("opt_out", Verbiage(), None, {}) == "Reply STOP to opt out."
    spanish = {"opt_out_wording": "Responda STOP para no recibir más mensajes."}
    assert resolve_wording("opt_out", Verbiage(), None, spanish) == spanish["opt_out_wording"]
    # a contact's wording without STOP would drop the opt-out instructions: ignored
    assert resolve_wording("opt_out", Verbiage(), None, {"opt_out_wording": "Reply PARA"}) == "Reply STOP to opt out."
    with pytest.raises(ValidationError, match="reply STOP"):
        VerbiageOverrides(opt_out="Text NO to cancel")
    with pytest.raises(ValidationError, match="reply STOP"):
        Verbiage(opt_out="Text NO to cancel")


def test_unknown_key_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known keys: unsubscribe, confirmation, opt_out"):
        resolve_wording("goodbye", Verbiage(), None, {})
    assert contact_attribute("opt_out") == "opt_out_wording"
    assert set(VerbiageOverrides.model_fields) == set(WORDING_KEYS)


def test_help_reply_has_every_ctia_element() -> None:
    assert help_reply(DENTAL, HeraldConfig()) == (
        "Bright Smiles Dental appointment reminders: for help call +1 512 555 0100 or email "
        "frontdesk@brightsmiles.example. Up to 4 msgs/month. Msg & data rates may apply. Reply STOP to opt out."
    )


def test_help_reply_defaults() -> None:
    college = ClientConfig(client_id="northfield_college", name="Northfield College", contact={"email": "a@n.example"})
    assert help_reply(college, HeraldConfig()) == (
        "Northfield College: for help email a@n.example. Msg frequency varies. Msg & data rates may apply. "
        "Reply STOP to opt out."
    )
    nobody = ClientConfig(client_id="acme", name="Acme", verbiage={"opt_out": "Text STOP to end."})
    assert help_reply(nobody, HeraldConfig()) == (
        "Acme: for help contact Acme. Msg frequency varies. Msg & data rates may apply. Text STOP to end."
    )


def test_opt_out_and_opt_in_confirmations() -> None:
    assert opt_out_confirmation(DENTAL, HeraldConfig()) == (
        "You are unsubscribed from Bright Smiles Dental messages. No more messages will be sent. "
        "Reply START to resubscribe."
    )
    assert opt_in_confirmation(DENTAL, HeraldConfig()) == (
        "Bright Smiles Dental appointment reminders: you are subscribed again. Up to 4 msgs/month. "
        "Msg & data rates may apply. Reply HELP for help, STOP to opt out."
    )
    spanish = {"opt_out_confirmation_wording": "Baja confirmada: {client_name} no le enviará más mensajes."}
    assert opt_out_confirmation(DENTAL, HeraldConfig(), spanish) == (
        "Baja confirmada: Bright Smiles Dental no le enviará más mensajes."
    )


def test_example_config_compliance_settings() -> None:
    deployment = load_deployment(EXAMPLE_CONFIG)
    dental = deployment.clients["bright_smiles_dental"].config
    assert dental.compliance == Compliance(healthcare_reminders=True)
    assert deployment.clients["lakeside_realty"].config.compliance == Compliance()
    assert help_reply(deployment.clients["bright_smiles_dental"], deployment.herald).startswith(
        "Bright Smiles Dental appointment reminders: for help call +1 512 555 0100"
    )


# -- the enqueue hooks -------------------------------------------------------------------------

NOW = datetime(2026, 11, 20, 15, 0)
SMS_TEMPLATE = "check.sms.j2"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    templates = tmp_path / "clients" / "bright_smiles_dental" / "templates"
    templates.mkdir(parents=True)
    (templates / SMS_TEMPLATE).write_text("Hi {{ first_name }}, {{ note }}", encoding="utf-8")
    return tmp_path


def build(config_dir: Path, variables: dict[str, Any], *, clinical_allowed: bool = False) -> Any:
    deployment = load_deployment(EXAMPLE_CONFIG)
    client = deployment.clients["bright_smiles_dental"]
    config = client.config.model_copy(update={"compliance": Compliance(phi_clinical_terms_allowed=clinical_allowed)})
    clients = {**deployment.clients, client.client_id: client.model_copy(update={"config": config})}
    deployment = Deployment(herald=deployment.herald, clients=clients)
    builder = MessageBuilder(deployment, config_dir, Links("https://herald.example", "secret"))
    row = {
        "message_key": "k1", "client_id": "bright_smiles_dental", "campaign": "appointment_reminder",
        "step": "reminder", "occurrence": "packet:p1", "contact_id": "ana", "message_type": "appointment_reminder",
        "category": "transactional", "channel": "sms", "to_address": "+13125550100", "variant": "friendly",
        "template": SMS_TEMPLATE, "subject_template": None, "send_after": NOW,
        "variables": json.dumps({"first_name": "Ana", "client_name": "Bright Smiles Dental", **variables}),
    }  # fmt: skip
    return builder.build(row)


def test_sms_gets_the_default_or_the_contacts_opt_out_wording(config_dir: Path) -> None:
    message = build(config_dir, {"note": "see you soon."})
    assert (message.status, message.body_text) == ("queued", "Hi Ana, see you soon.\nReply STOP to opt out.")
    spanish = {"note": "hasta pronto.", "opt_out_wording": "Responda STOP para cancelar."}
    assert build(config_dir, spanish).body_text == "Hi Ana, hasta pronto.\nResponda STOP para cancelar."


def test_sms_with_phi_is_held_with_a_masked_reason(config_dir: Path) -> None:
    message = build(config_dir, {"note": "we have SSN 123-45-6789 on file."})
    assert message.status == "held"
    assert message.status_reason == "PHI guard: SSN-like number (***-**-6789)"
    assert message.body_text is None  # the PHI is not stored in the outbox


def test_clinical_wording_is_held_unless_the_client_allows_it(config_dir: Path) -> None:
    variables = {"note": "your root canal is tomorrow at 10:30."}
    held = build(config_dir, variables)
    assert (held.status, held.status_reason) == ("held", "PHI guard: clinical term (root canal)")
    assert build(config_dir, variables, clinical_allowed=True).status == "queued"
