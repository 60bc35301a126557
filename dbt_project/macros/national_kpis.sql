{#- The national KPIs by disclosure group: each group's columns are withheld
    together. base = the persons behind the rate (average day); count = a
    numerator of persons published nowhere else (1..4 withheld); rate: false
    = a sum of facility-days that mart_facility_daily protects cell by cell
    (no rule of its own); all_only: defined on the 'all' row only. Used by int_disclosure_national,
    mart_national_monthly and export_sdmx_national. -#}
{% macro national_kpi_groups() -%}
    {%- do return([
    {'name': 'census', 'base': 'average_daily_population', 'count': none, 'rate': false,
     'columns': ['average_daily_population', 'density', 'occupancy_in_use']},
    {'name': 'overcrowded', 'base': 'average_daily_population', 'count': none,
     'columns': ['share_in_overcrowded']},
    {'name': 'small_scale', 'all_only': true, 'base': 'average_daily_population', 'count': none,
     'columns': ['share_in_small_scale']},
    {'name': 'under_18', 'all_only': true, 'base': 'avg_under_18', 'count': 'avg_under_18_small',
     'columns': ['vulnerable_in_small_scale_under_18']},
    {'name': 'age_18_22', 'all_only': true, 'base': 'avg_18_22', 'count': 'avg_18_22_small',
     'columns': ['vulnerable_in_small_scale_18_22']},
    {'name': 'female', 'all_only': true, 'base': 'avg_female', 'count': 'avg_female_small',
     'columns': ['vulnerable_in_small_scale_female']},
    {'name': 'custodial', 'base': 'custodial_avg_population', 'count': none,
     'columns': ['detainees_per_custodial_fte', 'custodial_fte']},
    {'name': 'rehab', 'base': 'rehab_avg_population', 'count': none,
     'columns': ['rehab_staff_per_100', 'rehab_fte']},
    {'name': 'work', 'base': 'work_avg_population', 'count': 'in_paid_work',
     'columns': ['work_participation']},
    {'name': 'education', 'base': 'education_avg_population', 'count': 'in_education',
     'columns': ['education_participation']},
    {'name': 'digital', 'base': 'digital_avg_population', 'count': 'with_digital_contact',
     'columns': ['digital_contact_share']},
    {'name': 'plan', 'base': 'releases_total', 'count': 'releases_with_plan',
     'columns': ['release_plan_coverage']},
]) -%}
{%- endmacro %}
