"""twilio_polling_sensor: for deployments that cannot expose webhooks (polling needs no public
address), lists new inbound replies and status changes from Twilio since its cursor — from the
second Twilio account too when TWILIO_SECONDARY_* is set — lands them exactly as the webhooks
would (landing files in embedded mode, the landing tables on PostgreSQL — never the warehouse's
own tables), and requests the runs that apply them.

Stopped unless HERALD_TWILIO_POLLING=1; the listing itself is :func:`herald.events.polling.poll_accounts`."""

import hashlib

import dagster as dg
from dagster._core.definitions.target import ExecutableDefinition  # a job or an asset job; not exported publicly

from herald.events.landing import open_sink
from herald.events.polling import AccountCursors, event_ids, poll_accounts, polling_enabled, twilio_clients_from_env
from resources import HeraldSettingsResource


def _run_key(prefix: str, ids: list[str]) -> str:
    return f"twilio_poll:{prefix}:" + hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()[:32]


def build_twilio_polling_sensor(
    apply_provider_events_job: ExecutableDefinition, apply_replies_job: ExecutableDefinition
) -> dg.SensorDefinition:
    """The sensor requests two jobs, which a sensor names as definitions (``jobs=``), so
    orchestration builds it with its jobs. Whether it starts running is read from
    HERALD_TWILIO_POLLING when the definitions load."""

    @dg.sensor(
        name="twilio_polling_sensor",
        jobs=[apply_provider_events_job, apply_replies_job],
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING if polling_enabled() else dg.DefaultSensorStatus.STOPPED,
        description="Polls Twilio's Messages API (for deployments without webhooks; on when HERALD_TWILIO_POLLING=1): "
        "lands new replies and status changes and requests apply_replies_job / apply_provider_events_job.",
    )
    def twilio_polling_sensor(context: dg.SensorEvaluationContext, herald_settings: HeraldSettingsResource):
        cursors = AccountCursors.from_json(context.cursor)
        inbound, events, new_cursors, errors = poll_accounts(twilio_clients_from_env(), cursors)
        for provider, error in sorted(errors.items()):  # the other account's findings land regardless
            context.log.warning(f"Twilio account {provider} could not be polled (retried next tick): {error}")
        sink = open_sink(herald_settings.get())
        if events:
            sink.append(*events)
        for message in inbound:
            sink.append_inbound(message)
        context.update_cursor(new_cursors.to_json())
        requests = []
        if events:
            requests.append(dg.RunRequest(run_key=_run_key("events", event_ids(events)), job_name=apply_provider_events_job.name,
                                          tags={"herald/polled_events": str(len(events))}))  # fmt: skip
        if inbound:
            requests.append(dg.RunRequest(run_key=_run_key("inbound", event_ids(inbound)), job_name=apply_replies_job.name,
                                          tags={"herald/polled_replies": str(len(inbound))}))  # fmt: skip
        if not requests:
            since = (
                ", ".join(
                    f"{name} since {c.date_sent.isoformat() if c.date_sent else 'the beginning'}"
                    for name, c in sorted(cursors.accounts.items())
                )
                or "since the beginning"
            )
            failed = "".join(f"; {name} could not be polled: {error}" for name, error in sorted(errors.items()))
            return dg.SkipReason(f"Twilio listed no new replies or status changes ({since}){failed}")
        return requests

    return twilio_polling_sensor
