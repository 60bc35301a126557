# Grain: one row per release of a mature cohort (release_id): its expected
# probability of two-year general reoffending from the risk model fitted on
# the whole mature cohort (penstat/transform/risk_model.py; statsmodels Logit).
# Null for every release when the model is not fitted (see
# int_recidivism_risk_model for the reason).


def model(dbt, session):
    dbt.config(materialized="table")
    from penstat.transform.risk_model import expected_frame, model_input

    outcomes = model_input(dbt.ref("int_release_outcomes"))
    frame = expected_frame(
        outcomes,
        float(dbt.config.get("min_events_per_parameter")),
        int(dbt.config.get("min_level_size")),
    )
    # a relation with explicit types (an empty frame would otherwise lose them)
    session.register("penstat_expected_frame", frame)
    return session.sql(
        "select cast(release_id as varchar) as release_id, "
        "cast(expected_2y_general as double) as expected_2y_general, "
        "cast(risk_model_status as varchar) as risk_model_status "
        "from penstat_expected_frame"
    )
