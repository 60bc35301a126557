-- Grain: one row per facility per census date (facility_id, census_date).
select
    facility_id,
    census_date,
    facility_type,
    scale_class,
    cast(capacity_places as bigint) as capacity_places,
    cast(places_out_of_use as bigint) as places_out_of_use,
    cast(population as bigint) as population,
    density,
    occupancy_in_use,
    overcrowding_tier,
    -- disclosure control (later issue) fills this with Eurostat letters
    cast(null as varchar) as flag
from {{ ref('int_facility_days') }}
order by facility_id, census_date
