{#- Incremental builds (docs/operations.md, "Incremental builds").

    The period models (facility days and months, their disclosure control and
    mart_facility_daily) are incremental by calendar month: transform/increments.py
    works out which months the deliveries since the last finished build touch
    (occupancy census dates, regime and staffing months) and passes them as the
    var `incremental_months` (ISO dates of the first of each month). An
    incremental run recomputes exactly those months, whole, and replaces them
    (delete+insert on the month): a month is the unit because disclosure control
    protects cells across the facilities of a month. A register delivery, a
    changed project or `make rebuild` runs a full refresh instead.
-#}

{#- The config shared by every period model: replace whole months. -#}
{% macro period_model_config(unique_key='month') -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=unique_key,
        on_schema_change='fail'
    ) }}
{%- endmacro %}

{#- SQL predicate: `date_column` falls in one of the months being rebuilt.
    Outside an incremental run (first build, full refresh, unit tests) it is
    `true`; in an incremental run without touched months it is `false`. -#}
{% macro in_incremental_months(date_column) -%}
    {%- if not is_incremental() -%}
        true
    {%- else -%}
        {%- set months = var('incremental_months', []) -%}
        {%- if months | length == 0 -%}
            false
        {%- else -%}
            ({% for m in months -%}
                ({{ date_column }} >= date '{{ m }}' and {{ date_column }} < date '{{ m }}' + interval 1 month)
                {{- ' or ' if not loop.last }}
            {%- endfor %})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
