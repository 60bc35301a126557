-- Grain: one row per facility per census date (facility_id, census_date),
-- with the register version in force on that date (capacity, type, class).
{{ period_model_config() }}
with census as (
    select * from {{ ref('stg_occupancy__daily_census') }}
    where {{ in_incremental_months('census_date') }}
),

history as (
    select * from {{ ref('int_facility_history') }}
),

joined as (
    select
        census.facility_id,
        census.census_date,
        cast(date_trunc('month', census.census_date) as date) as month,
        history.facility_version_key,
        history.facility_type,
        history.security_level,
        history.community_integrated,
        history.scale_class,
        history.is_small_optimal,
        history.is_detention_house,
        history.capacity_places,
        history.operational_capacity,
        coalesce(census.census_date = history.valid_from and history.is_series_break, false)
            as is_series_break,
        census.places_out_of_use,
        census.population,
        census.population_female,
        census.population_remand,
        census.population_under_18,
        census.population_18_22,
        census.admissions,
        census.releases
    from census
    left join history
        on history.facility_id = census.facility_id
       and census.census_date between history.valid_from and history.valid_to
),

rates as (
    select
        *,
        -- null without a register capacity (greatest would skip the null), and
        -- when places out of use are unknown (contract v3): never taken as 0
        case when capacity_places is not null and places_out_of_use is not null then
            greatest(capacity_places - places_out_of_use, 0)
        end as places_in_use,
        -- SPACE I: inmates per 100 places
        {{ per_100('population', 'capacity_places') }} as density,
        -- E&W / DJI: population per 100 places in use
        {{ per_100('population', 'greatest(capacity_places - places_out_of_use, 0)') }}
            as occupancy_in_use
    from joined
)

select
    facility_id,
    census_date,
    month,
    facility_version_key,
    facility_type,
    security_level,
    community_integrated,
    scale_class,
    is_small_optimal,
    is_detention_house,
    capacity_places,
    operational_capacity,
    is_series_break,
    places_out_of_use,
    places_in_use,
    population,
    population_female,
    population_remand,
    population_under_18,
    population_18_22,
    admissions,
    releases,
    density,
    occupancy_in_use,
    {{ overcrowding_tier('density') }} as overcrowding_tier
from rates
