-- Grain: one row per mature release cohort year per group (cohort_year,
-- group_type, group_value), before disclosure control. The cohort counts
-- persons: a person's first release in the year (is_cohort_member; WODC, UK
-- MoJ). Three attributions:
-- group_type 'scale_class' and 'facility_type' of the facility of final
-- discharge on the release date ('unknown' when the register has no row for
-- it), and 'small_scale_days' (none / minority / majority of the sentence in
-- small-scale units). Observed reoffenders O, expected E from the risk model
-- (int_recidivism_expected), O/E with its standard error, and the adjusted
-- rate = O/E x national rate of the cohort year with a 95 % interval (kept for
-- interface v1; biased toward the national rate, see docs/kpis.md). The
-- comparison figures for comparable people: the risk-standardised rate and its
-- difference from the reference group (int_recidivism_standardised) with 95 %
-- intervals, and the observed (raw) difference from the reference group.
{%- set z = var('recidivism_ci_z') %}
with outcomes as (
    select
        outcomes.*,
        expected.expected_2y_general
    from {{ ref('int_release_outcomes') }} as outcomes
    left join {{ ref('int_recidivism_expected') }} as expected using (release_id)
    where outcomes.is_cohort_mature and outcomes.is_cohort_member
),

grouped as (
    select *, 'scale_class' as group_type, coalesce(scale_class, 'unknown') as group_value
    from outcomes
    union all
    select *, 'facility_type' as group_type, coalesce(facility_type, 'unknown') as group_value
    from outcomes
    union all
    select *, 'small_scale_days' as group_type,
           coalesce(small_scale_days_group, 'unknown') as group_value
    from outcomes
),

national as (
    select
        cohort_year,
        count(*) as national_size,
        count(*) filter (where recid_2y_general) as national_reoffenders
    from outcomes
    group by cohort_year
),

groups as (
    select
        cohort_year,
        group_type,
        group_value,
        count(*) as cohort_size,
        count(*) filter (where recid_2y_general) as reoffenders_2y_general,
        count(*) filter (where recid_2y_custodial) as reoffenders_2y_custodial,
        count(*) filter (where proven_reoffending_1y) as proven_reoffenders_1y,
        sum(proven_reoffences_1y) as proven_reoffences_1y,
        bool_and(is_cohort_proven_mature) as is_proven_mature,
        count(expected_2y_general) as modelled,
        -- summed as decimals: exact, so the result does not depend on the order in
        -- which parallel threads add the rows (rebuilds give the same last bit)
        cast(sum(cast(expected_2y_general as decimal(18, 15))) as double)
            as expected_2y_general,
        -- Var(O) given the covariates: sum of p(1 - p) over the group's releases
        cast(sum(cast(expected_2y_general * (1 - expected_2y_general) as decimal(18, 15)))
            as double) as expected_variance
    from grouped
    group by cohort_year, group_type, group_value
),

ratios as (
    select
        groups.*,
        {{ ratio('national.national_reoffenders', 'national.national_size') }} as national_rate,
        case when groups.modelled = groups.cohort_size then
            {{ ratio('groups.reoffenders_2y_general', 'groups.expected_2y_general') }}
        end as observed_expected,
        case when groups.modelled = groups.cohort_size then
            {{ ratio('sqrt(groups.expected_variance)', 'groups.expected_2y_general') }}
        end as observed_expected_se
    from groups
    join national using (cohort_year)
),

standardised as (
    select * from {{ ref('int_recidivism_standardised') }}
),

with_reference as (
    select
        ratios.*,
        standardised.reference_group,
        standardised.standardised_rate,
        standardised.standardised_rate_se,
        standardised.standardised_difference,
        standardised.standardised_difference_se,
        reference.cohort_size as reference_size,
        reference.reoffenders_2y_general as reference_reoffenders
    from ratios
    left join standardised using (cohort_year, group_type, group_value)
    left join ratios as reference
        on reference.cohort_year = ratios.cohort_year
       and reference.group_type = ratios.group_type
       and reference.group_value = standardised.reference_group
)

select
    cast(cohort_year as integer) as cohort_year,
    group_type,
    group_value,
    cast(cohort_size as bigint) as cohort_size,
    cast(reoffenders_2y_general as bigint) as reoffenders_2y_general,
    cast(reoffenders_2y_custodial as bigint) as reoffenders_2y_custodial,
    cast(proven_reoffenders_1y as bigint) as proven_reoffenders_1y,
    cast(proven_reoffences_1y as bigint) as proven_reoffences_1y,
    is_proven_mature,
    -- WODC two-year general and custodial prevalence
    {{ ratio('reoffenders_2y_general', 'cohort_size') }} as recid_2y_general,
    {{ ratio('reoffenders_2y_custodial', 'cohort_size') }} as recid_2y_custodial,
    -- UK MoJ proven reoffending: binary rate and reoffences per reoffender
    case when is_proven_mature then {{ ratio('proven_reoffenders_1y', 'cohort_size') }} end
        as proven_reoffending_1y,
    case when is_proven_mature then
        {{ ratio('proven_reoffences_1y', 'proven_reoffenders_1y') }}
    end as reoffences_per_reoffender_1y,
    cast(expected_2y_general as double) as expected_2y_general,
    national_rate,
    observed_expected,
    observed_expected_se,
    -- greatest / least skip nulls in DuckDB: no model, no adjusted rate
    case when observed_expected is not null then
        least(observed_expected * national_rate, 1.0)
    end as adjusted_rate,
    case when observed_expected is not null then
        greatest(observed_expected - {{ z }} * observed_expected_se, 0) * national_rate
    end as ci_low,
    case when observed_expected is not null then
        least((observed_expected + {{ z }} * observed_expected_se) * national_rate, 1.0)
    end as ci_high,
    -- comparable people: marginal standardisation (int_recidivism_standardised)
    reference_group,
    {{ ratio('reoffenders_2y_general', 'cohort_size') }}
        - {{ ratio('reference_reoffenders', 'reference_size') }} as observed_difference,
    standardised_rate,
    standardised_rate_se,
    case when standardised_rate is not null then
        greatest(standardised_rate - {{ z }} * standardised_rate_se, 0.0)
    end as standardised_ci_low,
    case when standardised_rate is not null then
        least(standardised_rate + {{ z }} * standardised_rate_se, 1.0)
    end as standardised_ci_high,
    standardised_difference,
    standardised_difference_se,
    case when standardised_difference is not null then
        greatest(standardised_difference - {{ z }} * standardised_difference_se, -1.0)
    end as standardised_difference_ci_low,
    case when standardised_difference is not null then
        least(standardised_difference + {{ z }} * standardised_difference_se, 1.0)
    end as standardised_difference_ci_high
from with_reference
