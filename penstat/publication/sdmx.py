"""The national series export in SDMX-CSV, Eurostat's layout, written into every publication.

    DATAFLOW,LAST UPDATE,freq,indic,scale,unit,geo,TIME_PERIOD,OBS_VALUE,OBS_FLAG
    PENSTAT:PRIS_SSD(1.0),28/11/26 02:14:09,M,DENS,SMALL,PC,XX,2025-06,83.5,

The observations come from the dbt model exports.export_sdmx_national; every one that
is a value of a published mart (the national monthly KPIs by class, the cohorts' counts
and rates by scale class) takes its value and its one flag from the publication itself
(`published_observations`: the mart's value times the unit factor, and the value's own
`<column>_flag`), so the SDMX file says exactly what the marts say after the
publication's disclosure control (penstat.publication.disclosure): a withheld value has
an empty OBS_VALUE and OBS_FLAG c.

DATAFLOW, geo and the version come from [sdmx] of config/penstat.toml;
LAST UPDATE is the publication time (UTC) as dd/mm/yy HH:MM:SS, as Eurostat writes
it. Dimensions (docs/kpis.md lists the codes): freq (M monthly, A annual), indic
(the KPI), scale (SMALL, MEDIUM, LARGE, UNKNOWN or TOTAL), unit (PC percent, NR
number, RT ratio), geo; TIME_PERIOD is YYYY-MM or YYYY.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import duckdb

from penstat.core.config import Config

SDMX_FILE = "national_series.sdmx.csv"
COLUMNS = ("DATAFLOW", "LAST UPDATE", "freq", "indic", "scale", "unit", "geo", "TIME_PERIOD",
           "OBS_VALUE", "OBS_FLAG")
SOURCE = "exports.export_sdmx_national"

# SDMX indicator -> (mart column, factor), as export_sdmx_national maps them.
MONTHLY_INDICATORS: dict[str, tuple[str, float]] = {
    "FAC": ("facilities", 1), "CAP_AVG": ("capacity_places", 1),
    "POP_AVG": ("average_daily_population", 1), "DENS": ("density", 1),
    "OCC_INUSE": ("occupancy_in_use", 1), "OUT_OF_USE": ("out_of_use_share", 100),
    "SHR_OVERCROWD": ("share_in_overcrowded", 100), "SHR_SMALL": ("share_in_small_scale", 100),
    "SHR_SMALL_Y_LT18": ("vulnerable_in_small_scale_under_18", 100),
    "SHR_SMALL_Y18-22": ("vulnerable_in_small_scale_18_22", 100),
    "SHR_SMALL_F": ("vulnerable_in_small_scale_female", 100),
    "DET_CUST_FTE": ("detainees_per_custodial_fte", 1),
    "REHAB_FTE_P100": ("rehab_staff_per_100", 1), "WORK": ("work_participation", 100),
    "EDUC": ("education_participation", 100), "DIGITAL": ("digital_contact_share", 100),
    "REL_PLAN": ("release_plan_coverage", 100),
}
ANNUAL_INDICATORS: dict[str, tuple[str, float]] = {
    "RELEASED": ("cohort_size", 1), "RECID_2Y_GEN": ("recid_2y_general", 100),
    "RECID_2Y_CUST": ("recid_2y_custodial", 100), "PROVEN_1Y": ("proven_reoffending_1y", 100),
    "PROVEN_1Y_FREQ": ("reoffences_per_reoffender_1y", 1),
    "RECID_2Y_OE": ("observed_expected", 1), "RECID_2Y_ADJ": ("adjusted_rate", 100),
    "RECID_2Y_ADJ_LB": ("ci_low", 100), "RECID_2Y_ADJ_UB": ("ci_high", 100),
}

Observation = tuple[str, str, str, str]  # freq, indic, scale, time_period


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, mart: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
        "AND table_schema = 'marts' AND table_name = ?", [catalog, mart]).fetchall()}


def published_observations(con: duckdb.DuckDBPyConnection, catalog: str
                           ) -> dict[Observation, tuple[float | None, str | None]]:
    """(value x factor, flag) of every observation that is a value of the publication's
    marts in `catalog`; a value without a flag column keeps its row's flag."""
    out: dict[Observation, tuple[float | None, str | None]] = {}
    for mart, indicators, freq, period, scale, where in (
            ("mart_national_monthly", MONTHLY_INDICATORS, "M", "strftime(month, '%Y-%m')",
             "CASE scale_class WHEN 'all' THEN 'TOTAL' ELSE upper(scale_class) END", "true"),
            ("mart_recidivism_cohort", ANNUAL_INDICATORS, "A", "cohort_year::VARCHAR",
             "upper(group_value)", "group_type = 'scale_class'")):
        columns = _columns(con, catalog, mart)
        for indic, (column, factor) in indicators.items():
            if column not in columns:
                continue
            flag = f"{column}_flag" if f"{column}_flag" in columns else "flag"
            for p, sc, value, f in con.execute(
                    f'SELECT {period}, {scale}, {factor} * "{column}", "{flag}" '
                    f"FROM {catalog}.marts.{mart} WHERE {where}").fetchall():
                if value is None and f and "c" in f:
                    f = "c"  # one flag per observation: a withheld value is confidential
                out[(freq, indic, sc, p)] = (value, f)
    return out


def dataflow(config: Config | None = None) -> str:
    sdmx = (config or Config.load()).values.get("sdmx", {})
    return (f"{sdmx.get('agency', 'PENSTAT')}:{sdmx.get('dataflow', 'PRIS_SSD')}"
            f"({sdmx.get('version', '1.0')})")


def _value(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:.10g}"


def sdmx_csv(con: duckdb.DuckDBPyConnection, last_update: datetime, source: str = SOURCE,
             config: Config | None = None,
             published: dict[Observation, tuple[float | None, str | None]] | None = None,
             ) -> tuple[bytes, int]:
    """The SDMX-CSV bytes (UTF-8, comma, \\n) and the number of observations;
    `published`: the publication's own values and flags (published_observations)."""
    config = config or Config.load()
    flow = dataflow(config)
    geo = config.values.get("sdmx", {}).get("geo", "XX")
    stamp = last_update.strftime("%d/%m/%y %H:%M:%S")
    rows = con.execute(
        f"SELECT freq, indic, scale, unit, time_period, CAST(obs_value AS DOUBLE), obs_flag "
        f"FROM {source} "
        "ORDER BY freq DESC, indic, scale, time_period").fetchall()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for freq, indic, scale, unit, period, value, flag in rows:
        if published is not None and (freq, indic, scale, period) in published:
            value, flag = published[(freq, indic, scale, period)]
        writer.writerow([flow, stamp, freq, indic, scale, unit, geo, period, _value(value),
                         flag or ""])
    return out.getvalue().encode("utf-8"), len(rows)


def write_sdmx(con: duckdb.DuckDBPyConnection, folder: Path, last_update: datetime,
               source: str = SOURCE, published_catalog: str | None = None) -> dict | None:
    """Write SDMX_FILE into the folder; None when the warehouse has no export model.
    `published_catalog`: the attached published.duckdb whose values and flags win."""
    schema, table = source.split(".")[-2:]
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
        "AND table_name = ?", [schema, table]).fetchone()[0]
    if not exists:
        return None
    published = published_observations(con, published_catalog) if published_catalog else None
    data, rows = sdmx_csv(con, last_update, source, published=published)
    (folder / SDMX_FILE).write_bytes(data)
    return {"rows": rows, "dataflow": dataflow()}
