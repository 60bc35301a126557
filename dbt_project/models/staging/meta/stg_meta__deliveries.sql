-- Grain: one row per loaded delivery (delivery_seq).
with source as (
    select * from {{ source('meta', 'deliveries') }}
)

select
    delivery_seq,
    feed,
    delivery_id,
    sender,
    created_at,
    cast(created_at as date) as created_date,
    period_start,
    period_end,
    replaces,
    rows_loaded,
    loaded_at
from source
