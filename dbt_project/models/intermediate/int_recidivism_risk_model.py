# Grain: one row per model per section per name (model, section, name): the
# status, fit statistics, design choices and coefficients of the risk model
# ('expected') and of the comparison models that add the attributed group
# ('comparison_scale_class', 'comparison_small_scale_days'). Recorded with
# each publication (risk_model.json).


def model(dbt, session):
    dbt.config(materialized="table")
    from penstat.transform.risk_model import fit_statistics_frame, model_input

    outcomes = model_input(dbt.ref("int_release_outcomes"))
    frame = fit_statistics_frame(
        outcomes,
        float(dbt.config.get("min_events_per_parameter")),
        int(dbt.config.get("min_level_size")),
    )
    # a relation with explicit types (an empty frame would otherwise lose them)
    session.register("penstat_fit_frame", frame)
    return session.sql(
        "select cast(model as varchar) as model, cast(section as varchar) as section, "
        "cast(name as varchar) as name, cast(value as double) as value, "
        "cast(std_error as double) as std_error, cast(ci_low as double) as ci_low, "
        "cast(ci_high as double) as ci_high, cast(p_value as double) as p_value, "
        "cast(note as varchar) as note from penstat_fit_frame"
    )
