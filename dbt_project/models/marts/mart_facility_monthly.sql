-- Grain: one row per facility per month (facility_id, month).
-- Every rate is a ratio of the month's sums (never a mean of daily rates).
with months as (
    select * from {{ ref('int_facility_months') }}
),

adp as (
    select
        *,
        -- BJS: mean of the daily population over the reported days
        {{ ratio('population_days', 'nullif(days_reported, 0)') }} as average_daily_population
    from months
)

select
    facility_id,
    month,
    facility_type,
    scale_class,
    is_detention_house,
    average_daily_population,
    -- SPACE I, ratio of sums: sum(population) / sum(capacity in force each day) x 100
    {{ per_100('population_days_with_capacity', 'capacity_place_days') }} as density,
    -- BJS: (admissions + releases) / average daily population
    {{ ratio('admissions + releases', 'average_daily_population') }} as turnover,
    -- SPACE I flow method: days x ADP / releases; days x ADP = population-days
    {{ ratio('population_days', 'releases') }} as avg_length_of_stay_days,
    {{ ratio('avg_population', 'custodial_fte') }} as detainees_per_custodial_fte,
    {{ per_100('rehab_fte', 'avg_population') }} as rehab_staff_per_100,
    {{ ratio('vacancies_fte', 'fte_with_vacancies_reported + vacancies_fte') }} as vacancy_rate,
    {{ ratio('trained_last_24m', 'headcount_with_training_reported') }} as staff_trained_share,
    {{ ratio('in_paid_work', 'avg_population') }} as work_participation,
    {{ ratio('in_education', 'avg_population') }} as education_participation,
    {{ ratio('with_digital_contact', 'avg_population') }} as digital_contact_share,
    {{ ratio('releases_with_plan', 'releases_total') }} as release_plan_coverage,
    cast(null as varchar) as flag
from adp
order by facility_id, month
