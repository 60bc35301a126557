-- Grain: one row per facility per validity interval (facility_id, valid_from),
-- from the LATEST register delivery only (each delivery is a full snapshot).
with source as (
    select * from {{ source('facility_register', 'facilities') }}
),

latest_delivery as (
    select max(_delivery_seq) as _delivery_seq from source
)

select
    source.facility_id,
    source.name,
    source.region,
    source.facility_type,
    source.security_level,
    source.capacity_places,
    source.operational_capacity,
    source.living_group_size,
    source.community_integrated,
    source.valid_from,
    source.valid_to,
    source._delivery_id,
    source._delivery_seq,
    source._loaded_at
from source
join latest_delivery using (_delivery_seq)
-- a delivery holds each key once (ingestion checks it); keep the last row defensively
qualify row_number() over (
    partition by source.facility_id, source.valid_from order by source._row desc
) = 1
