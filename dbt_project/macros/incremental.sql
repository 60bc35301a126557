{#- Incremental builds (docs/operations.md, "Incremental builds").

    The period models (facility days and months, their disclosure control and
    mart_facility_daily) are incremental by calendar month: penstat/transform/increments.py
    works out which months the deliveries since the last finished build touch
    (occupancy census dates, regime and staffing months) and records them with
    the build in meta.builds (ISO dates of the first of each month). An
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
    `true`. In an incremental run of the pipeline (var months_from_ledger) the
    months are read, when the model runs, from the build's row in meta.builds
    (written by penstat.orchestration.tasks.build_marts): not passed as a var, because a
    var that changes on every build would make dbt re-parse the whole project
    every time. A plain `dbt build` on existing tables recomputes every month. -#}
{% macro in_incremental_months(date_column) -%}
    {%- if not is_incremental() or not var('months_from_ledger', false) -%}
        true
    {%- else -%}
        {%- set months = build_months() -%}
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

{#- The months (ISO dates) of the build in progress: the latest row of meta.builds. -#}
{% macro build_months() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set result = run_query(
        "select months from meta.builds order by build_id desc limit 1") -%}
    {%- if result.rows | length == 0 or result.rows[0][0] is none -%}
        {{ exceptions.raise_compiler_error(
            "months_from_ledger is set but meta.builds has no months for this build") }}
    {%- endif -%}
    {{ return(fromjson(result.rows[0][0])) }}
{%- endmacro %}
