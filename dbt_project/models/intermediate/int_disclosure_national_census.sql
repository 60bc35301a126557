-- Grain: one row per month per class (month, class_key) whose national
-- census values (ADP, density, occupancy in use, overcrowded and small-scale
-- shares) must be withheld, on the class row and on the 'all' row: a unit
-- that could not protect itself (see int_disclosure_days) found no partner
-- day in another facility of its (month, class, overcrowded) group.
with days as (
    select * from {{ ref('int_disclosure_days') }}
),

groups as (
    select
        month,
        class_key,
        is_overcrowded,
        bool_or(suppresses_facility_month and suppression = 'primary') as has_open_unit,
        bool_or(suppression = 'partner') as has_partner
    from days
    group by month, class_key, is_overcrowded
)

select distinct month, class_key
from groups
where has_open_unit and not has_partner
