-- Grain: one row per facility per month (facility_id, month).
-- Every rate is a ratio of the month's sums (never a mean of daily rates).
-- Disclosure control is the last step: values int_disclosure_facility_months
-- withholds are empty, and the row's flag carries c.
{%- set v1 = [
    'average_daily_population', 'density', 'turnover', 'avg_length_of_stay_days',
    'detainees_per_custodial_fte', 'rehab_staff_per_100', 'vacancy_rate',
    'staff_trained_share', 'work_participation', 'education_participation',
    'digital_contact_share', 'release_plan_coverage',
] %}
{%- set withheld_terms = [] %}
{%- for column in v1 + ['occupancy_in_use'] %}
{%- do withheld_terms.append('(disclosure.' ~ column ~ '_withheld and kpis.' ~ column ~ ' is not null)') %}
{%- endfor %}
with kpis as (
    select * from {{ ref('int_facility_month_kpis') }}
),

disclosure as (
    select * from {{ ref('int_disclosure_facility_months') }}
)

select
    kpis.facility_id,
    kpis.month,
    kpis.facility_type,
    kpis.scale_class,
    kpis.is_detention_house,
    {%- for column in v1 %}
    case when not disclosure.{{ column }}_withheld then kpis.{{ column }} end as {{ column }},
    {%- endfor %}
    {{ eurostat_flag(
        'kpis.is_series_break',
        '(' ~ withheld_terms | join(' or ') ~ ')',
        'kpis.is_estimated',
        'kpis.is_provisional',
        'kpis.is_missing') }} as flag,
    -- added after interface v1
    case when not disclosure.occupancy_in_use_withheld then kpis.occupancy_in_use end
        as occupancy_in_use,
    kpis.out_of_use_share
from kpis
join disclosure using (facility_id, month)
order by kpis.facility_id, kpis.month
