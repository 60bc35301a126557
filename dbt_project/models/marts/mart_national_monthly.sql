-- Grain: one row per month per scale class: 'small', 'medium', 'large' (the
-- facility-DAYS grouped by the class in force that day; staffing and regime
-- by the facility's monthly class), 'small_optimal' (8..25 places: a subset
-- of 'small', never to be added to the others) and 'all'. Rates are ratios of sums,
-- never means of rates (int_national_month_kpis). Disclosure control is the
-- last step: the values int_disclosure_national withholds are empty and the
-- row's flag carries c.
{%- set kpis = national_kpi_groups() %}
{%- set published = [
    'facilities', 'capacity_places', 'average_daily_population', 'density',
    'share_in_overcrowded', 'share_in_small_scale', 'vulnerable_in_small_scale_under_18',
    'vulnerable_in_small_scale_18_22', 'vulnerable_in_small_scale_female',
    'detainees_per_custodial_fte', 'occupancy_in_use', 'out_of_use_share',
    'rehab_staff_per_100', 'work_participation', 'education_participation',
    'digital_contact_share', 'release_plan_coverage', 'custodial_fte', 'rehab_fte',
] %}
{%- set withheld_terms = [] %}
{%- for k in kpis %}
{%- set present = [] %}
{%- for column in k.columns %}{% do present.append('kpis.' ~ column ~ ' is not null') %}{% endfor %}
{%- do withheld_terms.append('(disclosure.' ~ k.name ~ '_withheld and (' ~ present | join(' or ') ~ '))') %}
{%- endfor %}
{%- set withheld_any = '(' ~ withheld_terms | join(' or ') ~ ')' %}
{%- set kpi_of = {} %}
{%- for k in kpis %}{% for column in k.columns %}{% do kpi_of.update({column: k.name}) %}{% endfor %}{% endfor %}
with kpis as (
    select * from {{ ref('int_national_month_kpis') }}
),

disclosure as (
    select * from {{ ref('int_disclosure_national') }}
)

select
    kpis.month,
    kpis.scale_class,
    kpis.facilities,
    kpis.capacity_places,
    {%- for column in published if column not in ('facilities', 'capacity_places') %}
    {%- if column in kpi_of %}
    case when not disclosure.{{ kpi_of[column] }}_withheld then kpis.{{ column }} end
        as {{ column }},
    {%- else %}
    kpis.{{ column }},
    {%- endif %}
    {%- if column == 'detainees_per_custodial_fte' %}
    -- national sums are never imputed: e on facility rows, u (with coverage) here
    {{ eurostat_flag('kpis.is_series_break', withheld_any, 'false',
                     'kpis.is_provisional', 'kpis.is_missing', 'kpis.is_low_reliability') }}
        as flag,
    {%- endif %}
    {%- endfor %}
    kpis.census_days,
    kpis.coverage
from kpis
join disclosure using (month, scale_class)
order by
    kpis.month,
    case kpis.scale_class
        when 'small' then 1 when 'small_optimal' then 2 when 'medium' then 3
        when 'large' then 4 else 5
    end
