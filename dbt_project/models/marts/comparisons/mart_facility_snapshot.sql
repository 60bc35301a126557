-- Grain: one row per facility per month (facility_id, month): the facility's
-- month-end snapshot (its last census of the month) with out-of-use share and
-- staffing ratios on that day. Disclosure: where mart_facility_daily withholds
-- the day (int_disclosure_days), population and everything derived from it
-- (density, occupancy in use, detainees per staff) are empty and flagged c.
-- A detainee ratio is population / staff, both published here, so it is
-- withheld exactly when the population is.
with snapshot as (
    select * from {{ ref('int_facility_month_end') }}
),

withheld as (
    select *, is_suppressed as population_withheld
    from snapshot
)

select
    jurisdiction,
    facility_id,
    month,
    census_date,
    facility_type,
    scale_class,
    cast(capacity_places as bigint) as capacity_places,
    cast(operational_capacity as bigint) as operational_capacity,
    cast(places_out_of_use as bigint) as places_out_of_use,
    case when not population_withheld then cast(population as bigint) end as population,
    case when not population_withheld then density end as density,
    case when not population_withheld then occupancy_in_use end as occupancy_in_use,
    -- DJI: places out of use / capacity (places, not persons: never withheld)
    {{ ratio('places_out_of_use', 'capacity_places') }} as out_of_use_share,
    custodial_fte,
    custodial_vacancies_fte,
    education_fte,
    staff_fte,
    staff_vacancies_fte,
    case when not population_withheld then {{ ratio('population', 'custodial_fte') }} end
        as detainees_per_custodial_fte,
    case when not population_withheld then {{ ratio('population', 'education_fte') }} end
        as detainees_per_education_fte,
    {{ ratio('custodial_vacancies_fte', 'custodial_fte_with_vacancies + custodial_vacancies_fte') }}
        as custodial_vacancy_rate,
    {{ ratio('staff_vacancies_fte', 'staff_fte_with_vacancies + staff_vacancies_fte') }}
        as staff_vacancy_rate,
    -- c: withheld; m: places out of use unknown (contract v3), so it, occupancy in use
    -- and the out-of-use share are empty
    {{ eurostat_flag('false', 'population_withheld', 'false', 'false',
                     'places_out_of_use is null') }} as flag
from withheld
order by facility_id, month
