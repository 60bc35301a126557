-- Grain: one row per facility (facility_id) of the latest delivery of each
-- jurisdiction (a delivery is a full snapshot of its register).
with source as (
    select *, {{ jurisdiction('facility_id') }} as jurisdiction
    from {{ source('reference_register', 'facilities') }}
),

latest as (
    select jurisdiction, max(_delivery_seq) as _delivery_seq
    from source
    group by jurisdiction
),

ledger as (
    select delivery_seq, created_date, period_end
    from {{ ref('stg_meta__deliveries') }}
)

select
    source.facility_id,
    source.jurisdiction,
    source.name,
    source.country,
    source.subdivision,
    source.operator_level,
    source.status,
    source.capacity_places,
    source.population,
    source.reference_date,
    -- the date the figures describe: the row's, else the delivery period's end,
    -- else the sender's extraction date (figures of unstated date: "as of no later than")
    coalesce(source.reference_date, ledger.period_end, ledger.created_date) as as_of_date,
    case
        when source.reference_date is not null then 'reference_date'
        when ledger.period_end is not null then 'period_end'
        else 'extraction_date'
    end as as_of_basis,
    source._delivery_id,
    source._delivery_seq,
    source._loaded_at
from source
join latest using (jurisdiction, _delivery_seq)
join ledger on ledger.delivery_seq = source._delivery_seq
qualify row_number() over (partition by source.facility_id order by source._row desc) = 1
