-- Grain: one row per month per scale class: 'small', 'medium', 'large' (the
-- facility-DAYS grouped by the class in force that day) and 'all' (every
-- facility-day of the month). Rates are ratios of sums, never means of rates.
with days as (
    select * from {{ ref('int_facility_days') }}
),

months as (
    select * from {{ ref('int_facility_months') }}
),

-- national reporting days of each month (distinct census dates)
census_days as (
    select month, count(distinct census_date) as census_days
    from days
    group by month
),

grouped_days as (
    select *, scale_class as group_class from days where scale_class is not null
    union all
    select *, 'all' as group_class from days
),

day_sums as (
    select
        month,
        group_class,
        count(distinct facility_id) as facilities,
        sum(capacity_places) as capacity_place_days,
        sum(population) as population_days,
        sum(population) filter (where capacity_places is not null)
            as population_days_with_capacity,
        sum(population) filter (where density > {{ var('overcrowding_over') }})
            as population_days_overcrowded,
        sum(population) filter (where scale_class = 'small') as population_days_small,
        sum(population_under_18) as under_18_days,
        sum(population_under_18) filter (where scale_class = 'small') as under_18_days_small,
        sum(population_18_22) as age_18_22_days,
        sum(population_18_22) filter (where scale_class = 'small') as age_18_22_days_small,
        sum(population_female) as female_days,
        sum(population_female) filter (where scale_class = 'small') as female_days_small
    from grouped_days
    group by month, group_class
),

-- staffing is monthly: facility-months grouped by their monthly class
grouped_months as (
    select *, scale_class as group_class from months where scale_class is not null
    union all
    select *, 'all' as group_class from months
),

staff_sums as (
    select
        month,
        group_class,
        sum(avg_population) filter (where custodial_fte is not null) as avg_population_staffed,
        sum(custodial_fte) filter (where avg_population is not null) as custodial_fte
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
    -- extra column (allowed by published.md): monthly staffing, by monthly class
    {{ ratio('staff_sums.avg_population_staffed', 'staff_sums.custodial_fte') }}
        as detainees_per_custodial_fte,
    cast(null as varchar) as flag
from day_sums
join census_days using (month)
left join staff_sums
    on staff_sums.month = day_sums.month
   and staff_sums.group_class = day_sums.group_class
order by
    day_sums.month,
    case day_sums.group_class
        when 'small' then 1 when 'medium' then 2 when 'large' then 3 else 4
    end
