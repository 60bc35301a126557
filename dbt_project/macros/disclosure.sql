{#- Disclosure control building blocks. Thresholds are vars ([disclosure] of
    config/penstat.toml), never literals. -#}

{#- A count of persons (or an average count) that identifies: 1..min_person_count - 1. -#}
{% macro is_small_count(expr) -%}
    coalesce({{ expr }} > 0 and {{ expr }} < {{ var('disclosure_min_person_count') }}, false)
{%- endmacro %}

{#- A rate's base (persons behind it) below min_rate_denominator. -#}
{% macro base_too_small(expr) -%}
    coalesce({{ expr }} < {{ var('disclosure_min_rate_denominator') }}, false)
{%- endmacro %}

{#- Secondary suppression in a partition whose total is published: where
    exactly one contributing row of a group is withheld, also withhold the
    contributing row with the smallest base (ties by key). Returns the keys
    of the rows to add. `rel` needs <kpi>_primary, <kpi>_contributes and
    <kpi>_base columns. -#}
{% macro pair_keys(rel, kpi, group_cols, key_cols) -%}
    select {{ key_cols | join(', ') }}
    from (
        select
            *,
            count(*) filter (where {{ kpi }}_primary)
                over (partition by {{ group_cols | join(', ') }}) as withheld_in_group
        from {{ rel }}
        where {{ kpi }}_contributes
    )
    where withheld_in_group = 1 and not {{ kpi }}_primary
    qualify row_number() over (
        partition by {{ group_cols | join(', ') }}
        order by {{ kpi }}_base, {{ key_cols | join(', ') }}
    ) = 1
{%- endmacro %}

{#- Eurostat flag letters, alphabetical (b, c, e, m, p, u), null when none.
    m (missing, SDMX OBS_STATUS M): a value of the row is empty because an input
    the sender declared unknown (contract v3) is needed for it. u (low
    reliability): a national sum over facility-days with facility-days missing
    (coverage below 1). -#}
{% macro eurostat_flag(b, c, e, p, m='false', u='false') -%}
    nullif(concat(
        case when {{ b }} then 'b' else '' end,
        case when {{ c }} then 'c' else '' end,
        case when {{ e }} then 'e' else '' end,
        case when {{ m }} then 'm' else '' end,
        case when {{ p }} then 'p' else '' end,
        case when {{ u }} then 'u' else '' end
    ), '')
{%- endmacro %}
