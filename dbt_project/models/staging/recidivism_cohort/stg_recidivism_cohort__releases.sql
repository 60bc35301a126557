-- Grain: one row per release (jurisdiction, record_no) of the latest delivery
-- of each jurisdiction. Equal rows are different releases: nothing is deduplicated.
with source as (
    select * from {{ source('recidivism_cohort', 'releases') }}
),

latest as (
    select jurisdiction, max(_delivery_seq) as _delivery_seq
    from source
    group by jurisdiction
),

ledger as (
    select delivery_seq, created_date
    from {{ ref('stg_meta__deliveries') }}
)

select
    source.jurisdiction,
    source.record_no,
    source.release_year,
    source.release_period_start,
    source.release_period_end,
    source.follow_up_months,
    {{ add_months('source.release_period_end', 'source.follow_up_months') }}
        as follow_up_end,
    -- the sender's extraction date: a cohort is final once its follow-up has ended before it
    ledger.created_date as extraction_date,
    source.release_type,
    source.release_type_label,
    source.supervising_district,
    source.race,
    source.ethnicity,
    source.age_band,
    source.sex,
    source.offence_class,
    source.offence_type,
    source.offence_subtype,
    source.target_population,
    source.returned,
    source.days_to_return,
    source.return_type,
    source.new_offence_class,
    source.new_offence_type,
    source.new_offence_subtype,
    source._delivery_id,
    source._delivery_seq,
    source._loaded_at
from source
join latest using (jurisdiction, _delivery_seq)
join ledger on ledger.delivery_seq = source._delivery_seq
