"""Baseline: Herald's own tables as the last release before migrations made them.

That is ``herald/warehouse/schema.py`` before the journeys' ``config_version`` (the commit before
26aa2f1): 45 tables — 43 in ``herald_raw`` and ``herald_ops``, and the two Python-owned ones in dbt's
``marts`` (segment_members) and ``analytics`` (ab_test_results) schemas — and PostgreSQL's secondary
indexes. Every later change is a migration of its own (0002 adds ``config_version``).

Frozen: a migration is history, so this file never reads ``schema.TABLES`` (which describes the
head) and is never edited. It says ``if not exists`` because a warehouse made before migrations
existed is stamped by running it again: it then creates only the tables that warehouse lacked.
``JSON`` stands for the engine's JSON type.
"""

from __future__ import annotations

from herald.warehouse.connection import Session

JSON_TYPE = {"duckdb": "json", "postgres": "jsonb"}

SCHEMAS = ("herald_raw", "herald_ops", "marts", "analytics")

TABLES = [
    """
    create table if not exists herald_ops.packets (
        packet_id varchar not null,
        client_id varchar not null,
        packet_type varchar not null,
        file_name varchar not null,
        file_path varchar not null,
        file_size_bytes bigint,
        sha256 varchar,
        encoding varchar,
        status varchar not null,
        status_reason varchar,
        duplicate_of varchar,
        rows_in_file bigint,
        rows_landed bigint,
        rows_rejected bigint,
        received_at timestamp not null,
        landed_at timestamp,
        updated_at timestamp not null,
        primary key (packet_id)
    )""",
    """
    create table if not exists herald_ops.packet_events (
        packet_id varchar not null,
        step varchar not null,
        occurred_at timestamp not null,
        duration_ms bigint,
        detail varchar
    )""",
    """
    create table if not exists herald_raw.packet_rows (
        packet_id varchar not null,
        client_id varchar not null,
        packet_type varchar not null,
        line_number bigint not null,
        row_data JSON not null,
        landed_at timestamp not null,
        primary key (packet_id, line_number)
    )""",
    """
    create table if not exists herald_raw.packet_rejects (
        packet_id varchar not null,
        client_id varchar not null,
        packet_type varchar not null,
        line_number bigint not null,
        reason varchar not null,
        raw_text varchar,
        rejected_at timestamp not null,
        primary key (packet_id, line_number)
    )""",
    """
    create table if not exists herald_raw.phone_numbers (
        raw_value varchar not null,
        default_region varchar not null,
        phone_e164 varchar,
        is_valid boolean not null,
        checked_at timestamp not null,
        primary key (raw_value, default_region)
    )""",
    """
    create table if not exists herald_ops.clients (
        client_id varchar not null,
        name varchar not null,
        industry varchar,
        time_zone varchar not null,
        default_region varchar not null,
        loaded_at timestamp not null,
        primary key (client_id)
    )""",
    """
    create table if not exists herald_ops.load_maps (
        client_id varchar not null,
        packet_type varchar not null,
        entity varchar not null,
        description varchar,
        keep_unmapped boolean not null,
        loaded_at timestamp not null,
        primary key (client_id, packet_type)
    )""",
    """
    create table if not exists herald_ops.load_map_columns (
        client_id varchar not null,
        packet_type varchar not null,
        source_column varchar not null,
        target_kind varchar not null,
        target_name varchar not null,
        data_type varchar not null,
        array_separator varchar,
        is_required boolean not null,
        position bigint not null,
        primary key (client_id, packet_type, source_column)
    )""",
    """
    create table if not exists herald_ops.canonical_fields (
        field_name varchar not null,
        data_type varchar not null,
        stored_in varchar not null,
        description varchar not null,
        primary key (field_name)
    )""",
    """
    create table if not exists herald_ops.segment_membership_events (
        client_id varchar not null,
        segment_name varchar not null,
        contact_id varchar not null,
        event varchar not null,
        occurred_at timestamp not null
    )""",
    """
    create table if not exists herald_ops.campaigns (
        client_id varchar not null,
        campaign varchar not null,
        message_type varchar not null,
        category varchar not null,
        status varchar not null,
        audience varchar not null,
        trigger_type varchar not null,
        trigger_cron varchar,
        trigger_packet_type varchar,
        trigger_to_stage varchar,
        trigger_funnel_type varchar,
        daily_limit bigint,
        sms_consent varchar,
        loaded_at timestamp not null,
        enrollment_rule varchar,
        enrollment_cooldown_minutes bigint,
        config_version varchar,
        first_step varchar,
        exit_on_reply boolean,
        exit_on_opt_out boolean,
        exit_on_leave boolean,
        exit_on_confirm boolean,
        exit_goal_stage varchar,
        exit_date_field varchar,
        primary key (client_id, campaign)
    )""",
    """
    create table if not exists herald_ops.campaign_steps (
        client_id varchar not null,
        campaign varchar not null,
        step varchar not null,
        position bigint not null,
        channel varchar,
        fallback_channel varchar,
        fallback_if_missing varchar,
        anchor_field varchar,
        anchor_minutes bigint not null,
        kind varchar,
        next_step varchar,
        wait_minutes bigint,
        wait_until_minute bigint,
        wait_until_weekday bigint,
        event varchar,
        event_detail varchar,
        timeout_minutes bigint,
        yes_step varchar,
        no_step varchar,
        exit_reason varchar,
        primary key (client_id, campaign, step)
    )""",
    """
    create table if not exists herald_ops.campaign_branches (
        client_id varchar not null,
        campaign varchar not null,
        step varchar not null,
        position bigint not null,
        path varchar not null,
        test varchar not null,
        condition_sql varchar,
        condition_text varchar,
        segment_name varchar,
        bucket_from bigint,
        bucket_to bigint,
        goto_step varchar,
        primary key (client_id, campaign, step, position)
    )""",
    """
    create table if not exists herald_ops.campaign_variants (
        client_id varchar not null,
        campaign varchar not null,
        step varchar not null,
        variant varchar not null,
        weight double precision not null,
        bucket_from bigint not null,
        bucket_to bigint not null,
        sms_template varchar,
        email_template varchar,
        subject varchar,
        primary key (client_id, campaign, step, variant)
    )""",
    """
    create table if not exists herald_ops.send_windows (
        client_id varchar not null,
        iso_day_of_week bigint not null,
        start_minute bigint not null,
        end_minute bigint not null,
        primary key (client_id, iso_day_of_week)
    )""",
    """
    create table if not exists herald_ops.legal_windows (
        jurisdiction varchar not null,
        iso_day_of_week bigint not null,
        start_minute bigint not null,
        end_minute bigint not null,
        primary key (jurisdiction, iso_day_of_week)
    )""",
    """
    create table if not exists herald_ops.frequency_caps (
        client_id varchar not null,
        category varchar not null,
        window_hours bigint not null,
        max_messages bigint not null,
        label varchar not null,
        primary key (client_id, category, window_hours)
    )""",
    """
    create table if not exists herald_ops.sender_quotas (
        client_id varchar not null,
        channel varchar not null,
        sender varchar not null,
        daily_limit bigint not null,
        primary key (client_id, channel)
    )""",
    """
    create table if not exists herald_ops.confirmation_settings (
        client_id varchar not null,
        follow_up_after_minutes bigint not null,
        high_risk_before_minutes bigint not null,
        digest_send_at varchar not null,
        digest_enabled boolean not null,
        primary key (client_id)
    )""",
    """
    create table if not exists herald_ops.campaign_occurrences (
        client_id varchar not null,
        campaign varchar not null,
        occurrence varchar not null,
        trigger_type varchar not null,
        fired_at timestamp not null,
        events_since timestamp,
        packet_id varchar,
        requested_by varchar,
        recorded_at timestamp not null,
        planned_at timestamp,
        primary key (client_id, campaign, occurrence)
    )""",
    """
    create table if not exists herald_ops.plan_runs (
        run_id varchar not null,
        as_of timestamp not null,
        started_at timestamp not null,
        primary key (run_id)
    )""",
    """
    create table if not exists herald_ops.enrollments (
        enrollment_id varchar not null,
        client_id varchar not null,
        campaign varchar not null,
        contact_id varchar not null,
        occurrence varchar not null,
        enrollment_rule varchar not null,
        config_version varchar not null,
        entered_at timestamp not null,
        step varchar,
        step_entered_at timestamp,
        status varchar not null,
        next_at timestamp,
        wait_reason varchar,
        exit_reason varchar,
        ended_at timestamp,
        updated_at timestamp not null,
        primary key (enrollment_id)
    )""",
    """
    create table if not exists herald_ops.enrollment_events (
        event_id varchar not null,
        enrollment_id varchar not null,
        client_id varchar not null,
        campaign varchar not null,
        contact_id varchar not null,
        step varchar,
        event varchar not null,
        path varchar,
        reason varchar,
        message_key varchar,
        occurred_at timestamp not null,
        recorded_at timestamp not null,
        primary key (event_id)
    )""",
    """
    create table if not exists herald_ops.outbox (
        message_key varchar not null,
        client_id varchar not null,
        campaign varchar not null,
        step varchar not null,
        variant varchar not null,
        occurrence varchar not null,
        contact_id varchar not null,
        message_type varchar not null,
        category varchar not null,
        channel varchar not null,
        to_address varchar not null,
        sender varchar,
        template varchar,
        subject varchar,
        body_text varchar,
        body_html varchar,
        headers JSON,
        sms_segments bigint,
        sms_encoding varchar,
        send_after timestamp not null,
        status varchar not null,
        status_reason varchar,
        attempts bigint not null,
        next_attempt_at timestamp,
        claim_token varchar,
        claimed_at timestamp,
        provider varchar,
        provider_message_id varchar,
        enqueued_at timestamp not null,
        sent_at timestamp,
        updated_at timestamp not null,
        provider_status varchar,
        provider_status_at timestamp,
        delivered_at timestamp,
        bounced_at timestamp,
        complained_at timestamp,
        opened_at timestamp,
        clicked_at timestamp,
        delivery_error varchar,
        primary key (message_key)
    )""",
    """
    create table if not exists herald_ops.delivery_attempts (
        message_key varchar not null,
        attempt_number bigint not null,
        claim_token varchar,
        channel varchar not null,
        provider varchar,
        outcome varchar not null,
        error_code varchar,
        error_reason varchar,
        provider_message_id varchar,
        started_at timestamp not null,
        finished_at timestamp not null
    )""",
    """
    create table if not exists herald_ops.suppressions (
        client_id varchar not null,
        channel varchar not null,
        address varchar not null,
        scope varchar not null,
        reason varchar not null,
        source varchar,
        note varchar,
        contact_id varchar,
        created_at timestamp not null,
        primary key (client_id, channel, address, scope, reason)
    )""",
    """
    create table if not exists herald_ops.consent_events (
        event_id varchar not null,
        client_id varchar not null,
        contact_id varchar,
        channel varchar not null,
        address varchar not null,
        kind varchar not null,
        scope varchar not null,
        consent_level varchar,
        source varchar not null,
        evidence varchar,
        occurred_at timestamp not null,
        recorded_at timestamp not null,
        primary key (event_id)
    )""",
    """
    create table if not exists herald_ops.audit_log (
        audit_id varchar not null,
        occurred_at timestamp not null,
        actor varchar not null,
        action varchar not null,
        client_id varchar,
        contact_id varchar,
        subject varchar,
        reason varchar,
        detail varchar,
        primary key (audit_id)
    )""",
    """
    create table if not exists herald_raw.address_regions (
        kind varchar not null,
        address_value varchar not null,
        time_zones varchar,
        state varchar,
        checked_at timestamp not null,
        primary key (kind, address_value)
    )""",
    """
    create table if not exists herald_raw.inbound_messages (
        inbound_id varchar not null,
        channel varchar not null,
        from_address varchar not null,
        to_address varchar not null,
        body varchar not null,
        provider varchar,
        received_at timestamp not null,
        landed_at timestamp not null,
        primary key (inbound_id)
    )""",
    """
    create table if not exists herald_raw.provider_events (
        event_id varchar not null,
        source varchar not null,
        kind varchar not null,
        provider_message_id varchar,
        payload varchar not null,
        received_at timestamp not null,
        landed_at timestamp not null,
        primary key (event_id)
    )""",
    """
    create table if not exists herald_raw.link_clicks (
        click_id varchar not null,
        message_key varchar not null,
        client_id varchar,
        contact_id varchar,
        url varchar not null,
        user_agent_class varchar not null,
        user_agent varchar,
        clicked_at timestamp not null,
        landed_at timestamp not null,
        primary key (click_id)
    )""",
    """
    create table if not exists herald_ops.provider_event_processing (
        event_id varchar not null,
        message_key varchar,
        action varchar not null,
        detail varchar,
        processed_at timestamp not null,
        primary key (event_id)
    )""",
    """
    create table if not exists herald_ops.inbound_processing (
        inbound_id varchar not null,
        client_id varchar,
        contact_id varchar,
        kind varchar not null,
        keyword_class varchar,
        matched varchar,
        action varchar not null,
        scope varchar,
        messages_cancelled bigint not null,
        reply_message_key varchar,
        processed_at timestamp not null,
        primary key (inbound_id)
    )""",
    """
    create table if not exists herald_ops.appointment_responses (
        inbound_id varchar not null,
        client_id varchar not null,
        contact_id varchar not null,
        response varchar not null,
        received_at timestamp not null,
        primary key (inbound_id, contact_id)
    )""",
    """
    create table if not exists herald_ops.credit_ledger (
        entry_id varchar not null,
        client_id varchar not null,
        kind varchar not null,
        amount decimal(18, 4) not null,
        message_key varchar,
        note varchar,
        actor varchar not null,
        created_at timestamp not null,
        primary key (entry_id)
    )""",
    """
    create table if not exists herald_ops.credit_alerts (
        client_id varchar not null,
        crossed_at timestamp not null,
        balance decimal(18, 4) not null,
        threshold decimal(18, 4) not null,
        purchase_entry_id varchar not null,
        message_key varchar not null,
        email_status varchar not null,
        email_error varchar,
        primary key (client_id, purchase_entry_id)
    )""",
    """
    create table if not exists herald_ops.staff_digests (
        client_id varchar not null,
        digest_date date not null,
        appointment_date date not null,
        appointment_count bigint not null,
        message_key varchar not null,
        email_status varchar not null,
        email_error varchar,
        created_at timestamp not null,
        primary key (client_id, digest_date)
    )""",
    """
    create table if not exists herald_ops.staff_alerts (
        alert_id varchar not null,
        client_id varchar not null,
        kind varchar not null,
        subject varchar not null,
        crossed_at timestamp not null,
        window_start timestamp not null,
        observed bigint not null,
        total bigint not null,
        threshold varchar not null,
        detail varchar,
        status varchar not null,
        recovered_at timestamp,
        message_key varchar not null,
        email_status varchar not null,
        email_error varchar,
        operator_email_status varchar not null,
        primary key (alert_id)
    )""",
    """
    create table if not exists marts.segment_members (
        client_id varchar not null,
        segment_name varchar not null,
        contact_id varchar not null,
        entered_at timestamp not null,
        snapshot_at timestamp not null,
        primary key (client_id, segment_name, contact_id)
    )""",
    """
    create table if not exists herald_ops.ab_winners (
        client_id varchar not null,
        campaign varchar not null,
        step varchar not null,
        variant varchar not null,
        p_value double precision,
        decided_at timestamp not null,
        primary key (client_id, campaign, step)
    )""",
    """
    create table if not exists analytics.ab_test_results (
        client_id varchar not null,
        campaign varchar not null,
        step varchar not null,
        variant varchar not null,
        is_control boolean not null,
        sent bigint not null,
        delivered bigint not null,
        replied bigint not null,
        converted bigint not null,
        metric varchar not null,
        rate double precision,
        ci_low double precision,
        ci_high double precision,
        z double precision,
        p_value double precision,
        verdict varchar not null,
        winner varchar,
        computed_at timestamp not null,
        primary key (client_id, campaign, step, variant)
    )""",
    """
    create table if not exists herald_ops.webhook_subscriptions (
        subscription_id varchar not null,
        client_id varchar not null,
        url varchar not null,
        events varchar not null,
        created_at timestamp not null,
        cursor_at timestamp,
        disabled_at timestamp,
        disabled_reason varchar,
        updated_at timestamp not null,
        primary key (subscription_id)
    )""",
    """
    create table if not exists herald_ops.webhook_deliveries (
        subscription_id varchar not null,
        event_id varchar not null,
        client_id varchar not null,
        event_type varchar not null,
        occurred_at timestamp not null,
        payload varchar not null,
        status varchar not null,
        attempts integer not null,
        next_attempt_at timestamp,
        last_status_code integer,
        last_error varchar,
        enqueued_at timestamp not null,
        delivered_at timestamp,
        updated_at timestamp not null,
        primary key (subscription_id, event_id)
    )""",
    """
    create table if not exists herald_ops.webhook_attempts (
        subscription_id varchar not null,
        event_id varchar not null,
        attempt_number integer not null,
        url varchar not null,
        status_code integer,
        error varchar,
        duration_ms bigint not null,
        outcome varchar not null,
        attempted_at timestamp not null,
        primary key (subscription_id, event_id, attempt_number)
    )""",
]

# DuckDB gets none: ART indexes turn each update of an indexed column into delete + insert.
POSTGRES_INDEXES = [
    "create index if not exists outbox_due on herald_ops.outbox (status, send_after)",
    "create index if not exists consent_by_address on herald_ops.consent_events (client_id, address)",
    "create index if not exists outbox_by_address on herald_ops.outbox (client_id, to_address)",
    "create index if not exists packets_client_sha on herald_ops.packets (client_id, packet_type, sha256)",
    "create index if not exists credit_ledger_by_client on herald_ops.credit_ledger (client_id)",
]


def upgrade(s: Session) -> None:
    for schema in SCHEMAS:
        s.execute(f"create schema if not exists {schema}")
    for statement in TABLES:
        s.execute(statement.replace(" JSON", f" {JSON_TYPE[s.engine]}"))
    if s.engine == "postgres":
        for statement in POSTGRES_INDEXES:
            s.execute(statement)
