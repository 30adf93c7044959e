"""The delivery providers as a Dagster resource (sandbox, Twilio, Resend, from the environment)."""

import dagster as dg

from herald.providers.base import Provider
from herald.providers.factory import providers_from_env
from herald.settings import Settings


class ProvidersResource(dg.ConfigurableResource):
    """``{"sms": Provider, "email": Provider}`` from ``HERALD_SMS_PROVIDER`` /
    ``HERALD_EMAIL_PROVIDER`` and their credentials, read when a run uses it (never at import),
    so a long-lived process always sees the current environment. The sandbox journals its
    sends under ``$HERALD_HOME/sandbox``."""

    def get(self) -> dict[str, Provider]:
        return providers_from_env(home=Settings.from_env().home)
