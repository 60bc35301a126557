-- Grain: one row per facility version (facility_version_key) = one register
-- validity interval of a facility (facility_id, valid_from); SCD type 2 built
-- from the latest register snapshot. valid_to is inclusive, 9999-12-31 = open.
with register as (
    select * from {{ ref('stg_facility_register__facilities') }}
),

versions as (
    select
        {{ surrogate_key(['facility_id', 'valid_from']) }} as facility_version_key,
        facility_id,
        name,
        region,
        facility_type,
        security_level,
        capacity_places,
        operational_capacity,
        living_group_size,
        community_integrated,
        valid_from,
        coalesce(valid_to, date '9999-12-31') as valid_to,
        valid_to is null as is_current,
        {{ scale_class('capacity_places') }} as scale_class
    from register
),

-- a break in the facility's series: its type or scale class differs from the
-- version before (Eurostat flag b on the first day of the new version)
breaks as (
    select
        *,
        coalesce(
            lag(facility_type) over w is distinct from facility_type
            or lag(scale_class) over w is distinct from scale_class,
            false
        ) and lag(facility_id) over w is not null as is_series_break
    from versions
    window w as (partition by facility_id order by valid_from)
)

select
    facility_version_key,
    facility_id,
    name,
    region,
    valid_from,
    valid_to,
    is_current,
    capacity_places,
    operational_capacity,
    living_group_size,
    facility_type,
    security_level,
    community_integrated,
    scale_class,
    -- RESCALED: preferably 8..25 places within small-scale
    coalesce(
        scale_class = 'small'
        and capacity_places between {{ var('classification_small_optimal_min') }}
                                and {{ var('classification_small_optimal_max') }},
        false
    ) as is_small_optimal,
    -- RESCALED three criteria: small-scale, community-integrated, differentiated
    coalesce(
        scale_class = 'small'
        and community_integrated
        and (
            security_level in ('low', 'open')
            or facility_type in ('detention_house', 'transition_house')
        ),
        false
    ) as is_detention_house,
    is_series_break
from breaks
