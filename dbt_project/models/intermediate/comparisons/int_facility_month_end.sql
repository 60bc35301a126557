-- Grain: one row per facility per month (facility_id, month): the facility's
-- last census of the month (a month-end snapshot), the register version in
-- force that day, whether disclosure control withholds that day
-- (int_disclosure_days, the same decision as mart_facility_daily), and the
-- month's staff by category.
{{ period_model_config() }}
with days as (
    select * from {{ ref('int_facility_days') }}
    where {{ in_incremental_months('month') }}
),

last_census as (
    select *
    from days
    qualify row_number() over (partition by facility_id, month order by census_date desc) = 1
),

disclosure as (
    select facility_id, census_date, is_suppressed, suppression
    from {{ ref('int_disclosure_days') }}
    where {{ in_incremental_months('month') }}
),

staff as (
    select
        facility_id,
        month,
        sum(fte) filter (where staff_category = 'custodial') as custodial_fte,
        sum(vacancies_fte) filter (where staff_category = 'custodial') as custodial_vacancies_fte,
        sum(fte) filter (where staff_category = 'custodial' and vacancies_fte is not null)
            as custodial_fte_with_vacancies,
        sum(fte) filter (where staff_category = 'education') as education_fte,
        sum(fte) as staff_fte,
        sum(vacancies_fte) as staff_vacancies_fte,
        sum(fte) filter (where vacancies_fte is not null) as staff_fte_with_vacancies
    from {{ ref('stg_staffing__monthly_staff') }}
    where {{ in_incremental_months('month') }}
    group by facility_id, month
)

select
    {{ jurisdiction('last_census.facility_id') }} as jurisdiction,
    last_census.facility_id,
    last_census.month,
    last_census.census_date,
    last_census.facility_type,
    last_census.scale_class,
    last_census.is_small_optimal,
    last_census.capacity_places,
    last_census.operational_capacity,
    last_census.places_out_of_use,
    last_census.places_in_use,
    last_census.population,
    last_census.density,
    last_census.occupancy_in_use,
    coalesce(disclosure.is_suppressed, false) as is_suppressed,
    -- primary (1..4 persons), or secondary / partner (withheld to protect a primary)
    disclosure.suppression,
    cast(staff.custodial_fte as double) as custodial_fte,
    cast(staff.custodial_vacancies_fte as double) as custodial_vacancies_fte,
    cast(staff.custodial_fte_with_vacancies as double) as custodial_fte_with_vacancies,
    cast(staff.education_fte as double) as education_fte,
    cast(staff.staff_fte as double) as staff_fte,
    cast(staff.staff_vacancies_fte as double) as staff_vacancies_fte,
    cast(staff.staff_fte_with_vacancies as double) as staff_fte_with_vacancies
from last_census
left join disclosure using (facility_id, census_date)
left join staff using (facility_id, month)
