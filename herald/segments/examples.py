"""Example ``function`` segments (referenced from ``config/clients/*/segments``)."""

from __future__ import annotations

from herald.segments.confine import ConfinedDatabase


def admitted_not_enrolled(db: ConfinedDatabase, client_id: str) -> list[str]:
    """Leads whose latest funnel event moved them to ``admitted`` and who never enrolled."""
    rows = db.query(
        """
        with ranked as (
            select contact_id, to_stage,
                   row_number() over (partition by contact_id order by occurred_at desc, to_stage) as recency
            from marts.funnel_events
            where client_id = ? and contact_id is not null
        ),
        enrolled as (
            select distinct contact_id from marts.funnel_events
            where client_id = ? and to_stage = 'enrolled' and contact_id is not null
        )
        select r.contact_id
        from ranked r
        where r.recency = 1 and r.to_stage = 'admitted'
          and r.contact_id not in (select contact_id from enrolled)
        order by r.contact_id
        """,
        [client_id, client_id],
    )
    return [str(r[0]) for r in rows]
