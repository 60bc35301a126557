-- Grain: one row per facility per month (facility_id, month); month is the
-- DATE of the first day of the month; the row of the latest delivery wins.
with source as (
    select * from {{ source('occupancy', 'regime') }}
)

select
    facility_id,
    {{ month_to_date('month') }} as month,
    cast(avg_population as decimal(18, 4)) as avg_population,
    in_paid_work,
    in_education,
    with_digital_contact,
    cast(avg_hours_out_of_cell as decimal(18, 4)) as avg_hours_out_of_cell,
    releases_total,
    releases_with_plan,
    _delivery_id,
    _delivery_seq,
    _loaded_at
from source
qualify row_number() over (
    partition by facility_id, month order by _delivery_seq desc, _row desc
) = 1
