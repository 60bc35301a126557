-- Reference for `make bench`: the computational core of the published marts, straight
-- from the delivered files, in one hand-written DuckDB script: no dbt, no Great
-- Expectations, no Airflow, no per-delivery validation. It is the engine's limit on
-- this machine for the same joins and aggregations the pipeline does. Thresholds are
-- the defaults of config/penstat.toml, written out (this script is a yardstick, not
-- the pipeline). {archive} is replaced by $PENSTAT_HOME/archive.

SET preserve_insertion_order = false;

CREATE TABLE register AS
SELECT * EXCLUDE (filename),
       coalesce(valid_to, DATE '9999-12-31') AS valid_until,
       CASE WHEN capacity_places <= 30 THEN 'small'
            WHEN capacity_places >= 200 THEN 'large' ELSE 'medium' END AS scale_class
FROM read_csv('{archive}/facility_register/*/facilities.csv', header = true, filename = true,
              columns = {'facility_id': 'VARCHAR', 'name': 'VARCHAR', 'region': 'VARCHAR',
                         'facility_type': 'VARCHAR', 'security_level': 'VARCHAR',
                         'capacity_places': 'INTEGER', 'operational_capacity': 'INTEGER',
                         'living_group_size': 'INTEGER', 'community_integrated': 'BOOLEAN',
                         'valid_from': 'DATE', 'valid_to': 'DATE'})
WHERE filename = (SELECT max(filename) FROM read_csv('{archive}/facility_register/*/facilities.csv',
                                                      header = true, filename = true));

CREATE TABLE facility_daily AS
SELECT o.facility_id, o.census_date, r.facility_type, r.scale_class, r.capacity_places,
       o.places_out_of_use, o.population,
       100.0 * o.population / nullif(r.capacity_places, 0) AS density,
       100.0 * o.population / nullif(r.capacity_places - o.places_out_of_use, 0) AS occupancy_in_use,
       CASE WHEN 100.0 * o.population / r.capacity_places >= 150 THEN 'critical'
            WHEN 100.0 * o.population / r.capacity_places >= 120 THEN 'severe'
            WHEN 100.0 * o.population / r.capacity_places > 100 THEN 'over'
            ELSE 'none' END AS overcrowding_tier,
       o.population_female, o.population_under_18, o.population_18_22,
       o.admissions, o.releases
FROM read_csv('{archive}/occupancy/*/occupancy.csv', header = true,
              columns = {'facility_id': 'VARCHAR', 'census_date': 'DATE',
                         'places_out_of_use': 'INTEGER', 'population': 'INTEGER',
                         'population_female': 'INTEGER', 'population_remand': 'INTEGER',
                         'population_under_18': 'INTEGER', 'population_18_22': 'INTEGER',
                         'admissions': 'INTEGER', 'releases': 'INTEGER'}) o
JOIN register r ON r.facility_id = o.facility_id
              AND o.census_date BETWEEN r.valid_from AND r.valid_until;

CREATE TABLE staffing AS
SELECT facility_id, CAST(month || '-01' AS DATE) AS month,
       sum(fte) FILTER (WHERE staff_category = 'custodial') AS custodial_fte,
       sum(fte) FILTER (WHERE staff_category IN ('rehabilitation', 'education', 'healthcare'))
           AS rehab_fte,
       sum(vacancies_fte) AS vacancies_fte, sum(fte) AS fte,
       sum(trained_last_24m) AS trained, sum(headcount) AS headcount
FROM read_csv('{archive}/staffing/*/staffing.csv', header = true,
              columns = {'facility_id': 'VARCHAR', 'month': 'VARCHAR', 'staff_category': 'VARCHAR',
                         'fte': 'DOUBLE', 'headcount': 'INTEGER', 'vacancies_fte': 'DOUBLE',
                         'trained_last_24m': 'INTEGER'})
GROUP BY ALL;

CREATE TABLE regime AS
SELECT facility_id, CAST(month || '-01' AS DATE) AS month, avg_population, in_paid_work,
       in_education, with_digital_contact, releases_total, releases_with_plan
FROM read_csv('{archive}/occupancy/*/regime.csv', header = true,
              columns = {'facility_id': 'VARCHAR', 'month': 'VARCHAR', 'avg_population': 'DOUBLE',
                         'in_paid_work': 'INTEGER', 'in_education': 'INTEGER',
                         'with_digital_contact': 'INTEGER', 'avg_hours_out_of_cell': 'DOUBLE',
                         'releases_total': 'INTEGER', 'releases_with_plan': 'INTEGER'});

CREATE TABLE facility_monthly AS
WITH days AS (
    SELECT facility_id, date_trunc('month', census_date)::DATE AS month,
           arg_max(facility_type, census_date) AS facility_type,
           mode(scale_class) AS scale_class,
           count(*) AS days, sum(population) AS population_days,
           sum(capacity_places) AS capacity_days,
           sum(admissions) AS admissions, sum(releases) AS releases
    FROM facility_daily GROUP BY ALL
)
SELECT d.facility_id, d.month, d.facility_type, d.scale_class,
       d.population_days / d.days AS average_daily_population,
       100.0 * d.population_days / nullif(d.capacity_days, 0) AS density,
       (d.admissions + d.releases) / nullif(d.population_days / d.days, 0) AS turnover,
       d.population_days / nullif(d.releases, 0) AS avg_length_of_stay_days,
       g.avg_population / nullif(s.custodial_fte, 0) AS detainees_per_custodial_fte,
       100.0 * s.rehab_fte / nullif(g.avg_population, 0) AS rehab_staff_per_100,
       s.vacancies_fte / nullif(s.fte + s.vacancies_fte, 0) AS vacancy_rate,
       s.trained / nullif(s.headcount, 0) AS staff_trained_share,
       g.in_paid_work / nullif(g.avg_population, 0) AS work_participation,
       g.in_education / nullif(g.avg_population, 0) AS education_participation,
       g.with_digital_contact / nullif(g.avg_population, 0) AS digital_contact_share,
       g.releases_with_plan / nullif(g.releases_total, 0) AS release_plan_coverage
FROM days d
LEFT JOIN regime g USING (facility_id, month)
LEFT JOIN staffing s USING (facility_id, month);

CREATE TABLE national_monthly AS
WITH by_class AS (
    SELECT date_trunc('month', census_date)::DATE AS month, scale_class,
           count(DISTINCT facility_id) AS facilities,
           count(DISTINCT census_date) AS days,
           sum(capacity_places) AS capacity_days, sum(population) AS population_days,
           sum(population) FILTER (WHERE density > 100) AS overcrowded_days
    FROM facility_daily GROUP BY ALL
),
all_days AS (
    SELECT date_trunc('month', census_date)::DATE AS month, 'all' AS scale_class,
           count(DISTINCT facility_id) AS facilities,
           count(DISTINCT census_date) AS days,
           sum(capacity_places) AS capacity_days, sum(population) AS population_days,
           sum(population) FILTER (WHERE density > 100) AS overcrowded_days,
           sum(population) FILTER (WHERE scale_class = 'small') AS small_days,
           sum(population_under_18) FILTER (WHERE scale_class = 'small')
               / nullif(sum(population_under_18), 0) AS under_18_small,
           sum(population_18_22) FILTER (WHERE scale_class = 'small')
               / nullif(sum(population_18_22), 0) AS young_small,
           sum(population_female) FILTER (WHERE scale_class = 'small')
               / nullif(sum(population_female), 0) AS female_small
    FROM facility_daily GROUP BY ALL
)
SELECT month, scale_class, facilities, capacity_days / days AS capacity_places,
       population_days / days AS average_daily_population,
       100.0 * population_days / capacity_days AS density,
       coalesce(overcrowded_days, 0) / population_days AS share_in_overcrowded,
       NULL::DOUBLE AS share_in_small_scale, NULL::DOUBLE AS vulnerable_in_small_scale_under_18,
       NULL::DOUBLE AS vulnerable_in_small_scale_18_22,
       NULL::DOUBLE AS vulnerable_in_small_scale_female
FROM by_class
UNION ALL
SELECT month, scale_class, facilities, capacity_days / days, population_days / days,
       100.0 * population_days / capacity_days, coalesce(overcrowded_days, 0) / population_days,
       small_days / population_days, under_18_small, young_small, female_small
FROM all_days;

CREATE TABLE recidivism_cohort AS
WITH releases AS (
    SELECT * FROM read_csv('{archive}/recidivism/*/releases.csv', header = true,
                           columns = {'release_id': 'VARCHAR', 'person_ref': 'VARCHAR',
                                      'release_date': 'DATE', 'facility_id': 'VARCHAR',
                                      'days_in_small_scale': 'INTEGER', 'sex': 'VARCHAR',
                                      'birth_year': 'INTEGER', 'index_offence': 'VARCHAR',
                                      'prior_convictions': 'INTEGER', 'sentence_days': 'INTEGER'})
),
reconvictions AS (
    SELECT * FROM read_csv('{archive}/recidivism/*/reconvictions.csv', header = true,
                           columns = {'case_id': 'VARCHAR', 'person_ref': 'VARCHAR',
                                      'offence_date': 'DATE', 'conviction_date': 'DATE',
                                      'offence': 'VARCHAR', 'custodial': 'BOOLEAN'})
),
outcomes AS (
    SELECT r.release_id, year(r.release_date) AS cohort_year, g.scale_class,
           bool_or(c.offence_date > r.release_date
                   AND c.offence_date <= r.release_date + INTERVAL 24 MONTH) AS recid_2y
    FROM releases r
    LEFT JOIN register g ON g.facility_id = r.facility_id
                        AND r.release_date BETWEEN g.valid_from AND g.valid_until
    LEFT JOIN reconvictions c ON c.person_ref = r.person_ref
    GROUP BY ALL
)
SELECT cohort_year, 'scale_class' AS group_type, scale_class AS group_value,
       count(*) AS cohort_size, avg(coalesce(recid_2y, false)::INTEGER) AS recid_2y_general
FROM outcomes
WHERE make_date(cohort_year, 12, 31) + INTERVAL 24 MONTH < (
    SELECT max(CAST(created_at AS TIMESTAMP))::DATE
    FROM read_json_auto('{archive}/recidivism/*/manifest.json'))
GROUP BY ALL;
