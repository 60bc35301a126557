{#- KPI building blocks. Thresholds come from vars (config/penstat.toml),
    never literals. Divisions go through nullif so a zero denominator gives
    null, and are done in DOUBLE with a single division so results are
    reproducible to the last bit. -#}

{#- num / den as a share (0..1). -#}
{% macro ratio(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0))
{%- endmacro %}

{#- num / den x 100 (per 100, e.g. density: inmates per 100 places). -#}
{% macro per_100(numerator, denominator) -%}
    ((100 * cast({{ numerator }} as double)) / nullif(cast({{ denominator }} as double), 0))
{%- endmacro %}

{#- sum(expr) over a group, or null when `known` (a census column contract v3
    lets a sender leave empty) is unknown on any row of it: a partial sum would
    be published as a real-looking number (unknown is not zero). -#}
{% macro known_sum(expr, known, where=none) -%}
    case when count(*) filter (where {{ known }} is null) = 0 then
        sum({{ expr }}){% if where %} filter (where {{ where }}){% endif %}
    end
{%- endmacro %}

{#- RESCALED scale class by the capacity_places in force:
    small <= classification_small_max_places, large >= classification_large_min_places. -#}
{% macro scale_class(capacity) -%}
    case
        when {{ capacity }} is null then null
        when {{ capacity }} <= {{ var('classification_small_max_places') }} then 'small'
        when {{ capacity }} >= {{ var('classification_large_min_places') }} then 'large'
        else 'medium'
    end
{%- endmacro %}

{#- SPACE I (> over) and French DAP (>= severe, >= critical) density tiers. -#}
{% macro overcrowding_tier(density) -%}
    case
        when {{ density }} is null then null
        when {{ density }} >= {{ var('overcrowding_critical') }} then 'critical'
        when {{ density }} >= {{ var('overcrowding_severe') }} then 'severe'
        when {{ density }} > {{ var('overcrowding_over') }} then 'over'
        else 'none'
    end
{%- endmacro %}

{#- 'YYYY-MM' as delivered -> DATE of the first day of that month. -#}
{% macro month_to_date(month_text) -%}
    cast(strptime({{ month_text }}, '%Y-%m') as date)
{%- endmacro %}

{#- date + n months as a DATE (month ends clamp: 2020-02-29 + 12 -> 2021-02-28). -#}
{% macro add_months(date_expr, months) -%}
    cast({{ date_expr }} + to_months(cast({{ months }} as integer)) as date)
{%- endmacro %}

{#- Reference date for lateness: var('as_of_date') (ISO) or today. -#}
{% macro as_of_date() -%}
    {%- set v = var('as_of_date', none) -%}
    {%- if v is none or v == '' -%}
        current_date
    {%- else -%}
        cast('{{ v }}' as date)
    {%- endif -%}
{%- endmacro %}

{#- Deterministic surrogate key: md5 of the '|'-joined text of the columns. -#}
{% macro surrogate_key(columns) -%}
    md5(concat_ws('|'
    {%- for c in columns -%}
        , coalesce(cast({{ c }} as varchar), '<null>')
    {%- endfor -%}
    ))
{%- endmacro %}
