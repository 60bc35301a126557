{#- Fails for every pair of rows of the same entity whose closed validity
    intervals [lower, upper] overlap. A null upper bound means open-ended. -#}
{% test no_overlapping_intervals(model, entity, lower, upper) %}
with intervals as (
    select
        {{ entity }} as entity,
        {{ lower }} as lower_bound,
        coalesce({{ upper }}, date '9999-12-31') as upper_bound,
        row_number() over (
            partition by {{ entity }} order by {{ lower }}, {{ upper }}
        ) as rn
    from {{ model }}
)
select a.entity, a.lower_bound, a.upper_bound,
       b.lower_bound as other_lower_bound, b.upper_bound as other_upper_bound
from intervals as a
join intervals as b
  on a.entity = b.entity
 and a.rn < b.rn
 and a.lower_bound <= b.upper_bound
 and b.lower_bound <= a.upper_bound
{% endtest %}
