# Grain: one row per mature cohort year per attribution per group (cohort_year,
# group_type, group_value) for group_type 'scale_class' and 'facility_type': the
# risk-standardised two-year general reoffending rate of the group (marginal
# standardisation / g-computation from a yearly logistic model with group
# indicators, every cohort member predicted as if discharged from the group), its
# difference from the reference group, and their delta-method standard errors
# (sandwich covariance). See penstat/transform/standardisation.py, docs/kpis.md.


def model(dbt, session):
    dbt.config(materialized="table")
    from penstat.transform.risk_model import model_input
    from penstat.transform.standardisation import standardised_frame

    outcomes = model_input(dbt.ref("int_release_outcomes"))
    frame = standardised_frame(
        outcomes,
        float(dbt.config.get("min_events_per_parameter")),
        int(dbt.config.get("min_level_size")),
    )
    # a relation with explicit types (an empty frame would otherwise lose them)
    session.register("penstat_standardised_frame", frame)
    return session.sql(
        "select cast(cohort_year as integer) as cohort_year, "
        "cast(group_type as varchar) as group_type, "
        "cast(group_value as varchar) as group_value, "
        "cast(reference_group as varchar) as reference_group, "
        "cast(standard_size as bigint) as standard_size, "
        "cast(standardised_rate as double) as standardised_rate, "
        "cast(standardised_rate_se as double) as standardised_rate_se, "
        "cast(standardised_difference as double) as standardised_difference, "
        "cast(standardised_difference_se as double) as standardised_difference_se, "
        "cast(standardisation_status as varchar) as standardisation_status, "
        "cast(standardisation_note as varchar) as standardisation_note "
        "from penstat_standardised_frame"
    )
