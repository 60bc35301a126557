-- Grain: one row per month per scale class (month, scale_class) as in
-- int_national_month_kpis: for each disclosure group of national KPIs
-- (macro national_kpi_groups), whether its values are withheld.
--   census sums (ADP, density, occupancy in use) add up facility-days that
--       mart_facility_daily publishes or protects itself: withheld only
--       where a day could not be protected otherwise
--       (int_disclosure_national_census);
--   census shares: withheld below disclosure_min_rate_denominator persons
--       on an average day;
--   vulnerable-group shares and the staff and regime rates (their counts
--       are published nowhere else, or only where large enough): withheld
--       below that base, or when the numerator is 1..min_person_count - 1
--       persons (on an average day);
--   where exactly one class row of a month is withheld for a KPI, another
--   one is too, or the 'all' row (which would give it back);
--   'small_optimal' (8..25 places) is a subset of 'small', outside that
--   partition: withheld where small is, and where small minus small_optimal
--   (the small units outside 8..25 places) would be a withheld cell.
{%- set kpis = national_kpi_groups() %}
with kpis as (
    select * from {{ ref('int_national_month_kpis') }}
),

-- units that could not protect themselves and found no partner (int_disclosure_days)
census_fallback as (
    select month, class_key from {{ ref('int_disclosure_national_census') }}
),

primaries as (
    select
        kpis.*,
        {%- for k in kpis %}
        {{ k.base }} as {{ k.name }}_base,
        -- the classes that partition 'all' (small_optimal is a subset of small)
        kpis.scale_class not in ('all', 'small_optimal') and kpis.{{ k.columns[0] }} is not null
            as {{ k.name }}_contributes,
        {{ "kpis.scale_class = 'all' and" if k.all_only }} (
            {{ 'false' if k.rate is defined and not k.rate else base_too_small(k.base) }}
            {%- if k.count %}
            or {{ is_small_count(k.count) }}
            {%- endif %}
            {%- if k.name in ('census', 'overcrowded', 'small_scale') %}
            or exists (
                select 1 from census_fallback
                where census_fallback.month = kpis.month
                  and (census_fallback.class_key = kpis.scale_class or kpis.scale_class = 'all'
                       or (census_fallback.class_key = 'small'
                           and kpis.scale_class = 'small_optimal'))
            )
            {%- endif %}
        ) as {{ k.name }}_primary
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from kpis
)
{%- for k in kpis %},

{{ k.name }}_secondary as (
    {{ pair_keys('primaries', k.name, ['month'], ['month', 'scale_class']) }}
),

{{ k.name }}_withheld as (
    select
        primaries.month,
        primaries.scale_class,
        primaries.{{ k.name }}_primary
            or {{ k.name }}_secondary.scale_class is not null as withheld
    from primaries
    left join {{ k.name }}_secondary
        on {{ k.name }}_secondary.month = primaries.month
       and {{ k.name }}_secondary.scale_class = primaries.scale_class
),

-- a class row still alone in its month: the 'all' row would give it back
{{ k.name }}_all_withheld as (
    select month
    from {{ k.name }}_withheld
    where scale_class not in ('all', 'small_optimal')
    group by month
    having count(*) filter (where withheld) = 1
)
{%- endfor %},

-- small_optimal is published beside small: small minus small_optimal (the small
-- units outside 8..25 places) must be as safe as a published cell, or
-- small_optimal is withheld (and whenever small is)
optimal_complement as (
    select
        optimal.month,
        {%- for k in kpis %}
        (
            {%- if k.rate is defined and not k.rate %}
            false
            {%- else %}
            coalesce(small.{{ k.base }} - coalesce(optimal.{{ k.base }}, 0) > 0
                     and small.{{ k.base }} - coalesce(optimal.{{ k.base }}, 0)
                         < {{ var('disclosure_min_rate_denominator') }}, false)
            {%- endif %}
            {%- if k.count %}
            or {{ is_small_count('small.' ~ k.count ~ ' - coalesce(optimal.' ~ k.count ~ ', 0)') }}
            {%- endif %}
            {%- if k.name in ('census', 'overcrowded') %}
            -- a unit moved into or out of 8..25 places in the month: small_optimal
            -- holds part of a protection unit of int_disclosure_days, whose days
            -- are then no longer interchangeable
            or coalesce(optimal.is_series_break, false)
            {%- endif %}
        ) as {{ k.name }}_complement_primary
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from primaries as optimal
    join primaries as small
        on small.month = optimal.month
       and small.scale_class = 'small'
    where optimal.scale_class = 'small_optimal'
),

decided as (
    select
        primaries.*,
        {%- for k in kpis %}
        {{ k.name }}_withheld.withheld
            or (primaries.scale_class = 'all' and {{ k.name }}_all_withheld.month is not null)
            or (primaries.scale_class = 'small_optimal' and (
                coalesce(optimal_complement.{{ k.name }}_complement_primary, false)
                or coalesce(small_withheld_{{ k.name }}.withheld, false)))
            as {{ k.name }}_withheld
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from primaries
    {%- for k in kpis %}
    join {{ k.name }}_withheld
        on {{ k.name }}_withheld.month = primaries.month
       and {{ k.name }}_withheld.scale_class = primaries.scale_class
    left join {{ k.name }}_all_withheld
        on {{ k.name }}_all_withheld.month = primaries.month
    left join {{ k.name }}_withheld as small_withheld_{{ k.name }}
        on small_withheld_{{ k.name }}.month = primaries.month
       and small_withheld_{{ k.name }}.scale_class = 'small'
    {%- endfor %}
    left join optimal_complement
        on optimal_complement.month = primaries.month
)

select
    month,
    scale_class,
    {%- for k in kpis %}
    {{ k.name }}_withheld
    {%- if not loop.last %},{% endif %}
    {%- endfor %}
from decided
