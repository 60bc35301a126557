-- Grain: one row per jurisdiction, source, reference date and scale class
-- (jurisdiction, source, reference_date, scale_class): how many facilities are
-- small-scale (RESCALED: capacity_places <= classification_small_max_places),
-- medium or large, their places, and the share of detainees held in each.
--   facility_census     facilities of the v1 register and census (synthetic
--                       or real senders), one set of rows per month: each
--                       facility counts with its last census of the month;
--                       reference_date = the month's latest census date.
--   reference_register  open facilities of a reference register (v2, e.g.
--                       HIFLD); capacity or population unknown where not
--                       published (class 'unknown'); reference_date = the
--                       figures' date, else the extraction date.
-- scale_class 'all' = every facility counted. Shares are ratios of sums over
-- facilities whose class (and population) is known.
-- Disclosure (the facility values behind these sums are published in
-- mart_facility_snapshot, withheld where int_disclosure_days withholds them):
--   a class's population is withheld when differencing it against the
--   published facility values would give back a withheld value: exactly one
--   withheld facility in the class, or withheld ones that are all primary
--   (1..disclosure_min_person_count - 1), or a class sum of 1..4 itself;
--   then the 'all' population and every share of that jurisdiction-date are
--   withheld too (all minus the other classes, or a share times the total,
--   would give the class back). Withheld values are empty, flagged c.
with census as (
    select
        jurisdiction,
        'facility_census' as source,
        max(census_date) over (partition by jurisdiction, month) as reference_date,
        'census_date' as date_basis,
        facility_id,
        coalesce(scale_class, 'unknown') as scale_class,
        coalesce(is_small_optimal, false) as is_small_optimal,
        capacity_places,
        population,
        is_suppressed,
        suppression = 'primary' as is_primary
    from {{ ref('int_facility_month_end') }}
),

register as (
    select
        jurisdiction,
        'reference_register' as source,
        as_of_date as reference_date,
        as_of_basis as date_basis,
        facility_id,
        coalesce({{ scale_class('capacity_places') }}, 'unknown') as scale_class,
        coalesce(
            capacity_places between {{ var('classification_small_optimal_min') }}
                                and {{ var('classification_small_optimal_max') }},
            false
        ) as is_small_optimal,
        capacity_places,
        population,
        false as is_suppressed,
        false as is_primary
    from {{ ref('stg_reference_register__facilities') }}
    where status = 'open'
),

facilities as (
    select * from census
    union all
    select * from register
),

classes as (
    select
        jurisdiction,
        source,
        reference_date,
        any_value(date_basis) as date_basis,
        scale_class,
        count(*) as facilities,
        count(*) filter (where is_small_optimal) as facilities_small_optimal,
        sum(capacity_places) as capacity_places,
        count(population) as facilities_with_population,
        sum(population) as population,
        count(*) filter (where is_suppressed) as withheld_facilities,
        count(*) filter (where is_suppressed and not is_primary) as withheld_non_primary
    from facilities
    group by jurisdiction, source, reference_date, scale_class
),

class_rule as (
    select
        *,
        withheld_facilities = 1
            or (withheld_facilities > 1 and withheld_non_primary = 0)
            or {{ is_small_count('population') }} as class_withheld
    from classes
),

groups as (
    select
        jurisdiction,
        source,
        reference_date,
        sum(facilities) filter (where scale_class <> 'unknown') as facilities_known,
        sum(population) filter (where scale_class <> 'unknown') as population_known,
        bool_or(class_withheld) as any_class_withheld,
        {{ is_small_count('sum(population)') }} as all_small
    from class_rule
    group by jurisdiction, source, reference_date
),

all_rows as (
    select
        jurisdiction,
        source,
        reference_date,
        any_value(date_basis) as date_basis,
        'all' as scale_class,
        sum(facilities) as facilities,
        sum(facilities_small_optimal) as facilities_small_optimal,
        sum(capacity_places) as capacity_places,
        sum(facilities_with_population) as facilities_with_population,
        sum(population) as population
    from classes
    group by jurisdiction, source, reference_date
),

unioned as (
    select
        jurisdiction, source, reference_date, date_basis, scale_class, facilities,
        facilities_small_optimal, capacity_places, facilities_with_population, population,
        class_withheld as population_withheld
    from class_rule
    union all
    select all_rows.*, groups.any_class_withheld or groups.all_small
    from all_rows
    join groups using (jurisdiction, source, reference_date)
)

select
    unioned.jurisdiction,
    unioned.source,
    cast(unioned.reference_date as date) as reference_date,
    unioned.date_basis,
    unioned.scale_class,
    cast(unioned.facilities as bigint) as facilities,
    cast(unioned.facilities_small_optimal as bigint) as facilities_small_optimal,
    cast(unioned.capacity_places as bigint) as capacity_places,
    cast(unioned.facilities_with_population as bigint) as facilities_with_population,
    case when not unioned.population_withheld then cast(unioned.population as bigint) end
        as population,
    case when unioned.scale_class not in ('all', 'unknown') then
        {{ ratio('unioned.facilities', 'groups.facilities_known') }}
    end as share_of_facilities,
    case when unioned.scale_class not in ('all', 'unknown')
            and not (groups.any_class_withheld or groups.all_small) then
        {{ ratio('unioned.population', 'groups.population_known') }}
    end as share_of_population,
    case
        when unioned.population_withheld
            or (unioned.scale_class not in ('all', 'unknown')
                and (groups.any_class_withheld or groups.all_small))
            then 'c'
    end as flag
from unioned
join groups using (jurisdiction, source, reference_date)
order by
    unioned.jurisdiction,
    unioned.source,
    unioned.reference_date,
    case unioned.scale_class
        when 'small' then 1 when 'medium' then 2 when 'large' then 3 when 'unknown' then 4
        else 5
    end
