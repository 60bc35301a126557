-- Grain: one row per facility per month (facility_id, month): every
-- facility-month KPI before disclosure control, with the person counts
-- behind each rate (its base and, where it counts persons, its numerator)
-- that disclosure control judges. Rates are ratios of the month's sums.
with months as (
    select * from {{ ref('int_facility_months') }}
),

national_census as (
    -- the last census day delivered by any facility: a later month is still open
    select max(census_date) as last_census_date from {{ ref('int_facility_days') }}
),

kpis as (
    select
        months.*,
        -- BJS: mean of the daily population over the reported days
        {{ ratio('population_days', 'nullif(days_reported, 0)') }} as average_daily_population,
        -- p: the month is not fully delivered yet (no census day at its end)
        coalesce(last_day(months.month) > national_census.last_census_date, true)
            as is_provisional
    from months
    cross join national_census
)

select
    facility_id,
    month,
    facility_type,
    scale_class,
    is_detention_house,
    is_small_optimal,
    days_in_month,
    register_days,
    days_reported,
    -- conditions (census sums)
    average_daily_population,
    -- SPACE I, ratio of sums: sum(population) / sum(capacity in force each day) x 100
    {{ per_100('population_days_with_capacity', 'capacity_place_days') }} as density,
    -- E&W / DJI: sum(population) / sum(places in use each day) x 100
    {{ per_100('population_days_with_places_in_use', 'places_in_use_days') }}
        as occupancy_in_use,
    -- DJI: place-days out of use / place-days
    {{ ratio('places_out_of_use_days', 'capacity_place_days') }} as out_of_use_share,
    -- BJS: (admissions + releases) / average daily population
    {{ ratio('admissions + releases', 'average_daily_population') }} as turnover,
    -- SPACE I flow method: days x ADP / releases = population-days / releases
    {{ ratio('population_days', 'releases') }} as avg_length_of_stay_days,
    -- staff and regime (regime census avg_population as kpis.md specifies)
    {{ ratio('avg_population', 'custodial_fte') }} as detainees_per_custodial_fte,
    {{ per_100('rehab_fte', 'avg_population') }} as rehab_staff_per_100,
    {{ ratio('vacancies_fte', 'fte_with_vacancies_reported + vacancies_fte') }} as vacancy_rate,
    {{ ratio('trained_last_24m', 'headcount_with_training_reported') }} as staff_trained_share,
    {{ ratio('in_paid_work', 'avg_population') }} as work_participation,
    {{ ratio('in_education', 'avg_population') }} as education_participation,
    {{ ratio('with_digital_contact', 'avg_population') }} as digital_contact_share,
    {{ ratio('releases_with_plan', 'releases_total') }} as release_plan_coverage,
    -- sums behind the rates (bases and numerators), for disclosure control and roll-ups
    population_days,
    capacity_place_days,
    admissions,
    releases,
    avg_population,
    custodial_fte,
    rehab_fte,
    fte_with_vacancies_reported + vacancies_fte as staff_fte_with_vacancies,
    headcount_with_training_reported,
    trained_last_24m,
    in_paid_work,
    in_education,
    with_digital_contact,
    releases_total,
    releases_with_plan,
    -- Eurostat flags other than c
    is_provisional,
    -- e: a closed month with census days missing while the facility was on the
    -- register: ADP and the census rates are estimated from the reported days
    days_reported > 0 and days_reported < register_days and not is_provisional
        as is_estimated,
    -- b: the facility's type or scale class changed in the month
    has_series_break as is_series_break,
    -- m: a KPI is empty because an input the sender declared unknown (contract v3)
    -- is needed for it: occupancy in use and out-of-use share (places out of use),
    -- turnover (admissions, releases) and length of stay (releases)
    has_out_of_use_unknown as is_out_of_use_missing,
    has_flow_unknown as is_flow_missing,
    has_out_of_use_unknown or has_flow_unknown as is_missing
from kpis
