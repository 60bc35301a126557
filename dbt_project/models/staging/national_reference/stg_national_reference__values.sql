-- Grain: one row per published cell (dataset, indicator, unit, geo, frequency,
-- period) of the latest delivery of each dataset.
with source as (
    select * from {{ source('national_reference', 'values') }}
),

latest as (
    select dataset, max(_delivery_seq) as _delivery_seq
    from source
    group by dataset
)

select
    source.dataset,
    source.indicator,
    source.unit,
    source.geo,
    source.frequency,
    source.period,
    source.value,
    source.flag,
    source._delivery_id,
    source._delivery_seq,
    source._loaded_at
from source
join latest using (dataset, _delivery_seq)
qualify row_number() over (
    partition by source.dataset, source.indicator, source.unit, source.geo,
        source.frequency, source.period
    order by source._row desc
) = 1
