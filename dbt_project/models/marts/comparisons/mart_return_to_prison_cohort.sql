-- Grain: one row per jurisdiction, release year and group (jurisdiction,
-- release_year, group_type, group_value): the share of a release cohort that
-- returned to prison within the publisher's follow-up window (Iowa DOC: three
-- years), from cohort-level feeds (contract v2 recidivism_cohort).
--   group_type  'all' (group_value 'all'), 'release_type', 'offence_type'
--               (null = 'not_recorded'); the groups of a type add up to 'all'.
-- Only cohorts whose follow-up has ended before the extraction date appear
-- (an immature cohort under-counts and is never published as final).
-- Disclosure, as for every recidivism figure (kpis.md):
--   cohort_size 1..disclosure_min_person_count - 1 is withheld;
--   returned and the rate are published only for a cohort of at least
--   disclosure_min_recidivism_cohort, and when neither returned nor the
--   cohort minus returned is 1..disclosure_min_person_count - 1;
--   secondary: where exactly one group of a (jurisdiction, release year, group
--   type) is withheld, the next smallest group is withheld too, so 'all'
--   minus the published groups cannot give it back.
with releases as (
    select * from {{ ref('stg_recidivism_cohort__releases') }}
    where follow_up_end < extraction_date
),

grouped as (
    select *, 'all' as group_type, 'all' as group_value from releases
    union all
    select *, 'release_type', coalesce(release_type, 'not_recorded') from releases
    union all
    select *, 'offence_type', coalesce(offence_type, 'not_recorded') from releases
),

cohorts as (
    select
        jurisdiction,
        release_year,
        group_type,
        group_value,
        min(release_period_start) as release_period_start,
        max(release_period_end) as release_period_end,
        max(follow_up_months) as follow_up_months,
        count(*) as cohort_size,
        count(*) filter (where returned) as returned
    from grouped
    group by jurisdiction, release_year, group_type, group_value
),

primary_rule as (
    select
        *,
        {{ is_small_count('cohort_size') }} as size_primary,
        cohort_size < {{ var('disclosure_min_recidivism_cohort') }}
            or {{ is_small_count('returned') }}
            or {{ is_small_count('cohort_size - returned') }} as rate_primary
    from cohorts
),

-- secondary suppression among the groups of one type (never the 'all' row)
ranked as (
    select
        *,
        count(*) filter (where size_primary) over w as size_withheld_in_type,
        count(*) filter (where rate_primary) over w as rate_withheld_in_type,
        row_number() over (
            partition by jurisdiction, release_year, group_type, size_primary
            order by cohort_size, group_value
        ) as size_rank,
        row_number() over (
            partition by jurisdiction, release_year, group_type, rate_primary
            order by cohort_size, group_value
        ) as rate_rank
    from primary_rule
    window w as (partition by jurisdiction, release_year, group_type)
),

withheld as (
    select
        *,
        size_primary or (
            group_type <> 'all' and size_withheld_in_type = 1 and not size_primary
            and size_rank = 1
        ) as size_withheld,
        rate_primary or (
            group_type <> 'all' and rate_withheld_in_type = 1 and not rate_primary
            and rate_rank = 1
        ) as rate_withheld
    from ranked
)

select
    jurisdiction,
    cast(release_year as integer) as release_year,
    group_type,
    group_value,
    release_period_start,
    release_period_end,
    cast(follow_up_months as integer) as follow_up_months,
    case when not size_withheld then cast(cohort_size as bigint) end as cohort_size,
    case when not (rate_withheld or size_withheld) then cast(returned as bigint) end
        as returned,
    case when not (rate_withheld or size_withheld) then {{ ratio('returned', 'cohort_size') }}
    end as return_to_prison_rate,
    case when size_withheld or rate_withheld then 'c' end as flag
from withheld
order by jurisdiction, release_year, group_type, group_value
