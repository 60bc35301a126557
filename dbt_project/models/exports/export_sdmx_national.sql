-- Grain: one row per observation of the national series (freq, indic,
-- scale, unit, time_period), in the layout of Eurostat's SDMX-CSV
-- (penstat/publication/sdmx.py adds DATAFLOW, LAST UPDATE and geo and writes it
-- into every publication). Monthly (freq M): the national conditions, staff
-- and regime KPIs of mart_national_monthly by scale class (TOTAL = the 'all'
-- row); annual (freq A): reoffending of the mature release cohorts by scale
-- class of the facility of final discharge (TOTAL = the national rate).
-- Shares are in percent (unit PC), persons and places in numbers (NR),
-- ratios as such (RT). A withheld value has an empty obs_value and obs_flag
-- c; other flags (b, e, p) are the row's flags.
{%- set kpis = national_kpi_groups() %}
{%- set kpi_of = {} %}
{%- for k in kpis %}{% for column in k.columns %}{% do kpi_of.update({column: k.name}) %}{% endfor %}{% endfor %}
{%- set monthly = [
    ('facilities', 'FAC', 'NR', 1),
    ('capacity_places', 'CAP_AVG', 'NR', 1),
    ('average_daily_population', 'POP_AVG', 'NR', 1),
    ('density', 'DENS', 'PC', 1),
    ('occupancy_in_use', 'OCC_INUSE', 'PC', 1),
    ('out_of_use_share', 'OUT_OF_USE', 'PC', 100),
    ('share_in_overcrowded', 'SHR_OVERCROWD', 'PC', 100),
    ('share_in_small_scale', 'SHR_SMALL', 'PC', 100),
    ('vulnerable_in_small_scale_under_18', 'SHR_SMALL_Y_LT18', 'PC', 100),
    ('vulnerable_in_small_scale_18_22', 'SHR_SMALL_Y18-22', 'PC', 100),
    ('vulnerable_in_small_scale_female', 'SHR_SMALL_F', 'PC', 100),
    ('detainees_per_custodial_fte', 'DET_CUST_FTE', 'RT', 1),
    ('rehab_staff_per_100', 'REHAB_FTE_P100', 'RT', 1),
    ('work_participation', 'WORK', 'PC', 100),
    ('education_participation', 'EDUC', 'PC', 100),
    ('digital_contact_share', 'DIGITAL', 'PC', 100),
    ('release_plan_coverage', 'REL_PLAN', 'PC', 100),
] %}
{%- set annual = [
    ('cohort_size', 'RELEASED', 'NR', 1, 'cohort_size'),
    ('recid_2y_general', 'RECID_2Y_GEN', 'PC', 100, 'rates'),
    ('recid_2y_custodial', 'RECID_2Y_CUST', 'PC', 100, 'rates'),
    ('proven_reoffending_1y', 'PROVEN_1Y', 'PC', 100, 'rates'),
    ('reoffences_per_reoffender_1y', 'PROVEN_1Y_FREQ', 'RT', 1, 'frequency'),
    ('observed_expected', 'RECID_2Y_OE', 'RT', 1, 'model'),
    ('adjusted_rate', 'RECID_2Y_ADJ', 'PC', 100, 'model'),
    ('ci_low', 'RECID_2Y_ADJ_LB', 'PC', 100, 'model'),
    ('ci_high', 'RECID_2Y_ADJ_UB', 'PC', 100, 'model'),
] %}
with national as (
    select kpis.*, disclosure.* exclude (month, scale_class)
    from {{ ref('int_national_month_kpis') }} as kpis
    join {{ ref('int_disclosure_national') }} as disclosure using (month, scale_class)
),

national_flags as (
    select month, scale_class, flag from {{ ref('mart_national_monthly') }}
),

monthly as (
    {%- for column, indic, unit, factor in monthly %}
    select
        'M' as freq,
        '{{ indic }}' as indic,
        upper(case national.scale_class when 'all' then 'total' else national.scale_class end)
            as scale,
        '{{ unit }}' as unit,
        strftime(national.month, '%Y-%m') as time_period,
        {%- if column in kpi_of %}
        case when not national.{{ kpi_of[column] }}_withheld
            then {{ factor }} * national.{{ column }} end as obs_value,
        national.{{ kpi_of[column] }}_withheld as withheld,
        {%- else %}
        {{ factor }} * national.{{ column }} as obs_value,
        false as withheld,
        {%- endif %}
        national_flags.flag as row_flag,
        national.{{ column }} is not null as present
    from national
    join national_flags using (month, scale_class)
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

cohorts as (
    select * from {{ ref('mart_recidivism_cohort') }} where group_type = 'scale_class'
),

annual as (
    {%- for column, indic, unit, factor, group in annual %}
    select
        'A' as freq,
        '{{ indic }}' as indic,
        upper(group_value) as scale,
        '{{ unit }}' as unit,
        cast(cohort_year as varchar) as time_period,
        {{ factor }} * {{ column }} as obs_value,
        {%- if group == 'cohort_size' %}
        cohort_size is null as withheld,
        {%- elif group == 'rates' %}
        recid_2y_general is null as withheld,
        {%- elif group == 'model' %}
        -- O/E null beside a published rate: the risk model was not fitted (no value)
        recid_2y_general is null and exists (
            select 1 from cohorts as fitted
            where fitted.cohort_year = cohorts.cohort_year and fitted.observed_expected is not null
        ) as withheld,
        {%- else %}
        reoffences_per_reoffender_1y is null and proven_reoffending_1y is not null as withheld,
        {%- endif %}
        flag as row_flag,
        {{ column }} is not null as present
    from cohorts
    union all
    {%- endfor %}
    -- the national rate of each mature cohort year
    select distinct
        'A' as freq,
        'RECID_2Y_GEN' as indic,
        'TOTAL' as scale,
        'PC' as unit,
        cast(cohort_year as varchar) as time_period,
        100 * national_rate as obs_value,
        false as withheld,
        cast(null as varchar) as row_flag,
        national_rate is not null as present
    from cohorts
),

observations as (
    select * from monthly
    union all
    select * from annual
)

select
    freq,
    indic,
    scale,
    unit,
    time_period,
    cast(obs_value as double) as obs_value,
    -- c where withheld; the row's other letters (b, e, p) otherwise (m belongs to the
    -- row's empty values, which are no observations)
    case
        when withheld then 'c'
        else nullif(replace(replace(coalesce(row_flag, ''), 'c', ''), 'm', ''), '')
    end as obs_flag
from observations
-- an empty value that is not withheld (not applicable, not delivered) is no observation
where present or withheld
order by freq desc, indic, scale, time_period
