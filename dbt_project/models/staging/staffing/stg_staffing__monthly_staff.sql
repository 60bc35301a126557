-- Grain: one row per facility per month per staff category
-- (facility_id, month, staff_category); the row of the latest delivery wins.
with source as (
    select * from {{ source('staffing', 'staffing') }}
)

select
    facility_id,
    {{ month_to_date('month') }} as month,
    staff_category,
    cast(fte as decimal(18, 4)) as fte,
    headcount,
    cast(vacancies_fte as decimal(18, 4)) as vacancies_fte,
    trained_last_24m,
    _delivery_id,
    _delivery_seq,
    _loaded_at
from source
qualify row_number() over (
    partition by facility_id, month, staff_category order by _delivery_seq desc, _row desc
) = 1
