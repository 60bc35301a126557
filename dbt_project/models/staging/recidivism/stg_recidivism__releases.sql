-- Grain: one row per release (release_id); the row of the latest delivery wins.
with source as (
    select * from {{ source('recidivism', 'releases') }}
)

select
    release_id,
    person_pseudonym,
    release_date,
    facility_id,
    days_in_small_scale,
    sex,
    birth_year,
    index_offence,
    prior_convictions,
    sentence_days,
    _delivery_id,
    _delivery_seq,
    _loaded_at
from source
qualify row_number() over (
    partition by release_id order by _delivery_seq desc, _row desc
) = 1
