"""The national series export in SDMX-CSV, Eurostat's layout, written into every publication.

    DATAFLOW,LAST UPDATE,freq,indic,scale,unit,geo,TIME_PERIOD,OBS_VALUE,OBS_FLAG
    PENSTAT:PRIS_SSD(1.0),28/11/26 02:14:09,M,DENS,SMALL,PC,XX,2025-06,83.5,

The observations come from the dbt model exports.export_sdmx_national (built with
the marts, after disclosure control: a withheld value has an empty OBS_VALUE and
OBS_FLAG c). DATAFLOW, geo and the version come from [sdmx] of config/penstat.toml;
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


def dataflow(config: Config | None = None) -> str:
    sdmx = (config or Config.load()).values.get("sdmx", {})
    return (f"{sdmx.get('agency', 'PENSTAT')}:{sdmx.get('dataflow', 'PRIS_SSD')}"
            f"({sdmx.get('version', '1.0')})")


def _value(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:.10g}"


def sdmx_csv(con: duckdb.DuckDBPyConnection, last_update: datetime, source: str = SOURCE,
             config: Config | None = None) -> tuple[bytes, int]:
    """The SDMX-CSV bytes (UTF-8, comma, \\n) and the number of observations."""
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
        writer.writerow([flow, stamp, freq, indic, scale, unit, geo, period, _value(value),
                         flag or ""])
    return out.getvalue().encode("utf-8"), len(rows)


def write_sdmx(con: duckdb.DuckDBPyConnection, folder: Path, last_update: datetime,
               source: str = SOURCE) -> dict | None:
    """Write SDMX_FILE into the folder; None when the warehouse has no export model."""
    schema, table = source.split(".")[-2:]
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
        "AND table_name = ?", [schema, table]).fetchone()[0]
    if not exists:
        return None
    data, rows = sdmx_csv(con, last_update, source)
    (folder / SDMX_FILE).write_bytes(data)
    return {"rows": rows, "dataflow": dataflow()}
