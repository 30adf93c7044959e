"""The tables Herald's Python side owns: ``herald_raw`` (landed data) and ``herald_ops``
(transactional state and the configuration loaded for dbt to join).

One definition serves both engines; only the JSON type differs. All ``*_at`` columns hold
naive timestamps in UTC.

``TABLES`` is the head schema: what the migrations in ``herald/warehouse/migrations`` make, and
what the rest of the code reads (column lists, the catalog, the tests' hand-made tables). A change
here goes with a new migration in the same commit; tests/integration/test_migrations.py fails
when the two differ.
"""

from __future__ import annotations

RAW_SCHEMA = "herald_raw"
OPS_SCHEMA = "herald_ops"
MARTS_SCHEMA = "marts"
ANALYTICS_SCHEMA = "analytics"

# (table, [(column, type)], primary key columns). ``JSON`` is replaced per engine.
TABLES: list[tuple[str, list[tuple[str, str]], tuple[str, ...]]] = [
    (
        f"{OPS_SCHEMA}.packets",
        [
            ("packet_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("file_name", "varchar not null"),
            ("file_path", "varchar not null"),
            ("file_size_bytes", "bigint"),
            ("sha256", "varchar"),
            ("encoding", "varchar"),
            ("status", "varchar not null"),  # received | landed | rejected | duplicate | failed
            ("status_reason", "varchar"),
            ("duplicate_of", "varchar"),
            ("rows_in_file", "bigint"),
            ("rows_landed", "bigint"),
            ("rows_rejected", "bigint"),
            ("received_at", "timestamp not null"),
            ("landed_at", "timestamp"),
            ("updated_at", "timestamp not null"),
        ],
        ("packet_id",),
    ),
    (
        f"{OPS_SCHEMA}.packet_events",
        [
            ("packet_id", "varchar not null"),
            ("step", "varchar not null"),  # received | verified | landed | validated | mapped | cleaned | ...
            ("occurred_at", "timestamp not null"),
            ("duration_ms", "bigint"),
            ("detail", "varchar"),
        ],
        (),
    ),
    (
        f"{RAW_SCHEMA}.packet_rows",
        [
            ("packet_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("line_number", "bigint not null"),
            ("row_data", "JSON not null"),  # {"<header as in the file>": "<raw text>", ...}
            ("landed_at", "timestamp not null"),
        ],
        ("packet_id", "line_number"),
    ),
    (
        f"{RAW_SCHEMA}.packet_rejects",
        [
            ("packet_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("line_number", "bigint not null"),
            ("reason", "varchar not null"),
            ("raw_text", "varchar"),
            ("rejected_at", "timestamp not null"),
        ],
        ("packet_id", "line_number"),
    ),
    (
        f"{RAW_SCHEMA}.phone_numbers",
        [
            ("raw_value", "varchar not null"),
            ("default_region", "varchar not null"),
            ("phone_e164", "varchar"),
            ("is_valid", "boolean not null"),
            ("checked_at", "timestamp not null"),
        ],
        ("raw_value", "default_region"),
    ),
    (
        f"{OPS_SCHEMA}.clients",
        [
            ("client_id", "varchar not null"),
            ("name", "varchar not null"),
            ("industry", "varchar"),
            ("time_zone", "varchar not null"),
            ("default_region", "varchar not null"),
            ("loaded_at", "timestamp not null"),
        ],
        ("client_id",),
    ),
    (
        f"{OPS_SCHEMA}.load_maps",
        [
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("entity", "varchar not null"),  # contacts | funnel_events
            ("description", "varchar"),
            ("keep_unmapped", "boolean not null"),
            ("loaded_at", "timestamp not null"),
        ],
        ("client_id", "packet_type"),
    ),
    (
        f"{OPS_SCHEMA}.load_map_columns",
        [
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("source_column", "varchar not null"),
            ("target_kind", "varchar not null"),  # field | attribute
            ("target_name", "varchar not null"),
            ("data_type", "varchar not null"),  # string | numeric | date | timestamp | boolean | array
            ("array_separator", "varchar"),
            ("is_required", "boolean not null"),
            ("position", "bigint not null"),
        ],
        ("client_id", "packet_type", "source_column"),
    ),
    (
        f"{OPS_SCHEMA}.canonical_fields",
        [
            ("field_name", "varchar not null"),
            ("data_type", "varchar not null"),
            ("stored_in", "varchar not null"),  # contact | attribute | funnel_event
            ("description", "varchar not null"),
        ],
        ("field_name",),
    ),
    (
        f"{OPS_SCHEMA}.segment_membership_events",
        [
            ("client_id", "varchar not null"),
            ("segment_name", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("event", "varchar not null"),  # entered | exited
            ("occurred_at", "timestamp not null"),
        ],
        (),
    ),
    # -- campaigns: configuration for dbt's message plan ----------------------------------
    (
        f"{OPS_SCHEMA}.campaigns",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("message_type", "varchar not null"),
            ("category", "varchar not null"),  # marketing | transactional
            ("status", "varchar not null"),  # active | paused
            ("audience", "varchar not null"),  # segment name
            ("trigger_type", "varchar not null"),  # schedule | segment_entry | packet_arrival | funnel_event
            ("trigger_cron", "varchar"),
            ("trigger_packet_type", "varchar"),
            ("trigger_to_stage", "varchar"),
            ("trigger_funnel_type", "varchar"),
            ("daily_limit", "bigint"),
            ("sms_consent", "varchar"),  # express_written | prior_express
            ("loaded_at", "timestamp not null"),
            # the journey: who may enter again, where it starts, when it ends early
            ("enrollment_rule", "varchar"),  # once | once_per | every_occurrence (null: every_occurrence)
            ("enrollment_cooldown_minutes", "bigint"),  # once_per's cooldown
            ("config_version", "varchar"),
            ("first_step", "varchar"),
            ("exit_on_reply", "boolean"),
            ("exit_on_opt_out", "boolean"),
            ("exit_on_leave", "boolean"),  # leaving the audience segment
            ("exit_on_confirm", "boolean"),  # an appointment confirmation
            ("exit_goal_stage", "varchar"),  # reaching this funnel stage is the goal
            ("exit_date_field", "varchar"),  # past this contact date, the enrollment ends
        ],
        ("client_id", "campaign"),
    ),
    (
        f"{OPS_SCHEMA}.campaign_steps",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("step", "varchar not null"),
            ("position", "bigint not null"),  # 1-based
            ("channel", "varchar"),  # message steps: the channel tried first
            ("fallback_channel", "varchar"),  # rule "sms; email if phone is missing" → email
            ("fallback_if_missing", "varchar"),  # ... → phone
            # When the step is due: anchor_field null → the trigger's time, else that contact
            # date/timestamp field or attribute; plus anchor_minutes (signed, delays accumulate).
            ("anchor_field", "varchar"),
            ("anchor_minutes", "bigint not null"),
            # The journey graph (null kind: message). A message or wait step with no anchor is
            # due anchor_minutes (message) / wait_minutes (wait) after the contact reached it.
            ("kind", "varchar"),  # message | wait | wait_for | branch | exit
            ("next_step", "varchar"),  # message, wait: the step after (null: the journey ends)
            ("wait_minutes", "bigint"),  # wait: a duration
            ("wait_until_minute", "bigint"),  # wait: until this local time of day (minutes after midnight)
            ("wait_until_weekday", "bigint"),  # ... on this ISO weekday (null: the next such time)
            ("event", "varchar"),  # wait_for: replied | clicked | opened | delivered | confirmed | funnel_stage | ...
            ("event_detail", "varchar"),  # wait_for: the funnel stage or segment
            ("timeout_minutes", "bigint"),  # wait_for
            ("yes_step", "varchar"),  # wait_for: the event happened (null: the journey ends)
            ("no_step", "varchar"),  # wait_for: the timeout passed
            ("exit_reason", "varchar"),  # exit
            ("config_version", "varchar not null"),  # the campaign's version these rows are of
        ],
        ("client_id", "campaign", "config_version", "step"),
    ),
    # A branch step's paths, tried in order: the first whose test holds is taken.
    (
        f"{OPS_SCHEMA}.campaign_branches",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("step", "varchar not null"),
            ("position", "bigint not null"),  # 1-based
            ("path", "varchar not null"),
            ("test", "varchar not null"),  # if | segment | weight | else
            ("condition_sql", "varchar"),  # if: compiled by Herald from the validated expression
            ("condition_text", "varchar"),  # if: as written
            ("segment_name", "varchar"),  # segment: membership
            ("bucket_from", "bigint"),  # weight: the contact's bucket (0..9999) in [from, to)
            ("bucket_to", "bigint"),
            ("goto_step", "varchar"),  # null: the journey ends on this path
            ("config_version", "varchar not null"),
        ],
        ("client_id", "campaign", "config_version", "step", "position"),
    ),
    (
        f"{OPS_SCHEMA}.campaign_variants",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("step", "varchar not null"),
            ("variant", "varchar not null"),
            ("weight", "double precision not null"),
            # the variant takes contacts whose hash bucket (0..9999) is in [bucket_from, bucket_to)
            ("bucket_from", "bigint not null"),
            ("bucket_to", "bigint not null"),
            ("sms_template", "varchar"),
            ("email_template", "varchar"),
            ("subject", "varchar"),
            ("config_version", "varchar not null"),
        ],
        ("client_id", "campaign", "config_version", "step", "variant"),
    ),
    # Each version of a campaign's journey the config load has seen: a version is retired when
    # another replaces it (its running enrollments keep walking it; herald_ops.campaign_steps holds
    # its rows while any is active or waiting).
    (
        f"{OPS_SCHEMA}.campaign_versions",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("config_version", "varchar not null"),  # herald_ops.campaigns.config_version
            ("first_loaded_at", "timestamp not null"),
            ("retired_at", "timestamp"),  # null: the current version
        ],
        ("client_id", "campaign", "config_version"),
    ),
    (
        f"{OPS_SCHEMA}.send_windows",
        [
            ("client_id", "varchar not null"),
            ("iso_day_of_week", "bigint not null"),  # 1 = Monday ... 7 = Sunday
            ("start_minute", "bigint not null"),  # minutes after local midnight, inclusive
            ("end_minute", "bigint not null"),  # exclusive
        ],
        ("client_id", "iso_day_of_week"),
    ),
    # Each campaign's own hours per ISO day (herald.compliance.calendars: its send_window over the
    # client's, send_days applied); a day that is not a send day has start = end = 0 and says so.
    (
        f"{OPS_SCHEMA}.campaign_send_windows",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("iso_day_of_week", "bigint not null"),  # 1 = Monday ... 7 = Sunday
            ("start_minute", "bigint not null"),  # minutes after local midnight, inclusive
            ("end_minute", "bigint not null"),  # exclusive
            ("closed_reason", "varchar"),  # 'not a send day (Saturday)' when the day has no hours
        ],
        ("client_id", "campaign", "iso_day_of_week"),
    ),
    # The dates a campaign sends nothing on (the recipient's local day): client-listed closed days
    # and the public holidays of its calendar, each with the reason a deferred message gives.
    (
        f"{OPS_SCHEMA}.closed_days",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("closed_on", "date not null"),
            ("reason", "varchar not null"),  # 'a holiday (Christmas Day, US)', 'a closed day (inventory)'
        ],
        ("client_id", "campaign", "closed_on"),
    ),
    # Calling-hours law (herald/compliance/data/legal_windows.yaml): 'US' federal, or a state.
    (
        f"{OPS_SCHEMA}.legal_windows",
        [
            ("jurisdiction", "varchar not null"),
            ("iso_day_of_week", "bigint not null"),
            ("start_minute", "bigint not null"),
            ("end_minute", "bigint not null"),
        ],
        ("jurisdiction", "iso_day_of_week"),
    ),
    # Per recipient and client, across campaigns: at most max_messages of a category per window.
    (
        f"{OPS_SCHEMA}.frequency_caps",
        [
            ("client_id", "varchar not null"),
            ("category", "varchar not null"),  # marketing | transactional
            ("window_hours", "bigint not null"),
            ("max_messages", "bigint not null"),
            ("label", "varchar not null"),  # the reason a capped message shows
        ],
        ("client_id", "category", "window_hours"),
    ),
    # Per client and channel: at most daily_limit messages per local day from its sender
    # (client.yaml senders.daily_limit), shared by all its campaigns; the rest carry over.
    (
        f"{OPS_SCHEMA}.sender_quotas",
        [
            ("client_id", "varchar not null"),
            ("channel", "varchar not null"),  # sms | email
            ("sender", "varchar not null"),  # senders.sms_from / email_from
            ("daily_limit", "bigint not null"),
        ],
        ("client_id", "channel"),
    ),
    # Each client's confirmations: settings (client.yaml), for marts.appointment_confirmations.
    (
        f"{OPS_SCHEMA}.confirmation_settings",
        [
            ("client_id", "varchar not null"),
            ("follow_up_after_minutes", "bigint not null"),  # no answer this long after first seen: unconfirmed
            ("high_risk_before_minutes", "bigint not null"),  # no answer this close to the time: high_risk
            ("digest_send_at", "varchar not null"),  # HH:MM, the client's local time
            ("digest_enabled", "boolean not null"),
        ],
        ("client_id",),
    ),
    # One row per firing of a campaign's trigger; the message plan expands each into messages.
    (
        f"{OPS_SCHEMA}.campaign_occurrences",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("occurrence", "varchar not null"),  # e.g. 2026-11-23T09:30-07:00 | packet:<id> | entry:<at>
            ("trigger_type", "varchar not null"),
            ("fired_at", "timestamp not null"),
            ("events_since", "timestamp"),  # segment_entry / funnel_event: events after this ...
            ("packet_id", "varchar"),  # packet_arrival: the packet
            ("requested_by", "varchar"),  # Dagster run id, schedule or sensor
            ("recorded_at", "timestamp not null"),
            ("planned_at", "timestamp"),  # set once marts.message_plan has expanded it
        ],
        ("client_id", "campaign", "occurrence"),
    ),
    # -- journeys ---------------------------------------------------------------------------
    # One row per send run: the moment the message plan and the journeys are evaluated at (the
    # run's clock, or a simulated one), so a re-run of the same pass decides the same.
    (
        f"{OPS_SCHEMA}.plan_runs",
        [
            ("run_id", "varchar not null"),
            ("as_of", "timestamp not null"),
            ("started_at", "timestamp not null"),
        ],
        ("run_id",),
    ),
    # One row per campaign x contact x enrollment: where the contact is in the journey.
    (
        f"{OPS_SCHEMA}.enrollments",
        [
            ("enrollment_id", "varchar not null"),  # md5(client|campaign|contact|occurrence)
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("occurrence", "varchar not null"),  # the firing that enrolled the contact
            ("enrollment_rule", "varchar not null"),  # once | once_per:<minutes> | every_occurrence
            ("config_version", "varchar not null"),  # hash of the campaign's journey when it entered
            ("entered_at", "timestamp not null"),
            ("step", "varchar"),  # the step the contact is at (null once completed or exited)
            ("step_entered_at", "timestamp"),
            ("status", "varchar not null"),  # active | waiting | completed | exited
            ("next_at", "timestamp"),  # when the current step is due (waiting: its timeout)
            ("wait_reason", "varchar"),  # why it is waiting (an event, a time, the daily limit)
            ("exit_reason", "varchar"),
            ("ended_at", "timestamp"),
            ("updated_at", "timestamp not null"),
        ],
        ("enrollment_id",),
    ),
    # Everything that happened to an enrollment, step by step (the journey's audit trail).
    (
        f"{OPS_SCHEMA}.enrollment_events",
        [
            ("event_id", "varchar not null"),  # md5(enrollment|step|event|occurred_at)
            ("enrollment_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("step", "varchar"),
            # enrolled | message | waiting | path | carried_over | exited | completed
            ("event", "varchar not null"),
            ("path", "varchar"),  # the path taken: yes | no | a branch's name | next
            ("reason", "varchar"),
            ("message_key", "varchar"),
            ("occurred_at", "timestamp not null"),
            ("recorded_at", "timestamp not null"),
        ],
        ("event_id",),
    ),
    # -- delivery ---------------------------------------------------------------------------
    (
        f"{OPS_SCHEMA}.outbox",
        [
            ("message_key", "varchar not null"),  # md5(client|campaign|step|contact|channel|occurrence)
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("step", "varchar not null"),
            ("variant", "varchar not null"),
            ("occurrence", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("message_type", "varchar not null"),
            ("category", "varchar not null"),
            ("channel", "varchar not null"),  # sms | email
            ("to_address", "varchar not null"),  # E.164 or lower-cased email
            ("sender", "varchar"),
            ("template", "varchar"),
            ("subject", "varchar"),
            ("body_text", "varchar"),  # the SMS body, or the email's plain-text part
            ("body_html", "varchar"),
            ("headers", "JSON"),  # email headers (List-Unsubscribe, ...)
            ("sms_segments", "bigint"),
            ("sms_encoding", "varchar"),
            ("send_after", "timestamp not null"),  # not before this (quiet hours, offsets)
            # queued → sending → sent | failed; held (never rendered / outcome unknown, needs a
            # person); suppressed (opted out at claim time); cancelled
            ("status", "varchar not null"),
            ("status_reason", "varchar"),
            ("attempts", "bigint not null"),
            ("next_attempt_at", "timestamp"),  # a transient failure waits until then
            ("claim_token", "varchar"),
            ("claimed_at", "timestamp"),
            ("provider", "varchar"),
            ("provider_message_id", "varchar"),
            ("enqueued_at", "timestamp not null"),
            ("sent_at", "timestamp"),
            ("updated_at", "timestamp not null"),
            # what the provider reported after accepting it (callbacks, webhooks, polling); only
            # moves forward: queued < sent < delivered | undelivered | failed | bounced | complained
            ("provider_status", "varchar"),
            ("provider_status_at", "timestamp"),
            ("delivered_at", "timestamp"),
            ("bounced_at", "timestamp"),
            ("complained_at", "timestamp"),
            ("opened_at", "timestamp"),
            ("clicked_at", "timestamp"),
            ("delivery_error", "varchar"),
        ],
        ("message_key",),
    ),
    (
        f"{OPS_SCHEMA}.delivery_attempts",
        [
            ("message_key", "varchar not null"),
            ("attempt_number", "bigint not null"),
            ("claim_token", "varchar"),
            ("channel", "varchar not null"),
            ("provider", "varchar"),
            # sent | transient_error | permanent_error | suppressed | reconciled_sent |
            # reconciled_not_sent | held_unknown
            ("outcome", "varchar not null"),
            ("error_code", "varchar"),
            ("error_reason", "varchar"),
            ("provider_message_id", "varchar"),
            ("started_at", "timestamp not null"),
            ("finished_at", "timestamp not null"),
        ],
        (),
    ),
    # One circuit breaker per provider account that some client fails over from
    # (herald/delivery/circuit.py): shared by every delivery worker through the warehouse.
    (
        f"{OPS_SCHEMA}.provider_circuits",
        [
            ("provider", "varchar not null"),  # the account's name: twilio, resend, twilio_secondary, ...
            ("state", "varchar not null"),  # closed | open | half_open
            ("consecutive_failures", "bigint not null"),
            ("opened_at", "timestamp"),
            ("probe_token", "varchar"),  # the one call allowed through while half open
            ("probe_started_at", "timestamp"),
            ("last_error_code", "varchar"),
            ("updated_at", "timestamp not null"),
        ],
        ("provider",),
    ),
    # Who must not be messaged: per client or global (client_id '*'), per channel or all ('*').
    # The compliance issue fills it (opt-outs, bounces, complaints, manual blocks); the plan
    # excludes these addresses and the delivery claim re-checks them in its transaction.
    (
        f"{OPS_SCHEMA}.suppressions",
        [
            ("client_id", "varchar not null"),
            ("channel", "varchar not null"),
            ("address", "varchar not null"),  # E.164 phone or lower-cased email
            # 'all', or the message type an opt-out answered (FCC: until 2027 a revocation may
            # be scoped to the kind of message it replied to; a client can turn on revoke-all)
            ("scope", "varchar not null"),
            ("reason", "varchar not null"),  # opt_out | hard_bounce | complaint | manual_block
            ("source", "varchar"),  # sms_keyword | web | provider | manual | packet
            ("note", "varchar"),  # what support needs to follow up (e.g. the reply's text)
            ("contact_id", "varchar"),
            ("created_at", "timestamp not null"),
        ],
        # reason too: an opt-out and a manual block of one address are separate facts, each
        # lifted its own way (START lifts the opt-out, only support lifts the block)
        ("client_id", "channel", "address", "scope", "reason"),
    ),
    # -- compliance ---------------------------------------------------------------------------
    # Append-only consent history; the current state is derived from it (marts.consent_status).
    (
        f"{OPS_SCHEMA}.consent_events",
        [
            ("event_id", "varchar not null"),  # deterministic: md5 of its source and content
            ("client_id", "varchar not null"),
            ("contact_id", "varchar"),
            ("channel", "varchar not null"),  # sms | email
            ("address", "varchar not null"),
            ("kind", "varchar not null"),  # opt_in | opt_out | revoke | confirm
            ("scope", "varchar not null"),  # 'all' or a message type
            ("consent_level", "varchar"),  # express_written | prior_express (opt_in / confirm)
            ("source", "varchar not null"),  # packet | sms_keyword | web | manual | provider
            ("evidence", "varchar"),  # the reply text, the packet and line, the page, who
            ("occurred_at", "timestamp not null"),
            ("recorded_at", "timestamp not null"),
            # consent with proof (migration 0011): when a grant stops counting (the client's
            # consent.expires_after; null: never), and the sha256 of the wording agreed to
            ("expires_at", "timestamp"),
            ("wording_sha256", "varchar"),
        ],
        ("event_id",),
    ),
    # A double opt-in waiting for its confirmation (the hosted form, herald/compliance/optin.py):
    # the request's proof, then the confirmation's. Confirming records the consent events.
    (
        f"{OPS_SCHEMA}.consent_requests",
        [
            ("request_id", "varchar not null"),  # the landed form event's id
            ("client_id", "varchar not null"),
            ("channel", "varchar not null"),  # sms | email
            ("address", "varchar not null"),  # E.164 or a normalised email
            ("topics", "varchar not null"),  # comma-separated scopes ('all' or message types)
            ("wording", "varchar not null"),  # the exact disclosure text shown
            ("wording_sha256", "varchar not null"),
            ("ip", "varchar"),
            ("user_agent", "varchar"),
            ("page_url", "varchar"),
            ("requested_at", "timestamp not null"),
            ("status", "varchar not null"),  # pending | confirmed
            ("confirm_message_key", "varchar"),  # the confirmation request in the outbox
            ("confirmed_at", "timestamp"),
            ("confirmation", "varchar"),  # the proof of confirming: the reply and its id, or the link's IP/UA
            ("recorded_at", "timestamp not null"),
        ],
        ("request_id",),
    ),
    (
        f"{OPS_SCHEMA}.audit_log",
        [
            ("audit_id", "varchar not null"),
            ("occurred_at", "timestamp not null"),
            ("actor", "varchar not null"),  # system component (e.g. 'inbound_replies') or a person
            # consent_change | suppression | unsuppression | send | cancel | manual_override | purge | hold |
            # config_change (a campaign's journey version changed: herald/warehouse/config_tables.py)
            ("action", "varchar not null"),
            ("client_id", "varchar"),
            ("contact_id", "varchar"),
            ("subject", "varchar"),  # what was acted on: a masked address, a message key, a table
            ("reason", "varchar"),
            ("detail", "varchar"),  # JSON text
        ],
        ("audit_id",),
    ),
    # Where recipients are (herald/compliance/regions.py): one row per phone number or postal
    # code, looked up once; the message plan joins it for each recipient's send window.
    (
        f"{RAW_SCHEMA}.address_regions",
        [
            ("kind", "varchar not null"),  # phone | postal
            ("address_value", "varchar not null"),  # E.164 number or postal code as in marts.contacts
            ("time_zones", "varchar"),  # IANA zones, comma-separated (an area code may span two)
            ("state", "varchar"),  # US state code, when known
            ("checked_at", "timestamp not null"),
        ],
        ("kind", "address_value"),
    ),
    # Inbound messages (SMS replies) as received, before the compliance engine applies them.
    (
        f"{RAW_SCHEMA}.inbound_messages",
        [
            ("inbound_id", "varchar not null"),  # provider message id (Twilio MessageSid) or generated
            ("channel", "varchar not null"),
            ("from_address", "varchar not null"),  # E.164
            ("to_address", "varchar not null"),  # the client's sender number
            ("body", "varchar not null"),
            ("provider", "varchar"),
            ("received_at", "timestamp not null"),
            ("landed_at", "timestamp not null"),
        ],
        ("inbound_id",),
    ),
    # Provider events landed by the web service (herald/events/landing.py): delivery statuses,
    # email events (delivered, bounced, complained, opened, clicked), one-click unsubscribes.
    (
        f"{RAW_SCHEMA}.provider_events",
        [
            ("event_id", "varchar not null"),  # svix-id | <MessageSid>:<status> | unsubscribe:<token hash>
            ("source", "varchar not null"),  # twilio | twilio_secondary | resend | web
            ("kind", "varchar not null"),  # sms_status | email_event | unsubscribe
            ("provider_message_id", "varchar"),
            ("payload", "varchar not null"),  # JSON text as received (verified)
            ("received_at", "timestamp not null"),
            ("landed_at", "timestamp not null"),
        ],
        ("event_id",),
    ),
    # Tracked-link clicks landed by the web service (herald/campaigns/tracking.py): one row per
    # GET /l/<token> whose signature held; bots are kept (user_agent_class 'bot') and left out
    # of the marts.
    (
        f"{RAW_SCHEMA}.link_clicks",
        [
            ("click_id", "varchar not null"),  # random per click
            ("message_key", "varchar not null"),
            ("client_id", "varchar"),  # from the outbox message, filled when the click is loaded
            ("contact_id", "varchar"),
            ("url", "varchar not null"),  # the destination, as signed in the token
            ("user_agent_class", "varchar not null"),  # bot | mobile | desktop
            ("user_agent", "varchar"),  # its first 256 characters
            ("clicked_at", "timestamp not null"),
            ("landed_at", "timestamp not null"),
        ],
        ("click_id",),
    ),
    (
        f"{OPS_SCHEMA}.provider_event_processing",
        [
            ("event_id", "varchar not null"),
            ("message_key", "varchar"),  # the outbox message it was about, when found
            ("action", "varchar not null"),  # status_updated | ignored_older | suppressed | unsubscribed | unmatched
            ("detail", "varchar"),
            ("processed_at", "timestamp not null"),
        ],
        ("event_id",),
    ),
    # What the compliance engine made of each inbound message (one row: applying is idempotent).
    (
        f"{OPS_SCHEMA}.inbound_processing",
        [
            ("inbound_id", "varchar not null"),
            ("client_id", "varchar"),  # null: no client sends from the number it was sent to
            ("contact_id", "varchar"),
            ("kind", "varchar not null"),  # opt_out | probable_opt_out | opt_in | help | confirm | reschedule | other
            ("keyword_class", "varchar"),  # standard | carrier | misspelling | spanish | free_text | ...
            ("matched", "varchar"),
            ("action", "varchar not null"),  # suppressed | restored | helped | confirmed | ... | ignored
            ("scope", "varchar"),
            ("messages_cancelled", "bigint not null"),
            ("reply_message_key", "varchar"),  # the one confirmation / help answer, in the outbox
            ("processed_at", "timestamp not null"),
        ],
        ("inbound_id",),
    ),
    (
        f"{OPS_SCHEMA}.appointment_responses",
        [
            ("inbound_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("response", "varchar not null"),  # confirmed | reschedule_requested
            ("received_at", "timestamp not null"),
        ],
        ("inbound_id", "contact_id"),
    ),
    # -- billing ----------------------------------------------------------------------------
    # Append-only credit ledger (herald/billing/credits.py); a client's balance is sum(amount).
    # A debit or release names its message and has a deterministic entry_id
    # ('debit:<message_key>', 'release:<message_key>'), so a message is never debited twice.
    (
        f"{OPS_SCHEMA}.credit_ledger",
        [
            ("entry_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("kind", "varchar not null"),  # purchase | debit | reservation | release | adjustment
            ("amount", "decimal(18, 4) not null"),  # credits: > 0 adds (purchase, release), < 0 spends (debit)
            ("message_key", "varchar"),  # the outbox message a debit or release is for
            ("note", "varchar"),
            ("actor", "varchar not null"),  # cli:<user> | delivery | ...
            ("created_at", "timestamp not null"),
        ],
        ("entry_id",),
    ),
    # One row per low-credit crossing (herald/billing/alerts.py): the alert email is keyed by it.
    (
        f"{OPS_SCHEMA}.credit_alerts",
        [
            ("client_id", "varchar not null"),
            ("crossed_at", "timestamp not null"),  # when the check found the balance below the threshold
            ("balance", "decimal(18, 4) not null"),
            ("threshold", "decimal(18, 4) not null"),  # credit_alert_threshold_pct of the last purchase
            ("purchase_entry_id", "varchar not null"),  # the purchase the threshold is a share of
            (
                "message_key",
                "varchar not null",
            ),  # the alert email's deterministic key (sent through the email provider)
            ("email_status", "varchar not null"),  # sent | failed | no_contact
            ("email_error", "varchar"),
        ],
        ("client_id", "purchase_entry_id"),
    ),
    # One row per client and local day a staff digest of unconfirmed appointments was sent for.
    (
        f"{OPS_SCHEMA}.staff_digests",
        [
            ("client_id", "varchar not null"),
            ("digest_date", "date not null"),  # the client's local day the digest was sent on
            ("appointment_date", "date not null"),  # the local day its appointments are on (the next day)
            ("appointment_count", "bigint not null"),
            ("message_key", "varchar not null"),  # the email's deterministic key
            ("email_status", "varchar not null"),  # sent | failed | no_contact
            ("email_error", "varchar"),
            ("created_at", "timestamp not null"),
        ],
        ("client_id", "digest_date"),
    ),
    # One row per staff-alert crossing (herald/alerts): a client over a threshold, alerted once
    # until it recovers (status 'recovered') and crosses again (a new row, a new alert_id).
    (
        f"{OPS_SCHEMA}.staff_alerts",
        [
            ("alert_id", "varchar not null"),  # deterministic: client, kind, subject, crossing time
            ("client_id", "varchar not null"),
            ("kind", "varchar not null"),  # failed_or_held | low_delivery_rate | provider_outage
            ("subject", "varchar not null"),  # the provider of an outage; '' otherwise
            ("crossed_at", "timestamp not null"),
            ("window_start", "timestamp not null"),
            ("observed", "bigint not null"),  # failed+held / delivered / failed attempts in a row
            ("total", "bigint not null"),  # messages / final outcomes / attempts looked at
            ("threshold", "varchar not null"),  # what was crossed, in words
            ("detail", "varchar"),  # counts by reason, masked (JSON text)
            ("status", "varchar not null"),  # open | recovered
            ("recovered_at", "timestamp"),
            ("message_key", "varchar not null"),  # the client email's deterministic key
            ("email_status", "varchar not null"),  # sent | failed | no_contact
            ("email_error", "varchar"),
            ("operator_email_status", "varchar not null"),  # sent | failed | not_configured
        ],
        ("alert_id",),
    ),
    # One row per operator incident (herald/alerts/operator.py): a failed Dagster run, or the
    # deployment's failed and held messages over their threshold. At most one row per incident key
    # is open; a threshold incident is recovered when the count falls back, and a later crossing
    # is a new row. The operator is notified once per row.
    (
        f"{OPS_SCHEMA}.operator_incidents",
        [
            ("incident_id", "varchar not null"),  # deterministic: incident key and opening time
            ("incident_key", "varchar not null"),  # run_failure:<run id> | failed_or_held
            ("kind", "varchar not null"),  # run_failure | failed_or_held
            ("subject", "varchar not null"),  # the failed run's job; '' for a threshold
            ("opened_at", "timestamp not null"),
            ("status", "varchar not null"),  # open | recovered | closed (a failed run: one event)
            ("recovered_at", "timestamp"),
            ("run_id", "varchar"),  # the failed run, or the run that found the threshold crossed
            ("link", "varchar"),  # {HERALD_DAGSTER_URL}/runs/{run_id}
            ("summary", "varchar not null"),  # one line, counts only (no addresses)
            ("detail", "varchar"),  # JSON text: counts per client and status, the run's error
            ("email_status", "varchar not null"),  # sent | failed | not_configured
            ("email_error", "varchar"),
            ("webhook_status", "varchar not null"),  # sent | failed | not_configured
            ("webhook_error", "varchar"),
        ],
        ("incident_id",),
    ),
    # The portal (herald/portal/accounts.py): one row per person who signs in under /app. role is
    # operator (every client; client_id null) | client_admin | staff | viewer (one client each).
    # The password is an argon2 hash; totp_secret is set once 2FA is enrolled; totp_last_step
    # refuses a code used twice; failed_attempts and locked_until are the lockout.
    (
        f"{OPS_SCHEMA}.portal_users",
        [
            ("user_id", "varchar not null"),
            ("email", "varchar not null"),  # lower-case; unique (checked on insert)
            ("display_name", "varchar"),
            ("role", "varchar not null"),  # operator | client_admin | staff | viewer
            ("client_id", "varchar"),  # null for an operator
            ("hide_contact_details", "boolean not null"),  # staff: phones and emails masked
            ("password_hash", "varchar not null"),  # argon2id
            ("totp_secret", "varchar"),  # base32; null until 2FA is enrolled
            ("totp_enabled_at", "timestamp"),
            ("totp_last_step", "bigint"),  # the 30-second step of the last accepted code
            ("failed_attempts", "bigint not null"),  # wrong passwords or codes in a row
            ("locked_until", "timestamp"),
            ("disabled_at", "timestamp"),
            ("password_changed_at", "timestamp not null"),
            ("last_login_at", "timestamp"),
            ("created_at", "timestamp not null"),
            ("updated_at", "timestamp not null"),
        ],
        ("user_id",),
    ),
    (
        f"{OPS_SCHEMA}.portal_recovery_codes",
        [
            ("user_id", "varchar not null"),
            ("code_hash", "varchar not null"),  # sha256 of the normalised code
            ("created_at", "timestamp not null"),
            ("used_at", "timestamp"),
        ],
        ("user_id", "code_hash"),
    ),
    (
        f"{OPS_SCHEMA}.portal_reset_tokens",
        [
            ("token_id", "varchar not null"),  # inside the signed link
            ("user_id", "varchar not null"),
            ("created_at", "timestamp not null"),
            ("expires_at", "timestamp not null"),
            ("used_at", "timestamp"),  # single use
        ],
        ("token_id",),
    ),
    (
        f"{OPS_SCHEMA}.portal_sessions",
        [
            ("session_hash", "varchar not null"),  # sha256 of the cookie's session id
            ("user_id", "varchar not null"),
            ("stage", "varchar not null"),  # password (2FA still owed) | full
            ("created_at", "timestamp not null"),
            ("expires_at", "timestamp not null"),
        ],
        ("session_hash",),
    ),
    # The one Python-owned table in dbt's ``marts`` schema (campaigns and analysts read segments
    # beside the other marts): current members of each segment, written by the segment assets;
    # dbt never builds a model of this name.
    # -- privacy rights (herald/privacy) ----------------------------------------------------
    # One row per access-export or erasure request: who asked, when, what became of it, the rows
    # per table (JSON text); the person only as a salted hash of what was asked for.
    (
        f"{OPS_SCHEMA}.privacy_requests",
        [
            ("request_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("kind", "varchar not null"),  # export | erase
            ("subject_hash", "varchar not null"),  # 'erased:' + sha256(salt + contact id / address)
            ("requested_by", "varchar not null"),  # cli:<user> | api:<client>
            ("source", "varchar not null"),  # cli | api
            ("status", "varchar not null"),  # done | already_erased | dry_run
            ("requested_at", "timestamp not null"),
            ("completed_at", "timestamp"),
            ("counts", "varchar"),  # JSON text: rows per table
            ("message", "varchar"),
        ],
        ("request_id",),
    ),
    # The deployment's one random salt for hashed suppressions of erased addresses (written by
    # the first erasure); the message plan hashes each recipient's address with it.
    (
        f"{OPS_SCHEMA}.privacy_salt",
        [
            ("salt", "varchar not null"),
            ("created_at", "timestamp not null"),
        ],
        ("salt",),
    ),
    (
        f"{MARTS_SCHEMA}.segment_members",
        [
            ("client_id", "varchar not null"),
            ("segment_name", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("entered_at", "timestamp not null"),
            ("snapshot_at", "timestamp not null"),
        ],
        ("client_id", "segment_name", "contact_id"),
    ),
    # Winners a campaign applies (ab_test.apply_winner): written when the A/B results name one,
    # read back into herald_ops.campaign_variants by the config load, so from then on the plan
    # gives every contact the winning variant. The first winner of a step stays.
    (
        f"{OPS_SCHEMA}.ab_winners",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("step", "varchar not null"),
            ("variant", "varchar not null"),
            ("p_value", "double precision"),
            ("decided_at", "timestamp not null"),
        ],
        ("client_id", "campaign", "step"),
    ),
    # Python-owned in dbt's ``analytics`` schema (beside the other analytics tables): A/B results per
    # campaign step and variant, replaced whole by the ab_test_results asset (herald/analytics).
    (
        f"{ANALYTICS_SCHEMA}.ab_test_results",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("step", "varchar not null"),
            ("variant", "varchar not null"),
            ("is_control", "boolean not null"),
            ("sent", "bigint not null"),
            ("delivered", "bigint not null"),
            ("replied", "bigint not null"),
            ("converted", "bigint not null"),
            ("metric", "varchar not null"),  # replied | converted | delivered (the campaign's ab_test.metric)
            ("rate", "double precision"),  # metric / sent; null when nothing was sent
            ("ci_low", "double precision"),  # Wilson 95% interval of rate
            ("ci_high", "double precision"),
            ("z", "double precision"),  # pooled two-proportion z against the control (> 0: better)
            ("p_value", "double precision"),  # two-sided
            # control | winner | loser | no significant difference | not enough data
            ("verdict", "varchar not null"),
            ("winner", "varchar"),  # the step's winning variant, when significant
            ("computed_at", "timestamp not null"),
        ],
        ("client_id", "campaign", "step", "variant"),
    ),
    # -- outbound webhooks (herald/webhooks) ------------------------------------------------
    # One row per client webhook subscription (client.yaml `webhooks`) Herald has seen: when it
    # started (events before are not sent), how far it has enqueued, and whether it is disabled.
    (
        f"{OPS_SCHEMA}.webhook_subscriptions",
        [
            ("subscription_id", "varchar not null"),  # md5(client|url), first 16 hex digits
            ("client_id", "varchar not null"),
            ("url", "varchar not null"),
            ("events", "varchar not null"),  # comma-separated event types
            ("created_at", "timestamp not null"),  # events from here on are sent
            ("cursor_at", "timestamp"),  # occurred_at of the latest event enqueued
            ("disabled_at", "timestamp"),  # the endpoint answered 410 Gone
            ("disabled_reason", "varchar"),
            ("updated_at", "timestamp not null"),
        ],
        ("subscription_id",),
    ),
    # One row per subscription x client event: the signed POST Herald owes the endpoint.
    (
        f"{OPS_SCHEMA}.webhook_deliveries",
        [
            ("subscription_id", "varchar not null"),
            ("event_id", "varchar not null"),  # marts.client_events.event_id = the webhook-id header
            ("client_id", "varchar not null"),
            ("event_type", "varchar not null"),
            ("occurred_at", "timestamp not null"),
            ("payload", "varchar not null"),  # the JSON body, fixed when enqueued (retries send it unchanged)
            ("status", "varchar not null"),  # pending | delivered | failed
            ("attempts", "integer not null"),
            ("next_attempt_at", "timestamp"),  # when pending: the next try (backoff)
            ("last_status_code", "integer"),
            ("last_error", "varchar"),
            ("enqueued_at", "timestamp not null"),
            ("delivered_at", "timestamp"),
            ("updated_at", "timestamp not null"),
        ],
        ("subscription_id", "event_id"),
    ),
    # One row per POST to an endpoint: what it answered and how long it took.
    (
        f"{OPS_SCHEMA}.webhook_attempts",
        [
            ("subscription_id", "varchar not null"),
            ("event_id", "varchar not null"),
            ("attempt_number", "integer not null"),
            ("url", "varchar not null"),
            ("status_code", "integer"),  # null: no answer (timeout, connection refused)
            ("error", "varchar"),
            ("duration_ms", "bigint not null"),
            ("outcome", "varchar not null"),  # delivered | retry | failed | gone
            ("attempted_at", "timestamp not null"),
        ],
        ("subscription_id", "event_id", "attempt_number"),
    ),
    # -- the portal's Inbox (herald/portal/inbox.py) ------------------------------------------
    # Staff's state of a conversation (marts.conversations): closed or reopened by hand (a new
    # message from the contact after it reopens it), and who it is assigned to.
    (
        f"{OPS_SCHEMA}.inbox_threads",
        [
            ("client_id", "varchar not null"),
            ("conversation_id", "varchar not null"),  # marts.conversations.conversation_id
            ("status", "varchar"),  # open | closed, as staff last set it; null: as the mart says
            ("status_changed_at", "timestamp"),
            ("status_changed_by", "varchar"),  # portal:<email>
            ("assigned_user_id", "varchar"),  # herald_ops.portal_users of the same client; null: nobody
            ("assigned_at", "timestamp"),
            ("assigned_by", "varchar"),
            ("updated_at", "timestamp not null"),
        ],
        ("client_id", "conversation_id"),
    ),
    # When each portal user last read each conversation (unread: the contact wrote after it).
    (
        f"{OPS_SCHEMA}.inbox_reads",
        [
            ("client_id", "varchar not null"),
            ("conversation_id", "varchar not null"),
            ("user_id", "varchar not null"),
            ("read_at", "timestamp not null"),
        ],
        ("client_id", "conversation_id", "user_id"),
    ),
    # Internal notes (never sent) and the replies sent from the Inbox (their outbox key), in the
    # conversation's timeline before dbt's next build shows the reply in marts.conversation_messages.
    (
        f"{OPS_SCHEMA}.inbox_entries",
        [
            ("entry_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("conversation_id", "varchar not null"),
            ("kind", "varchar not null"),  # note | reply
            ("author_user_id", "varchar not null"),
            ("author_email", "varchar not null"),
            ("body", "varchar not null"),
            ("message_key", "varchar"),  # a reply's herald_ops.outbox key
            ("created_at", "timestamp not null"),
        ],
        ("entry_id",),
    ),
    # A client's quick replies: sandboxed Jinja2 text with the contact's variables ({{ first_name }}).
    (
        f"{OPS_SCHEMA}.inbox_quick_replies",
        [
            ("reply_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("title", "varchar not null"),
            ("body", "varchar not null"),
            ("created_by", "varchar not null"),
            ("created_at", "timestamp not null"),
        ],
        ("reply_id",),
    ),
    # A client admin's override of client.yaml's auto_reply (read by the auto-responder): on or
    # off, and the text; the open hours stay the configuration's.
    (
        f"{OPS_SCHEMA}.auto_reply_settings",
        [
            ("client_id", "varchar not null"),
            ("enabled", "boolean not null"),
            ("text", "varchar"),  # null: the configured text
            ("updated_by", "varchar not null"),
            ("updated_at", "timestamp not null"),
        ],
        ("client_id",),
    ),
    # -- the portal's Campaigns page (herald/portal/campaigns.py; migration 0009) ------------
    # A campaign paused in the portal while its row is here: the message plan leaves its
    # messages out ('paused by <user> in the portal') and the delivery claim cancels those
    # falling due. Resuming deletes the row; the audit log keeps the history.
    (
        f"{OPS_SCHEMA}.campaign_pauses",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("paused_by", "varchar not null"),  # the portal user's email
            ("paused_at", "timestamp not null"),
        ],
        ("client_id", "campaign"),
    ),
    # A portal user's own phone (E.164): the one number a test text may go to.
    (
        f"{OPS_SCHEMA}.portal_user_phones",
        [
            ("user_id", "varchar not null"),
            ("phone", "varchar not null"),
            ("updated_at", "timestamp not null"),
        ],
        ("user_id",),
    ),
    # -- preferences (the preference center at the unsubscribe link) -----------------------
    # Each campaign's topic (campaign yaml `topic:`, one of its client's `topics:`); a campaign
    # without one has no row. A configuration table, rewritten by every configuration load.
    (
        f"{OPS_SCHEMA}.campaign_topics",
        [
            ("client_id", "varchar not null"),
            ("campaign", "varchar not null"),
            ("topic", "varchar not null"),
        ],
        ("client_id", "campaign"),
    ),
    # A contact's current preferences with a client (herald/compliance/preferences.py); no row:
    # everything on. The plan leaves out what they turn off, each with a 'preference: ...' reason.
    (
        f"{OPS_SCHEMA}.contact_preferences",
        [
            ("client_id", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("topics_off", "varchar not null"),  # comma-separated topic names ('' when none)
            ("email_off", "boolean not null"),
            ("sms_off", "boolean not null"),
            ("frequency", "varchar not null"),  # all | weekly | monthly (marketing messages per period)
            ("paused_until", "date"),  # marketing paused before this date (null: not paused)
            ("source", "varchar not null"),  # page | sms_keyword | api: the latest change's
            ("updated_at", "timestamp not null"),
        ],
        ("client_id", "contact_id"),
    ),
    # Append-only: one row per preference that changed (the current state is contact_preferences).
    (
        f"{OPS_SCHEMA}.preference_events",
        [
            ("event_id", "varchar not null"),  # the landed event's id + the field
            ("client_id", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("field", "varchar not null"),  # topic:<name> | email | sms | frequency | paused_until
            ("old_value", "varchar"),
            ("new_value", "varchar"),
            ("source", "varchar not null"),  # page | sms_keyword | api
            ("evidence", "varchar"),  # the reply's text, the page
            ("occurred_at", "timestamp not null"),
            ("recorded_at", "timestamp not null"),
        ],
        ("event_id",),
    ),
]

# What one row is, for the Python-owned tables the dbt project does not declare as sources (the
# sources' descriptions are in dbt_project/models/staging/_sources.yml); `herald tables` and
# `herald describe` show them.
TABLE_DESCRIPTIONS: dict[str, str] = {
    f"{OPS_SCHEMA}.portal_user_phones": (
        "One row per portal user who gave their own phone number (E.164) for test texts from the Campaigns page."
    ),
    f"{OPS_SCHEMA}.schema_migrations": (
        "One row per schema migration of Herald's own tables applied to this warehouse (or recorded as already "
        "made, 'stamped'): its version, name, file checksum, when and how long (herald/warehouse/migrations; "
        "`herald db status`)."
    ),
    f"{OPS_SCHEMA}.campaign_versions": (
        "One row per version of a campaign's journey the config load has seen: when it was first loaded and "
        "when a newer version replaced it (its running enrollments keep walking it)."
    ),
    f"{OPS_SCHEMA}.webhook_subscriptions": (
        "One row per client webhook subscription (client.yaml webhooks): when it started, how far its events "
        "are enqueued, and when and why it was disabled (410 Gone)."
    ),
    f"{OPS_SCHEMA}.webhook_deliveries": (
        "One row per webhook subscription and client event: the signed JSON body owed to the endpoint, its "
        "status (pending, delivered, failed), attempts and next retry."
    ),
    f"{OPS_SCHEMA}.webhook_attempts": (
        "One row per POST of a webhook delivery: the endpoint's status code or the error, the duration and the "
        "outcome (delivered, retry, failed, gone)."
    ),
    f"{OPS_SCHEMA}.operator_incidents": (
        "One row per operator incident: a failed Dagster run or too many failed or held messages across the "
        "deployment; notified once (email and/or webhook, with a link to the run), open until it recovers."
    ),
    f"{OPS_SCHEMA}.portal_users": (
        "One row per portal user (/app): email, role (operator, client_admin, staff, viewer), client, argon2 "
        "password hash, 2FA state, failed attempts and lockout, disabled or not."
    ),
    f"{OPS_SCHEMA}.portal_recovery_codes": (
        "One row per one-time 2FA recovery code of a portal user (a hash, never the code), and when it was used."
    ),
    f"{OPS_SCHEMA}.portal_reset_tokens": (
        "One row per emailed password-reset link of a portal user: when it expires and when it was used (once)."
    ),
    f"{OPS_SCHEMA}.portal_sessions": (
        "One row per signed-in portal browser (a hash of its cookie): whose, whether 2FA is done, when it expires."
    ),
    f"{OPS_SCHEMA}.provider_circuits": (
        "One row per provider account a client fails over from: its circuit breaker's state (closed, open, "
        "half_open), consecutive transient errors, when it opened and the probe under way."
    ),
    f"{OPS_SCHEMA}.staff_alerts": (
        "One row per staff-alert crossing: a client with too many failed or held messages, a low delivery rate "
        "or a provider outage in the recent window; open until it recovers, emailed once."
    ),
    f"{RAW_SCHEMA}.packet_rejects": (
        "One row per packet row that could not be landed (unreadable, not as many fields as the header, only "
        "delimiters, a required field empty), with its line number, the reason and the raw text."
    ),
    f"{OPS_SCHEMA}.privacy_requests": (
        "One row per privacy request (access export or erasure, from the CLI or the ingest API): who asked, "
        "when, the outcome and the rows per table; the person only as a salted hash (herald/privacy)."
    ),
    f"{OPS_SCHEMA}.ab_winners": (
        "One row per campaign step whose A/B test named a winner: the winning variant, which the campaign "
        "then sends to every contact. The first winner of a step stays."
    ),
    f"{ANALYTICS_SCHEMA}.ab_test_results": (
        "One row per client, campaign, A/B-tested step and variant: sent, delivered, replied and converted "
        "counts, the rate of the campaign's metric with its Wilson 95% interval, and the verdict against the "
        "control. Replaced whole on each computation."
    ),
    f"{OPS_SCHEMA}.inbox_threads": (
        "One row per conversation portal staff closed, reopened or assigned: the status they set and when, and the "
        "portal user it is assigned to (herald/portal/inbox.py)."
    ),
    f"{OPS_SCHEMA}.inbox_reads": (
        "One row per portal user and conversation: when the user last read it (unread: the contact wrote since)."
    ),
    f"{OPS_SCHEMA}.inbox_entries": (
        "One row per internal note (never sent) or reply sent from the portal's Inbox: who wrote it, the text, "
        "and a reply's outbox key."
    ),
    f"{OPS_SCHEMA}.inbox_quick_replies": (
        "One row per quick reply of a client: a title and a sandboxed template with the contact's variables."
    ),
    f"{OPS_SCHEMA}.auto_reply_settings": (
        "One row per client whose admin changed the after-hours auto-reply in the portal: on or off, and its "
        "text (null: client.yaml's); the auto-responder reads it over client.yaml's auto_reply."
    ),
    f"{OPS_SCHEMA}.contact_preferences": (
        "One row per contact who changed their preferences with a client (the preference page, an SMS keyword "
        "such as PAUSE, the API): topics off, email or texts off, marketing frequency, paused until."
    ),
    f"{OPS_SCHEMA}.preference_events": (
        "One row per preference change (append-only): which preference, old and new value, the source "
        "(page, sms_keyword, api) and when."
    ),
}

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    f"{ANALYTICS_SCHEMA}.ab_test_results": {
        "is_control": "True for the step's control variant (the one the others are compared with).",
        "sent": "Messages of the variant sent.",
        "delivered": "Of those, how many the provider reported delivered.",
        "replied": "Of those, how many the recipient replied to.",
        "converted": "Of those, how many were followed by a conversion of the contact.",
        "metric": "replied | converted | delivered: the count the campaign's A/B test judges by.",
        "rate": "metric / sent; null when nothing was sent.",
        "ci_low": "Lower bound of the Wilson 95% interval of rate.",
        "ci_high": "Upper bound of the Wilson 95% interval of rate.",
        "z": "Pooled two-proportion z against the control (> 0: better than the control).",
        "p_value": "Two-sided p-value of z.",
        "verdict": "control | winner | loser | no significant difference | not enough data.",
        "winner": "The step's winning variant, when the difference is significant.",
        "computed_at": "When the results were computed (naive UTC).",
    },
}

JSON_TYPE = {"duckdb": "json", "postgres": "jsonb"}


def ddl_statements(engine: str) -> list[str]:
    """``create schema`` / ``create table if not exists`` for every Python-owned table, as the head
    schema has it. A warehouse is made by the migrations (``Warehouse.ensure_schema``); this is for
    tests that make a few tables by hand, and to check the migrations against ``TABLES``."""
    statements = [
        f"create schema if not exists {RAW_SCHEMA}",
        f"create schema if not exists {OPS_SCHEMA}",
        f"create schema if not exists {MARTS_SCHEMA}",
        f"create schema if not exists {ANALYTICS_SCHEMA}",
    ]
    for table, columns, key in TABLES:
        cols = [f"{name} {type_.replace('JSON', JSON_TYPE[engine])}" for name, type_ in columns]
        if key:
            cols.append(f"primary key ({', '.join(key)})")
        statements.append(f"create table if not exists {table} (\n  " + ",\n  ".join(cols) + "\n)")
    if engine == "postgres":
        # DuckDB: no secondary index on columns that are updated (ART indexes turn each such
        # update into delete + insert); its zone maps serve the due-message scan.
        statements.append(f"create index if not exists outbox_due on {OPS_SCHEMA}.outbox (status, send_after)")
        statements.append(
            f"create index if not exists consent_by_address on {OPS_SCHEMA}.consent_events (client_id, address)"
        )
        statements.append(
            f"create index if not exists outbox_by_address on {OPS_SCHEMA}.outbox (client_id, to_address)"
        )
        statements.append(
            f"create index if not exists packets_client_sha on {OPS_SCHEMA}.packets (client_id, packet_type, sha256)"
        )
        statements.append(
            f"create index if not exists credit_ledger_by_client on {OPS_SCHEMA}.credit_ledger (client_id)"
        )
    return statements


def column_names(table: str) -> list[str]:
    for name, columns, _ in TABLES:
        if name == table:
            return [c for c, _ in columns]
    raise KeyError(table)
