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
--   one is too, or the 'all' row (which would give it back).
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
        kpis.scale_class <> 'all' and kpis.{{ k.columns[0] }} is not null
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
                  and (census_fallback.class_key = kpis.scale_class or kpis.scale_class = 'all')
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
    where scale_class <> 'all'
    group by month
    having count(*) filter (where withheld) = 1
)
{%- endfor %},

decided as (
    select
        primaries.*,
        {%- for k in kpis %}
        {{ k.name }}_withheld.withheld
            or (primaries.scale_class = 'all' and {{ k.name }}_all_withheld.month is not null)
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
    {%- endfor %}
)

select
    month,
    scale_class,
    {%- for k in kpis %}
    {{ k.name }}_withheld
    {%- if not loop.last %},{% endif %}
    {%- endfor %}
from decided
