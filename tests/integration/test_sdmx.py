"""The SDMX-CSV national series export (Eurostat's layout) and the risk model's fit
statistics, written into every publication."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime

import duckdb
import pytest

from penstat.core.files import sha256_file
from penstat.publication.publish import publish
from penstat.publication.sdmx import COLUMNS, SDMX_FILE, sdmx_csv
from penstat.transform.dbt_runner import build
from tests.integration.test_dbt_project import AS_OF, load_fixture


def test_columns_are_eurostats():
    assert COLUMNS[:2] == ("DATAFLOW", "LAST UPDATE")
    assert COLUMNS[-3:] == ("TIME_PERIOD", "OBS_VALUE", "OBS_FLAG")
    assert "freq" in COLUMNS and "geo" in COLUMNS


def test_rows_are_written_in_the_sdmx_csv_layout():
    con = duckdb.connect()
    con.execute("""CREATE TABLE obs AS SELECT * FROM (VALUES
        ('M', 'DENS', 'SMALL', 'PC', '2025-06', 83.25, NULL),
        ('M', 'SHR_SMALL_Y_LT18', 'TOTAL', 'PC', '2025-06', NULL, 'c'),
        ('A', 'RECID_2Y_GEN', 'SMALL', 'PC', '2022', 35.19379844961240, 'p')
    ) t(freq, indic, scale, unit, time_period, obs_value, obs_flag)""")
    data, n = sdmx_csv(con, datetime(2026, 11, 28, 2, 14, 9, tzinfo=UTC), source="obs")
    assert n == 3
    lines = data.decode("utf-8").splitlines()
    assert lines[0] == ("DATAFLOW,LAST UPDATE,freq,indic,scale,unit,geo,TIME_PERIOD,"
                        "OBS_VALUE,OBS_FLAG")
    # monthly series first (freq descending), then by indicator, scale and time
    assert lines[1] == ("PENSTAT:PRIS_SSD(1.0),28/11/26 02:14:09,M,DENS,SMALL,PC,XX,2025-06,"
                        "83.25,")
    assert lines[2].endswith(",M,SHR_SMALL_Y_LT18,TOTAL,PC,XX,2025-06,,c")
    assert lines[3].endswith(",A,RECID_2Y_GEN,SMALL,PC,XX,2022,35.19379845,p")


@pytest.fixture
def published(paths):
    load_fixture(paths.warehouse)
    build(paths.home, {"as_of_date": AS_OF}, docs=False, unit_tests=False)
    return publish(paths)


def test_every_publication_carries_the_sdmx_export_and_the_fit_statistics(paths, published):
    folder = published.folder
    manifest = json.loads((folder / "manifest.json").read_text())
    export = folder / SDMX_FILE
    assert export.is_file()
    assert not os.access(export, os.W_OK) or os.geteuid() == 0
    assert manifest["sdmx"]["sha256"] == sha256_file(export)
    table = list(csv.DictReader(io.StringIO(export.read_text(encoding="utf-8"))))
    assert manifest["sdmx"]["rows"] == len(table) > 0
    assert list(table[0]) == list(COLUMNS)
    assert {r["DATAFLOW"] for r in table} == {"PENSTAT:PRIS_SSD(1.0)"}
    assert {r["freq"] for r in table} == {"M", "A"}
    # January 2025 (census up to the 14th) is provisional: p on published values
    dens = [r for r in table if r["indic"] == "DENS" and r["scale"] == "TOTAL"]
    assert dens and all(r["OBS_FLAG"] == "p" and r["OBS_VALUE"] for r in dens)
    # the under-18 share has 3 under-18s behind it: confidential, no value
    [under_18] = [r for r in table if r["indic"] == "SHR_SMALL_Y_LT18"]
    assert under_18["OBS_VALUE"] == "" and under_18["OBS_FLAG"] == "c"
    # the recidivism groups of the fixture are all withheld: c with no value
    annual = [r for r in table if r["freq"] == "A" and r["scale"] != "TOTAL"]
    assert annual and all(r["OBS_VALUE"] == "" and r["OBS_FLAG"] == "c" for r in annual)
    # ... but the national rate of the cohort year is published
    [national] = [r for r in table if r["freq"] == "A" and r["scale"] == "TOTAL"]
    assert float(national["OBS_VALUE"]) == pytest.approx(100 * 2 / 4)  # R1, R3 of R1..R4

    risk = json.loads((folder / "risk_model.json").read_text())
    assert risk["expected"]["status"] == "not_fitted"
    assert manifest["risk_model"]["status"] == "not_fitted"
    assert "per parameter" in manifest["risk_model"]["reason"]
