-- Grain: one row per month per region (month, region): the regional roll-up of
-- the census KPIs of docs/kpis.md, by the region (NUTS-2, facility register) in
-- force on each facility-day. Ratios of sums over facility-days, never means of
-- rates. One grain per model: the national rows stay in mart_national_monthly.
-- Disclosure control is the last step: a region-month's census values are
-- published only when every facility-month in it publishes its own census
-- values (mart_facility_monthly), so the regional sums give nothing back that
-- is not already published; the small-scale share also needs its base
-- (average daily population) of at least disclosure_min_rate_denominator.
with days as (
    select * from {{ ref('int_facility_days') }}
),

history as (
    select facility_version_key, region from {{ ref('int_facility_history') }}
),

facility_months as (
    select * from {{ ref('int_facility_month_kpis') }}
),

withheld as (
    select facility_id, month, average_daily_population_withheld
    from {{ ref('int_disclosure_facility_months') }}
),

-- national reporting days of each month, as mart_national_monthly
census_days as (
    select month, count(distinct census_date) as census_days
    from days
    group by month
),

regional_days as (
    select days.*, history.region
    from days
    join history using (facility_version_key)
    where history.region is not null
),

sums as (
    select
        month,
        region,
        count(distinct facility_id) as facilities,
        sum(capacity_places) as capacity_place_days,
        sum(population) as population_days,
        sum(population) filter (where capacity_places is not null)
            as population_days_with_capacity,
        sum(population) filter (where scale_class = 'small') as population_days_small
    from regional_days
    group by month, region
),

-- the facility-months of each region-month and their flags and withholding
members as (
    select distinct
        regional_days.month,
        regional_days.region,
        regional_days.facility_id,
        coalesce(withheld.average_daily_population_withheld, false) as census_withheld,
        coalesce(facility_months.is_estimated, false) as is_estimated,
        coalesce(facility_months.is_provisional, false) as is_provisional
    from regional_days
    left join withheld using (facility_id, month)
    left join facility_months using (facility_id, month)
),

status as (
    select
        month,
        region,
        bool_or(census_withheld) as census_withheld,
        bool_or(is_estimated) as is_estimated,
        bool_or(is_provisional) as is_provisional
    from members
    group by month, region
),

kpis as (
    select
        sums.month,
        sums.region,
        sums.facilities,
        census_days.census_days,
        {{ ratio('sums.capacity_place_days', 'census_days.census_days') }} as capacity_places,
        {{ ratio('sums.population_days', 'census_days.census_days') }}
            as average_daily_population,
        {{ per_100('sums.population_days_with_capacity', 'sums.capacity_place_days') }}
            as density,
        {{ ratio('coalesce(sums.population_days_small, 0)', 'sums.population_days') }}
            as share_in_small_scale,
        status.census_withheld,
        status.is_estimated,
        status.is_provisional
    from sums
    join census_days using (month)
    join status using (month, region)
),

decided as (
    select
        *,
        census_withheld as census_values_withheld,
        census_withheld or {{ base_too_small('average_daily_population') }} as share_withheld
    from kpis
)

select
    month,
    region,
    cast(facilities as bigint) as facilities,
    capacity_places,
    case when not census_values_withheld then average_daily_population end
        as average_daily_population,
    case when not census_values_withheld then density end as density,
    case when not share_withheld then share_in_small_scale end as share_in_small_scale,
    {{ eurostat_flag('false',
                     '(census_values_withheld and average_daily_population is not null) '
                     'or (share_withheld and share_in_small_scale is not null)',
                     'is_estimated and not is_provisional', 'is_provisional') }} as flag,
    cast(census_days as bigint) as census_days
from decided
order by month, region
