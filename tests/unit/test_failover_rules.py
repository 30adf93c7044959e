"""Failover without a warehouse: the circuit's state machine (table-driven), the ``providers:``
block of client.yaml, and the routes the factory builds from it and the environment."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from pydantic import ValidationError
from resend.exceptions import ResendError

from herald.config import check_config, load_deployment
from herald.config.models import Client, ClientConfig, ClientProviders, Deployment, HeraldConfig
from herald.delivery.circuit import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerPolicy,
    Circuit,
    after_failure,
    after_success,
    decide,
    take_probe,
)
from herald.providers.factory import failover_from_env, providers_from_env
from herald.providers.resend_email import classify_resend_error
from herald.settings import Settings, SettingsError
from herald.warehouse.connection import Warehouse

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = datetime(2026, 11, 23, 15, 0)
POLICY = BreakerPolicy(failure_threshold=3, cooldown_seconds=60)
LATER = T0 + timedelta(seconds=61)


@pytest.mark.parametrize(
    ("circuit", "now", "expected"),
    [
        (Circuit(), T0, "primary"),
        (Circuit(CLOSED, 2), T0, "primary"),
        (Circuit(OPEN, 3, T0), T0 + timedelta(seconds=59), "secondary"),
        (Circuit(OPEN, 3, T0), LATER, "probe"),
        (Circuit(HALF_OPEN, 3, T0, "tok", T0 + timedelta(seconds=61)), T0 + timedelta(seconds=62), "secondary"),
        (Circuit(HALF_OPEN, 3, T0, "tok", T0), LATER, "probe"),  # the probe's worker died: taken over
    ],
)
def test_decide(circuit: Circuit, now: datetime, expected: str) -> None:
    assert decide(circuit, POLICY, now) == expected


@pytest.mark.parametrize(
    ("before", "probe", "after"),
    [
        (Circuit(CLOSED, 0), None, Circuit(CLOSED, 1, last_error_code="500")),
        (Circuit(CLOSED, 2), None, Circuit(OPEN, 3, T0, last_error_code="500")),  # the threshold opens it
        (
            Circuit(OPEN, 3, T0 - timedelta(seconds=5)),
            None,
            Circuit(OPEN, 4, T0 - timedelta(seconds=5), None, None, "500"),
        ),
        (Circuit(HALF_OPEN, 3, T0, "tok", T0), "tok", Circuit(OPEN, 4, T0, last_error_code="500")),  # failed probe
        (Circuit(HALF_OPEN, 3, T0, "tok", T0), None, Circuit(HALF_OPEN, 4, T0, "tok", T0, "500")),  # not the probe
    ],
)
def test_after_failure(before: Circuit, probe: str | None, after: Circuit) -> None:
    assert after_failure(before, POLICY, T0, "500", probe) == after


@pytest.mark.parametrize(
    ("before", "probe", "after"),
    [
        (Circuit(CLOSED, 2), None, Circuit(CLOSED, 0)),
        (Circuit(OPEN, 3, T0), None, Circuit(OPEN, 3, T0)),  # a late answer does not close it
        (Circuit(HALF_OPEN, 3, T0, "tok", T0), "other", Circuit(HALF_OPEN, 3, T0, "tok", T0)),
        (Circuit(HALF_OPEN, 3, T0, "tok", T0), "tok", Circuit()),  # the probe succeeded: closed
    ],
)
def test_after_success(before: Circuit, probe: str | None, after: Circuit) -> None:
    assert after_success(before, probe) == after


def test_take_probe_only_when_due() -> None:
    assert take_probe(Circuit(OPEN, 3, T0), POLICY, T0, "tok") is None
    assert take_probe(Circuit(OPEN, 3, T0), POLICY, LATER, "tok") == Circuit(HALF_OPEN, 3, T0, "tok", LATER)
    assert take_probe(Circuit(), POLICY, LATER, "tok") is None


def test_a_resend_read_timeout_is_an_unknown_outcome() -> None:
    def raised(cause: Exception) -> ResendError:
        try:
            try:
                raise RuntimeError("Request failed") from cause
            except RuntimeError:
                raise ResendError(code=500, error_type="HttpClientError", message="failed", suggested_action="")  # noqa: B904
        except ResendError as exc:
            return exc

    timeout = classify_resend_error(raised(requests.ReadTimeout("read timed out")), "resend")
    assert (timeout.code, timeout.outcome_unknown) == ("timeout", True)
    refused = classify_resend_error(raised(requests.ConnectionError("refused")), "resend")
    assert (refused.code, refused.outcome_unknown) == (500, False)
    connect = classify_resend_error(raised(requests.ConnectTimeout("connect timed out")), "resend")
    assert connect.outcome_unknown is False


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"sms": {"secondary": "nexmo"}}, "unknown sms provider 'nexmo'; use one of sandbox, twilio, twilio_secondary"),
        (
            {"email": {"primary": "resend", "secondary": "resend"}},
            "the secondary must differ from the primary (resend)",
        ),
        ({"sms": {"secondary_sender": "+15125550111"}}, "a secondary sender needs a secondary: set sms.secondary"),
        ({"sms": {"secondary": "sandbox", "secondary_sender": "555-0111"}}, "must be a phone number in E.164"),
        ({"email": {"secondary": "sandbox", "secondary_sender": "nobody"}}, "must be an email address"),
    ],
)
def test_providers_block_errors(block: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ClientProviders.model_validate(block)


def deployment(**providers: dict) -> Deployment:
    config = ClientConfig(client_id="acme", name="Acme", providers=ClientProviders.model_validate(providers))
    client = Client(config=config, time_zone="America/Chicago", default_region="US", load_maps={})
    plain = Client(
        config=ClientConfig(client_id="plain", name="Plain"), time_zone="UTC", default_region="US", load_maps={}
    )
    return Deployment(herald=HeraldConfig(), clients={"acme": client, "plain": plain})


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HERALD_HOME": str(tmp_path), **extra}


def test_failover_routes_from_client_yaml_and_environment(tmp_path: Path) -> None:
    variables = env(
        tmp_path,
        HERALD_SMS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID="AC1",
        TWILIO_AUTH_TOKEN="t1",
        TWILIO_SECONDARY_ACCOUNT_SID="AC2",
        TWILIO_SECONDARY_AUTH_TOKEN="t2",
        HERALD_SMS_SECONDARY_RATE_PER_SECOND="3",
        HERALD_EMAIL_PROVIDER="resend",
        RESEND_API_KEY="re_1",
        HERALD_FAILOVER_FAILURE_THRESHOLD="7",
        HERALD_FAILOVER_COOLDOWN_SECONDS="15",
    )
    providers = providers_from_env(variables)
    wh = Warehouse(Settings.from_env(variables).warehouse)
    plan = failover_from_env(
        deployment(
            sms={"secondary": "twilio_secondary", "secondary_sender": "+15125550111"}, email={"secondary": "sandbox"}
        ),
        providers,
        wh,
        variables,
    )
    assert plan is not None and set(plan.routes) == {("acme", "sms"), ("acme", "email")}  # "plain" has none
    sms = plan.routes[("acme", "sms")]
    assert sms.primary is providers["sms"]  # the deployment's account, shared (one rate window)
    assert (sms.secondary.name, sms.secondary.rate_per_second, sms.secondary_sender) == (
        "twilio_secondary",
        3.0,
        "+15125550111",
    )
    email = plan.routes[("acme", "email")]
    assert email.primary is providers["email"] and email.secondary.name == "sandbox_email"
    assert plan.breakers is not None
    assert (plan.breakers.policy.failure_threshold, plan.breakers.policy.cooldown_seconds) == (7, 15.0)


def test_failover_errors_name_the_client_field_and_variables(tmp_path: Path) -> None:
    variables = env(tmp_path)
    providers = providers_from_env(variables)
    wh = Warehouse(Settings.from_env(variables).warehouse)
    with pytest.raises(SettingsError) as missing:
        failover_from_env(deployment(sms={"secondary": "twilio_secondary"}), providers, wh, variables)
    assert str(missing.value) == (
        "clients/acme/client.yaml: providers.sms.secondary=twilio_secondary needs "
        "TWILIO_SECONDARY_ACCOUNT_SID and TWILIO_SECONDARY_AUTH_TOKEN to be set"
    )
    with pytest.raises(SettingsError, match=r"providers.sms.secondary is sandbox, which is already the primary"):
        failover_from_env(deployment(sms={"secondary": "sandbox"}), providers, wh, variables)
    # no client names providers: no failover at all (delivery exactly as before)
    assert failover_from_env(deployment(), providers, wh, variables) is None


def test_config_check_names_file_and_field_for_each_providers_problem(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    client_yaml = config / "clients" / "bright_smiles_dental" / "client.yaml"
    client_yaml.write_text(
        client_yaml.read_text(encoding="utf-8")
        + "providers:\n"
        + "  sms: {primary: twilio, secondary: twilio, secondary_sender: '555'}\n"
        + "  email: {secondary: mailgun}\n",
        encoding="utf-8",
    )

    loaded, problems = check_config(config)

    assert loaded is None
    file = "config/clients/bright_smiles_dental/client.yaml"
    assert [str(p) for p in problems] == [
        f"{file}: providers.sms.secondary: the secondary must differ from the primary (twilio)",
        f"{file}: providers.sms.secondary_sender: must be a phone number in E.164, e.g. '+15125550111'",
        f"{file}: providers.email.secondary: unknown email provider 'mailgun'; "
        "use one of sandbox, resend, resend_secondary",
    ]
    # the example deployment names none: it loads, and no client fails over
    assert all(c.config.providers == ClientProviders() for c in load_deployment(EXAMPLE_CONFIG).clients.values())
