{#- The message plan, stage 3 of 5: when each message still going may be sent — the earliest
    moment at or after it is due (or after the pass's clock, when that is later) inside the
    campaign's sending hours (its own send_window over the client's: hours, send days, closed
    days, public holidays) and the calling-hours law, in every time zone the recipient may be
    in. A message with no such moment within a week is left out (window_reason); window_reason
    is the judged reason otherwise. A message moved past a closed local day says which day and
    why (deferral_reason: 'deferred: 2026-12-25 is a holiday (Christmas Day, US)'). -#}

{#- Column comments are not written for the stages (their descriptions are in the dbt docs): a
    comment per column per stage on every pass was most of what the split cost. -#}
{{ config(pre_hook="{{ herald.jit_off() }}", persist_docs={"relation": true, "columns": false}) }}

with

judged as (
    select * from {{ ref('int_message_plan__judged') }}
),

windows as (
    select * from {{ source('herald_ops', 'campaign_send_windows') }}
),

closed_days as (
    select * from {{ source('herald_ops', 'closed_days') }}
),

legal_windows as (
    select * from {{ source('herald_ops', 'legal_windows') }}
),

regions as (
    select * from {{ source('herald_raw', 'address_regions') }}
),

-- Where each recipient is: their own time zone, else their ZIP's, else every zone of their
-- phone's area code (the window must hold in all of them), else the client's; the state (ZIP,
-- else area code) picks the state's calling-hours law, else the federal one.
recipient_zones as (
    select
        judged.message_key,
        judged.client_id,
        judged.campaign,
        coalesce(
            judged.contact_time_zone, postal.time_zones, phone.time_zones, judged.client_time_zone
        ) as zone_list,
        coalesce(postal.state, phone.state) as state
    from judged
    left join regions as postal
        on postal.kind = 'postal' and judged.postal_code = postal.address_value
    left join regions as phone
        on phone.kind = 'phone' and judged.phone = phone.address_value
    where judged.reason is null
),

recipient_zone_rows as (
    select message_key, client_id, campaign, state, {{ herald.unnest_csv('zone_list') }} as time_zone
    from recipient_zones
),

-- the window search starts at the scheduled time, or at the pass's clock when that is later: a
-- message due while no pass ran (a carried-over day, a click seen late) is sent at the next
-- allowed moment from now, never at an allowed moment already past (which would send it at once,
-- whatever the time of day)
message_times as (
    select
        recipient_zone_rows.*,
        greatest(judged.scheduled_at, clock.as_of) as scheduled_at,
        count(*) over (partition by recipient_zone_rows.message_key) as zone_count
    from recipient_zone_rows
    inner join judged on recipient_zone_rows.message_key = judged.message_key
    cross join {{ ref('int_journey__clock') }} as clock
),

day_offsets as (
    {%- for offset in range(8) %}
    select {{ offset }} as day_offset
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

-- each zone's allowed intervals for the next eight local days: the client's own hours (its
-- policy and business hours) intersected with the law of the recipient's state
local_days as (
    select
        message_times.*,
        cast({{ herald.utc_to_local('message_times.scheduled_at', 'message_times.time_zone') }} as date)
        + day_offsets.day_offset as local_day
    from message_times
    cross join day_offsets
),

-- each local day open or closed: a dated closure (a holiday, a client-listed closed day) or a
-- weekday that is not a send day, with the reason a deferred message gives
day_calendar as (
    select
        local_days.*,
        windows.start_minute,
        windows.end_minute,
        case
            when closed_days.closed_on is not null
                then cast(local_days.local_day as varchar) || ' is ' || closed_days.reason
            when windows.closed_reason is not null
                then cast(local_days.local_day as varchar) || ' is ' || windows.closed_reason
        end as closed_reason
    from local_days
    inner join windows
        on local_days.client_id = windows.client_id
        and local_days.campaign = windows.campaign
        and windows.iso_day_of_week = {{ herald.iso_day_of_week('local_days.local_day') }}
    left join closed_days
        on local_days.client_id = closed_days.client_id
        and local_days.campaign = closed_days.campaign
        and local_days.local_day = closed_days.closed_on
),

zone_intervals as (
    select
        day_calendar.message_key,
        day_calendar.time_zone,
        day_calendar.zone_count,
        day_calendar.scheduled_at,
        {{ herald.local_to_utc(
            "cast(day_calendar.local_day as timestamp)"
            ~ " + greatest(day_calendar.start_minute, coalesce(state_law.start_minute, federal_law.start_minute))"
            ~ " * interval '1 minute'",
            'day_calendar.time_zone'
        ) }} as opens_at,
        {{ herald.local_to_utc(
            "cast(day_calendar.local_day as timestamp)"
            ~ " + least(day_calendar.end_minute, coalesce(state_law.end_minute, federal_law.end_minute))"
            ~ " * interval '1 minute'",
            'day_calendar.time_zone'
        ) }} as closes_at
    from day_calendar
    inner join legal_windows as federal_law
        on federal_law.jurisdiction = 'US'
        and federal_law.iso_day_of_week = {{ herald.iso_day_of_week('day_calendar.local_day') }}
    left join legal_windows as state_law
        on day_calendar.state = state_law.jurisdiction
        and state_law.iso_day_of_week = {{ herald.iso_day_of_week('day_calendar.local_day') }}
    where day_calendar.closed_reason is null
        and greatest(day_calendar.start_minute, coalesce(state_law.start_minute, federal_law.start_minute))
        < least(day_calendar.end_minute, coalesce(state_law.end_minute, federal_law.end_minute))
),

-- the earliest moment at or after the scheduled time that is inside an interval of every zone:
-- it is the scheduled time itself or the opening of some zone's interval
candidate_moments as (
    select distinct message_key, zone_count, scheduled_at as moment from zone_intervals
    union
    select distinct message_key, zone_count, opens_at as moment
    from zone_intervals
    where opens_at > scheduled_at
),

open_zones as (
    select
        candidate_moments.message_key,
        candidate_moments.moment,
        candidate_moments.zone_count,
        count(distinct zone_intervals.time_zone) as zones_open
    from candidate_moments
    inner join zone_intervals
        on candidate_moments.message_key = zone_intervals.message_key
        and candidate_moments.moment >= zone_intervals.opens_at
        and candidate_moments.moment < zone_intervals.closes_at
    group by candidate_moments.message_key, candidate_moments.moment, candidate_moments.zone_count
),

allowed as (
    select message_key, min(moment) as window_send_after
    from open_zones
    where zones_open = zone_count
    group by message_key
),

-- the first closed local day a deferred message was moved past (before the local day it goes on)
calendar_deferrals as (
    select
        day_calendar.message_key,
        day_calendar.closed_reason,
        row_number() over (
            partition by day_calendar.message_key order by day_calendar.local_day, day_calendar.closed_reason
        ) as day_rank
    from day_calendar
    inner join allowed on day_calendar.message_key = allowed.message_key
    where day_calendar.closed_reason is not null
        and day_calendar.local_day
        < cast({{ herald.utc_to_local('allowed.window_send_after', 'day_calendar.time_zone') }} as date)
),

final as (
    select
        judged.message_key,
        judged.client_id,
        judged.campaign,
        judged.step,
        judged.step_position,
        judged.config_version,
        judged.occurrence,
        judged.enrollment_id,
        judged.hop,
        judged.entered_at,
        judged.contact_id,
        judged.message_type,
        judged.category,
        judged.campaign_status,
        judged.daily_limit,
        judged.sms_consent,
        judged.first_channel,
        judged.fallback_channel,
        judged.fallback_if_missing,
        judged.anchor_field,
        judged.anchor_value,
        judged.client_time_zone,
        judged.contact_time_zone,
        judged.postal_code,
        judged.phone,
        judged.email,
        judged.channel,
        judged.to_address,
        judged.fired_at,
        judged.scheduled_at,
        judged.variant_bucket,
        judged.suppression_reason,
        judged.has_consent,
        judged.exclusion,
        judged.reason,
        allowed.window_send_after as send_after,
        cast({{ herald.utc_to_local('allowed.window_send_after', 'judged.client_time_zone') }} as date)
            as local_send_date,
        case
            when judged.reason is null and allowed.window_send_after is null
                then 'no allowed sending time within a week'
            else judged.reason
        end as window_reason,
        case
            when allowed.window_send_after > judged.scheduled_at then 'deferred: ' || calendar_deferrals.closed_reason
        end as deferral_reason
    from judged
    left join allowed on judged.message_key = allowed.message_key
    left join calendar_deferrals
        on judged.message_key = calendar_deferrals.message_key
        and calendar_deferrals.day_rank = 1
)

select * from final
