-- Grain: one row per facility per month (facility_id, month) for every
-- facility-month with census days, a regime census or staffing rows.
-- Census sums, the majority register attributes, and the regime and
-- staffing pivots; no rates here (marts divide sums).
{{ period_model_config() }}
with days as (
    select * from {{ ref('int_facility_days') }}
    where {{ in_incremental_months('month') }}
),

regime as (
    select * from {{ ref('stg_occupancy__monthly_regime') }}
    where {{ in_incremental_months('month') }}
),

staff as (
    select * from {{ ref('stg_staffing__monthly_staff') }}
    where {{ in_incremental_months('month') }}
),

history as (
    select * from {{ ref('int_facility_history') }}
),

spine as (
    select facility_id, month from days
    union
    select facility_id, month from regime
    union
    select facility_id, month from staff
),

census as (
    select
        facility_id,
        month,
        count(*) as days_reported,
        cast(sum(population) as bigint) as population_days,
        -- density numerator and denominator over the same days (capacity known)
        cast(sum(population) filter (where capacity_places is not null) as bigint)
            as population_days_with_capacity,
        cast(sum(capacity_places) as bigint) as capacity_place_days,
        -- unknown on any day (contract v3): the month's sum is unknown, never a partial sum
        cast({{ known_sum('places_out_of_use', 'places_out_of_use') }} as bigint)
            as places_out_of_use_days,
        cast({{ known_sum('places_in_use', 'places_out_of_use') }} as bigint) as places_in_use_days,
        -- occupancy-in-use numerator: population on the days with places in use known
        cast({{ known_sum('population', 'places_out_of_use', 'places_in_use is not null') }}
            as bigint) as population_days_with_places_in_use,
        coalesce(bool_or(is_series_break), false) as has_series_break,
        cast({{ known_sum('population_female', 'population_female') }} as bigint)
            as population_female_days,
        cast({{ known_sum('population_under_18', 'population_under_18') }} as bigint)
            as population_under_18_days,
        cast({{ known_sum('population_18_22', 'population_18_22') }} as bigint)
            as population_18_22_days,
        cast({{ known_sum('admissions', 'admissions') }} as bigint) as admissions,
        cast({{ known_sum('releases', 'releases') }} as bigint) as releases,
        coalesce(bool_or(places_out_of_use is null), false) as has_out_of_use_unknown,
        coalesce(bool_or(admissions is null or releases is null), false) as has_flow_unknown
    from days
    group by facility_id, month
),

-- class / type / detention-house status in force on most reported days
majority_class as ({{ majority_by_day('days', 'scale_class') }}),
majority_type as ({{ majority_by_day('days', 'facility_type') }}),
majority_detention_house as ({{ majority_by_day('days', 'is_detention_house') }}),
majority_small_optimal as ({{ majority_by_day('days', 'is_small_optimal') }}),

-- months without census days: the register version in force latest in the month
fallback_version as (
    select
        spine.facility_id,
        spine.month,
        history.scale_class,
        history.facility_type,
        history.is_detention_house,
        history.is_small_optimal
    from spine
    join history
        on history.facility_id = spine.facility_id
       and history.valid_from <= last_day(spine.month)
       and history.valid_to >= spine.month
    qualify row_number() over (
        partition by spine.facility_id, spine.month order by history.valid_from desc
    ) = 1
),

-- days of the month on which the facility is on the register (any version)
register_days as (
    select
        spine.facility_id,
        spine.month,
        cast(sum(
            least(history.valid_to, last_day(spine.month))
            - greatest(history.valid_from, spine.month) + 1
        ) as integer) as register_days
    from spine
    join history
        on history.facility_id = spine.facility_id
       and history.valid_from <= last_day(spine.month)
       and history.valid_to >= spine.month
    group by spine.facility_id, spine.month
),

staff_pivot as (
    select
        facility_id,
        month,
        cast(sum(fte) filter (where staff_category = 'custodial') as decimal(18, 4))
            as custodial_fte,
        cast(sum(fte) filter (
            where staff_category in ('rehabilitation', 'education', 'healthcare')
        ) as decimal(18, 4)) as rehab_fte,
        cast(sum(fte) as decimal(18, 4)) as total_fte,
        cast(sum(headcount) as bigint) as headcount,
        cast(sum(vacancies_fte) as decimal(18, 4)) as vacancies_fte,
        -- vacancy rate denominator only over categories that report vacancies
        cast(sum(fte) filter (where vacancies_fte is not null) as decimal(18, 4))
            as fte_with_vacancies_reported,
        cast(sum(trained_last_24m) as bigint) as trained_last_24m,
        -- trained share denominator only over categories that report training
        cast(sum(headcount) filter (where trained_last_24m is not null) as bigint)
            as headcount_with_training_reported
    from staff
    group by facility_id, month
)

select
    spine.facility_id,
    spine.month,
    cast(extract(day from last_day(spine.month)) as integer) as days_in_month,
    coalesce(majority_class.scale_class, fallback_version.scale_class) as scale_class,
    coalesce(majority_type.facility_type, fallback_version.facility_type) as facility_type,
    coalesce(
        majority_detention_house.is_detention_house, fallback_version.is_detention_house
    ) as is_detention_house,
    -- RESCALED optimal size (8..25 places) in force on most reported days
    coalesce(
        majority_small_optimal.is_small_optimal, fallback_version.is_small_optimal
    ) as is_small_optimal,
    coalesce(register_days.register_days, 0) as register_days,
    coalesce(census.days_reported, 0) as days_reported,
    census.population_days,
    census.population_days_with_capacity,
    census.capacity_place_days,
    census.places_out_of_use_days,
    census.places_in_use_days,
    census.population_days_with_places_in_use,
    coalesce(census.has_series_break, false) as has_series_break,
    census.population_female_days,
    census.population_under_18_days,
    census.population_18_22_days,
    census.admissions,
    census.releases,
    coalesce(census.has_out_of_use_unknown, false) as has_out_of_use_unknown,
    coalesce(census.has_flow_unknown, false) as has_flow_unknown,
    regime.avg_population,
    regime.in_paid_work,
    regime.in_education,
    regime.with_digital_contact,
    regime.avg_hours_out_of_cell,
    regime.releases_total,
    regime.releases_with_plan,
    staff_pivot.custodial_fte,
    staff_pivot.rehab_fte,
    staff_pivot.total_fte,
    staff_pivot.headcount,
    staff_pivot.vacancies_fte,
    staff_pivot.fte_with_vacancies_reported,
    staff_pivot.trained_last_24m,
    staff_pivot.headcount_with_training_reported
from spine
left join census using (facility_id, month)
left join majority_class using (facility_id, month)
left join majority_type using (facility_id, month)
left join majority_detention_house using (facility_id, month)
left join majority_small_optimal using (facility_id, month)
left join fallback_version using (facility_id, month)
left join register_days using (facility_id, month)
left join regime using (facility_id, month)
left join staff_pivot using (facility_id, month)
