-- Grain: one row per facility per pooled window of mature release cohort years
-- (facility_id, last_cohort_year): two-year general reoffending of the releases
-- from the facility (facility of final discharge), pooled over up to
-- recidivism_facility_pool_years cohort years (WODC Recidivism Monitor), read
-- against funnel-plot control limits around the national rate of the same
-- cohorts (Spiegelhalter 2005; int_facility_recidivism_funnel). Windows are
-- disjoint blocks ending at the latest mature cohort year.
-- Disclosure control in the warehouse (the publication's is the publisher's
-- disclosure step, over linked tables: docs/kpis.md); within a window the
-- facilities add up to the national cohort, so:
--   releases (and the limits, which give it back): withheld at
--       1..disclosure_min_person_count - 1 releases; where exactly one facility
--       of a window (or of a window's facility type or scale class, which
--       mart_recidivism_cohort totals) is withheld, the smallest other one is
--       too (one pass);
--   reoffenders, observed rate, outside_95, outside_998: withheld below
--       disclosure_min_recidivism_cohort or disclosure_min_rate_denominator
--       releases, or when the reoffenders or the non-reoffenders are
--       1..disclosure_min_person_count - 1 persons; paired likewise.
{%- set min_cohort = var('disclosure_min_recidivism_cohort') %}
{%- set min_rate = var('disclosure_min_rate_denominator') %}
with funnel as (
    select * from {{ ref('int_facility_recidivism_funnel') }}
),

primaries as (
    select
        *,
        {{ is_small_count('releases') }} as size_primary,
        true as size_contributes,
        releases as size_base,
        (
            coalesce(releases < {{ min_cohort }}, false)
            or coalesce(releases < {{ min_rate }}, false)
            or {{ is_small_count('reoffenders') }}
            or {{ is_small_count('releases - reoffenders') }}
        ) as rates_primary,
        true as rates_contributes,
        releases as rates_base
    from funnel
),

{#- the facilities of a window add up to the national cohort, and to the
    facility-type and scale-class groups mart_recidivism_cohort publishes year
    by year: pair within each of these partitions -#}
{%- set partitions = [['last_cohort_year'], ['last_cohort_year', 'facility_type'],
                      ['last_cohort_year', 'scale_class']] %}
{%- for kind in ['size', 'rates'] %}
{{ kind }}_secondary as (
    {%- for partition in partitions %}
    select * from (
        {{ pair_keys('primaries', kind, partition, ['facility_id', 'last_cohort_year']) }}
    )
    {%- if not loop.last %}
    union
    {%- endif %}
    {%- endfor %}
),
{% endfor %}

decided as (
    select
        primaries.*,
        primaries.size_primary or size_secondary.facility_id is not null as size_withheld,
        primaries.rates_primary or rates_secondary.facility_id is not null
            or primaries.size_primary or size_secondary.facility_id is not null
            as rates_withheld
    from primaries
    left join size_secondary
        on size_secondary.facility_id = primaries.facility_id
       and size_secondary.last_cohort_year = primaries.last_cohort_year
    left join rates_secondary
        on rates_secondary.facility_id = primaries.facility_id
       and rates_secondary.last_cohort_year = primaries.last_cohort_year
)

select
    facility_id,
    last_cohort_year,
    first_cohort_year,
    cohort_years,
    facility_type,
    scale_class,
    case when not size_withheld then releases end as releases,
    case when not rates_withheld then reoffenders end as reoffenders,
    case when not rates_withheld then observed_rate end as observed_rate,
    national_rate,
    case when not size_withheld then limit_95_low end as limit_95_low,
    case when not size_withheld then limit_95_high end as limit_95_high,
    case when not size_withheld then limit_998_low end as limit_998_low,
    case when not size_withheld then limit_998_high end as limit_998_high,
    case when not rates_withheld then outside_95 end as outside_95,
    case when not rates_withheld then outside_998 end as outside_998,
    {{ eurostat_flag('false', 'size_withheld or rates_withheld', 'false', 'false') }} as flag
from decided
order by last_cohort_year, facility_id
