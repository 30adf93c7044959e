"""The providers a deployment sends with, picked from the environment.

========================================  ==================================================
``HERALD_SMS_PROVIDER``                    ``sandbox`` (default) | ``twilio``
``HERALD_EMAIL_PROVIDER``                  ``sandbox`` (default) | ``resend``
``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``  required for twilio
``HERALD_TWILIO_MESSAGING_SERVICE_SID``   optional: send through a messaging service
``HERALD_TWILIO_BASE_URL``                 optional: another server (an emulator)
``RESEND_API_KEY``                         required for resend
``HERALD_RESEND_BASE_URL``                 optional: another server (an emulator)
``HERALD_SMS_RATE_PER_SECOND``             requests/s per sender (0 = no limit); default
``HERALD_EMAIL_RATE_PER_SECOND``           sandbox 0, twilio 10, resend 2 (Resend's default
                                           team limit is 2 requests/s; one batch = 1 request)
``HERALD_RATE_LIMIT_STORAGE``             where those rates are counted: ``memory://``
                                           (default, per process) or ``redis://host:port/db``
                                           (shared by every delivery worker)
``HERALD_SANDBOX_SEND_DELAY_SECONDS``      sandbox only: sleep per send (crash tests, demos)
``HERALD_SANDBOX_RECEIPTS``                sandbox only: ``on`` (default) | ``off`` (no events)
``HERALD_SANDBOX_DELIVERY_RATE``           sandbox: share delivered (default 0.97); sets both
``HERALD_SANDBOX_FAILURE_RATE``            texts undelivered (default 1 - delivery rate)
``HERALD_SANDBOX_BOUNCE_RATE``             emails bounced (default 1 - delivery rate)
``HERALD_SANDBOX_REPLY_RATE``              delivered texts answered (default 0.05)
``HERALD_SANDBOX_OPEN_RATE``               delivered emails opened (default 0.4)
``HERALD_SANDBOX_CLICK_RATE``              delivered emails clicked (default 0.1)
``HERALD_SANDBOX_RECEIPT_DELAY_SECONDS``   event time = send time + this (default 2)
``HERALD_SANDBOX_STOP_REPLIES``            ``off`` (default) | ``on``: STOP among the replies
``TWILIO_SECONDARY_ACCOUNT_SID``,          a second Twilio account (``twilio_secondary`` in a
``TWILIO_SECONDARY_AUTH_TOKEN``            client's ``providers:``), with optional
                                           ``HERALD_TWILIO_SECONDARY_MESSAGING_SERVICE_SID``
                                           and ``HERALD_TWILIO_SECONDARY_BASE_URL``
``RESEND_SECONDARY_API_KEY``               a second Resend account (``resend_secondary``), with
                                           optional ``HERALD_RESEND_SECONDARY_BASE_URL``
``HERALD_SMS_SECONDARY_RATE_PER_SECOND``   the second accounts' rates (default as the first's)
``HERALD_EMAIL_SECONDARY_RATE_PER_SECOND``
``HERALD_FAILOVER_FAILURE_THRESHOLD``      consecutive transient errors that open a primary's
                                           circuit (default 5)
``HERALD_FAILOVER_COOLDOWN_SECONDS``       how long an open circuit sends to the secondary
                                           before one probe goes to the primary (default 60)
========================================  ==================================================

:func:`failover_from_env` builds the routes of the clients whose ``client.yaml`` names their
own providers (:class:`herald.delivery.engine.Failover`); clients that name none send through
``providers_from_env``'s providers exactly as before.

The sandbox providers journal every send under ``<home>/sandbox`` so a crashed run can be
reconciled, and land the status events and replies a real provider would send through the same
sink as the web service's webhooks (:mod:`herald.providers.sandbox_events`): files under
``<home>/landing`` on DuckDB, ``herald_raw`` rows on PostgreSQL.

Secrets are read here, at run time, and kept only inside the provider objects
(whose reprs leave them out); errors name the variables, never their values. Every value is
parsed with :mod:`herald.settings`' helpers, which the CLI also runs at start
(:func:`herald.settings.check_environment`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from herald.config.models import PROVIDER_ACCOUNTS, Deployment
from herald.delivery.circuit import BreakerPolicy, CircuitBreakers
from herald.delivery.engine import DeliveryOptions, Failover, Route
from herald.events.landing import EventSink, FileSink, TableSink
from herald.providers.base import Provider
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider
from herald.providers.sandbox_events import SandboxRates, SandboxReceipts
from herald.settings import (
    EMAIL_PROVIDERS,
    ENV_EMAIL_PROVIDER,
    ENV_RESEND_KEY,  # noqa: F401 (re-exported)
    ENV_SMS_PROVIDER,
    ENV_TWILIO_SID,  # noqa: F401 (re-exported)
    ENV_TWILIO_TOKEN,  # noqa: F401 (re-exported)
    PROVIDER_CREDENTIALS,
    SMS_PROVIDERS,
    Settings,
    SettingsError,
    parse_choice,
    parse_count,
    parse_number,
    parse_rate,
    parse_rate_limit_storage,
    require,
)
from herald.warehouse.connection import Warehouse

ENV_SMS_RATE = "HERALD_SMS_RATE_PER_SECOND"
ENV_EMAIL_RATE = "HERALD_EMAIL_RATE_PER_SECOND"
ENV_SANDBOX_DELAY = "HERALD_SANDBOX_SEND_DELAY_SECONDS"
ENV_SANDBOX_RECEIPTS = "HERALD_SANDBOX_RECEIPTS"
ENV_SANDBOX_DELIVERY_RATE = "HERALD_SANDBOX_DELIVERY_RATE"
ENV_SANDBOX_FAILURE_RATE = "HERALD_SANDBOX_FAILURE_RATE"
ENV_SANDBOX_BOUNCE_RATE = "HERALD_SANDBOX_BOUNCE_RATE"
ENV_SANDBOX_REPLY_RATE = "HERALD_SANDBOX_REPLY_RATE"
ENV_SANDBOX_OPEN_RATE = "HERALD_SANDBOX_OPEN_RATE"
ENV_SANDBOX_CLICK_RATE = "HERALD_SANDBOX_CLICK_RATE"
ENV_SANDBOX_RECEIPT_DELAY = "HERALD_SANDBOX_RECEIPT_DELAY_SECONDS"
ENV_SANDBOX_STOP_REPLIES = "HERALD_SANDBOX_STOP_REPLIES"
ENV_TWILIO_SERVICE = "HERALD_TWILIO_MESSAGING_SERVICE_SID"
ENV_TWILIO_BASE_URL = "HERALD_TWILIO_BASE_URL"
ENV_RESEND_BASE_URL = "HERALD_RESEND_BASE_URL"
ENV_BATCH_SIZE = "HERALD_DELIVERY_BATCH_SIZE"
ENV_MAX_ATTEMPTS = "HERALD_DELIVERY_MAX_ATTEMPTS"
ENV_LEASE_SECONDS = "HERALD_DELIVERY_LEASE_SECONDS"
ENV_TWILIO_SECONDARY_SERVICE = "HERALD_TWILIO_SECONDARY_MESSAGING_SERVICE_SID"
ENV_TWILIO_SECONDARY_BASE_URL = "HERALD_TWILIO_SECONDARY_BASE_URL"
ENV_RESEND_SECONDARY_BASE_URL = "HERALD_RESEND_SECONDARY_BASE_URL"
ENV_SECONDARY_RATES = {"sms": "HERALD_SMS_SECONDARY_RATE_PER_SECOND", "email": "HERALD_EMAIL_SECONDARY_RATE_PER_SECOND"}
ENV_FAILOVER_THRESHOLD = "HERALD_FAILOVER_FAILURE_THRESHOLD"
ENV_FAILOVER_COOLDOWN = "HERALD_FAILOVER_COOLDOWN_SECONDS"

DEFAULT_RATES = {"sandbox": 0.0, "twilio": 10.0, "resend": 2.0}
SANDBOX_DIR = "sandbox"


def sandbox_rates_from_env(environ: Mapping[str, str] | None = None) -> SandboxRates:
    """The sandbox's rates from ``HERALD_SANDBOX_*`` (unset: :class:`SandboxRates`' defaults;
    ``HERALD_SANDBOX_DELIVERY_RATE`` sets the failure and bounce rates to 1 minus it unless
    they are set themselves)."""
    env = os.environ if environ is None else environ
    d = SandboxRates()
    delivery = parse_rate(env, ENV_SANDBOX_DELIVERY_RATE, -1.0)
    sms_failure = d.sms_failure_rate if delivery < 0 else round(1.0 - delivery, 12)
    email_bounce = d.email_bounce_rate if delivery < 0 else round(1.0 - delivery, 12)
    return SandboxRates(
        sms_failure_rate=parse_rate(env, ENV_SANDBOX_FAILURE_RATE, sms_failure),
        email_bounce_rate=parse_rate(env, ENV_SANDBOX_BOUNCE_RATE, email_bounce),
        reply_rate=parse_rate(env, ENV_SANDBOX_REPLY_RATE, d.reply_rate),
        open_rate=parse_rate(env, ENV_SANDBOX_OPEN_RATE, d.open_rate),
        click_rate=parse_rate(env, ENV_SANDBOX_CLICK_RATE, d.click_rate),
        receipt_delay_seconds=parse_number(env, ENV_SANDBOX_RECEIPT_DELAY, d.receipt_delay_seconds),
        stop_replies=parse_choice(env, ENV_SANDBOX_STOP_REPLIES, ("off", "on")) == "on",
    )


def sandbox_receipts_from_env(env: Mapping[str, str], settings: Settings) -> SandboxReceipts | None:
    """What lands the sandbox's events (None when ``HERALD_SANDBOX_RECEIPTS=off``): the web
    service's sink for ``settings``, opened on the first send."""
    if parse_choice(env, ENV_SANDBOX_RECEIPTS, ("on", "off")) == "off":
        return None
    return SandboxReceipts(lambda: _sink(settings), sandbox_rates_from_env(env))


def _sink(settings: Settings) -> EventSink:
    """The web service's sink (:func:`herald.events.landing.open_sink`) without its schema
    check: a delivery run sends, so the tables exist, and no DDL runs beside its claims."""
    if settings.warehouse.engine == "postgres":
        return TableSink(Warehouse(settings.warehouse))
    return FileSink(settings.home)


def _sms_provider(
    env: Mapping[str, str], kind: str, journal_dir: Path, delay: float, receipts: SandboxReceipts | None = None
) -> Provider:
    if kind == "twilio":
        from herald.providers.twilio_sms import TwilioSmsProvider  # the SDK is slow to import

        sid, token = require(env, PROVIDER_CREDENTIALS["twilio"], f"{ENV_SMS_PROVIDER}=twilio")
        return TwilioSmsProvider(
            sid,
            token,
            messaging_service_sid=(env.get(ENV_TWILIO_SERVICE) or "").strip() or None,
            base_url=(env.get(ENV_TWILIO_BASE_URL) or "").strip() or None,
        )
    return SandboxSmsProvider(journal_dir=journal_dir, send_delay_seconds=delay, receipts=receipts)


def _email_provider(
    env: Mapping[str, str], kind: str, journal_dir: Path, delay: float, receipts: SandboxReceipts | None = None
) -> Provider:
    if kind == "resend":
        from herald.providers.resend_email import ResendEmailProvider

        (key,) = require(env, PROVIDER_CREDENTIALS["resend"], f"{ENV_EMAIL_PROVIDER}=resend")
        return ResendEmailProvider(key, base_url=(env.get(ENV_RESEND_BASE_URL) or "").strip() or None)
    return SandboxEmailProvider(journal_dir=journal_dir, send_delay_seconds=delay, receipts=receipts)


def providers_from_env(environ: Mapping[str, str] | None = None, home: Path | None = None) -> dict[str, Provider]:
    """``{"sms": Provider, "email": Provider}`` as the environment configures them; the
    sandbox journal lives under ``<home>/sandbox`` (``home`` defaults to ``HERALD_HOME``)."""
    env = os.environ if environ is None else environ
    sms_kind = parse_choice(env, ENV_SMS_PROVIDER, SMS_PROVIDERS)
    email_kind = parse_choice(env, ENV_EMAIL_PROVIDER, EMAIL_PROVIDERS)
    settings = Settings.from_env(env)
    if home is not None:
        settings = dataclasses.replace(settings, home=Path(home))
    journal_dir = settings.home / SANDBOX_DIR
    delay = parse_number(env, ENV_SANDBOX_DELAY, 0.0)
    receipts = sandbox_receipts_from_env(env, settings) if "sandbox" in (sms_kind, email_kind) else None
    sms = _sms_provider(env, sms_kind, journal_dir, delay, receipts)
    email = _email_provider(env, email_kind, journal_dir, delay, receipts)
    sms.rate_per_second = parse_number(env, ENV_SMS_RATE, DEFAULT_RATES[sms_kind])
    email.rate_per_second = parse_number(env, ENV_EMAIL_RATE, DEFAULT_RATES[email_kind])
    return {"sms": sms, "email": email}


def delivery_options_from_env(environ: Mapping[str, str] | None = None) -> DeliveryOptions:
    """:class:`~herald.delivery.engine.DeliveryOptions` with ``HERALD_DELIVERY_BATCH_SIZE``,
    ``HERALD_DELIVERY_MAX_ATTEMPTS``, ``HERALD_DELIVERY_LEASE_SECONDS`` and
    ``HERALD_RATE_LIMIT_STORAGE`` applied."""
    env = os.environ if environ is None else environ
    defaults = DeliveryOptions()
    return DeliveryOptions(
        batch_size=parse_count(env, ENV_BATCH_SIZE, defaults.batch_size),
        max_attempts=parse_count(env, ENV_MAX_ATTEMPTS, defaults.max_attempts),
        lease_seconds=parse_number(env, ENV_LEASE_SECONDS, defaults.lease_seconds),
        rate_limit_storage=parse_rate_limit_storage(env),
    )


def breaker_policy_from_env(environ: Mapping[str, str] | None = None) -> BreakerPolicy:
    """The circuits' threshold and cool-down from ``HERALD_FAILOVER_*``."""
    env = os.environ if environ is None else environ
    defaults = BreakerPolicy()
    return BreakerPolicy(
        failure_threshold=parse_count(env, ENV_FAILOVER_THRESHOLD, defaults.failure_threshold),
        cooldown_seconds=parse_number(env, ENV_FAILOVER_COOLDOWN, defaults.cooldown_seconds),
    )


def _account(env: Mapping[str, str], channel: str, name: str, why: str, settings: Settings) -> Provider:
    """The provider account ``name`` (one of ``PROVIDER_ACCOUNTS[channel]``) for ``channel``."""
    journal_dir = settings.home / SANDBOX_DIR
    delay = parse_number(env, ENV_SANDBOX_DELAY, 0.0)
    if name == "sandbox":
        receipts = sandbox_receipts_from_env(env, settings)
        provider = (_sms_provider if channel == "sms" else _email_provider)(
            env, "sandbox", journal_dir, delay, receipts
        )
    elif name == "twilio_secondary":
        from herald.providers.twilio_sms import TwilioSmsProvider

        sid, token = require(env, PROVIDER_CREDENTIALS[name], why)
        provider = TwilioSmsProvider(
            sid,
            token,
            messaging_service_sid=(env.get(ENV_TWILIO_SECONDARY_SERVICE) or "").strip() or None,
            base_url=(env.get(ENV_TWILIO_SECONDARY_BASE_URL) or "").strip() or None,
        )
    elif name == "resend_secondary":
        from herald.providers.resend_email import ResendEmailProvider

        (key,) = require(env, PROVIDER_CREDENTIALS[name], why)
        provider = ResendEmailProvider(key, base_url=(env.get(ENV_RESEND_SECONDARY_BASE_URL) or "").strip() or None)
    else:
        require(env, PROVIDER_CREDENTIALS[name], why)
        build = _sms_provider if channel == "sms" else _email_provider
        provider = build(env, name, journal_dir, delay)
    kind = name.removesuffix("_secondary")
    if name != kind:
        provider.name = name  # attempt rows, rate windows and circuits tell the two accounts apart
        provider.rate_per_second = parse_number(env, ENV_SECONDARY_RATES[channel], DEFAULT_RATES[kind])
    else:
        provider.rate_per_second = parse_number(
            env, ENV_SMS_RATE if channel == "sms" else ENV_EMAIL_RATE, DEFAULT_RATES[kind]
        )
    return provider


def failover_from_env(
    deployment: Deployment,
    providers: Mapping[str, Provider],
    warehouse: Warehouse,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Failover | None:
    """The routes of the clients whose ``client.yaml`` names providers (``providers:``), built
    beside ``providers`` (the deployment's, reused where a client names the same account), and
    the circuits they fail over by. None when no client names any: delivery as without failover.
    A named account without its credentials is an error naming the client, the field and the
    variables."""
    env = os.environ if environ is None else environ
    settings = Settings.from_env(env)
    if home is not None:
        settings = dataclasses.replace(settings, home=Path(home))
    kinds = {
        "sms": parse_choice(env, ENV_SMS_PROVIDER, SMS_PROVIDERS),
        "email": parse_choice(env, ENV_EMAIL_PROVIDER, EMAIL_PROVIDERS),
    }
    variables = {"sms": ENV_SMS_PROVIDER, "email": ENV_EMAIL_PROVIDER}
    built: dict[tuple[str, str], Provider] = {(c, kinds[c]): p for c, p in providers.items()}
    routes: dict[tuple[str, str], Route] = {}
    for client_id, client in sorted(deployment.clients.items()):
        for channel in PROVIDER_ACCOUNTS:
            chosen = getattr(client.config.providers, channel)
            if chosen is None or channel not in providers:
                continue
            where = f"clients/{client_id}/client.yaml: providers.{channel}"
            primary_name = chosen.primary or kinds[channel]
            if chosen.secondary is not None and chosen.secondary == primary_name:
                raise SettingsError(
                    f"{where}.secondary is {primary_name}, which is already the primary "
                    f"({variables[channel]}={kinds[channel]}); name another account or set providers.{channel}.primary"
                )
            names = [primary_name] + ([chosen.secondary] if chosen.secondary else [])
            for role, name in zip(("primary", "secondary"), names, strict=False):
                if (channel, name) not in built:
                    built[(channel, name)] = _account(env, channel, name, f"{where}.{role}={name}", settings)
            primary = built[(channel, primary_name)]
            secondary = built[(channel, chosen.secondary)] if chosen.secondary else None
            if primary is providers[channel] and secondary is None:
                continue  # the deployment's provider and no secondary: as without failover
            routes[(client_id, channel)] = Route(primary, secondary, chosen.secondary_sender)
    if not routes:
        return None
    watched = any(r.secondary is not None for r in routes.values())
    breakers = CircuitBreakers(warehouse, breaker_policy_from_env(env)) if watched else None
    return Failover(routes, breakers)
