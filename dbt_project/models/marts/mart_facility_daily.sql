-- Grain: one row per facility per census date (facility_id, census_date).
-- Disclosure control is the last step: where int_disclosure_days withholds
-- the day, its population and everything derived from it (density,
-- occupancy in use, overcrowding tier) are empty and flagged c.
{{ period_model_config(unique_key='census_date') }}
with days as (
    select * from {{ ref('int_facility_days') }}
    where {{ in_incremental_months('month') }}
),

disclosure as (
    select * from {{ ref('int_disclosure_days') }}
    where {{ in_incremental_months('month') }}
)

select
    days.facility_id,
    days.census_date,
    days.facility_type,
    days.scale_class,
    cast(days.capacity_places as bigint) as capacity_places,
    cast(days.places_out_of_use as bigint) as places_out_of_use,
    case when not disclosure.is_suppressed then cast(days.population as bigint) end
        as population,
    case when not disclosure.is_suppressed then days.density end as density,
    case when not disclosure.is_suppressed then days.occupancy_in_use end as occupancy_in_use,
    case when not disclosure.is_suppressed then days.overcrowding_tier end as overcrowding_tier,
    -- b: first day of a register version with another type or scale class
    -- m: places out of use unknown (contract v3): it and occupancy in use are empty
    {{ eurostat_flag('days.is_series_break', 'disclosure.is_suppressed', 'false', 'false',
                     'days.places_out_of_use is null') }}
        as flag
from days
join disclosure using (facility_id, census_date)
order by days.facility_id, days.census_date
