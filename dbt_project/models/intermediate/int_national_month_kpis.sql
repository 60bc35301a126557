-- Grain: one row per month per scale class (month, scale_class): 'small',
-- 'medium', 'large' (the facility-DAYS grouped by the class in force that
-- day; staffing and regime: the facility-MONTHS by their monthly class),
-- 'small_optimal' (the subset of 'small' of 8..25 places, RESCALED's optimal
-- size: an overlapping breakdown) and 'all' (every facility-day /
-- facility-month). National KPIs before
-- disclosure control, with the average daily person counts behind each rate.
-- Rates are ratios of sums, never means of rates.
with days as (
    select * from {{ ref('int_facility_days') }}
),

months as (
    select * from {{ ref('int_facility_months') }}
),

facility_month_kpis as (
    select * from {{ ref('int_facility_month_kpis') }}
),

-- national reporting days of each month (distinct census dates)
census_days as (
    select month, count(distinct census_date) as census_days
    from days
    group by month
),

national_census as (
    select max(census_date) as last_census_date from days
),

-- 'small_optimal' (RESCALED 8..25 places) is a subset of 'small': an extra,
-- overlapping breakdown, never a part of the 'all' total besides 'small'
grouped_days as (
    select *, scale_class as group_class from days where scale_class is not null
    union all
    select *, 'small_optimal' as group_class from days where is_small_optimal
    union all
    select *, 'all' as group_class from days
),

day_sums as (
    select
        month,
        group_class,
        count(distinct facility_id) as facilities,
        sum(capacity_places) as capacity_place_days,
        -- unknown on any facility-day (contract v3): unknown, never a partial sum
        {{ known_sum('places_out_of_use', 'places_out_of_use') }} as places_out_of_use_days,
        {{ known_sum('places_in_use', 'places_out_of_use') }} as places_in_use_days,
        sum(population) as population_days,
        sum(population) filter (where capacity_places is not null)
            as population_days_with_capacity,
        {{ known_sum('population', 'places_out_of_use', 'places_in_use is not null') }}
            as population_days_with_places_in_use,
        sum(population) filter (where density > {{ var('overcrowding_over') }})
            as population_days_overcrowded,
        sum(population) filter (where scale_class = 'small') as population_days_small,
        {{ known_sum('population_under_18', 'population_under_18') }} as under_18_days,
        {{ known_sum('population_under_18', 'population_under_18', "scale_class = 'small'") }}
            as under_18_days_small,
        {{ known_sum('population_18_22', 'population_18_22') }} as age_18_22_days,
        {{ known_sum('population_18_22', 'population_18_22', "scale_class = 'small'") }}
            as age_18_22_days_small,
        {{ known_sum('population_female', 'population_female') }} as female_days,
        {{ known_sum('population_female', 'population_female', "scale_class = 'small'") }}
            as female_days_small,
        -- m: inputs of published KPIs that a sender declared unknown (contract v3)
        bool_or(places_out_of_use is null) as any_out_of_use_unknown,
        bool_or(population_female is null or population_under_18 is null
                or population_18_22 is null) as any_group_unknown
    from grouped_days
    group by month, group_class
),

-- coverage: facility-days delivered / facility-days expected, where a facility
-- is expected on every national census date of the month on which a version of
-- it is on the register (by that version's class)
census_dates as (
    select distinct month, census_date from days
),

expected_days as (
    select
        census_dates.month,
        history.scale_class,
        coalesce(history.is_small_optimal, false) as is_small_optimal
    from census_dates
    join {{ ref('int_facility_history') }} as history
        on census_dates.census_date between history.valid_from and history.valid_to
),

grouped_expected as (
    select month, scale_class as group_class from expected_days where scale_class is not null
    union all
    select month, 'small_optimal' as group_class from expected_days where is_small_optimal
    union all
    select month, 'all' as group_class from expected_days
),

coverage as (
    select expected.month, expected.group_class, expected.expected_days,
           coalesce(present.present_days, 0) as present_days
    from (
        select month, group_class, count(*) as expected_days
        from grouped_expected group by month, group_class
    ) as expected
    left join (
        select month, group_class, count(*) as present_days
        from grouped_days
        where facility_version_key is not null
        group by month, group_class
    ) as present using (month, group_class)
),

-- a facility changed scale class during the month: the class series has a break
class_moves as (
    select distinct month, scale_class as group_class
    from days
    where is_series_break and scale_class is not null
    union
    select distinct days.month, previous.scale_class
    from days
    join {{ ref('int_facility_history') }} as previous
        on previous.facility_id = days.facility_id
       and previous.valid_to = days.census_date - 1
    where days.is_series_break and previous.scale_class is not null
    union
    -- a facility moved into or out of the optimal size range (8..25 places)
    select distinct days.month, 'small_optimal'
    from days
    join {{ ref('int_facility_history') }} as previous
        on previous.facility_id = days.facility_id
       and previous.valid_to = days.census_date - 1
    where coalesce(previous.is_small_optimal, false) <> coalesce(days.is_small_optimal, false)
),

-- facility-months missing census days (estimated) or not yet closed (provisional)
month_status as (
    select
        month,
        coalesce(scale_class, 'unknown') as group_class,
        bool_or(is_estimated) as any_estimated
    from facility_month_kpis
    group by all
    union all
    select month, 'small_optimal' as group_class, bool_or(is_estimated) as any_estimated
    from facility_month_kpis
    where is_small_optimal
    group by month
    union all
    select month, 'all' as group_class, bool_or(is_estimated) as any_estimated
    from facility_month_kpis
    group by month
),

-- staffing and regime are monthly: facility-months grouped by their monthly class
grouped_months as (
    select *, scale_class as group_class from months where scale_class is not null
    union all
    select *, 'small_optimal' as group_class from months where is_small_optimal
    union all
    select *, 'all' as group_class from months
),

staff_sums as (
    select
        month,
        group_class,
        -- each ratio over the facility-months that report both its parts
        sum(avg_population) filter (where custodial_fte is not null) as custodial_avg_population,
        sum(custodial_fte) filter (where avg_population is not null) as custodial_fte,
        sum(avg_population) filter (where rehab_fte is not null) as rehab_avg_population,
        sum(rehab_fte) filter (where avg_population is not null) as rehab_fte,
        sum(avg_population) filter (where in_paid_work is not null) as work_avg_population,
        sum(in_paid_work) filter (where avg_population is not null) as in_paid_work,
        sum(avg_population) filter (where in_education is not null) as education_avg_population,
        sum(in_education) filter (where avg_population is not null) as in_education,
        sum(avg_population) filter (where with_digital_contact is not null)
            as digital_avg_population,
        sum(with_digital_contact) filter (where avg_population is not null)
            as with_digital_contact,
        sum(releases_total) filter (where releases_with_plan is not null) as releases_total,
        sum(releases_with_plan) filter (where releases_total is not null) as releases_with_plan
    from grouped_months
    group by month, group_class
)

select
    day_sums.month,
    day_sums.group_class as scale_class,
    cast(day_sums.facilities as bigint) as facilities,
    -- average daily capacity: place-days / national reporting days of the month
    {{ ratio('day_sums.capacity_place_days', 'census_days.census_days') }} as capacity_places,
    {{ ratio('day_sums.population_days', 'census_days.census_days') }}
        as average_daily_population,
    {{ per_100('day_sums.population_days_with_capacity', 'day_sums.capacity_place_days') }}
        as density,
    {{ per_100('day_sums.population_days_with_places_in_use', 'day_sums.places_in_use_days') }}
        as occupancy_in_use,
    {{ ratio('day_sums.places_out_of_use_days', 'day_sums.capacity_place_days') }}
        as out_of_use_share,
    {{ ratio('coalesce(day_sums.population_days_overcrowded, 0)', 'day_sums.population_days') }}
        as share_in_overcrowded,
    -- small-scale shares are defined over all facilities: 'all' row only
    case when day_sums.group_class = 'all' then
        {{ ratio('coalesce(day_sums.population_days_small, 0)', 'day_sums.population_days') }}
    end as share_in_small_scale,
    case when day_sums.group_class = 'all' then
        {{ ratio('coalesce(day_sums.under_18_days_small, 0)', 'day_sums.under_18_days') }}
    end as vulnerable_in_small_scale_under_18,
    case when day_sums.group_class = 'all' then
        {{ ratio('coalesce(day_sums.age_18_22_days_small, 0)', 'day_sums.age_18_22_days') }}
    end as vulnerable_in_small_scale_18_22,
    case when day_sums.group_class = 'all' then
        {{ ratio('coalesce(day_sums.female_days_small, 0)', 'day_sums.female_days') }}
    end as vulnerable_in_small_scale_female,
    -- staff and regime: ratios of sums over facility-months, by monthly class
    {{ ratio('staff_sums.custodial_avg_population', 'staff_sums.custodial_fte') }}
        as detainees_per_custodial_fte,
    {{ per_100('staff_sums.rehab_fte', 'staff_sums.rehab_avg_population') }}
        as rehab_staff_per_100,
    {{ ratio('staff_sums.in_paid_work', 'staff_sums.work_avg_population') }}
        as work_participation,
    {{ ratio('staff_sums.in_education', 'staff_sums.education_avg_population') }}
        as education_participation,
    {{ ratio('staff_sums.with_digital_contact', 'staff_sums.digital_avg_population') }}
        as digital_contact_share,
    {{ ratio('staff_sums.releases_with_plan', 'staff_sums.releases_total') }}
        as release_plan_coverage,
    cast(staff_sums.custodial_fte as double) as custodial_fte,
    cast(staff_sums.rehab_fte as double) as rehab_fte,
    -- average daily person counts behind the census rates (disclosure control)
    cast(census_days.census_days as bigint) as census_days,
    {{ ratio('day_sums.population_days_overcrowded', 'census_days.census_days') }}
        as avg_overcrowded_population,
    {{ ratio('day_sums.population_days_small', 'census_days.census_days') }}
        as avg_small_scale_population,
    {{ ratio('day_sums.under_18_days', 'census_days.census_days') }} as avg_under_18,
    {{ ratio('day_sums.under_18_days_small', 'census_days.census_days') }}
        as avg_under_18_small,
    {{ ratio('day_sums.age_18_22_days', 'census_days.census_days') }} as avg_18_22,
    {{ ratio('day_sums.age_18_22_days_small', 'census_days.census_days') }}
        as avg_18_22_small,
    {{ ratio('day_sums.female_days', 'census_days.census_days') }} as avg_female,
    {{ ratio('day_sums.female_days_small', 'census_days.census_days') }} as avg_female_small,
    -- persons behind the staff and regime rates
    cast(staff_sums.custodial_avg_population as double) as custodial_avg_population,
    cast(staff_sums.rehab_avg_population as double) as rehab_avg_population,
    cast(staff_sums.work_avg_population as double) as work_avg_population,
    cast(staff_sums.education_avg_population as double) as education_avg_population,
    cast(staff_sums.digital_avg_population as double) as digital_avg_population,
    cast(staff_sums.in_paid_work as double) as in_paid_work,
    cast(staff_sums.in_education as double) as in_education,
    cast(staff_sums.with_digital_contact as double) as with_digital_contact,
    cast(staff_sums.releases_total as double) as releases_total,
    cast(staff_sums.releases_with_plan as double) as releases_with_plan,
    -- Eurostat flags other than c
    coalesce(last_day(day_sums.month) > national_census.last_census_date, true)
        as is_provisional,
    coalesce(month_status.any_estimated, false)
        and not coalesce(last_day(day_sums.month) > national_census.last_census_date, true)
        as is_estimated,
    class_moves.group_class is not null and day_sums.group_class <> 'all' as is_series_break,
    -- share of the expected facility-days delivered (docs/kpis.md, "Coverage")
    {{ ratio('coverage.present_days', 'coverage.expected_days') }} as coverage,
    -- u: a closed month whose sums miss expected facility-days: published as they
    -- are (no imputation), with their coverage, as of low reliability
    coalesce(coverage.present_days < coverage.expected_days, false)
        and not coalesce(last_day(day_sums.month) > national_census.last_census_date, true)
        as is_low_reliability,
    -- m: occupancy in use, out-of-use share or (on the 'all' row) a vulnerable-group
    -- share is empty because an input is unknown (contract v3)
    day_sums.any_out_of_use_unknown
        or (day_sums.group_class = 'all' and day_sums.any_group_unknown) as is_missing
from day_sums
join census_days using (month)
cross join national_census
left join staff_sums
    on staff_sums.month = day_sums.month
   and staff_sums.group_class = day_sums.group_class
left join month_status
    on month_status.month = day_sums.month
   and month_status.group_class = day_sums.group_class
left join coverage
    on coverage.month = day_sums.month
   and coverage.group_class = day_sums.group_class
left join (select distinct month, group_class from class_moves) as class_moves
    on class_moves.month = day_sums.month
   and class_moves.group_class = day_sums.group_class
