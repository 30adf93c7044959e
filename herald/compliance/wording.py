"""Wording Herald writes itself: opt-out text, unsubscribe and confirmation pages, HELP replies.

Precedence (most specific wins): the contact's own wording (a ``<key>_wording`` attribute, e.g.
``opt_out_wording``, in the template variables) beats the client's ``verbiage:`` in client.yaml,
which beats herald.yaml's ``verbiage``. ``{client_name}``, ``{program_name}`` and
``{message_frequency}`` are filled in by plain substitution, never ``str.format``: a contact's
wording is client data and must not reach Python's format machinery.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from herald.config.models import Client, ClientConfig, HeraldConfig, Verbiage, VerbiageOverrides, check_opt_out_wording

WORDING_KEYS = tuple(Verbiage.model_fields)
CONTACT_SUFFIX = "_wording"
RATES = "Msg & data rates may apply."
_PLACEHOLDER_RE = re.compile(r"\{(client_name|program_name|message_frequency)\}")


def contact_attribute(key: str) -> str:
    """The contact attribute that overrides ``key`` (``opt_out`` → ``opt_out_wording``)."""
    return f"{key}{CONTACT_SUFFIX}"


def _usable(key: str, value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    if key == "opt_out":
        try:
            check_opt_out_wording(value)
        except ValueError:
            return False  # a contact's wording without STOP would drop the opt-out instructions
    return True


def fill(text: str, values: Mapping[str, str | None]) -> str:
    """``text`` with the known placeholders replaced; anything else in braces is left as is."""

    def replace(found: re.Match[str]) -> str:
        value = values.get(found.group(1))
        return found.group(0) if value is None else value

    return _PLACEHOLDER_RE.sub(replace, text)


def resolve_wording(
    key: str,
    herald_verbiage: Verbiage,
    client_verbiage: VerbiageOverrides | None = None,
    contact_variables: Mapping[str, Any] | None = None,
    *,
    client_name: str | None = None,
    program_name: str | None = None,
    message_frequency: str | None = None,
) -> str:
    """The wording for ``key``: contact attribute, else client override, else herald.yaml.

    ``client_name`` defaults to the contact variables' ``client_name``; ``program_name`` to the
    client name. An unusable override (blank, not text, opt-out wording without STOP) is skipped.
    """
    if key not in WORDING_KEYS:
        raise KeyError(f"unknown wording key {key!r}; known keys: {', '.join(WORDING_KEYS)}")
    variables = contact_variables or {}
    candidates = (
        variables.get(contact_attribute(key)),
        getattr(client_verbiage, key) if client_verbiage is not None else None,
    )
    text = next((c.strip() for c in candidates if _usable(key, c)), getattr(herald_verbiage, key))
    name = client_name if client_name is not None else variables.get("client_name")
    name = name if isinstance(name, str) else None
    values = {
        "client_name": name,
        "program_name": program_name or name,
        "message_frequency": message_frequency.rstrip(". ") if message_frequency else None,
    }
    return fill(text, values)


def _client_config(client: Client | ClientConfig) -> ClientConfig:
    return client.config if isinstance(client, Client) else client


def program_name(client: Client | ClientConfig) -> str:
    config = _client_config(client)
    return config.program_name or config.name


def client_wording(
    key: str,
    client: Client | ClientConfig,
    herald_config: HeraldConfig,
    contact_variables: Mapping[str, Any] | None = None,
) -> str:
    """:func:`resolve_wording` with the client's name, program name and message frequency."""
    config = _client_config(client)
    return resolve_wording(
        key, herald_config.verbiage, config.verbiage, contact_variables,
        client_name=config.name, program_name=program_name(config), message_frequency=config.message_frequency,
    )  # fmt: skip


def help_contact(client: Client | ClientConfig) -> str:
    """How to reach the client, e.g. ``call +1 512 555 0100 or email frontdesk@...``."""
    contact = _client_config(client).contact
    ways = [f"call {contact.phone}" if contact.phone else None, f"email {contact.email}" if contact.email else None]
    ways = [w for w in ways if w]
    return " or ".join(ways) if ways else f"contact {_client_config(client).name}"


def help_reply(client: Client | ClientConfig, herald_config: HeraldConfig) -> str:
    """The reply to HELP (CTIA): program name, help contact, message frequency, the rates
    notice and how to opt out. Built here, not configurable, so no element can go missing."""
    config = _client_config(client)
    frequency = config.message_frequency.strip().rstrip(".")
    opt_out = client_wording("opt_out", config, herald_config)
    return f"{program_name(config)}: for help {help_contact(config)}. {frequency}. {RATES} {opt_out}"


def opt_out_confirmation(
    client: Client | ClientConfig, herald_config: HeraldConfig, contact_variables: Mapping[str, Any] | None = None
) -> str:
    """The one message allowed after an opt-out (47 CFR 64.1200(a)(12))."""
    return client_wording("opt_out_confirmation", client, herald_config, contact_variables)


def opt_in_confirmation(
    client: Client | ClientConfig, herald_config: HeraldConfig, contact_variables: Mapping[str, Any] | None = None
) -> str:
    """The reply to START/UNSTOP/YES from a suppressed contact."""
    return client_wording("opt_in_confirmation", client, herald_config, contact_variables)
