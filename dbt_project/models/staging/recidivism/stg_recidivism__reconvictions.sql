-- Grain: one row per person per case (person_pseudonym, case_id); the row of
-- the latest delivery wins.
with source as (
    select * from {{ source('recidivism', 'reconvictions') }}
)

select
    case_id,
    person_pseudonym,
    offence_date,
    conviction_date,
    offence,
    custodial,
    _delivery_id,
    _delivery_seq,
    _loaded_at
from source
qualify row_number() over (
    partition by person_pseudonym, case_id order by _delivery_seq desc, _row desc
) = 1
