-- Grain: one row per facility per month (facility_id, month): which
-- facility-month values are withheld (<kpi>_withheld), before they reach
-- mart_facility_monthly.
--   census values (average_daily_population, density, occupancy_in_use):
--       withheld when int_disclosure_days withholds the facility-month
--       (a unit that cannot protect itself, or its partner);
--   rates: withheld when their base (the persons behind them) is below
--       disclosure_min_rate_denominator, or when their numerator is a count
--       of persons 1..disclosure_min_person_count - 1 (rate x base would
--       give it back);
--   rates that mart_national_monthly rolls up by (month, scale class):
--       where exactly one contributing facility-month of a (month, class)
--       is withheld, the contributing one with the smallest base is
--       withheld too, so the national total cannot give it back.
--   flow values (turnover, avg_length_of_stay_days): also withheld while
--       the month is provisional. Published day after day, a month-to-date
--       flow would give each day's admissions and releases back (turnover x
--       average daily population x days is the month's flows so far; the
--       next day's value minus it is one day's, often 1..4 persons). The
--       month's flows are published once, when it is complete.
-- out_of_use_share (places, not persons) is never withheld.
{%- set kpis = [
    {'name': 'turnover', 'base': 'average_daily_population',
     'count': 'admissions + releases', 'census': true, 'paired': false,
     'flow': true},
    {'name': 'avg_length_of_stay_days', 'base': 'releases',
     'count': none, 'census': true, 'paired': false, 'flow': true},
    {'name': 'detainees_per_custodial_fte', 'base': 'avg_population',
     'count': none, 'census': false, 'paired': true},
    {'name': 'rehab_staff_per_100', 'base': 'avg_population',
     'count': none, 'census': false, 'paired': true},
    {'name': 'vacancy_rate', 'base': 'staff_fte_with_vacancies',
     'count': none, 'census': false, 'paired': false},
    {'name': 'staff_trained_share', 'base': 'headcount_with_training_reported',
     'count': 'trained_last_24m', 'census': false, 'paired': false},
    {'name': 'work_participation', 'base': 'avg_population',
     'count': 'in_paid_work', 'census': false, 'paired': true},
    {'name': 'education_participation', 'base': 'avg_population',
     'count': 'in_education', 'census': false, 'paired': true},
    {'name': 'digital_contact_share', 'base': 'avg_population',
     'count': 'with_digital_contact', 'census': false, 'paired': true},
    {'name': 'release_plan_coverage', 'base': 'releases_total',
     'count': 'releases_with_plan', 'census': false, 'paired': true},
] %}
with kpis as (
    select * from {{ ref('int_facility_month_kpis') }}
),

census_withheld as (
    select facility_id, month, bool_or(suppresses_facility_month) as census_withheld
    from {{ ref('int_disclosure_days') }}
    group by facility_id, month
),

primaries as (
    select
        kpis.facility_id,
        kpis.month,
        coalesce(kpis.scale_class, 'unknown') as class_key,
        coalesce(census_withheld.census_withheld, false) as census_withheld,
        {%- for k in kpis %}
        {{ k.base }} as {{ k.name }}_base,
        -- in the national sums with a value of its own (a zero base adds nothing unknown)
        kpis.{{ k.name }} is not null as {{ k.name }}_contributes,
        (
            {{ base_too_small(k.base) }}
            {%- if k.count %}
            or {{ is_small_count(k.count) }}
            {%- endif %}
            {%- if k.census %}
            or coalesce(census_withheld.census_withheld, false)
            {%- endif %}
            {%- if k.flow %}
            or coalesce(kpis.is_provisional, true)
            {%- endif %}
        ) as {{ k.name }}_primary,
        kpis.{{ k.name }} is not null as {{ k.name }}_present
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from kpis
    left join census_withheld using (facility_id, month)
)
{%- for k in kpis if k.paired %},

{{ k.name }}_secondary as (
    {{ pair_keys('primaries', k.name, ['month', 'class_key'], ['facility_id', 'month']) }}
)
{%- endfor %}

select
    primaries.facility_id,
    primaries.month,
    primaries.census_withheld as average_daily_population_withheld,
    primaries.census_withheld as density_withheld,
    primaries.census_withheld as occupancy_in_use_withheld,
    {%- for k in kpis %}
    {%- if k.paired %}
    ({{ k.name }}_primary or {{ k.name }}_secondary.facility_id is not null)
    {%- else %}
    {{ k.name }}_primary
    {%- endif %}
        and {{ k.name }}_present as {{ k.name }}_withheld
    {%- if not loop.last %},{% endif %}
    {%- endfor %}
from primaries
{%- for k in kpis if k.paired %}
left join {{ k.name }}_secondary
    on {{ k.name }}_secondary.facility_id = primaries.facility_id
   and {{ k.name }}_secondary.month = primaries.month
{%- endfor %}
