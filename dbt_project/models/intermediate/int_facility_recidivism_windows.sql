-- Grain: one row per facility per pooled window (facility_id, last_cohort_year):
-- the mature release cohort years from last_cohort_year -
-- (recidivism_facility_pool_years - 1) to last_cohort_year pooled (disjoint
-- windows ending at the latest mature year), as the WODC
-- Recidivism Monitor compares institutions, with the facility's releases and
-- two-year general reoffenders and the national figures of the same years (the
-- target of the funnel plot). Releases from int_release_outcomes (facility of
-- final discharge); only mature cohort years (their follow-up has elapsed).
{%- set pool = var('recidivism_facility_pool_years') %}
with releases as (
    select * from {{ ref('int_release_outcomes') }}
    -- persons, as the cohorts: each person's first release in the year (WODC, UK MoJ)
    where is_cohort_mature and is_cohort_member
),

years as (
    select distinct cohort_year from releases
),

-- disjoint windows of `pool` years ending at the latest mature year (and every
-- `pool` years before it): overlapping windows would give single years back by
-- differencing. The earliest window may hold fewer mature years.
windows as (
    select
        cast(
            latest.cohort_year
            - {{ pool }} * floor((latest.cohort_year - years.cohort_year) / {{ pool }})
            as integer
        ) as last_cohort_year,
        years.cohort_year
    from years
    cross join (select max(cohort_year) as cohort_year from years) as latest
),

pooled as (
    select windows.last_cohort_year, releases.*
    from windows
    join releases using (cohort_year)
),

national as (
    select
        last_cohort_year,
        cast(min(cohort_year) as integer) as first_cohort_year,
        cast(count(distinct cohort_year) as integer) as cohort_years,
        cast(count(*) as bigint) as national_releases,
        cast(count(*) filter (where recid_2y_general) as bigint) as national_reoffenders
    from pooled
    group by last_cohort_year
),

facilities as (
    select
        facility_id,
        last_cohort_year,
        cast(count(*) as bigint) as releases,
        cast(count(*) filter (where recid_2y_general) as bigint) as reoffenders,
        -- type and class in force at the facility's latest release of the window
        arg_max(facility_type, release_date) as facility_type,
        arg_max(scale_class, release_date) as scale_class
    from pooled
    group by facility_id, last_cohort_year
)

select
    facilities.facility_id,
    facilities.last_cohort_year,
    national.first_cohort_year,
    national.cohort_years,
    facilities.facility_type,
    facilities.scale_class,
    facilities.releases,
    facilities.reoffenders,
    {{ ratio('facilities.reoffenders', 'facilities.releases') }} as observed_rate,
    national.national_releases,
    national.national_reoffenders,
    {{ ratio('national.national_reoffenders', 'national.national_releases') }}
        as national_rate
from facilities
join national using (last_cohort_year)
