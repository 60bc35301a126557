-- Reference for `make bench`: the published marts, straight from the delivered files, in
-- one hand-written DuckDB script: no dbt, no Great Expectations, no Airflow, no
-- per-delivery validation. It is the engine's limit on this machine for the same work
-- the pipeline does, and tests/integration/test_benchmark_reference.py checks, at scale 1, that its
-- marts equal the pipeline's published marts.
--
-- {archive} is replaced by $PENSTAT_HOME/archive (benchmarks/stages.py::reference).
-- Thresholds are the defaults of config/penstat.toml, written out as literals (this
-- script is a yardstick, not the pipeline): small <= 30 places, optimal 8..25, large
-- >= 200; overcrowding tiers > 100 / >= 120 / >= 150; disclosure: persons 1..4
-- withheld, rate base >= 30, recidivism cohort >= 60; follow-up 24 + 6 and 12 + 6
-- months; majority of the sentence in small-scale units >= 0.5.
--
-- What it computes, in schema marts, with the published columns (gate/suites.py
-- MART_COLUMNS) in their order and types:
--   mart_facility_daily, mart_facility_monthly, mart_national_monthly,
--   mart_recidivism_cohort, mart_facility_snapshot, mart_scale_class_facts,
--   mart_national_density_comparison (its facility-census rows)
-- with the register history (SCD2 from the latest register snapshot), "the latest
-- delivery wins per key" (corrections supersede), the Eurostat flags (b, c, e, p), the
-- overcrowding tiers and disclosure control (primary, secondary, partner suppression).
--
-- What it leaves out:
--   * the statsmodels risk model (int_recidivism_expected.py) and the marginal
--     standardisation (int_recidivism_standardised.py): observed_expected,
--     observed_expected_se, adjusted_rate, ci_low, ci_high and the standardised_*
--     columns of mart_recidivism_cohort are NULL here (SQL cannot fit the logistic
--     model); the test compares every other column. The flag does not depend on them.
--   * mart_delivery_status: it depends on the ledger and on today's date.
--   * contract v2 feeds (reference_register, recidivism_cohort, national_reference):
--     the synthetic system sends none, so mart_national_reference,
--     mart_return_to_prison_cohort and the Eurostat rows of
--     mart_national_density_comparison are not computed.
--
-- Deliveries as the archive holds them: archive/<feed>/<delivery_id>/<file>.csv plus
-- manifest.json. The ledger's load order (delivery_seq) is taken as the manifests'
-- created_at, then the folder name (the pipeline ingests oldest manifest first); a
-- byte-identical resend (same file checksums as an earlier delivery of the feed) is
-- ignored, as ingestion does. Files are read as the synthetic senders write them
-- (UTF-8, comma, '.' decimals); other declared dialects and Parquet are not handled.
-- person_ref is held raw in the archive (the warehouse holds only its HMAC): the
-- reference only matches releases to reconvictions of the same person, for which the
-- trimmed raw identifier is as good as the pseudonym (ingestion hashes the trimmed
-- value). No identifier is written to any table here.

SET preserve_insertion_order = false;
CREATE SCHEMA IF NOT EXISTS marts;

-- ---------------------------------------------------------------- deliveries ----------
CREATE TEMP TABLE delivery AS
WITH m AS (
    SELECT feed, delivery_id, replaces,
           timezone('UTC', CAST(created_at AS TIMESTAMPTZ)) AS created_at,
           regexp_extract(filename, '([^/]+)/manifest\.json$', 1) AS folder,
           left(filename, length(filename) - length('/manifest.json')) AS dir,
           array_to_string(list_sort(list_transform(files, lambda f: f.name || ':' || f.sha256)),
                           '|') AS content
    FROM read_json('{archive}/*/*/manifest.json', filename = true, format = 'auto',
                   columns = {'feed': 'VARCHAR', 'delivery_id': 'VARCHAR',
                              'created_at': 'VARCHAR', 'replaces': 'VARCHAR',
                              'files': 'STRUCT(name VARCHAR, sha256 VARCHAR, "rows" BIGINT)[]'})
    QUALIFY row_number() OVER (PARTITION BY feed, content ORDER BY created_at, folder) = 1
)
SELECT *, CAST(created_at AS DATE) AS created_date,
       row_number() OVER (PARTITION BY feed ORDER BY created_at, folder) AS seq
FROM m;

-- ---------------------------------------------------- register history (SCD 2) -------
-- The latest register delivery is the full register; one row per validity interval.
CREATE TEMP TABLE history AS
WITH reg AS (
    SELECT r.* EXCLUDE (filename)
    FROM read_csv('{archive}/facility_register/*/facilities.csv', header = true,
                  filename = true,
                  columns = {'facility_id': 'VARCHAR', 'name': 'VARCHAR', 'region': 'VARCHAR',
                             'facility_type': 'VARCHAR', 'security_level': 'VARCHAR',
                             'capacity_places': 'BIGINT', 'operational_capacity': 'BIGINT',
                             'living_group_size': 'BIGINT', 'community_integrated': 'BOOLEAN',
                             'valid_from': 'DATE', 'valid_to': 'DATE'}) r
    JOIN delivery d ON r.filename = d.dir || '/facilities.csv'
    WHERE d.feed = 'facility_register'
      AND d.seq = (SELECT max(seq) FROM delivery WHERE feed = 'facility_register')
),
versions AS (
    SELECT facility_id, valid_from, coalesce(valid_to, DATE '9999-12-31') AS valid_to,
           capacity_places, operational_capacity, facility_type, security_level,
           community_integrated,
           CASE WHEN capacity_places IS NULL THEN NULL
                WHEN capacity_places <= 30 THEN 'small'
                WHEN capacity_places >= 200 THEN 'large' ELSE 'medium' END AS scale_class
    FROM reg
)
SELECT *,
       coalesce(scale_class = 'small' AND capacity_places BETWEEN 8 AND 25, false)
           AS is_small_optimal,
       coalesce(scale_class = 'small' AND community_integrated
                AND (security_level IN ('low', 'open')
                     OR facility_type IN ('detention_house', 'transition_house')), false)
           AS is_detention_house,
       coalesce(lag(facility_type) OVER w IS DISTINCT FROM facility_type
                OR lag(scale_class) OVER w IS DISTINCT FROM scale_class, false)
           AND lag(facility_id) OVER w IS NOT NULL AS is_series_break
FROM versions
WINDOW w AS (PARTITION BY facility_id ORDER BY valid_from);

-- ------------------------------------------------------------ facility days ------------
-- The census row of the latest delivery per (facility, day), with the register version
-- in force that day, the day's rates and what disclosure control needs.
CREATE TEMP TABLE days AS
WITH delivered AS (
    SELECT o.* EXCLUDE (filename), d.seq, d.replaces IS NOT NULL AS is_correction
    FROM read_csv('{archive}/occupancy/*/occupancy.csv', header = true, filename = true,
                  columns = {'facility_id': 'VARCHAR', 'census_date': 'DATE',
                             'places_out_of_use': 'BIGINT', 'population': 'BIGINT',
                             'population_female': 'BIGINT', 'population_remand': 'BIGINT',
                             'population_under_18': 'BIGINT', 'population_18_22': 'BIGINT',
                             'admissions': 'BIGINT', 'releases': 'BIGINT'}) o
    JOIN delivery d ON o.filename = d.dir || '/occupancy.csv'
),
-- Ingestion rejects a delivery that holds a key twice, or a key delivered before unless
-- it `replaces` (corrects) that key's latest delivery: a key is in several deliveries
-- only through corrections, and the latest correction wins. Cheaper than ranking every
-- row by delivery: only the (few) corrected keys are looked up.
corrected AS (
    SELECT facility_id, census_date, max(seq) AS seq
    FROM delivered WHERE is_correction GROUP BY facility_id, census_date
),
census AS (
    SELECT o.* EXCLUDE (seq, is_correction)
    FROM delivered o
    LEFT JOIN corrected c USING (facility_id, census_date)
    WHERE c.seq IS NULL OR o.seq = c.seq
),
joined AS (
    SELECT c.facility_id, c.census_date,
           CAST(date_trunc('month', c.census_date) AS DATE) AS month,
           h.valid_from AS version, h.facility_type, h.scale_class, h.is_small_optimal,
           h.is_detention_house, h.capacity_places, h.operational_capacity,
           coalesce(c.census_date = h.valid_from AND h.is_series_break, false)
               AS is_series_break,
           c.places_out_of_use,
           CASE WHEN h.capacity_places IS NOT NULL
                THEN greatest(h.capacity_places - coalesce(c.places_out_of_use, 0), 0) END
               AS places_in_use,
           c.population, c.population_female, c.population_under_18, c.population_18_22,
           c.admissions, c.releases,
           (100 * CAST(c.population AS DOUBLE)) / nullif(CAST(h.capacity_places AS DOUBLE), 0)
               AS density,
           (100 * CAST(c.population AS DOUBLE))
               / nullif(CAST(greatest(h.capacity_places - c.places_out_of_use, 0) AS DOUBLE), 0)
               AS occupancy_in_use
    FROM census c
    LEFT JOIN history h
        ON h.facility_id = c.facility_id AND c.census_date BETWEEN h.valid_from AND h.valid_to
)
SELECT *,
       CASE WHEN density IS NULL THEN NULL WHEN density >= 150 THEN 'critical'
            WHEN density >= 120 THEN 'severe' WHEN density > 100 THEN 'over'
            ELSE 'none' END AS overcrowding_tier,
       coalesce(scale_class, 'unknown') AS class_key,
       coalesce(density > 100, false) AS is_overcrowded,
       coalesce(population > 0 AND population < 5, false) AS is_primary
FROM joined;

-- ------------------------------------------------ disclosure control of the days -------
-- Protection unit U = (facility, month, class that day, overcrowded that day). Primary:
-- population 1..4. In a unit with a primary, the smallest other positive day too
-- (secondary). A unit with no such day is open: its facility-month census values are
-- withheld and a partner day (smallest positive, of another facility-month of the same
-- month, class and overcrowding) is withheld with its facility-month; without a partner
-- the national class and 'all' census values of the month are withheld.
CREATE TEMP TABLE units AS
SELECT facility_id, month, class_key, is_overcrowded,
       count(*) FILTER (WHERE NOT is_primary AND population > 0) AS candidates,
       arg_min(census_date, (population, census_date))
           FILTER (WHERE NOT is_primary AND population > 0) AS secondary_date
FROM days
GROUP BY ALL
HAVING count(*) FILTER (WHERE is_primary) > 0;

CREATE TEMP TABLE partners AS
SELECT d.facility_id, d.census_date, d.month, d.class_key, d.is_overcrowded
FROM days d
JOIN (SELECT DISTINCT month, class_key, is_overcrowded FROM units WHERE candidates = 0) g
    USING (month, class_key, is_overcrowded)
WHERE d.population > 0 AND NOT d.is_primary
  AND NOT EXISTS (SELECT 1 FROM units o WHERE o.candidates = 0
                  AND o.facility_id = d.facility_id AND o.month = d.month)
  AND NOT EXISTS (SELECT 1 FROM units s WHERE s.facility_id = d.facility_id
                  AND s.secondary_date = d.census_date)
QUALIFY row_number() OVER (PARTITION BY d.month, d.class_key, d.is_overcrowded
                           ORDER BY d.population, d.facility_id, d.census_date) = 1;

-- days withheld besides the primaries (secondary, partner)
CREATE TEMP TABLE withheld_days AS
SELECT facility_id, secondary_date AS census_date, 'secondary' AS suppression
FROM units WHERE secondary_date IS NOT NULL
UNION ALL
SELECT facility_id, census_date, 'partner' FROM partners;

-- facility-months whose census values are withheld (open units and partners)
CREATE TEMP TABLE census_withheld AS
SELECT DISTINCT facility_id, month FROM (
    SELECT facility_id, month FROM units WHERE candidates = 0
    UNION ALL
    SELECT facility_id, month FROM partners
);

-- (month, class) whose national census values are withheld: an open unit, no partner
CREATE TEMP TABLE census_fallback AS
SELECT DISTINCT u.month, u.class_key
FROM units u
WHERE u.candidates = 0
  AND NOT EXISTS (SELECT 1 FROM partners p WHERE p.month = u.month
                  AND p.class_key = u.class_key AND p.is_overcrowded = u.is_overcrowded);

CREATE TABLE marts.mart_facility_daily AS
SELECT d.facility_id, d.census_date, d.facility_type, d.scale_class,
       d.capacity_places, d.places_out_of_use,
       CASE WHEN NOT s.is_suppressed THEN d.population END AS population,
       CASE WHEN NOT s.is_suppressed THEN d.density END AS density,
       CASE WHEN NOT s.is_suppressed THEN d.occupancy_in_use END AS occupancy_in_use,
       CASE WHEN NOT s.is_suppressed THEN d.overcrowding_tier END AS overcrowding_tier,
       nullif(concat(CASE WHEN d.is_series_break THEN 'b' ELSE '' END,
                     CASE WHEN s.is_suppressed THEN 'c' ELSE '' END), '') AS flag
FROM days d
LEFT JOIN (SELECT facility_id, census_date, true AS is_suppressed FROM withheld_days) w
    USING (facility_id, census_date),
LATERAL (SELECT d.is_primary OR coalesce(w.is_suppressed, false) AS is_suppressed) s;

-- ---------------------------------------------------------- facility months -----------
CREATE TEMP TABLE regime AS
SELECT g.facility_id, CAST(strptime(g.month, '%Y-%m') AS DATE) AS month,
       CAST(g.avg_population AS DECIMAL(18, 4)) AS avg_population,
       g.in_paid_work, g.in_education, g.with_digital_contact,
       g.releases_total, g.releases_with_plan
FROM read_csv('{archive}/occupancy/*/regime.csv', header = true, filename = true,
              columns = {'facility_id': 'VARCHAR', 'month': 'VARCHAR',
                         'avg_population': 'DOUBLE', 'in_paid_work': 'BIGINT',
                         'in_education': 'BIGINT', 'with_digital_contact': 'BIGINT',
                         'avg_hours_out_of_cell': 'DOUBLE', 'releases_total': 'BIGINT',
                         'releases_with_plan': 'BIGINT'}) g
JOIN delivery d ON g.filename = d.dir || '/regime.csv'
QUALIFY row_number() OVER (PARTITION BY g.facility_id, g.month ORDER BY d.seq DESC) = 1;

CREATE TEMP TABLE staff AS
WITH rows AS (
    SELECT s.facility_id, CAST(strptime(s.month, '%Y-%m') AS DATE) AS month,
           s.staff_category, CAST(s.fte AS DECIMAL(18, 4)) AS fte, s.headcount,
           CAST(s.vacancies_fte AS DECIMAL(18, 4)) AS vacancies_fte, s.trained_last_24m
    FROM read_csv('{archive}/staffing/*/staffing.csv', header = true, filename = true,
                  columns = {'facility_id': 'VARCHAR', 'month': 'VARCHAR',
                             'staff_category': 'VARCHAR', 'fte': 'DOUBLE',
                             'headcount': 'BIGINT', 'vacancies_fte': 'DOUBLE',
                             'trained_last_24m': 'BIGINT'}) s
    JOIN delivery d ON s.filename = d.dir || '/staffing.csv'
    QUALIFY row_number() OVER (PARTITION BY s.facility_id, s.month, s.staff_category
                               ORDER BY d.seq DESC) = 1
)
SELECT facility_id, month,
       CAST(sum(fte) FILTER (WHERE staff_category = 'custodial') AS DECIMAL(18, 4))
           AS custodial_fte,
       CAST(sum(fte) FILTER (WHERE staff_category IN ('rehabilitation', 'education',
                                                      'healthcare')) AS DECIMAL(18, 4))
           AS rehab_fte,
       CAST(sum(vacancies_fte) AS DECIMAL(18, 4)) AS vacancies_fte,
       CAST(sum(fte) FILTER (WHERE vacancies_fte IS NOT NULL) AS DECIMAL(18, 4))
           AS fte_with_vacancies_reported,
       CAST(sum(trained_last_24m) AS BIGINT) AS trained_last_24m,
       CAST(sum(headcount) FILTER (WHERE trained_last_24m IS NOT NULL) AS BIGINT)
           AS headcount_with_training_reported,
       -- by category, for the month-end snapshot (mart_facility_snapshot)
       CAST(sum(vacancies_fte) FILTER (WHERE staff_category = 'custodial') AS DOUBLE)
           AS custodial_vacancies_fte,
       CAST(sum(fte) FILTER (WHERE staff_category = 'custodial' AND vacancies_fte IS NOT NULL)
            AS DOUBLE) AS custodial_fte_with_vacancies,
       CAST(sum(fte) FILTER (WHERE staff_category = 'education') AS DOUBLE) AS education_fte,
       CAST(sum(fte) AS DOUBLE) AS staff_fte
FROM rows
GROUP BY facility_id, month;

CREATE TEMP TABLE months AS
WITH spine AS (
    SELECT facility_id, month FROM days
    UNION
    SELECT facility_id, month FROM regime
    UNION
    SELECT facility_id, month FROM staff
),
census AS (
    SELECT facility_id, month, count(*) AS days_reported,
           CAST(sum(population) AS BIGINT) AS population_days,
           CAST(sum(population) FILTER (WHERE capacity_places IS NOT NULL) AS BIGINT)
               AS population_days_with_capacity,
           CAST(sum(capacity_places) AS BIGINT) AS capacity_place_days,
           CAST(sum(places_out_of_use) AS BIGINT) AS places_out_of_use_days,
           CAST(sum(places_in_use) AS BIGINT) AS places_in_use_days,
           CAST(sum(population) FILTER (WHERE places_in_use IS NOT NULL) AS BIGINT)
               AS population_days_with_places_in_use,
           coalesce(bool_or(is_series_break), false) AS has_series_break,
           CAST(sum(admissions) AS BIGINT) AS admissions,
           CAST(sum(releases) AS BIGINT) AS releases
    FROM days
    GROUP BY facility_id, month
),
-- the attribute in force on most reported days (a tie: the one in force later)
version_days AS (
    SELECT facility_id, month, scale_class, facility_type, is_detention_house,
           count(*) AS n, max(census_date) AS last_date
    FROM days WHERE version IS NOT NULL
    GROUP BY facility_id, month, version, scale_class, facility_type, is_detention_house
),
majority_class AS (
    SELECT facility_id, month, arg_max(scale_class, (n, last_date)) AS scale_class
    FROM (SELECT facility_id, month, scale_class, sum(n) AS n, max(last_date) AS last_date
          FROM version_days WHERE scale_class IS NOT NULL GROUP BY ALL)
    GROUP BY ALL
),
majority_type AS (
    SELECT facility_id, month, arg_max(facility_type, (n, last_date)) AS facility_type
    FROM (SELECT facility_id, month, facility_type, sum(n) AS n, max(last_date) AS last_date
          FROM version_days WHERE facility_type IS NOT NULL GROUP BY ALL)
    GROUP BY ALL
),
majority_dh AS (
    SELECT facility_id, month, arg_max(is_detention_house, (n, last_date)) AS is_detention_house
    FROM (SELECT facility_id, month, is_detention_house, sum(n) AS n,
                 max(last_date) AS last_date
          FROM version_days WHERE is_detention_house IS NOT NULL GROUP BY ALL)
    GROUP BY ALL
),
-- register versions overlapping the month: days on the register, and the latest version
on_register AS (
    SELECT s.facility_id, s.month,
           CAST(sum(least(h.valid_to, last_day(s.month))
                    - greatest(h.valid_from, s.month) + 1) AS INTEGER) AS register_days,
           arg_max_null(h.scale_class, h.valid_from) AS scale_class,
           arg_max_null(h.facility_type, h.valid_from) AS facility_type,
           arg_max_null(h.is_detention_house, h.valid_from) AS is_detention_house
    FROM spine s
    JOIN history h ON h.facility_id = s.facility_id
                  AND h.valid_from <= last_day(s.month) AND h.valid_to >= s.month
    GROUP BY s.facility_id, s.month
)
SELECT s.facility_id, s.month,
       coalesce(mc.scale_class, r.scale_class) AS scale_class,
       coalesce(mt.facility_type, r.facility_type) AS facility_type,
       coalesce(md.is_detention_house, r.is_detention_house) AS is_detention_house,
       coalesce(r.register_days, 0) AS register_days,
       coalesce(c.days_reported, 0) AS days_reported,
       c.population_days, c.population_days_with_capacity, c.capacity_place_days,
       c.places_out_of_use_days, c.places_in_use_days, c.population_days_with_places_in_use,
       coalesce(c.has_series_break, false) AS has_series_break,
       c.admissions, c.releases,
       g.avg_population, g.in_paid_work, g.in_education, g.with_digital_contact,
       g.releases_total, g.releases_with_plan,
       f.custodial_fte, f.rehab_fte, f.vacancies_fte, f.fte_with_vacancies_reported,
       f.trained_last_24m, f.headcount_with_training_reported
FROM spine s
LEFT JOIN census c USING (facility_id, month)
LEFT JOIN majority_class mc USING (facility_id, month)
LEFT JOIN majority_type mt USING (facility_id, month)
LEFT JOIN majority_dh md USING (facility_id, month)
LEFT JOIN on_register r USING (facility_id, month)
LEFT JOIN regime g USING (facility_id, month)
LEFT JOIN staff f USING (facility_id, month);

-- facility-month KPIs (ratios of the month's sums) before disclosure control
CREATE TEMP TABLE month_kpis AS
WITH k AS (
    SELECT m.*,
           CAST(population_days AS DOUBLE) / nullif(CAST(nullif(days_reported, 0) AS DOUBLE), 0)
               AS average_daily_population,
           coalesce(last_day(m.month) > (SELECT max(census_date) FROM days), true)
               AS is_provisional
    FROM months m
)
SELECT facility_id, month, facility_type, scale_class, is_detention_house,
       average_daily_population,
       (100 * CAST(population_days_with_capacity AS DOUBLE))
           / nullif(CAST(capacity_place_days AS DOUBLE), 0) AS density,
       (100 * CAST(population_days_with_places_in_use AS DOUBLE))
           / nullif(CAST(places_in_use_days AS DOUBLE), 0) AS occupancy_in_use,
       CAST(places_out_of_use_days AS DOUBLE) / nullif(CAST(capacity_place_days AS DOUBLE), 0)
           AS out_of_use_share,
       CAST(admissions + releases AS DOUBLE)
           / nullif(CAST(average_daily_population AS DOUBLE), 0) AS turnover,
       CAST(population_days AS DOUBLE) / nullif(CAST(releases AS DOUBLE), 0)
           AS avg_length_of_stay_days,
       CAST(avg_population AS DOUBLE) / nullif(CAST(custodial_fte AS DOUBLE), 0)
           AS detainees_per_custodial_fte,
       (100 * CAST(rehab_fte AS DOUBLE)) / nullif(CAST(avg_population AS DOUBLE), 0)
           AS rehab_staff_per_100,
       CAST(vacancies_fte AS DOUBLE)
           / nullif(CAST(fte_with_vacancies_reported + vacancies_fte AS DOUBLE), 0)
           AS vacancy_rate,
       CAST(trained_last_24m AS DOUBLE)
           / nullif(CAST(headcount_with_training_reported AS DOUBLE), 0) AS staff_trained_share,
       CAST(in_paid_work AS DOUBLE) / nullif(CAST(avg_population AS DOUBLE), 0)
           AS work_participation,
       CAST(in_education AS DOUBLE) / nullif(CAST(avg_population AS DOUBLE), 0)
           AS education_participation,
       CAST(with_digital_contact AS DOUBLE) / nullif(CAST(avg_population AS DOUBLE), 0)
           AS digital_contact_share,
       CAST(releases_with_plan AS DOUBLE) / nullif(CAST(releases_total AS DOUBLE), 0)
           AS release_plan_coverage,
       releases, admissions, avg_population, fte_with_vacancies_reported + vacancies_fte
           AS staff_fte_with_vacancies, headcount_with_training_reported, trained_last_24m,
       in_paid_work, in_education, with_digital_contact, releases_total, releases_with_plan,
       is_provisional,
       days_reported > 0 AND days_reported < register_days AND NOT is_provisional
           AS is_estimated,
       has_series_break AS is_series_break,
       EXISTS (SELECT 1 FROM census_withheld w
               WHERE w.facility_id = k.facility_id AND w.month = k.month) AS census_withheld
FROM k;

-- Facility-month disclosure, one row per (facility-month, KPI): primary = base < 30
-- persons, or a person count 1..4, or (census KPIs) the census values withheld, or
-- (turnover, length of stay) the month still provisional; the
-- KPIs rolled up nationally (paired) by (month, class): where exactly one contributing
-- facility-month is withheld, also the contributing one with the smallest base.
CREATE TEMP TABLE month_withheld AS
WITH long AS (
    SELECT facility_id, month, class_key, census_withheld, is_provisional, UNNEST([
        {kpi: 'turnover', base: average_daily_population,
         cnt: CAST(admissions + releases AS DOUBLE), census: true, paired: false,
         present: turnover IS NOT NULL},
        {kpi: 'avg_length_of_stay_days', base: CAST(releases AS DOUBLE), cnt: NULL,
         census: true, paired: false, present: avg_length_of_stay_days IS NOT NULL},
        {kpi: 'detainees_per_custodial_fte', base: CAST(avg_population AS DOUBLE), cnt: NULL,
         census: false, paired: true, present: detainees_per_custodial_fte IS NOT NULL},
        {kpi: 'rehab_staff_per_100', base: CAST(avg_population AS DOUBLE), cnt: NULL,
         census: false, paired: true, present: rehab_staff_per_100 IS NOT NULL},
        {kpi: 'vacancy_rate', base: CAST(staff_fte_with_vacancies AS DOUBLE), cnt: NULL,
         census: false, paired: false, present: vacancy_rate IS NOT NULL},
        {kpi: 'staff_trained_share', base: CAST(headcount_with_training_reported AS DOUBLE),
         cnt: CAST(trained_last_24m AS DOUBLE), census: false, paired: false,
         present: staff_trained_share IS NOT NULL},
        {kpi: 'work_participation', base: CAST(avg_population AS DOUBLE),
         cnt: CAST(in_paid_work AS DOUBLE), census: false, paired: true,
         present: work_participation IS NOT NULL},
        {kpi: 'education_participation', base: CAST(avg_population AS DOUBLE),
         cnt: CAST(in_education AS DOUBLE), census: false, paired: true,
         present: education_participation IS NOT NULL},
        {kpi: 'digital_contact_share', base: CAST(avg_population AS DOUBLE),
         cnt: CAST(with_digital_contact AS DOUBLE), census: false, paired: true,
         present: digital_contact_share IS NOT NULL},
        {kpi: 'release_plan_coverage', base: CAST(releases_total AS DOUBLE),
         cnt: CAST(releases_with_plan AS DOUBLE), census: false, paired: true,
         present: release_plan_coverage IS NOT NULL}
    ]) AS k
    FROM (SELECT *, coalesce(scale_class, 'unknown') AS class_key FROM month_kpis)
),
flat AS (
    SELECT facility_id, month, class_key, k.kpi, k.base, k.paired, k.present,
           coalesce(k.base < 30, false) OR coalesce(k.cnt > 0 AND k.cnt < 5, false)
               OR (k.census AND census_withheld)
               -- the flows of a month still open (day after day: a day's flows)
               OR (k.kpi IN ('turnover', 'avg_length_of_stay_days')
                   AND coalesce(is_provisional, true)) AS is_primary
    FROM long
),
ranked AS (
    SELECT *,
           count(*) FILTER (WHERE present AND is_primary)
               OVER (PARTITION BY kpi, month, class_key) AS primaries_in_group,
           row_number() OVER (PARTITION BY kpi, month, class_key, present AND NOT is_primary
                              ORDER BY base, facility_id) AS rank_in_group
    FROM flat
)
SELECT facility_id, month,
       bool_or(withheld) FILTER (WHERE kpi = 'turnover') AS turnover,
       bool_or(withheld) FILTER (WHERE kpi = 'avg_length_of_stay_days') AS avg_length_of_stay_days,
       bool_or(withheld) FILTER (WHERE kpi = 'detainees_per_custodial_fte')
           AS detainees_per_custodial_fte,
       bool_or(withheld) FILTER (WHERE kpi = 'rehab_staff_per_100') AS rehab_staff_per_100,
       bool_or(withheld) FILTER (WHERE kpi = 'vacancy_rate') AS vacancy_rate,
       bool_or(withheld) FILTER (WHERE kpi = 'staff_trained_share') AS staff_trained_share,
       bool_or(withheld) FILTER (WHERE kpi = 'work_participation') AS work_participation,
       bool_or(withheld) FILTER (WHERE kpi = 'education_participation')
           AS education_participation,
       bool_or(withheld) FILTER (WHERE kpi = 'digital_contact_share') AS digital_contact_share,
       bool_or(withheld) FILTER (WHERE kpi = 'release_plan_coverage') AS release_plan_coverage,
       bool_or(withheld) AS any_withheld
FROM (
    SELECT *, present AND (is_primary
              OR (paired AND NOT is_primary AND primaries_in_group = 1 AND rank_in_group = 1))
              AS withheld
    FROM ranked
)
GROUP BY facility_id, month;

CREATE TABLE marts.mart_facility_monthly AS
SELECT k.facility_id, k.month, k.facility_type, k.scale_class, k.is_detention_house,
       CASE WHEN NOT k.census_withheld THEN k.average_daily_population END
           AS average_daily_population,
       CASE WHEN NOT k.census_withheld THEN k.density END AS density,
       CASE WHEN NOT w.turnover THEN k.turnover END AS turnover,
       CASE WHEN NOT w.avg_length_of_stay_days THEN k.avg_length_of_stay_days END
           AS avg_length_of_stay_days,
       CASE WHEN NOT w.detainees_per_custodial_fte THEN k.detainees_per_custodial_fte END
           AS detainees_per_custodial_fte,
       CASE WHEN NOT w.rehab_staff_per_100 THEN k.rehab_staff_per_100 END
           AS rehab_staff_per_100,
       CASE WHEN NOT w.vacancy_rate THEN k.vacancy_rate END AS vacancy_rate,
       CASE WHEN NOT w.staff_trained_share THEN k.staff_trained_share END
           AS staff_trained_share,
       CASE WHEN NOT w.work_participation THEN k.work_participation END
           AS work_participation,
       CASE WHEN NOT w.education_participation THEN k.education_participation END
           AS education_participation,
       CASE WHEN NOT w.digital_contact_share THEN k.digital_contact_share END
           AS digital_contact_share,
       CASE WHEN NOT w.release_plan_coverage THEN k.release_plan_coverage END
           AS release_plan_coverage,
       nullif(concat(
           CASE WHEN k.is_series_break THEN 'b' ELSE '' END,
           CASE WHEN w.any_withheld
                     OR (k.census_withheld AND (k.average_daily_population IS NOT NULL
                                                OR k.density IS NOT NULL
                                                OR k.occupancy_in_use IS NOT NULL))
                THEN 'c' ELSE '' END,
           CASE WHEN k.is_estimated THEN 'e' ELSE '' END,
           CASE WHEN k.is_provisional THEN 'p' ELSE '' END), '') AS flag,
       CASE WHEN NOT k.census_withheld THEN k.occupancy_in_use END AS occupancy_in_use,
       k.out_of_use_share
FROM month_kpis k
JOIN month_withheld w USING (facility_id, month);

-- ------------------------------------------------------------ national months ---------
-- Facility-DAYS by the class in force that day (and 'all'); staffing and regime:
-- facility-MONTHS by their monthly class (and 'all'). Ratios of sums.
CREATE TEMP TABLE national AS
WITH census_days AS (
    SELECT month, count(DISTINCT census_date) AS census_days FROM days GROUP BY month
),
day_sums AS (
    SELECT month,
           CASE WHEN grouping(scale_class) = 1 THEN 'all' ELSE scale_class END AS scale_class,
           count(DISTINCT facility_id) AS facilities,
           sum(capacity_places) AS capacity_place_days,
           sum(places_out_of_use) AS places_out_of_use_days,
           sum(places_in_use) AS places_in_use_days,
           sum(population) AS population_days,
           sum(population) FILTER (WHERE capacity_places IS NOT NULL)
               AS population_days_with_capacity,
           sum(population) FILTER (WHERE places_in_use IS NOT NULL)
               AS population_days_with_places_in_use,
           sum(population) FILTER (WHERE density > 100) AS overcrowded_days,
           sum(population) FILTER (WHERE scale_class = 'small') AS small_days,
           sum(population_under_18) AS under_18_days,
           sum(population_under_18) FILTER (WHERE scale_class = 'small') AS under_18_small,
           sum(population_18_22) AS age_18_22_days,
           sum(population_18_22) FILTER (WHERE scale_class = 'small') AS age_18_22_small,
           sum(population_female) AS female_days,
           sum(population_female) FILTER (WHERE scale_class = 'small') AS female_small
    FROM days
    GROUP BY GROUPING SETS ((month, scale_class), (month))
    HAVING grouping(scale_class) = 1 OR scale_class IS NOT NULL
),
staff_sums AS (
    SELECT month,
           CASE WHEN grouping(scale_class) = 1 THEN 'all' ELSE scale_class END AS scale_class,
           sum(avg_population) FILTER (WHERE custodial_fte IS NOT NULL)
               AS custodial_avg_population,
           sum(custodial_fte) FILTER (WHERE avg_population IS NOT NULL) AS custodial_fte,
           sum(avg_population) FILTER (WHERE rehab_fte IS NOT NULL) AS rehab_avg_population,
           sum(rehab_fte) FILTER (WHERE avg_population IS NOT NULL) AS rehab_fte,
           sum(avg_population) FILTER (WHERE in_paid_work IS NOT NULL) AS work_avg_population,
           sum(in_paid_work) FILTER (WHERE avg_population IS NOT NULL) AS in_paid_work,
           sum(avg_population) FILTER (WHERE in_education IS NOT NULL)
               AS education_avg_population,
           sum(in_education) FILTER (WHERE avg_population IS NOT NULL) AS in_education,
           sum(avg_population) FILTER (WHERE with_digital_contact IS NOT NULL)
               AS digital_avg_population,
           sum(with_digital_contact) FILTER (WHERE avg_population IS NOT NULL)
               AS with_digital_contact,
           sum(releases_total) FILTER (WHERE releases_with_plan IS NOT NULL) AS releases_total,
           sum(releases_with_plan) FILTER (WHERE releases_total IS NOT NULL)
               AS releases_with_plan
    FROM months
    GROUP BY GROUPING SETS ((month, scale_class), (month))
    HAVING grouping(scale_class) = 1 OR scale_class IS NOT NULL
),
month_status AS (
    SELECT month,
           CASE WHEN grouping(class_key) = 1 THEN 'all' ELSE class_key END AS scale_class,
           bool_or(is_estimated) AS any_estimated
    FROM (SELECT *, coalesce(scale_class, 'unknown') AS class_key FROM month_kpis)
    GROUP BY GROUPING SETS ((month, class_key), (month))
),
-- coverage: facility-days present / expected (a facility is expected on every national
-- census date of the month on which it is on the register, by its version's class)
expected AS (
    SELECT cd.month,
           CASE WHEN grouping(h.scale_class) = 1 THEN 'all' ELSE h.scale_class END
               AS scale_class,
           count(*) AS expected_days
    FROM (SELECT DISTINCT month, census_date FROM days) cd
    JOIN history h ON cd.census_date BETWEEN h.valid_from AND h.valid_to
    GROUP BY GROUPING SETS ((cd.month, h.scale_class), (cd.month))
    HAVING grouping(h.scale_class) = 1 OR h.scale_class IS NOT NULL
),
present AS (
    SELECT month,
           CASE WHEN grouping(scale_class) = 1 THEN 'all' ELSE scale_class END AS scale_class,
           count(*) AS present_days
    FROM days WHERE version IS NOT NULL
    GROUP BY GROUPING SETS ((month, scale_class), (month))
    HAVING grouping(scale_class) = 1 OR scale_class IS NOT NULL
),
-- a facility changed scale class in the month: both classes have a series break
class_moves AS (
    SELECT DISTINCT month, scale_class FROM days
    WHERE is_series_break AND scale_class IS NOT NULL
    UNION
    SELECT DISTINCT d.month, p.scale_class FROM days d
    JOIN history p ON p.facility_id = d.facility_id AND p.valid_to = d.census_date - 1
    WHERE d.is_series_break AND p.scale_class IS NOT NULL
)
SELECT s.month, s.scale_class, CAST(s.facilities AS BIGINT) AS facilities,
       CAST(s.capacity_place_days AS DOUBLE) / nullif(CAST(c.census_days AS DOUBLE), 0)
           AS capacity_places,
       CAST(s.population_days AS DOUBLE) / nullif(CAST(c.census_days AS DOUBLE), 0)
           AS average_daily_population,
       (100 * CAST(s.population_days_with_capacity AS DOUBLE))
           / nullif(CAST(s.capacity_place_days AS DOUBLE), 0) AS density,
       (100 * CAST(s.population_days_with_places_in_use AS DOUBLE))
           / nullif(CAST(s.places_in_use_days AS DOUBLE), 0) AS occupancy_in_use,
       CAST(s.places_out_of_use_days AS DOUBLE) / nullif(CAST(s.capacity_place_days AS DOUBLE), 0)
           AS out_of_use_share,
       CAST(coalesce(s.overcrowded_days, 0) AS DOUBLE)
           / nullif(CAST(s.population_days AS DOUBLE), 0) AS share_in_overcrowded,
       CASE WHEN s.scale_class = 'all' THEN CAST(coalesce(s.small_days, 0) AS DOUBLE)
           / nullif(CAST(s.population_days AS DOUBLE), 0) END AS share_in_small_scale,
       CASE WHEN s.scale_class = 'all' THEN CAST(coalesce(s.under_18_small, 0) AS DOUBLE)
           / nullif(CAST(s.under_18_days AS DOUBLE), 0) END AS vulnerable_in_small_scale_under_18,
       CASE WHEN s.scale_class = 'all' THEN CAST(coalesce(s.age_18_22_small, 0) AS DOUBLE)
           / nullif(CAST(s.age_18_22_days AS DOUBLE), 0) END AS vulnerable_in_small_scale_18_22,
       CASE WHEN s.scale_class = 'all' THEN CAST(coalesce(s.female_small, 0) AS DOUBLE)
           / nullif(CAST(s.female_days AS DOUBLE), 0) END AS vulnerable_in_small_scale_female,
       CAST(f.custodial_avg_population AS DOUBLE) / nullif(CAST(f.custodial_fte AS DOUBLE), 0)
           AS detainees_per_custodial_fte,
       (100 * CAST(f.rehab_fte AS DOUBLE)) / nullif(CAST(f.rehab_avg_population AS DOUBLE), 0)
           AS rehab_staff_per_100,
       CAST(f.in_paid_work AS DOUBLE) / nullif(CAST(f.work_avg_population AS DOUBLE), 0)
           AS work_participation,
       CAST(f.in_education AS DOUBLE) / nullif(CAST(f.education_avg_population AS DOUBLE), 0)
           AS education_participation,
       CAST(f.with_digital_contact AS DOUBLE)
           / nullif(CAST(f.digital_avg_population AS DOUBLE), 0) AS digital_contact_share,
       CAST(f.releases_with_plan AS DOUBLE) / nullif(CAST(f.releases_total AS DOUBLE), 0)
           AS release_plan_coverage,
       CAST(f.custodial_fte AS DOUBLE) AS custodial_fte,
       CAST(f.rehab_fte AS DOUBLE) AS rehab_fte,
       CAST(c.census_days AS BIGINT) AS census_days,
       -- average daily persons behind the rates (disclosure control)
       CAST(s.under_18_days AS DOUBLE) / c.census_days AS avg_under_18,
       CAST(s.under_18_small AS DOUBLE) / c.census_days AS avg_under_18_small,
       CAST(s.age_18_22_days AS DOUBLE) / c.census_days AS avg_18_22,
       CAST(s.age_18_22_small AS DOUBLE) / c.census_days AS avg_18_22_small,
       CAST(s.female_days AS DOUBLE) / c.census_days AS avg_female,
       CAST(s.female_small AS DOUBLE) / c.census_days AS avg_female_small,
       CAST(f.custodial_avg_population AS DOUBLE) AS custodial_avg_population,
       CAST(f.rehab_avg_population AS DOUBLE) AS rehab_avg_population,
       CAST(f.work_avg_population AS DOUBLE) AS work_avg_population,
       CAST(f.education_avg_population AS DOUBLE) AS education_avg_population,
       CAST(f.digital_avg_population AS DOUBLE) AS digital_avg_population,
       CAST(f.in_paid_work AS DOUBLE) AS in_paid_work_n,
       CAST(f.in_education AS DOUBLE) AS in_education_n,
       CAST(f.with_digital_contact AS DOUBLE) AS with_digital_contact_n,
       CAST(f.releases_total AS DOUBLE) AS releases_total_n,
       CAST(f.releases_with_plan AS DOUBLE) AS releases_with_plan_n,
       coalesce(last_day(s.month) > (SELECT max(census_date) FROM days), true)
           AS is_provisional,
       coalesce(ms.any_estimated, false)
           AND NOT coalesce(last_day(s.month) > (SELECT max(census_date) FROM days), true)
           AS is_estimated,
       s.scale_class <> 'all' AND EXISTS (SELECT 1 FROM class_moves m
           WHERE m.month = s.month AND m.scale_class = s.scale_class) AS is_series_break,
       CAST(coalesce(p.present_days, 0) AS DOUBLE) / nullif(CAST(e.expected_days AS DOUBLE), 0)
           AS coverage,
       coalesce(coalesce(p.present_days, 0) < e.expected_days, false)
           AND NOT coalesce(last_day(s.month) > (SELECT max(census_date) FROM days), true)
           AS is_low_reliability,
       EXISTS (SELECT 1 FROM census_fallback b WHERE b.month = s.month
               AND (b.class_key = s.scale_class OR s.scale_class = 'all')) AS census_fallback
FROM day_sums s
JOIN census_days c USING (month)
LEFT JOIN staff_sums f USING (month, scale_class)
LEFT JOIN month_status ms USING (month, scale_class)
LEFT JOIN expected e USING (month, scale_class)
LEFT JOIN present p USING (month, scale_class);

-- National disclosure, one row per (month, class, KPI group); a group's columns are
-- withheld together. Primary: base < 30 persons on an average day (not for the census
-- sums), a person count 1..4, or the census fallback; where exactly one class row of a
-- month is withheld, also the contributing class row with the smallest base; a class
-- row still alone withheld in its month withholds the 'all' row.
CREATE TEMP TABLE national_withheld AS
WITH long AS (
    SELECT month, scale_class, census_fallback, UNNEST([
        {grp: 'census', base: average_daily_population, cnt: NULL, is_rate: false,
         all_only: false, fallback: true, first_present: average_daily_population IS NOT NULL,
         any_present: average_daily_population IS NOT NULL OR density IS NOT NULL
                      OR occupancy_in_use IS NOT NULL},
        {grp: 'overcrowded', base: average_daily_population, cnt: NULL, is_rate: true,
         all_only: false, fallback: true, first_present: share_in_overcrowded IS NOT NULL,
         any_present: share_in_overcrowded IS NOT NULL},
        {grp: 'small_scale', base: average_daily_population, cnt: NULL, is_rate: true,
         all_only: true, fallback: true, first_present: share_in_small_scale IS NOT NULL,
         any_present: share_in_small_scale IS NOT NULL},
        {grp: 'under_18', base: avg_under_18, cnt: avg_under_18_small, is_rate: true,
         all_only: true, fallback: false,
         first_present: vulnerable_in_small_scale_under_18 IS NOT NULL,
         any_present: vulnerable_in_small_scale_under_18 IS NOT NULL},
        {grp: 'age_18_22', base: avg_18_22, cnt: avg_18_22_small, is_rate: true,
         all_only: true, fallback: false,
         first_present: vulnerable_in_small_scale_18_22 IS NOT NULL,
         any_present: vulnerable_in_small_scale_18_22 IS NOT NULL},
        {grp: 'female', base: avg_female, cnt: avg_female_small, is_rate: true,
         all_only: true, fallback: false,
         first_present: vulnerable_in_small_scale_female IS NOT NULL,
         any_present: vulnerable_in_small_scale_female IS NOT NULL},
        {grp: 'custodial', base: custodial_avg_population, cnt: NULL, is_rate: true,
         all_only: false, fallback: false,
         first_present: detainees_per_custodial_fte IS NOT NULL,
         any_present: detainees_per_custodial_fte IS NOT NULL OR custodial_fte IS NOT NULL},
        {grp: 'rehab', base: rehab_avg_population, cnt: NULL, is_rate: true,
         all_only: false, fallback: false, first_present: rehab_staff_per_100 IS NOT NULL,
         any_present: rehab_staff_per_100 IS NOT NULL OR rehab_fte IS NOT NULL},
        {grp: 'work', base: work_avg_population, cnt: in_paid_work_n, is_rate: true,
         all_only: false, fallback: false, first_present: work_participation IS NOT NULL,
         any_present: work_participation IS NOT NULL},
        {grp: 'education', base: education_avg_population, cnt: in_education_n,
         is_rate: true, all_only: false, fallback: false,
         first_present: education_participation IS NOT NULL,
         any_present: education_participation IS NOT NULL},
        {grp: 'digital', base: digital_avg_population, cnt: with_digital_contact_n,
         is_rate: true, all_only: false, fallback: false,
         first_present: digital_contact_share IS NOT NULL,
         any_present: digital_contact_share IS NOT NULL},
        {grp: 'plan', base: releases_total_n, cnt: releases_with_plan_n, is_rate: true,
         all_only: false, fallback: false, first_present: release_plan_coverage IS NOT NULL,
         any_present: release_plan_coverage IS NOT NULL}
    ]) AS g
    FROM national
),
flat AS (
    SELECT month, scale_class, g.grp, g.base, g.any_present,
           scale_class <> 'all' AND g.first_present AS contributes,
           (NOT g.all_only OR scale_class = 'all')
           AND ((g.is_rate AND coalesce(g.base < 30, false))
                OR coalesce(g.cnt > 0 AND g.cnt < 5, false)
                OR (g.fallback AND census_fallback)) AS is_primary
    FROM long
),
paired AS (
    SELECT *,
           is_primary
           OR (contributes AND NOT is_primary
               AND count(*) FILTER (WHERE contributes AND is_primary)
                       OVER (PARTITION BY grp, month) = 1
               AND row_number() OVER (PARTITION BY grp, month, contributes AND NOT is_primary
                                      ORDER BY base, scale_class) = 1) AS withheld_1
    FROM flat
),
decided AS (
    SELECT *,
           withheld_1 OR (scale_class = 'all'
               AND count(*) FILTER (WHERE scale_class <> 'all' AND withheld_1)
                       OVER (PARTITION BY grp, month) = 1) AS withheld
    FROM paired
)
SELECT month, scale_class,
       bool_or(withheld) FILTER (WHERE grp = 'census') AS census,
       bool_or(withheld) FILTER (WHERE grp = 'overcrowded') AS overcrowded,
       bool_or(withheld) FILTER (WHERE grp = 'small_scale') AS small_scale,
       bool_or(withheld) FILTER (WHERE grp = 'under_18') AS under_18,
       bool_or(withheld) FILTER (WHERE grp = 'age_18_22') AS age_18_22,
       bool_or(withheld) FILTER (WHERE grp = 'female') AS female,
       bool_or(withheld) FILTER (WHERE grp = 'custodial') AS custodial,
       bool_or(withheld) FILTER (WHERE grp = 'rehab') AS rehab,
       bool_or(withheld) FILTER (WHERE grp = 'work') AS work,
       bool_or(withheld) FILTER (WHERE grp = 'education') AS education,
       bool_or(withheld) FILTER (WHERE grp = 'digital') AS digital,
       bool_or(withheld) FILTER (WHERE grp = 'plan') AS plan,
       bool_or(withheld AND any_present) AS any_withheld
FROM decided
GROUP BY month, scale_class;

CREATE TABLE marts.mart_national_monthly AS
SELECT n.month, n.scale_class, n.facilities, n.capacity_places,
       CASE WHEN NOT w.census THEN n.average_daily_population END AS average_daily_population,
       CASE WHEN NOT w.census THEN n.density END AS density,
       CASE WHEN NOT w.overcrowded THEN n.share_in_overcrowded END AS share_in_overcrowded,
       CASE WHEN NOT w.small_scale THEN n.share_in_small_scale END AS share_in_small_scale,
       CASE WHEN NOT w.under_18 THEN n.vulnerable_in_small_scale_under_18 END
           AS vulnerable_in_small_scale_under_18,
       CASE WHEN NOT w.age_18_22 THEN n.vulnerable_in_small_scale_18_22 END
           AS vulnerable_in_small_scale_18_22,
       CASE WHEN NOT w.female THEN n.vulnerable_in_small_scale_female END
           AS vulnerable_in_small_scale_female,
       CASE WHEN NOT w.custodial THEN n.detainees_per_custodial_fte END
           AS detainees_per_custodial_fte,
       nullif(concat(CASE WHEN n.is_series_break THEN 'b' ELSE '' END,
                     CASE WHEN w.any_withheld THEN 'c' ELSE '' END,
                     CASE WHEN n.is_provisional THEN 'p' ELSE '' END,
                     CASE WHEN n.is_low_reliability THEN 'u' ELSE '' END), '') AS flag,
       CASE WHEN NOT w.census THEN n.occupancy_in_use END AS occupancy_in_use,
       n.out_of_use_share,
       CASE WHEN NOT w.rehab THEN n.rehab_staff_per_100 END AS rehab_staff_per_100,
       CASE WHEN NOT w.work THEN n.work_participation END AS work_participation,
       CASE WHEN NOT w.education THEN n.education_participation END AS education_participation,
       CASE WHEN NOT w.digital THEN n.digital_contact_share END AS digital_contact_share,
       CASE WHEN NOT w.plan THEN n.release_plan_coverage END AS release_plan_coverage,
       CASE WHEN NOT w.custodial THEN n.custodial_fte END AS custodial_fte,
       CASE WHEN NOT w.rehab THEN n.rehab_fte END AS rehab_fte,
       n.census_days,
       n.coverage
FROM national n
JOIN national_withheld w USING (month, scale_class);

-- ------------------------------------------------------------- recidivism -------------
-- Extraction date: created_at of the latest original recidivism delivery (a correction,
-- with replaces, does not extend the follow-up).
CREATE TEMP TABLE releases AS
WITH extraction AS (
    SELECT coalesce(max(created_date) FILTER (WHERE replaces IS NULL), max(created_date))
               AS extraction_date
    FROM delivery WHERE feed = 'recidivism'
),
rel AS (
    SELECT r.release_id, trim(r.person_ref) AS person, r.release_date, r.facility_id,
           r.days_in_small_scale, r.sentence_days
    FROM read_csv('{archive}/recidivism/*/releases.csv', header = true, filename = true,
                  columns = {'release_id': 'VARCHAR', 'person_ref': 'VARCHAR',
                             'release_date': 'DATE', 'facility_id': 'VARCHAR',
                             'days_in_small_scale': 'BIGINT', 'sex': 'VARCHAR',
                             'birth_year': 'BIGINT', 'index_offence': 'VARCHAR',
                             'prior_convictions': 'BIGINT', 'sentence_days': 'BIGINT'}) r
    JOIN delivery d ON r.filename = d.dir || '/releases.csv'
    QUALIFY row_number() OVER (PARTITION BY r.release_id ORDER BY d.seq DESC) = 1
),
reconvictions AS (
    SELECT trim(c.person_ref) AS person, c.offence_date, c.conviction_date, c.custodial
    FROM read_csv('{archive}/recidivism/*/reconvictions.csv', header = true, filename = true,
                  columns = {'case_id': 'VARCHAR', 'person_ref': 'VARCHAR',
                             'offence_date': 'DATE', 'conviction_date': 'DATE',
                             'offence': 'VARCHAR', 'custodial': 'BOOLEAN'}) c
    JOIN delivery d ON c.filename = d.dir || '/reconvictions.csv'
    QUALIFY row_number() OVER (PARTITION BY trim(c.person_ref), c.case_id
                               ORDER BY d.seq DESC) = 1
),
-- new offences after the release, convicted no later than the extraction date
outcomes AS (
    SELECT r.release_id,
           bool_or(c.offence_date <= CAST(r.release_date + to_months(24) AS DATE)
                   AND c.conviction_date <= CAST(r.release_date + to_months(30) AS DATE))
               AS recid_2y_general,
           bool_or(c.offence_date <= CAST(r.release_date + to_months(24) AS DATE)
                   AND c.conviction_date <= CAST(r.release_date + to_months(30) AS DATE)
                   AND coalesce(c.custodial, false)) AS recid_2y_custodial,
           count(*) FILTER (WHERE c.offence_date <= CAST(r.release_date + to_months(12) AS DATE)
                   AND c.conviction_date <= CAST(r.release_date + to_months(18) AS DATE))
               AS proven_reoffences_1y
    FROM rel r
    JOIN reconvictions c ON c.person = r.person AND c.offence_date > r.release_date
    WHERE c.conviction_date <= (SELECT extraction_date FROM extraction)
    GROUP BY r.release_id
)
SELECT CAST(year(r.release_date) AS INTEGER) AS cohort_year,
       h.scale_class, h.facility_type,
       CASE WHEN r.days_in_small_scale IS NULL OR r.sentence_days IS NULL THEN NULL
            WHEN r.days_in_small_scale = 0 THEN 'none'
            WHEN CAST(r.days_in_small_scale AS DOUBLE)
                 / nullif(CAST(r.sentence_days AS DOUBLE), 0) >= 0.5 THEN 'majority'
            ELSE 'minority' END AS small_scale_days_group,
       coalesce(CAST(make_date(year(r.release_date), 12, 31) + to_months(18) AS DATE)
                < x.extraction_date, false) AS is_cohort_proven_mature,
       coalesce(o.recid_2y_general, false) AS recid_2y_general,
       coalesce(o.recid_2y_custodial, false) AS recid_2y_custodial,
       coalesce(o.proven_reoffences_1y, 0) AS proven_reoffences_1y
FROM rel r
CROSS JOIN extraction x
LEFT JOIN outcomes o USING (release_id)
LEFT JOIN history h
    ON h.facility_id = r.facility_id AND r.release_date BETWEEN h.valid_from AND h.valid_to
-- mature cohorts only: the window plus waiting period after 31 December has elapsed
WHERE coalesce(CAST(make_date(year(r.release_date), 12, 31) + to_months(30) AS DATE)
               < x.extraction_date, false)
-- the cohort counts persons: each person's first release in the year
QUALIFY r.person IS NULL OR row_number() OVER (
    PARTITION BY r.person, year(r.release_date) ORDER BY r.release_date, r.release_id) = 1;

CREATE TEMP TABLE cohort_groups AS
WITH grouped AS (
    SELECT cohort_year, is_cohort_proven_mature, recid_2y_general, recid_2y_custodial,
           proven_reoffences_1y, UNNEST([
               {t: 'scale_class', v: coalesce(scale_class, 'unknown')},
               {t: 'facility_type', v: coalesce(facility_type, 'unknown')},
               {t: 'small_scale_days', v: coalesce(small_scale_days_group, 'unknown')}
           ]) AS g
    FROM releases
),
sums AS (
    SELECT cohort_year, g.t AS group_type, g.v AS group_value,
           count(*) AS cohort_size,
           count(*) FILTER (WHERE recid_2y_general) AS reoffenders_2y_general,
           count(*) FILTER (WHERE recid_2y_custodial) AS reoffenders_2y_custodial,
           count(*) FILTER (WHERE proven_reoffences_1y > 0) AS proven_reoffenders_1y,
           sum(proven_reoffences_1y) AS proven_reoffences_1y,
           bool_and(is_cohort_proven_mature) AS is_proven_mature
    FROM grouped
    GROUP BY ALL
),
national_rate AS (
    SELECT cohort_year,
           CAST(count(*) FILTER (WHERE recid_2y_general) AS DOUBLE)
               / nullif(CAST(count(*) AS DOUBLE), 0) AS national_rate
    FROM releases GROUP BY cohort_year
)
SELECT s.*, n.national_rate,
       CAST(reoffenders_2y_general AS DOUBLE) / nullif(CAST(cohort_size AS DOUBLE), 0)
           AS recid_2y_general,
       CAST(reoffenders_2y_custodial AS DOUBLE) / nullif(CAST(cohort_size AS DOUBLE), 0)
           AS recid_2y_custodial,
       CASE WHEN is_proven_mature THEN CAST(proven_reoffenders_1y AS DOUBLE)
           / nullif(CAST(cohort_size AS DOUBLE), 0) END AS proven_reoffending_1y,
       CASE WHEN is_proven_mature THEN CAST(proven_reoffences_1y AS DOUBLE)
           / nullif(CAST(proven_reoffenders_1y AS DOUBLE), 0) END
           AS reoffences_per_reoffender_1y
FROM sums s JOIN national_rate n USING (cohort_year);

-- Disclosure within each (cohort_year, group_type), whose groups add up to the cohort:
-- size 1..4 withheld plus the smallest other group; rates below 60 releases withheld,
-- paired (exactly one withheld: the smallest other too), plus one more group when the
-- withheld groups' reoffenders are all or none of them; reoffences per reoffender also
-- below 30 proven reoffenders (paired likewise).
CREATE TABLE marts.mart_recidivism_cohort AS
WITH p AS (
    SELECT *,
           coalesce(cohort_size > 0 AND cohort_size < 5, false) AS size_primary,
           coalesce(cohort_size < 60, false) AS rates_primary,
           coalesce(cohort_size < 60, false) OR coalesce(proven_reoffenders_1y < 30, false)
               AS frequency_primary,
           reoffences_per_reoffender_1y IS NOT NULL AS frequency_contributes
    FROM cohort_groups
),
first_pass AS (
    SELECT *,
           size_primary OR (NOT size_primary
               AND bool_or(size_primary) OVER part
               AND row_number() OVER (PARTITION BY cohort_year, group_type, size_primary
                                      ORDER BY cohort_size, group_value) = 1) AS size_withheld,
           rates_primary OR (NOT rates_primary
               AND count(*) FILTER (WHERE rates_primary) OVER part = 1
               AND row_number() OVER (PARTITION BY cohort_year, group_type, rates_primary
                                      ORDER BY cohort_size, group_value) = 1) AS rates_withheld_1,
           frequency_primary OR (frequency_contributes AND NOT frequency_primary
               AND count(*) FILTER (WHERE frequency_contributes AND frequency_primary)
                       OVER part = 1
               AND row_number() OVER (PARTITION BY cohort_year, group_type,
                                                   frequency_contributes AND NOT frequency_primary
                                      ORDER BY proven_reoffenders_1y, group_value) = 1)
               AS frequency_withheld_1
    FROM p
    WINDOW part AS (PARTITION BY cohort_year, group_type)
),
extreme AS (
    SELECT cohort_year, group_type
    FROM first_pass
    WHERE rates_withheld_1
    GROUP BY cohort_year, group_type
    HAVING sum(reoffenders_2y_general) IN (0, sum(cohort_size))
        OR sum(reoffenders_2y_custodial) IN (0, sum(cohort_size))
        OR (bool_and(is_proven_mature) AND sum(proven_reoffenders_1y) IN (0, sum(cohort_size)))
),
decided AS (
    SELECT f.*,
           f.rates_withheld_1 OR (e.group_type IS NOT NULL AND NOT f.rates_withheld_1
               AND row_number() OVER (PARTITION BY f.cohort_year, f.group_type,
                                                   e.group_type IS NOT NULL
                                                   AND NOT f.rates_withheld_1
                                      ORDER BY f.cohort_size, f.group_value) = 1)
               AS rates_withheld
    FROM first_pass f
    LEFT JOIN extreme e USING (cohort_year, group_type)
)
SELECT cohort_year, group_type, group_value,
       CASE WHEN NOT size_withheld THEN CAST(cohort_size AS BIGINT) END AS cohort_size,
       CASE WHEN NOT rates_withheld THEN recid_2y_general END AS recid_2y_general,
       CASE WHEN NOT rates_withheld THEN recid_2y_custodial END AS recid_2y_custodial,
       CASE WHEN NOT rates_withheld THEN proven_reoffending_1y END AS proven_reoffending_1y,
       CAST(NULL AS DOUBLE) AS observed_expected,   -- risk model: not computed here
       CAST(NULL AS DOUBLE) AS adjusted_rate,       -- risk model
       CAST(NULL AS DOUBLE) AS ci_low,              -- risk model
       CAST(NULL AS DOUBLE) AS ci_high,             -- risk model
       CASE WHEN size_withheld OR rates_withheld
                 OR (frequency_withheld_1 OR rates_withheld)
                    AND reoffences_per_reoffender_1y IS NOT NULL THEN 'c' END AS flag,
       CASE WHEN NOT (frequency_withheld_1 OR rates_withheld)
            THEN reoffences_per_reoffender_1y END AS reoffences_per_reoffender_1y,
       CAST(NULL AS DOUBLE) AS observed_expected_se, -- risk model
       national_rate,
       reference_group,
       -- raw difference from the reference group, withheld when either side's rates are
       CASE WHEN NOT difference_withheld THEN recid_2y_general - reference_rate END
           AS observed_difference,
       CAST(NULL AS DOUBLE) AS standardised_rate,    -- standardisation model: not here
       CAST(NULL AS DOUBLE) AS standardised_rate_se,
       CAST(NULL AS DOUBLE) AS standardised_ci_low,
       CAST(NULL AS DOUBLE) AS standardised_ci_high,
       CAST(NULL AS DOUBLE) AS standardised_difference,
       CAST(NULL AS DOUBLE) AS standardised_difference_se,
       CAST(NULL AS DOUBLE) AS standardised_difference_ci_low,
       CAST(NULL AS DOUBLE) AS standardised_difference_ci_high
FROM (
    SELECT d.*, ref.recid_2y_general AS reference_rate,
           d.rates_withheld OR coalesce(ref.rates_withheld, true) AS difference_withheld
    FROM (SELECT *, CASE group_type WHEN 'scale_class' THEN 'large'
                                    WHEN 'facility_type' THEN 'prison' END AS reference_group
          FROM decided) d
    LEFT JOIN decided ref
        ON ref.cohort_year = d.cohort_year AND ref.group_type = d.group_type
       AND ref.group_value = d.reference_group
);

-- ------------------------------------------- comparisons: month-end snapshots ---------
-- The facility's last census of the month, withheld exactly where mart_facility_daily
-- withholds that day, with the month's staff by category.
CREATE TEMP TABLE month_end AS
SELECT coalesce(nullif(regexp_extract(d.facility_id, '^(.*)-[^-]*$', 1), ''), d.facility_id)
           AS jurisdiction,
       d.facility_id, d.month, d.census_date, d.facility_type, d.scale_class,
       d.is_small_optimal, d.capacity_places, d.operational_capacity, d.places_out_of_use,
       d.population, d.density, d.occupancy_in_use,
       d.is_primary OR w.suppression IS NOT NULL AS is_suppressed,
       d.is_primary AS is_primary_suppression,
       CAST(f.custodial_fte AS DOUBLE) AS custodial_fte,
       f.custodial_vacancies_fte, f.custodial_fte_with_vacancies, f.education_fte,
       f.staff_fte, CAST(f.vacancies_fte AS DOUBLE) AS staff_vacancies_fte,
       CAST(f.fte_with_vacancies_reported AS DOUBLE) AS staff_fte_with_vacancies
FROM days d
LEFT JOIN withheld_days w USING (facility_id, census_date)
LEFT JOIN staff f USING (facility_id, month)
QUALIFY row_number() OVER (PARTITION BY d.facility_id, d.month ORDER BY d.census_date DESC) = 1;

CREATE TABLE marts.mart_facility_snapshot AS
SELECT jurisdiction, facility_id, month, census_date, facility_type, scale_class,
       capacity_places, operational_capacity, places_out_of_use,
       CASE WHEN NOT is_suppressed THEN population END AS population,
       CASE WHEN NOT is_suppressed THEN density END AS density,
       CASE WHEN NOT is_suppressed THEN occupancy_in_use END AS occupancy_in_use,
       CAST(places_out_of_use AS DOUBLE) / nullif(CAST(capacity_places AS DOUBLE), 0)
           AS out_of_use_share,
       custodial_fte, custodial_vacancies_fte, education_fte, staff_fte, staff_vacancies_fte,
       CASE WHEN NOT is_suppressed THEN CAST(population AS DOUBLE)
           / nullif(CAST(custodial_fte AS DOUBLE), 0) END AS detainees_per_custodial_fte,
       CASE WHEN NOT is_suppressed THEN CAST(population AS DOUBLE)
           / nullif(CAST(education_fte AS DOUBLE), 0) END AS detainees_per_education_fte,
       CAST(custodial_vacancies_fte AS DOUBLE)
           / nullif(CAST(custodial_fte_with_vacancies + custodial_vacancies_fte AS DOUBLE), 0)
           AS custodial_vacancy_rate,
       CAST(staff_vacancies_fte AS DOUBLE)
           / nullif(CAST(staff_fte_with_vacancies + staff_vacancies_fte AS DOUBLE), 0)
           AS staff_vacancy_rate,
       CASE WHEN is_suppressed THEN 'c' END AS flag
FROM month_end;

-- Facilities by scale class per jurisdiction and month-end (the facility census; the
-- reference-register rows come from a v2 feed the synthetic system does not send). A
-- class's population is withheld where differencing against the published facility
-- values would give a withheld one back; then the 'all' population and the shares too.
CREATE TABLE marts.mart_scale_class_facts AS
WITH facilities AS (
    SELECT jurisdiction, 'facility_census' AS source,
           max(census_date) OVER (PARTITION BY jurisdiction, month) AS reference_date,
           'census_date' AS date_basis, coalesce(scale_class, 'unknown') AS scale_class,
           coalesce(is_small_optimal, false) AS is_small_optimal, capacity_places, population,
           is_suppressed, is_primary_suppression
    FROM month_end
),
classes AS (
    SELECT jurisdiction, source, reference_date, any_value(date_basis) AS date_basis,
           scale_class, count(*) AS facilities,
           count(*) FILTER (WHERE is_small_optimal) AS facilities_small_optimal,
           sum(capacity_places) AS capacity_places,
           count(population) AS facilities_with_population, sum(population) AS population,
           count(*) FILTER (WHERE is_suppressed) AS withheld_facilities,
           count(*) FILTER (WHERE is_suppressed AND NOT is_primary_suppression)
               AS withheld_non_primary
    FROM facilities
    GROUP BY jurisdiction, source, reference_date, scale_class
),
class_rule AS (
    SELECT *,
           withheld_facilities = 1 OR (withheld_facilities > 1 AND withheld_non_primary = 0)
           OR coalesce(population > 0 AND population < 5, false) AS population_withheld
    FROM classes
),
totals AS (
    SELECT jurisdiction, source, reference_date, any_value(date_basis) AS date_basis,
           sum(facilities) AS facilities,
           sum(facilities_small_optimal) AS facilities_small_optimal,
           sum(capacity_places) AS capacity_places,
           sum(facilities_with_population) AS facilities_with_population,
           sum(population) AS population,
           sum(facilities) FILTER (WHERE scale_class <> 'unknown') AS facilities_known,
           sum(population) FILTER (WHERE scale_class <> 'unknown') AS population_known,
           bool_or(population_withheld)
           OR coalesce(sum(population) > 0 AND sum(population) < 5, false) AS any_withheld
    FROM class_rule
    GROUP BY jurisdiction, source, reference_date
),
unioned AS (
    SELECT jurisdiction, source, reference_date, date_basis, scale_class, facilities,
           facilities_small_optimal, capacity_places, facilities_with_population, population,
           population_withheld
    FROM class_rule
    UNION ALL
    SELECT jurisdiction, source, reference_date, date_basis, 'all', facilities,
           facilities_small_optimal, capacity_places, facilities_with_population, population,
           any_withheld
    FROM totals
)
SELECT u.jurisdiction, u.source, CAST(u.reference_date AS DATE) AS reference_date,
       u.date_basis, u.scale_class,
       CAST(u.facilities AS BIGINT) AS facilities,
       CAST(u.facilities_small_optimal AS BIGINT) AS facilities_small_optimal,
       CAST(u.capacity_places AS BIGINT) AS capacity_places,
       CAST(u.facilities_with_population AS BIGINT) AS facilities_with_population,
       CASE WHEN NOT u.population_withheld THEN CAST(u.population AS BIGINT) END AS population,
       CASE WHEN u.scale_class NOT IN ('all', 'unknown') THEN CAST(u.facilities AS DOUBLE)
           / nullif(CAST(t.facilities_known AS DOUBLE), 0) END AS share_of_facilities,
       CASE WHEN u.scale_class NOT IN ('all', 'unknown') AND NOT t.any_withheld
           THEN CAST(u.population AS DOUBLE) / nullif(CAST(t.population_known AS DOUBLE), 0)
           END AS share_of_population,
       CASE WHEN u.population_withheld
                 OR (u.scale_class NOT IN ('all', 'unknown') AND t.any_withheld)
            THEN 'c' END AS flag
FROM unioned u
JOIN totals t USING (jurisdiction, source, reference_date);

-- Persons held, capacity and density per jurisdiction and year from the facility census
-- (the latest month-end of the year); the Eurostat rows need the v2 national_reference
-- feed, which the synthetic system does not send.
CREATE TABLE marts.mart_national_density_comparison AS
SELECT jurisdiction AS geo, CAST(year(reference_date) AS VARCHAR) AS period,
       'penstat:facility_census' AS source, reference_date,
       CAST(population AS DOUBLE) AS persons_held,
       CAST(capacity_places AS DOUBLE) AS official_capacity,
       (100 * CAST(population AS DOUBLE)) / nullif(CAST(capacity_places AS DOUBLE), 0)
           AS density,
       flag
FROM marts.mart_scale_class_facts
WHERE source = 'facility_census' AND scale_class = 'all'
QUALIFY row_number() OVER (PARTITION BY jurisdiction, year(reference_date)
                           ORDER BY reference_date DESC) = 1;
