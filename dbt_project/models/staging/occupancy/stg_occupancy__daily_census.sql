-- Grain: one row per facility per census date (facility_id, census_date);
-- the row of the latest delivery wins (corrections supersede).
with source as (
    select * from {{ source('occupancy', 'occupancy') }}
)

select
    facility_id,
    census_date,
    places_out_of_use,
    population,
    population_female,
    population_remand,
    population_under_18,
    population_18_22,
    admissions,
    releases,
    _delivery_id,
    _delivery_seq,
    _loaded_at
from source
qualify row_number() over (
    partition by facility_id, census_date order by _delivery_seq desc, _row desc
) = 1
