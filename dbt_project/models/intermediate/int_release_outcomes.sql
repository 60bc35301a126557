-- Grain: one row per release (release_id), with the register attributes of
-- the facility of final discharge on the release date, the attribution by
-- days in small-scale custody, and the reoffending outcomes judged against
-- the recidivism extraction date (cohort maturity included).
-- is_cohort_member: the release is the person's first in its calendar year (WODC,
-- UK MoJ: a release cohort counts offenders, not releases), by the person's
-- pseudonym (the clear person_ref never reaches the warehouse).
{%- set general_months = var('recidivism_general_window_months') %}
{%- set general_waiting = var('recidivism_general_waiting_months') %}
{%- set proven_months = var('recidivism_proven_window_months') %}
{%- set waiting_months = var('recidivism_proven_waiting_months') %}
with releases as (
    select * from {{ ref('stg_recidivism__releases') }}
),

reconvictions as (
    select * from {{ ref('stg_recidivism__reconvictions') }}
),

history as (
    select * from {{ ref('int_facility_history') }}
),

-- Extraction date = created_at of the latest original recidivism extraction
-- (a correcting delivery, with `replaces`, does not extend the follow-up).
extraction as (
    select
        coalesce(
            max(created_date) filter (where replaces is null),
            max(created_date)
        ) as extraction_date
    from {{ ref('stg_meta__deliveries') }}
    where feed = 'recidivism'
),

windows as (
    select
        releases.*,
        extraction.extraction_date,
        {{ add_months('releases.release_date', general_months) }} as general_window_end,
        {{ add_months('releases.release_date', general_months + general_waiting) }}
            as general_conviction_deadline,
        {{ add_months('releases.release_date', proven_months) }} as proven_window_end,
        {{ add_months('releases.release_date', proven_months + waiting_months) }}
            as proven_conviction_deadline
    from releases
    cross join extraction
),

-- New offences after the release (offences predating or on the release day
-- never count), convicted no later than the extraction date.
reoffences as (
    select
        windows.release_id,
        reconvictions.offence_date,
        reconvictions.conviction_date,
        reconvictions.custodial,
        reconvictions.offence_date <= windows.general_window_end
            and reconvictions.conviction_date <= windows.general_conviction_deadline
            as in_general_window,
        reconvictions.offence_date <= windows.proven_window_end
            and reconvictions.conviction_date <= windows.proven_conviction_deadline
            as is_proven_1y
    from windows
    join reconvictions
        on reconvictions.person_pseudonym = windows.person_pseudonym
       and reconvictions.offence_date > windows.release_date
       and reconvictions.conviction_date <= windows.extraction_date
),

outcomes as (
    select
        release_id,
        bool_or(in_general_window) as recid_2y_general,
        bool_or(in_general_window and coalesce(custodial, false)) as recid_2y_custodial,
        count(*) filter (where is_proven_1y) as proven_reoffences_1y
    from reoffences
    group by release_id
)

select
    windows.release_id,
    windows.person_pseudonym,
    windows.release_date,
    cast(year(windows.release_date) as integer) as cohort_year,
    -- (a release without a pseudonym cannot be linked to another: its own member)
    windows.person_pseudonym is null or row_number() over (
        partition by windows.person_pseudonym, year(windows.release_date)
        order by windows.release_date, windows.release_id
    ) = 1 as is_cohort_member,
    windows.facility_id,
    history.facility_version_key,
    history.facility_type,
    history.scale_class,
    history.is_detention_house,
    windows.days_in_small_scale,
    -- share of the sentence spent in small-scale units (sentence length stands in
    -- for time in custody: the feed has no release-on-licence date)
    -- (least / greatest skip nulls in DuckDB: guard the null share explicitly)
    case when windows.days_in_small_scale is not null and windows.sentence_days > 0 then
        least({{ ratio('windows.days_in_small_scale', 'windows.sentence_days') }}, 1.0)
    end as small_scale_days_share,
    case
        when windows.days_in_small_scale is null or windows.sentence_days is null then null
        when windows.days_in_small_scale = 0 then 'none'
        when {{ ratio('windows.days_in_small_scale', 'windows.sentence_days') }}
             >= {{ var('recidivism_small_scale_days_majority') }} then 'majority'
        else 'minority'
    end as small_scale_days_group,
    windows.sex,
    windows.birth_year,
    -- only the birth year is delivered: age in completed calendar years
    cast(year(windows.release_date) - windows.birth_year as integer) as age_at_release,
    windows.index_offence,
    windows.prior_convictions,
    windows.sentence_days,
    windows.extraction_date,
    windows.general_window_end,
    windows.general_conviction_deadline,
    windows.proven_window_end,
    windows.proven_conviction_deadline,
    coalesce(windows.general_conviction_deadline < windows.extraction_date, false)
        as is_general_window_elapsed,
    coalesce(windows.proven_conviction_deadline < windows.extraction_date, false)
        as is_proven_window_elapsed,
    -- the whole cohort year is mature when its last possible release (31 December)
    -- has had the window plus waiting period before the extraction date
    coalesce(
        {{ add_months('make_date(year(windows.release_date), 12, 31)',
                      general_months + general_waiting) }} < windows.extraction_date,
        false
    ) as is_cohort_mature,
    coalesce(
        {{ add_months('make_date(year(windows.release_date), 12, 31)',
                      proven_months + waiting_months) }} < windows.extraction_date,
        false
    ) as is_cohort_proven_mature,
    coalesce(outcomes.recid_2y_general, false) as recid_2y_general,
    coalesce(outcomes.recid_2y_custodial, false) as recid_2y_custodial,
    coalesce(outcomes.proven_reoffences_1y, 0) > 0 as proven_reoffending_1y,
    cast(coalesce(outcomes.proven_reoffences_1y, 0) as bigint) as proven_reoffences_1y
from windows
left join outcomes using (release_id)
left join history
    on history.facility_id = windows.facility_id
   and windows.release_date between history.valid_from and history.valid_to
