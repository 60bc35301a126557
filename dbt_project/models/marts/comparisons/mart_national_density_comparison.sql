-- Grain: one row per geo, year and source (geo, period, source): persons held,
-- official capacity and density (persons per 100 places, SPACE I), side by side
-- from the warehouse's own facility census and from Eurostat's national table.
--   penstat:facility_census  per jurisdiction and year, the latest month-end
--                            snapshot of the year (mart_scale_class_facts,
--                            class 'all'): its date is reference_date
--   eurostat:crim_pris_cap   PRIS_ACT_CAP (persons held) and PRIS_OFF_CAP
--                            (official capacity), unit NR, annual; density only
--                            where both are published; flags as Eurostat's
-- A jurisdiction code equals the Eurostat geo where both exist (IT, NL, ...).
with census as (
    select
        jurisdiction as geo,
        cast(year(reference_date) as varchar) as period,
        'penstat:facility_census' as source,
        reference_date,
        population as persons_held,
        capacity_places as official_capacity,
        flag
    from {{ ref('mart_scale_class_facts') }}
    where source = 'facility_census' and scale_class = 'all'
    qualify row_number() over (
        partition by jurisdiction, year(reference_date) order by reference_date desc
    ) = 1
),

cells as (
    select * from {{ ref('stg_national_reference__values') }}
    where dataset = 'crim_pris_cap' and unit = 'NR' and frequency = 'A'
),

eurostat as (
    select
        geo,
        period,
        'eurostat:crim_pris_cap' as source,
        cast(null as date) as reference_date,
        max(value) filter (where indicator = 'PRIS_ACT_CAP') as persons_held,
        max(value) filter (where indicator = 'PRIS_OFF_CAP') as official_capacity,
        nullif(string_agg(distinct flag, '' order by flag), '') as flag
    from cells
    group by geo, period
)

select
    geo,
    period,
    source,
    reference_date,
    cast(persons_held as double) as persons_held,
    cast(official_capacity as double) as official_capacity,
    {{ per_100('persons_held', 'official_capacity') }} as density,
    flag
from (
    select * from census
    union all
    select * from eurostat
)
order by geo, period, source
