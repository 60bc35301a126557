-- Grain: one row per release cohort year per group (cohort_year, group_type,
-- group_value); group_type 'scale_class' or 'facility_type' of the facility
-- of final discharge on the release date. Only cohorts whose general
-- follow-up window has fully elapsed before the extraction date appear.
{%- set general_months = var('recidivism_general_window_months') %}
{%- set proven_months = var('recidivism_proven_window_months') %}
{%- set waiting_months = var('recidivism_proven_waiting_months') %}
with outcomes as (
    select * from {{ ref('int_release_outcomes') }}
),

grouped as (
    select *, 'scale_class' as group_type, coalesce(scale_class, 'unknown') as group_value
    from outcomes
    union all
    select *, 'facility_type' as group_type, coalesce(facility_type, 'unknown') as group_value
    from outcomes
),

cohorts as (
    select
        cohort_year,
        group_type,
        group_value,
        max(extraction_date) as extraction_date,
        -- the last release of the cohort year is on 31 December
        {{ add_months('make_date(cohort_year, 12, 31)', general_months) }}
            as general_window_end,
        {{ add_months('make_date(cohort_year, 12, 31)', proven_months + waiting_months) }}
            as proven_conviction_deadline,
        count(*) as cohort_size,
        count(*) filter (where recid_2y_general) as reoffenders_2y_general,
        count(*) filter (where recid_2y_custodial) as reoffenders_2y_custodial,
        count(*) filter (where proven_reoffending_1y) as proven_reoffenders_1y
    from grouped
    group by cohort_year, group_type, group_value
)

select
    cast(cohort_year as integer) as cohort_year,
    group_type,
    group_value,
    cast(cohort_size as bigint) as cohort_size,
    {{ ratio('reoffenders_2y_general', 'cohort_size') }} as recid_2y_general,
    {{ ratio('reoffenders_2y_custodial', 'cohort_size') }} as recid_2y_custodial,
    case when proven_conviction_deadline < extraction_date then
        {{ ratio('proven_reoffenders_1y', 'cohort_size') }}
    end as proven_reoffending_1y,
    -- risk model (WODC O/E, 95 % CI) comes in a later issue
    cast(null as double) as observed_expected,
    cast(null as double) as adjusted_rate,
    cast(null as double) as ci_low,
    cast(null as double) as ci_high,
    cast(null as varchar) as flag
from cohorts
where general_window_end < extraction_date
order by cohort_year, group_type, group_value
