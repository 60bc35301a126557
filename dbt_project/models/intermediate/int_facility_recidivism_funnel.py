# Grain: one row per facility per pooled window (facility_id, last_cohort_year),
# as int_facility_recidivism_windows, with the funnel-plot control limits of the
# facility's observed rate around the national rate of the same cohorts: exact
# binomial limits with interpolation at 95 % (p 0.025, 0.975) and 99.8 %
# (p 0.001, 0.999) (Spiegelhalter 2005, Statistics in Medicine 24: 1185-1202;
# penstat/transform/funnel.py).


def model(dbt, session):
    dbt.config(materialized="table")
    from penstat.transform.funnel import LIMITS, with_limits

    frame = with_limits(dbt.ref("int_facility_recidivism_windows").df())
    session.register("penstat_funnel_frame", frame)
    limits = ", ".join(f"cast({name} as double) as {name}" for name, _ in LIMITS)
    # explicit types: an empty frame would otherwise lose them
    return session.sql(
        "select cast(facility_id as varchar) as facility_id, "
        "cast(last_cohort_year as integer) as last_cohort_year, "
        "cast(first_cohort_year as integer) as first_cohort_year, "
        "cast(cohort_years as integer) as cohort_years, "
        "cast(facility_type as varchar) as facility_type, "
        "cast(scale_class as varchar) as scale_class, "
        "cast(releases as bigint) as releases, cast(reoffenders as bigint) as reoffenders, "
        "cast(observed_rate as double) as observed_rate, "
        "cast(national_releases as bigint) as national_releases, "
        "cast(national_reoffenders as bigint) as national_reoffenders, "
        f"cast(national_rate as double) as national_rate, {limits}, "
        # the funnel's verdicts, before disclosure control (the mart withholds them with
        # the observed rate)
        "observed_rate < limit_95_low or observed_rate > limit_95_high as outside_95, "
        "observed_rate < limit_998_low or observed_rate > limit_998_high as outside_998 "
        "from penstat_funnel_frame"
    )
