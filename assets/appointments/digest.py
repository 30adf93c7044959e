"""The daily staff digest as an asset, run by each client's digest schedule (its
``confirmations.digest.send_at``, in its time zone).

Design: like the low-credit alert, a digest is a fact in the warehouse
(``herald_ops.staff_digests``, one row per client and local day) and an email to the client's
contact; in Dagster it is the materialization's metadata (a Markdown table without names) plus
one ``AssetObservation`` per digest. Every client whose send time has come and whose digest of
today is not sent yet is handled, so a missed schedule tick is caught up by the next one. The run
fails (``dg.Failure``) only when a digest email could not be sent; its row is committed first and
the next run tries again.
"""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from herald.appointments.digest import StaffDigest, send_digests
from herald.clock import utcnow
from resources import HeraldConfigResource, ProvidersResource, WarehouseResource

APPOINTMENTS_GROUP = "appointments"
STAFF_DIGESTS_KEY = dg.AssetKey(["herald_ops", "staff_digests"])


def digests_table(digests: list[StaffDigest]) -> str:
    """The digests of one run as a Markdown table (counts only: no names)."""
    if not digests:
        return "no digest was due"
    lines = ["| client | day | unconfirmed appointments | email |", "|---|---|---|---|"]
    lines += [
        f"| {d.client_id} | {d.appointment_date} | {d.appointment_count} | {d.email_status}"
        + (f": {d.email_error}" if d.email_error else "")
        + " |"
        for d in digests
    ]
    return "\n".join(lines)


@dg.asset(
    key=STAFF_DIGESTS_KEY,
    group_name=APPOINTMENTS_GROUP,
    pool=WAREHOUSE_POOL,
    kinds={"python"},
)
def staff_digests(
    context: dg.AssetExecutionContext,
    herald_config: HeraldConfigResource,
    warehouse: WarehouseResource,
    providers: ProvidersResource,
) -> dg.MaterializeResult:
    """One row per client and local day: the email to the client's contact.email listing the next
    day's unconfirmed appointments (marts.appointment_confirmations), sent once a day from
    confirmations.digest.send_at. Fails the run when a digest email could not be sent."""
    deployment = herald_config.load()
    with warehouse.get().session() as session:
        recorded = send_digests(session, deployment, providers.get(), utcnow())
    for digest in recorded:
        context.log_event(
            dg.AssetObservation(
                asset_key=STAFF_DIGESTS_KEY,
                metadata={
                    "client_id": digest.client_id,
                    "appointment_date": str(digest.appointment_date),
                    "unconfirmed_appointments": digest.appointment_count,
                    "email_status": digest.email_status,
                    "message_key": digest.message_key,
                },
            )
        )
    unsent = [d for d in recorded if d.email_status not in ("sent", "empty")]
    if unsent:
        raise dg.Failure(
            description=f"{len(unsent)} staff digest(s) could not be emailed; recorded in herald_ops.staff_digests "
            "and tried again by the next run",
            metadata={"digests": dg.MetadataValue.md(digests_table(unsent))},
        )
    return dg.MaterializeResult(
        metadata={
            "digests_sent": dg.MetadataValue.int(sum(d.email_status == "sent" for d in recorded)),
            "digests": dg.MetadataValue.md(digests_table(recorded)),
        }
    )
