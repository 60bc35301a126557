-- Grain: one row per mature release cohort year per group (cohort_year,
-- group_type, group_value); group_type 'scale_class' or 'facility_type' of
-- the facility of final discharge on the release date, or
-- 'small_scale_days' (attribution by the share of the sentence spent in
-- small-scale units). Only cohorts whose window plus waiting period has
-- fully elapsed before the extraction date appear (int_release_outcomes).
-- Disclosure control is the last step; within each (cohort_year,
-- group_type) the groups add up to the national cohort, so:
--   cohort_size: 1..disclosure_min_person_count - 1 withheld, plus the
--       smallest other group of the partition (always one more);
--   rates, O/E, adjusted rate and interval: withheld below
--       disclosure_min_recidivism_cohort; where exactly one group of a
--       partition is withheld, the smallest other group is too; where the
--       withheld groups' reoffenders would then be all or none of them, one
--       more group is withheld;
--   reoffences_per_reoffender_1y: also withheld below
--       disclosure_min_rate_denominator proven reoffenders (paired likewise);
--   standardised rate and interval: withheld with the group's rates;
--   differences from the reference group (observed and standardised): also
--       withheld when the reference group's rates are (the difference and the
--       published group figure would give the reference figure away).
-- The cohort counts persons (first release in the year), see int_release_outcomes.
{%- set min_cohort = var('disclosure_min_recidivism_cohort') %}
with groups as (
    select * from {{ ref('int_recidivism_groups') }}
),

primaries as (
    select
        *,
        {{ is_small_count('cohort_size') }} as size_primary,
        coalesce(cohort_size < {{ min_cohort }}, false) as rates_primary,
        true as rates_contributes,
        cohort_size as rates_base,
        coalesce(cohort_size < {{ min_cohort }}, false)
            or {{ base_too_small('proven_reoffenders_1y') }} as frequency_primary,
        reoffences_per_reoffender_1y is not null as frequency_contributes,
        proven_reoffenders_1y as frequency_base
    from groups
),

-- sizes: one more group in every partition with a withheld size
size_secondary as (
    select cohort_year, group_type, group_value
    from (
        select
            *,
            bool_or(size_primary) over (partition by cohort_year, group_type) as any_primary
        from primaries
    )
    where any_primary and not size_primary
    qualify row_number() over (
        partition by cohort_year, group_type order by cohort_size, group_value
    ) = 1
),

rates_secondary as (
    {{ pair_keys('primaries', 'rates', ['cohort_year', 'group_type'],
                 ['cohort_year', 'group_type', 'group_value']) }}
),

rates_first as (
    select
        primaries.*,
        primaries.rates_primary or rates_secondary.group_value is not null as rates_withheld_1
    from primaries
    left join rates_secondary using (cohort_year, group_type, group_value)
),

-- all or none of the withheld groups' people reoffended (any measure): one more group
rates_extreme as (
    select cohort_year, group_type
    from rates_first
    where rates_withheld_1
    group by cohort_year, group_type
    having sum(reoffenders_2y_general) in (0, sum(cohort_size))
        or sum(reoffenders_2y_custodial) in (0, sum(cohort_size))
        or (bool_and(is_proven_mature)
            and sum(proven_reoffenders_1y) in (0, sum(cohort_size)))
),

rates_third as (
    select rates_first.cohort_year, rates_first.group_type, rates_first.group_value
    from rates_first
    join rates_extreme using (cohort_year, group_type)
    where not rates_first.rates_withheld_1
    qualify row_number() over (
        partition by rates_first.cohort_year, rates_first.group_type
        order by rates_first.cohort_size, rates_first.group_value
    ) = 1
),

frequency_secondary as (
    {{ pair_keys('primaries', 'frequency', ['cohort_year', 'group_type'],
                 ['cohort_year', 'group_type', 'group_value']) }}
),

decided as (
    select
        rates_first.*,
        rates_first.size_primary or size_secondary.group_value is not null as size_withheld,
        rates_first.rates_withheld_1 or rates_third.group_value is not null as rates_withheld,
        rates_first.frequency_primary
            or frequency_secondary.group_value is not null
            or rates_first.rates_withheld_1
            or rates_third.group_value is not null as frequency_withheld
    from rates_first
    left join size_secondary using (cohort_year, group_type, group_value)
    left join rates_third using (cohort_year, group_type, group_value)
    left join frequency_secondary using (cohort_year, group_type, group_value)
),

-- differences from the reference group: withheld when either side's rates are
with_reference as (
    select
        decided.*,
        decided.rates_withheld or coalesce(reference.rates_withheld, true)
            as difference_withheld
    from decided
    left join decided as reference
        on reference.cohort_year = decided.cohort_year
       and reference.group_type = decided.group_type
       and reference.group_value = decided.reference_group
)

select
    cohort_year,
    group_type,
    group_value,
    case when not size_withheld then cohort_size end as cohort_size,
    case when not rates_withheld then recid_2y_general end as recid_2y_general,
    case when not rates_withheld then recid_2y_custodial end as recid_2y_custodial,
    case when not rates_withheld then proven_reoffending_1y end as proven_reoffending_1y,
    case when not rates_withheld then observed_expected end as observed_expected,
    case when not rates_withheld then adjusted_rate end as adjusted_rate,
    case when not rates_withheld then ci_low end as ci_low,
    case when not rates_withheld then ci_high end as ci_high,
    {{ eurostat_flag('false', 'size_withheld or rates_withheld or (frequency_withheld and '
                     'reoffences_per_reoffender_1y is not null)', 'false', 'false') }} as flag,
    -- added after interface v1
    case when not frequency_withheld then reoffences_per_reoffender_1y end
        as reoffences_per_reoffender_1y,
    case when not rates_withheld then observed_expected_se end as observed_expected_se,
    national_rate,
    -- added with issue 13: comparable people (marginal standardisation)
    reference_group,
    case when not difference_withheld then observed_difference end as observed_difference,
    case when not rates_withheld then standardised_rate end as standardised_rate,
    case when not rates_withheld then standardised_rate_se end as standardised_rate_se,
    case when not rates_withheld then standardised_ci_low end as standardised_ci_low,
    case when not rates_withheld then standardised_ci_high end as standardised_ci_high,
    case when not difference_withheld then standardised_difference end
        as standardised_difference,
    case when not difference_withheld then standardised_difference_se end
        as standardised_difference_se,
    case when not difference_withheld then standardised_difference_ci_low end
        as standardised_difference_ci_low,
    case when not difference_withheld then standardised_difference_ci_high end
        as standardised_difference_ci_high
from with_reference
order by cohort_year, group_type, group_value
