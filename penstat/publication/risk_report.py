"""The risk model's fit statistics, written with every publication (risk_model.json).

Reads intermediate.int_recidivism_risk_model (dbt Python model, statsmodels) and
writes one JSON document per model: status (and reason), fit statistics, design
choices and coefficients with standard errors, Wald 95 % intervals and p-values.
The manifest gets a short summary (penstat.publication.publish).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb

RISK_FILE = "risk_model.json"
SOURCE = "intermediate.int_recidivism_risk_model"


def risk_model_document(con: duckdb.DuckDBPyConnection, source: str = SOURCE) -> dict | None:
    schema, table = source.split(".")[-2:]
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
        "AND table_name = ?", [schema, table]).fetchone()[0]
    if not exists:
        return None
    rows = con.execute(
        f"SELECT model, section, name, value, std_error, ci_low, ci_high, p_value, note "
        f"FROM {source} ORDER BY model, section, name").fetchall()
    document: dict[str, dict] = {}
    rows = [tuple(None if isinstance(v, float) and not math.isfinite(v) else v for v in row)
            for row in rows]  # JSON has no NaN
    for model, section, name, value, se, low, high, p, note in rows:
        entry = document.setdefault(model, {"status": None, "reason": None, "fit": {},
                                            "design": {}, "coefficients": []})
        if section == "status":
            status, _, reason = (note or "").partition(": ")
            entry["status"], entry["reason"] = status, reason or None
        elif section == "fit":
            entry["fit"][name] = value
        elif section == "design":
            entry["design"][name] = note
        elif section == "coefficient":
            entry["coefficients"].append({"term": name, "estimate": value, "std_error": se,
                                          "ci_low": low, "ci_high": high, "p_value": p})
    return document


def summary(document: dict) -> dict:
    """The manifest's short version: status, size, discrimination, calibration, small vs large."""
    expected = document.get("expected", {})
    fit = expected.get("fit", {})
    out = {"file": RISK_FILE, "status": expected.get("status"), "reason": expected.get("reason")}
    for key in ("releases", "events", "parameters", "c_statistic", "mcfadden_pseudo_r2",
                "brier_score", "hosmer_lemeshow_p_value"):
        if key in fit:
            out[key] = fit[key]
    comparison = document.get("comparison_scale_class", {})
    small = next((c for c in comparison.get("coefficients", [])
                  if c["term"] == "scale_class_small"), None)
    if small:
        out["small_vs_large_log_odds"] = {k: small[k] for k in ("estimate", "ci_low", "ci_high")}
    return out


def write_risk_model(con: duckdb.DuckDBPyConnection, folder: Path,
                     source: str = SOURCE) -> dict | None:
    document = risk_model_document(con, source)
    if document is None:
        return None
    (folder / RISK_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return summary(document)
