-- Grain: one row per facility per census date (facility_id, census_date):
-- whether the day's population (and everything derived from it: density,
-- occupancy in use, overcrowding tier) is withheld, and why.
--
-- Published totals over facility-days: the facility-month ADP (margin F, per
-- facility and month), the national class-month and all-month ADP (margins C
-- and A), and the population of overcrowded facility-days in
-- share_in_overcrowded (margin O). Each is a sum over whole PROTECTION UNITS
-- U = (facility, month, class in force that day, overcrowded that day), so
-- the cells of a unit are interchangeable in every published equation.
--   primary    population 1..disclosure_min_person_count - 1;
--   secondary  in every unit with a primary, one more day: the unit's
--              smallest positive population that is not primary. The
--              unit's suppressed sum then exceeds any primary by at least
--              disclosure_min_person_count, so no primary can be pinned;
--   open       a unit with a primary and no other positive day cannot
--              protect itself: its facility-month census values are
--              withheld (suppresses_facility_month) and a PARTNER day is
--              withheld in another facility of the same (month, class,
--              overcrowded) group, whose facility-month census values are
--              withheld too. Without any partner, the national class-month
--              and all-month census values are withheld
--              (int_disclosure_national_census).
-- Zero is never withheld (an empty facility identifies nobody).
{%- set min_count = var('disclosure_min_person_count') %}
{{ period_model_config() }}
with days as (
    select
        facility_id,
        census_date,
        month,
        coalesce(scale_class, 'unknown') as class_key,
        coalesce(density > {{ var('overcrowding_over') }}, false) as is_overcrowded,
        population,
        coalesce(population > 0 and population < {{ min_count }}, false) as is_primary
    from {{ ref('int_facility_days') }}
    where {{ in_incremental_months('month') }}
),

units as (
    select
        facility_id,
        month,
        class_key,
        is_overcrowded,
        count(*) filter (where is_primary) as primaries,
        count(*) filter (where not is_primary and population > 0) as candidates
    from days
    group by facility_id, month, class_key, is_overcrowded
),

unit_secondary as (
    select days.facility_id, days.census_date
    from days
    join units using (facility_id, month, class_key, is_overcrowded)
    where units.primaries > 0 and not days.is_primary and days.population > 0
    qualify row_number() over (
        partition by days.facility_id, days.month, days.class_key, days.is_overcrowded
        order by days.population, days.census_date
    ) = 1
),

open_units as (
    select facility_id, month, class_key, is_overcrowded
    from units
    where primaries > 0 and candidates = 0
),

-- for each (month, class, overcrowded) group with an open unit: one partner day
-- of another facility, not withheld yet, the smallest positive population
partner as (
    select days.facility_id, days.census_date, days.month
    from days
    join (select distinct month, class_key, is_overcrowded from open_units) as groups
        using (month, class_key, is_overcrowded)
    where days.population > 0
      and not days.is_primary
      and not exists (
          select 1 from open_units
          where open_units.facility_id = days.facility_id and open_units.month = days.month
      )
      and not exists (
          select 1 from unit_secondary
          where unit_secondary.facility_id = days.facility_id
            and unit_secondary.census_date = days.census_date
      )
    qualify row_number() over (
        partition by days.month, days.class_key, days.is_overcrowded
        order by days.population, days.facility_id, days.census_date
    ) = 1
)

select
    days.facility_id,
    days.census_date,
    days.month,
    days.class_key,
    days.is_overcrowded,
    days.is_primary
        or unit_secondary.census_date is not null
        or partner.census_date is not null as is_suppressed,
    case
        when days.is_primary then 'primary'
        when unit_secondary.census_date is not null then 'secondary'
        when partner.census_date is not null then 'partner'
    end as suppression,
    -- the facility-month's census values (ADP, density, ...) must be withheld too
    open_units.facility_id is not null or partner.census_date is not null
        as suppresses_facility_month
from days
left join unit_secondary
    on unit_secondary.facility_id = days.facility_id
   and unit_secondary.census_date = days.census_date
left join partner
    on partner.facility_id = days.facility_id
   and partner.census_date = days.census_date
left join open_units
    on open_units.facility_id = days.facility_id
   and open_units.month = days.month
   and open_units.class_key = days.class_key
   and open_units.is_overcrowded = days.is_overcrowded
   and days.is_primary
