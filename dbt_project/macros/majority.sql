{#- For each (facility_id, month) of a facility-day relation: the value of
    `attribute` in force on most reported days; a tie goes to the value in
    force later in the month (the one whose last day is latest). Null values
    (days with no register row) do not vote. -#}
{% macro majority_by_day(relation, attribute) -%}
    select
        facility_id,
        month,
        {{ attribute }}
    from {{ relation }}
    where {{ attribute }} is not null
    group by facility_id, month, {{ attribute }}
    qualify row_number() over (
        partition by facility_id, month
        order by count(*) desc, max(census_date) desc
    ) = 1
{%- endmacro %}
