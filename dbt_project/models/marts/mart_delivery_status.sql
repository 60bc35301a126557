-- Grain: one row per feed per facility for the per-facility feeds
-- (occupancy, staffing), and one row per feed (facility_id null) for the
-- feeds not per facility (facility_register, recidivism).
-- Lateness is judged against var('as_of_date') and the feed's cadence
-- (seed feed_cadence): a period is due the day after it ends; days_late
-- counts the days since the first missing period fell due.
-- status: late (a period is overdue, or nothing was ever received), closed (the
-- facility closed before as_of_date per the register, and nothing it owes is
-- missing), ok (up to date). as_of_date is the day the build judged lateness on.
with cadence as (
    select * from {{ ref('feed_cadence') }}
),

ledger as (
    select * from {{ ref('stg_meta__deliveries') }}
),

as_of as (
    select {{ as_of_date() }} as as_of_date
),

register as (
    select
        facility_id,
        min(valid_from) as first_valid_day,
        max(valid_to) as last_valid_day
    from {{ ref('int_facility_history') }}
    group by facility_id
),

received as (
    select 'occupancy' as feed, facility_id, census_date as period_start,
           _delivery_id, _delivery_seq
    from {{ ref('stg_occupancy__daily_census') }}
    union all
    select 'staffing' as feed, facility_id, month as period_start,
           _delivery_id, _delivery_seq
    from {{ ref('stg_staffing__monthly_staff') }}
),

received_per_facility as (
    select
        feed,
        facility_id,
        max(period_start) as last_period_received,
        arg_max(_delivery_id, _delivery_seq) as last_delivery_id
    from received
    group by feed, facility_id
),

-- first period the feed ever covered: nothing is expected before it
feed_coverage as (
    select feed, min(period_start) as first_period
    from received
    group by feed
),

-- every register facility, plus any facility that delivered without being registered
expected as (
    select cadence.feed, register.facility_id
    from cadence
    cross join register
    where cadence.per_facility
    union
    select feed, facility_id from received_per_facility
),

per_facility as (
    select
        expected.feed,
        cadence.cadence,
        expected.facility_id,
        received_per_facility.last_period_received,
        received_per_facility.last_delivery_id,
        register.last_valid_day,
        case cadence.cadence
            when 'daily' then coalesce(
                received_per_facility.last_period_received + 1,
                greatest(register.first_valid_day, feed_coverage.first_period)
            )
            when 'monthly' then coalesce(
                {{ add_months('received_per_facility.last_period_received', 1) }},
                cast(date_trunc('month', greatest(
                    register.first_valid_day, feed_coverage.first_period
                )) as date)
            )
        end as next_period_start
    from expected
    join cadence using (feed)
    left join received_per_facility using (feed, facility_id)
    left join register using (facility_id)
    left join feed_coverage using (feed)
),

per_facility_due as (
    select
        *,
        case cadence
            when 'daily' then next_period_start
            when 'monthly' then last_day(next_period_start)
        end + 1 as next_period_due
    from per_facility
),

per_facility_status as (
    select
        feed,
        facility_id,
        last_period_received,
        case
            when next_period_start is null then null
            -- the facility closed before the next period: nothing more is expected
            when next_period_start > coalesce(last_valid_day, date '9999-12-31') then 0
            else greatest(0, as_of.as_of_date - next_period_due)
        end as days_late,
        last_delivery_id,
        -- closed: its last register version ended before the as-of date
        coalesce(last_valid_day < as_of.as_of_date, false) as is_closed
    from per_facility_due
    cross join as_of
),

feed_deliveries as (
    select
        feed,
        max(coalesce(period_end, created_date)) as last_period_received,
        arg_max(delivery_id, delivery_seq) as last_delivery_id,
        max(created_date) as last_created_date
    from ledger
    group by feed
),

per_feed_status as (
    select
        cadence.feed,
        cast(null as varchar) as facility_id,
        feed_deliveries.last_period_received,
        case cadence.cadence
            -- yearly extraction: the next one is due a year after the last
            when 'yearly' then greatest(
                0,
                as_of.as_of_date
                - {{ add_months('feed_deliveries.last_created_date', 12) }}
            )
        end as days_late,
        feed_deliveries.last_delivery_id,
        false as is_closed
    from cadence
    cross join as_of
    left join feed_deliveries using (feed)
    where not cadence.per_facility
),

unioned as (
    select * from per_facility_status
    union all
    select * from per_feed_status
)

select
    feed,
    facility_id,
    cast(last_period_received as date) as last_period_received,
    cast(days_late as bigint) as days_late,
    last_delivery_id,
    case
        when days_late > 0 then 'late'
        -- nothing ever received where something was expected
        when days_late is null and last_delivery_id is null then 'late'
        -- closed, and nothing it owes from before its closing is missing
        when is_closed then 'closed'
        else 'ok'
    end as status,
    cast(as_of_date as date) as as_of_date
from unioned
cross join as_of
order by feed, facility_id nulls first
