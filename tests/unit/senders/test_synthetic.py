"""The synthetic prison system: delivery format, determinism, invariants, selection and
the true small-scale effect (docs/synthetic.md)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm

from penstat.contract.feeds import (
    DELIVERY_ID_PATTERN,
    DOORBELL,
    FACILITY_TYPES,
    FEEDS,
    MANIFEST,
    V1_FEEDS,
)
from penstat.senders.delivery import csv_bytes, write_delivery
from penstat.senders.synthetic import (
    TRUE_SMALL_SCALE_LOG_ODDS,
    generate,
    history_until,
    next_day,
)
from penstat.senders.synthetic.__main__ import main
from penstat.senders.synthetic.recidivism import risk_design
from penstat.senders.synthetic.system import SyntheticSystem, SystemConfig

SMALL_SCALE = 0.1
SEED = 42
START, END = date(2023, 1, 1), date(2025, 12, 31)
EXTRACTION = pd.Timestamp("2026-06-30")


# --------------------------------------------------------------------------- helpers


def read_file(path: Path, feed: str) -> pd.DataFrame:
    """A delivered CSV typed by the contract (int -> Int64, dec -> float, date -> datetime)."""
    spec = FEEDS[feed].file(path.stem)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = pd.DataFrame(index=raw.index)
    for column in spec.columns:
        values = raw[column.name].replace("", None)
        if column.type == "int":
            out[column.name] = pd.to_numeric(values).astype("Int64")
        elif column.type == "dec":
            out[column.name] = pd.to_numeric(values).astype(float)
        elif column.type == "date":
            out[column.name] = pd.to_datetime(values)
        elif column.type == "bool":
            out[column.name] = values.map({"true": True, "false": False})
        else:
            out[column.name] = values
    return out


def read_all(inbox: Path, feed: str, stem: str) -> pd.DataFrame:
    paths = sorted((inbox / feed).glob(f"*/{stem}.csv"))
    return pd.concat([read_file(p, feed) for p in paths], ignore_index=True)


def file_hashes(inbox: Path) -> dict[str, str]:
    return {str(p.relative_to(inbox)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(inbox.rglob("*")) if p.is_file()}


def valid_rows(register: pd.DataFrame, facts: pd.DataFrame, day_column: str) -> pd.DataFrame:
    """Each fact joined to the register rows of its facility in force on its day."""
    joined = facts.merge(register, on="facility_id", how="left")
    day = joined[day_column]
    open_ended = joined["valid_to"].isna() | (day <= joined["valid_to"])
    in_force = (joined["valid_from"] <= day) & open_ended
    return joined[in_force]


def two_year_reoffending(releases: pd.DataFrame, reconvictions: pd.DataFrame) -> pd.Series:
    """WODC two-year general prevalence of each release from the delivered files (a person's
    cases after any of their releases count for every release whose window they fall in)."""
    cases = reconvictions.merge(releases[["release_id", "person_ref", "release_date"]],
                                on="person_ref")
    inside = (cases["offence_date"] > cases["release_date"]) & (
        cases["offence_date"] <= cases["release_date"] + pd.DateOffset(months=24))
    counted = cases[inside & (cases["conviction_date"] <= EXTRACTION)]["release_id"]
    return releases["release_id"].isin(set(counted)).astype(int)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inbox")
    generate(root, scale=SMALL_SCALE, seed=SEED)
    return root


@pytest.fixture(scope="module")
def register(inbox: Path) -> pd.DataFrame:
    return read_all(inbox, "facility_register", "facilities")


@pytest.fixture(scope="module")
def occupancy(inbox: Path) -> pd.DataFrame:
    return read_all(inbox, "occupancy", "occupancy")


@pytest.fixture(scope="module")
def recidivism_scale_1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scale1")
    generate(root, scale=1, seed=SEED, feeds=["facility_register", "recidivism"])
    return root


# --------------------------------------------------------------------------- delivery.py


def test_write_delivery_writes_data_then_manifest_then_doorbell(tmp_path: Path) -> None:
    data = csv_bytes([("a", "two\nlines", 1.5), ("b", 'quote "x"', None)], ["k", "text", "v"])
    folder = write_delivery(tmp_path, "occupancy", "t-1", {"occupancy.csv": data},
                            sender="T", created_at="2026-01-02T02:00:00Z",
                            period=("2026-01-01", "2026-01-01"))
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["files"] == [{"name": "occupancy.csv",
                                  "sha256": hashlib.sha256(data).hexdigest(), "rows": 2}]
    assert manifest["contract_version"] == "1"
    assert manifest["period"] == {"start": "2026-01-01", "end": "2026-01-01"}
    assert manifest["replaces"] is None and "dialect" not in manifest
    assert (tmp_path / "occupancy" / DOORBELL).exists()
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "occupancy.csv"]
    with pytest.raises(FileExistsError):
        write_delivery(tmp_path, "occupancy", "t-1", {"occupancy.csv": data}, sender="T",
                       created_at="2026-01-02T02:00:00Z", period=None)


def test_write_delivery_overrides_dialect_and_no_ring(tmp_path: Path) -> None:
    data = csv_bytes([{"a": 1.25, "b": "é"}], ["a", "b"], delimiter=";", decimal=",",
                     encoding="cp1252")
    assert data == "a;b\n1,25;é\n".encode("cp1252")
    dialect = {"delimiter": ";", "decimal": ",", "encoding": "cp1252"}
    folder = write_delivery(tmp_path, "staffing", "bad-1", {"staffing.csv": data}, sender="T",
                            created_at="2026-01-02T02:00:00Z", period=None, dialect=dialect,
                            ring=False, manifest_overrides={"contract_version": "9"})
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["contract_version"] == "9"
    assert manifest["dialect"] == dialect
    assert manifest["files"][0]["rows"] == 1
    assert not (tmp_path / "staffing" / DOORBELL).exists()
    with pytest.raises(ValueError):
        write_delivery(tmp_path, "staffing", "../escape", {}, sender="T",
                       created_at="2026-01-02T02:00:00Z", period=None)


def test_parquet_rows_counted_with_pyarrow(tmp_path: Path) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2, 3]}), sink)
    folder = write_delivery(tmp_path, "occupancy", "pq-1", {"occupancy.parquet": sink.getvalue()},
                            sender="T", created_at="2026-01-02T02:00:00Z", period=None)
    assert json.loads((folder / MANIFEST).read_text())["files"][0]["rows"] == 3


def test_csv_bytes_formats_values() -> None:
    frame = pd.DataFrame({
        "d": pd.to_datetime(["2024-02-29", None]),
        "b": [True, False],
        "x": [1.0 / 3, float("nan")],
        "n": pd.Series([7, None], dtype="Int64"),
        "s": ["a,b", None],
    })
    assert csv_bytes(frame, ["s", "d", "b", "x", "n"]) == (
        b's,d,b,x,n\n"a,b",2024-02-29,true,0.3333,7\n,,false,,\n')


# --------------------------------------------------------------------------- deliveries


def test_same_seed_same_bytes_other_seed_differs(inbox: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    generate(again, scale=SMALL_SCALE, seed=SEED)
    generate(other, scale=SMALL_SCALE, seed=SEED + 1)
    assert file_hashes(again) == file_hashes(inbox)
    different = file_hashes(other)
    assert different.keys() == file_hashes(inbox).keys()
    data_files = [k for k in different if k.endswith(".csv")]
    assert all(different[k] != file_hashes(inbox)[k] for k in data_files)


def test_deliveries_layout_ids_and_doorbells(inbox: Path) -> None:
    folders = sorted(p for p in inbox.glob("*/*") if p.is_dir())
    assert [f"{p.parent.name}/{p.name}" for p in folders] == [
        "facility_register/syn-reg-1",
        "occupancy/syn-occ-2023", "occupancy/syn-occ-2024", "occupancy/syn-occ-2025",
        "recidivism/syn-rec-2026-06-30",
        "staffing/syn-stf-2023", "staffing/syn-stf-2024", "staffing/syn-stf-2025",
    ]
    for feed in V1_FEEDS:  # the synthetic system sends the contract-v1 feeds
        assert (inbox / feed / DOORBELL).exists()
    for folder in folders:
        manifest = json.loads((folder / MANIFEST).read_text())
        assert DELIVERY_ID_PATTERN.match(manifest["delivery_id"])
        assert manifest["feed"] == folder.parent.name
        assert manifest["delivery_id"] == folder.name
    recidivism = json.loads((inbox / "recidivism/syn-rec-2026-06-30" / MANIFEST).read_text())
    assert recidivism["created_at"] == "2026-06-30T00:00:00Z"


def test_manifest_checksums_and_row_counts_match(inbox: Path) -> None:
    for manifest_path in inbox.glob(f"*/*/{MANIFEST}"):
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["files"]:
            data = (manifest_path.parent / entry["name"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
            assert len(records) - 1 == entry["rows"], entry["name"]


def test_every_contract_column_in_order(inbox: Path) -> None:
    for manifest_path in inbox.glob(f"*/*/{MANIFEST}"):
        feed = FEEDS[manifest_path.parent.parent.name]
        names = {Path(e["name"]).stem for e in json.loads(manifest_path.read_text())["files"]}
        assert set(feed.required_files) <= names
        for stem in names:
            with open(manifest_path.parent / f"{stem}.csv", newline="") as fh:
                header = next(csv.reader(fh))
            assert tuple(header) == feed.file(stem).column_names


def test_rows_fall_in_manifest_period(inbox: Path) -> None:
    for feed, stem, column in (("occupancy", "occupancy", "census_date"),
                               ("occupancy", "regime", "month"), ("staffing", "staffing", "month")):
        for path in (inbox / feed).glob(f"*/{stem}.csv"):
            period = json.loads((path.parent / MANIFEST).read_text())["period"]
            values = read_file(path, feed)[column]
            days = pd.to_datetime(values + "-01") if column == "month" else values
            assert days.min() >= pd.Timestamp(period["start"])
            assert days.max() <= pd.Timestamp(period["end"])


# --------------------------------------------------------------------------- invariants


def test_register_shape(register: pd.DataFrame) -> None:
    facilities = register.drop_duplicates("facility_id")
    assert 13 <= len(facilities) <= 20
    assert set(facilities["facility_type"]) == set(FACILITY_TYPES)
    assert (register.groupby("facility_id")["capacity_places"].min() <= 30).sum() >= 3
    assert (register["operational_capacity"] >= register["capacity_places"]).all()
    houses = register[register["facility_type"] == "detention_house"]
    assert houses["community_integrated"].all()
    assert houses["security_level"].isin(["low", "open"]).all()
    assert register["facility_id"].str.fullmatch(r"SY-\d{4}").all()


def test_register_intervals_do_not_overlap(register: pd.DataFrame) -> None:
    for _, rows in register.sort_values("valid_from").groupby("facility_id"):
        ends = rows["valid_to"].iloc[:-1]
        starts = rows["valid_from"].iloc[1:]
        assert ends.notna().all()
        assert ((ends + pd.Timedelta(days=1)).to_numpy() == starts.to_numpy()).all()
        assert (rows["valid_to"].isna() | (rows["valid_to"] >= rows["valid_from"])).all()


def test_register_history_in_the_horizon(register: pd.DataFrame, occupancy: pd.DataFrame) -> None:
    changes = register[register["facility_id"].duplicated(keep=False)].sort_values("valid_from")
    growth = changes.groupby("facility_id")["capacity_places"].agg(["first", "last"])
    assert ((growth["first"] <= 30) & (growth["last"] > 30)).any()
    change_days = changes.groupby("facility_id")["valid_from"].max()
    assert change_days.dt.day.between(10, 20).all()
    opened = register.groupby("facility_id")["valid_from"].min()
    assert opened.between(pd.Timestamp(START), pd.Timestamp(END)).any()
    last_rows = register.sort_values("valid_from").groupby("facility_id").tail(1)
    closed = last_rows.dropna(subset=["valid_to"]).set_index("facility_id")["valid_to"]
    assert len(closed) >= 1
    last_census = occupancy.groupby("facility_id")["census_date"].max()
    assert (last_census[closed.index] <= closed).all()
    first_census = occupancy.groupby("facility_id")["census_date"].min()
    assert (opened.reindex(first_census.index) <= first_census).all()


def test_no_occupancy_outside_validity(register: pd.DataFrame, occupancy: pd.DataFrame) -> None:
    matched = valid_rows(register, occupancy, "census_date")
    assert len(matched) == len(occupancy)
    assert not matched.duplicated(["facility_id", "census_date"]).any()
    days = occupancy.groupby("facility_id")["census_date"].nunique()
    expected = register.assign(
        last=register["valid_to"].fillna(pd.Timestamp(END)).clip(upper=pd.Timestamp(END)),
        first=register["valid_from"].clip(lower=pd.Timestamp(START)),
    )
    row_days = (expected["last"] - expected["first"]).dt.days + 1
    expected = row_days.groupby(expected["facility_id"]).sum()
    assert (days.sort_index() == expected.sort_index()).all()


def test_occupancy_invariants(register: pd.DataFrame, occupancy: pd.DataFrame) -> None:
    o = valid_rows(register, occupancy, "census_date")
    counts = o[list(FEEDS["occupancy"].file("occupancy").column_names[2:])]
    assert (counts >= 0).all().all()
    assert (o["population_female"] <= o["population"]).all()
    assert (o["population_remand"] <= o["population"]).all()
    assert (o["population_under_18"] + o["population_18_22"] <= o["population"]).all()
    assert (o["places_out_of_use"] <= o["capacity_places"]).all()
    assert (o["places_out_of_use"] == 0).any()
    assert (o["population"] <= 2 * o["operational_capacity"]).all()
    youth = o["facility_type"] == "juvenile_small_scale"
    assert o.loc[youth, "population_under_18"].sum() > 0.8 * o["population_under_18"].sum()
    density = o["population"].sum() / o["capacity_places"].sum()
    assert 0.8 < density < 1.1


def test_population_identity(occupancy: pd.DataFrame) -> None:
    o = occupancy.sort_values(["facility_id", "census_date"])
    previous = o.groupby("facility_id")["population"].shift()
    consecutive = o.groupby("facility_id")["census_date"].diff() == pd.Timedelta(days=1)
    assert consecutive.sum() == len(o) - o["facility_id"].nunique()
    identity = previous + o["admissions"] - o["releases"] == o["population"]
    assert identity[consecutive].all()


def test_seasonality_and_overcrowding(tmp_path: Path) -> None:
    generate(tmp_path, scale=1, seed=SEED, feeds=["facility_register", "occupancy"])
    register = read_all(tmp_path, "facility_register", "facilities")
    o = valid_rows(register, read_all(tmp_path, "occupancy", "occupancy"), "census_date")
    by_month = o.groupby(o["census_date"].dt.month)["population"].sum()
    days = o.groupby(o["census_date"].dt.month)["census_date"].nunique()
    daily = by_month / days
    assert daily[[1, 2, 12]].mean() > daily[[6, 7, 8]].mean()
    prisons = o[o["facility_type"] == "prison"]
    density = prisons.groupby("facility_id").apply(
        lambda f: f["population"].sum() / f["capacity_places"].sum(), include_groups=False)
    assert (density.between(1.05, 1.40)).sum() >= 5


def test_regime_consistent_with_daily_census(inbox: Path, occupancy: pd.DataFrame) -> None:
    regime = read_all(inbox, "occupancy", "regime")
    daily = occupancy.assign(month=occupancy["census_date"].dt.strftime("%Y-%m"))
    monthly = daily.groupby(["facility_id", "month"]).agg(
        mean_population=("population", "mean"), releases=("releases", "sum")).reset_index()
    merged = regime.merge(monthly, on=["facility_id", "month"], validate="one_to_one")
    assert len(merged) == len(regime) == len(monthly)
    assert np.allclose(merged["avg_population"], merged["mean_population"].round(2), atol=0.006)
    assert (merged["releases_total"] == merged["releases"]).all()
    assert (regime["releases_with_plan"] <= regime["releases_total"]).all()
    for column in ("in_paid_work", "in_education", "with_digital_contact"):
        assert (regime[column] <= regime["avg_population"]).all()


def test_staffing_invariants(inbox: Path, register: pd.DataFrame) -> None:
    staffing = read_all(inbox, "staffing", "staffing")
    regime = read_all(inbox, "occupancy", "regime")
    per_month = staffing.groupby(["facility_id", "month"])["staff_category"].agg(list)
    categories = FEEDS["staffing"].file("staffing").column("staff_category").allowed
    assert all(tuple(found) == categories for found in per_month)
    assert len(per_month) == len(regime)
    assert (staffing["fte"] >= 0).all() and (staffing["vacancies_fte"] >= 0).all()
    assert (staffing["headcount"] >= np.ceil(staffing["fte"] - 1e-9)).all()
    assert (staffing["trained_last_24m"] <= staffing["headcount"]).all()
    custodial = staffing[staffing["staff_category"] == "custodial"].merge(
        regime, on=["facility_id", "month"])
    custodial["small"] = custodial["facility_id"].map(
        register.groupby("facility_id")["capacity_places"].min() <= 30)
    ratio = custodial.groupby("small").apply(
        lambda f: f["avg_population"].sum() / f["fte"].sum(), include_groups=False)
    assert ratio[True] < ratio[False]


# --------------------------------------------------------------------------- recidivism


def test_recidivism_files(inbox: Path, register: pd.DataFrame) -> None:
    releases = read_all(inbox, "recidivism", "releases")
    cases = read_all(inbox, "recidivism", "reconvictions")
    assert releases["person_ref"].str.fullmatch(r"9\d{8}").all()
    assert releases["release_id"].is_unique
    # persons come back: several releases, some in the same year, from several facilities
    per_person = releases.groupby("person_ref")
    assert per_person.size().max() > 1
    assert releases.assign(year=releases["release_date"].dt.year).duplicated(
        ["person_ref", "year"]).any()
    assert (per_person["facility_id"].nunique() > 1).any()
    assert set(releases["release_date"].dt.year) == set(range(2018, 2025))
    assert len(valid_rows(register, releases, "release_date")) == len(releases)
    assert (releases["days_in_small_scale"] <= releases["sentence_days"]).all()
    assert set(releases["sex"]) <= {"F", "M", "X"}
    assert set(cases["person_ref"]) <= set(releases["person_ref"])
    assert not cases.duplicated(["person_ref", "case_id"]).any()
    assert (cases["conviction_date"] >= cases["offence_date"]).all()
    assert (cases["conviction_date"] <= EXTRACTION).all()
    joined = cases.merge(releases[["person_ref", "release_date"]], on="person_ref")
    after = joined[joined["offence_date"] > joined["release_date"]]
    # new offences of people released once (an old case of a second release falls after
    # the first release but is tried with the old cases' longer lag)
    once = releases.groupby("person_ref").size().loc[lambda n: n == 1].index
    new = after[after["person_ref"].isin(once)]
    lag = (new["conviction_date"] - new["offence_date"]).dt.days
    assert lag.between(28, 366).all()
    assert (joined["offence_date"] < joined["release_date"]).any()  # old offences, tried later
    late = after["offence_date"] > after["release_date"] + pd.DateOffset(months=24)
    assert late.any()
    assert cases.groupby("person_ref").size().max() > 1


def test_small_units_receive_lower_risk_people(inbox: Path, register: pd.DataFrame) -> None:
    releases = valid_rows(register, read_all(inbox, "recidivism", "releases"), "release_date")
    small = releases["capacity_places"] <= 30
    assert releases.loc[small, "prior_convictions"].mean() < releases.loc[~small,
                                                                          "prior_convictions"].mean()
    assert (releases.loc[small, "days_in_small_scale"] > 0).all()
    assert releases.loc[small, "days_in_small_scale"].mean() > 5 * releases.loc[
        ~small, "days_in_small_scale"].mean()


def test_quarter_small_scale_at_scale_1(tmp_path: Path) -> None:
    generate(tmp_path, scale=1, seed=SEED, feeds=["facility_register"])
    register = read_all(tmp_path, "facility_register", "facilities")
    first = register.sort_values("valid_from").drop_duplicates("facility_id")
    assert 115 <= len(first) <= 145
    assert 0.2 <= (first["capacity_places"] <= 30).mean() <= 0.3


def test_true_small_scale_effect_is_recovered(recidivism_scale_1: Path) -> None:
    register = read_all(recidivism_scale_1, "facility_register", "facilities")
    releases = read_all(recidivism_scale_1, "recidivism", "releases")
    cases = read_all(recidivism_scale_1, "recidivism", "reconvictions")
    releases = valid_rows(register, releases, "release_date").reset_index(drop=True)
    releases["reoffended"] = two_year_reoffending(releases, cases)
    mature = releases[releases["release_date"].dt.year <= 2023].reset_index(drop=True)
    design = risk_design(mature).assign(small=(mature["capacity_places"] <= 30).astype(float))
    fit = sm.Logit(mature["reoffended"], design).fit(disp=0)
    low, high = fit.conf_int().loc["small"]
    assert low <= TRUE_SMALL_SCALE_LOG_ODDS <= high

    small = design["small"] == 1
    raw_gap = (mature.loc[small, "reoffended"].mean()
               - mature.loc[mature["capacity_places"] >= 200, "reoffended"].mean())
    treated = design[small]
    adjusted_gap = (fit.predict(treated.assign(small=1.0))
                    - fit.predict(treated.assign(small=0.0))).mean()
    assert raw_gap < adjusted_gap < 0
    assert math.isclose(math.exp(TRUE_SMALL_SCALE_LOG_ODDS), 0.7408, abs_tol=1e-4)


def test_the_true_outcome_is_the_delivered_one_for_mature_cohorts() -> None:
    """The simulation study (benchmarks/recidivism_simulation.py) reads the generator's latent
    outcome: for every mature release it is what the delivered files say, returns to custody
    included (the first new offence of a reoffender is convicted before the deadline)."""
    data = SyntheticSystem(SystemConfig(seed=SEED, scale=0.2)).recidivism
    releases = data.releases
    observed = two_year_reoffending(releases, data.reconvictions).to_numpy(bool)
    cases = data.reconvictions.merge(releases[["release_id", "person_ref", "release_date"]],
                                     on="person_ref")
    late = cases["conviction_date"] > cases["release_date"] + pd.DateOffset(months=30)
    inside = (cases["offence_date"] > cases["release_date"]) & (
        cases["offence_date"] <= cases["release_date"] + pd.DateOffset(months=24))
    # the deadline never decides: no release's only in-window case is convicted late
    only_late = set(cases[inside & late]["release_id"]) - set(cases[inside & ~late]["release_id"])
    mature = (releases["release_date"].dt.year <= 2022).to_numpy()
    assert mature.sum() > 1000
    assert (observed[mature] == data.reoffended_2y[mature]).all()
    assert not only_late & set(releases.loc[mature, "release_id"])


def test_immature_cohort_undercounts(recidivism_scale_1: Path) -> None:
    releases = read_all(recidivism_scale_1, "recidivism", "releases")
    cases = read_all(recidivism_scale_1, "recidivism", "reconvictions")
    rate = two_year_reoffending(releases, cases).groupby(releases["release_date"].dt.year).mean()
    assert rate[2024] < rate[range(2018, 2024)].min()


# --------------------------------------------------------------------------- next day, splits, CLI


def test_next_day_continues_the_census(inbox: Path, register: pd.DataFrame,
                                       occupancy: pd.DataFrame, tmp_path: Path) -> None:
    folder = next_day(tmp_path, scale=SMALL_SCALE, seed=SEED, day=date(2026, 1, 1))
    assert folder == tmp_path / "occupancy" / "syn-occ-2026-01-01"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["period"] == {"start": "2026-01-01", "end": "2026-01-01"}
    assert (tmp_path / "occupancy" / DOORBELL).exists()
    today = read_file(folder / "occupancy.csv", "occupancy")
    assert len(valid_rows(register, today, "census_date")) == len(today)
    still_open = register.loc[register["valid_to"].isna(), "facility_id"]
    assert set(today["facility_id"]) == set(still_open)
    yesterday = occupancy[occupancy["census_date"] == pd.Timestamp(END)]
    both = yesterday.merge(today, on="facility_id", suffixes=("_0", ""))
    assert len(both) == len(today)
    continued = both["population_0"] + both["admissions"] - both["releases"]
    assert (continued == both["population"]).all()

    inside = next_day(tmp_path / "again", scale=SMALL_SCALE, seed=SEED, day=date(2024, 5, 5),
                      ring=False)
    assert not (tmp_path / "again" / "occupancy" / DOORBELL).exists()
    delivered = occupancy[occupancy["census_date"] == pd.Timestamp("2024-05-05")]
    again = read_file(inside / "occupancy.csv", "occupancy")
    pd.testing.assert_frame_equal(again, delivered.reset_index(drop=True))


def test_month_split_carries_the_same_rows(inbox: Path, occupancy: pd.DataFrame,
                                           tmp_path: Path) -> None:
    generate(tmp_path, scale=SMALL_SCALE, seed=SEED, split="month", feeds=["occupancy", "staffing"])
    assert len(list((tmp_path / "occupancy").glob("syn-occ-2023-*"))) == 12
    assert len(list((tmp_path / "staffing").glob("syn-stf-*"))) == 36
    monthly = read_all(tmp_path, "occupancy", "occupancy")
    pd.testing.assert_frame_equal(monthly, occupancy)
    for stem, feed in (("regime", "occupancy"), ("staffing", "staffing")):
        pd.testing.assert_frame_equal(read_all(tmp_path, feed, stem), read_all(inbox, feed, stem))


def test_day_split_puts_regime_in_month_end_deliveries(tmp_path: Path) -> None:
    generate(tmp_path, scale=0.05, seed=SEED, split="day", years=1, feeds=["occupancy"])
    folders = sorted((tmp_path / "occupancy").glob("syn-occ-*"))
    assert len(folders) == 365
    with_regime = sorted(p.name for p in folders if (p / "regime.csv").exists())
    assert with_regime[0] == "syn-occ-2023-01-31" and len(with_regime) == 12


def test_cli_generate_and_next_day(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inbox = tmp_path / "inbox"
    assert main(["generate", "--inbox", str(inbox), "--scale", "0.05", "--seed", "7",
                 "--feeds", "facility_register"]) == 0
    assert "facility_register: 1 delivery" in capsys.readouterr().out
    assert main(["next-day", "--inbox", str(inbox), "--scale", "0.05", "--seed", "7",
                 "--date", "2026-01-01"]) == 0
    assert "occupancy: 1 delivery" in capsys.readouterr().out
    assert (inbox / "occupancy" / "syn-occ-2026-01-01" / MANIFEST).exists()
    with pytest.raises(SystemExit):
        main(["generate", "--inbox", str(inbox), "--scale", "1", "--split", "week"])


# --------------------------------------------------------------------------- until


def test_history_until_is_the_day_before_the_run() -> None:
    assert history_until(date(2026, 3, 1)) == date(2026, 2, 28)
    assert history_until() < date.today() + timedelta(days=1)


def test_until_ends_the_history_on_that_day(tmp_path: Path) -> None:
    until = date(2026, 11, 18)
    generate(tmp_path, scale=SMALL_SCALE, seed=SEED, until=until)
    occupancy = read_all(tmp_path, "occupancy", "occupancy")
    assert occupancy["census_date"].min() == pd.Timestamp(START)
    assert occupancy["census_date"].max() == pd.Timestamp(until)
    staffing = read_all(tmp_path, "staffing", "staffing")
    assert staffing["month"].max() == "2026-11"  # the month in progress, so far
    manifests = {m["feed"] + "/" + m["delivery_id"]: m for m in (
        json.loads(p.read_text()) for p in tmp_path.glob(f"*/*/{MANIFEST}"))}
    last = manifests["occupancy/syn-occ-2026"]
    assert last["period"] == {"start": "2026-01-01", "end": until.isoformat()}
    # created the next day at midnight UTC, so never after the run of that day started
    assert last["created_at"] == "2026-11-19T00:00:00Z"
    assert manifests["occupancy/syn-occ-2025"]["created_at"] == "2026-01-01T02:00:00Z"
    assert manifests[f"recidivism/syn-rec-{until.isoformat()}"]["created_at"] == \
        f"{until.isoformat()}T00:00:00Z"


def test_next_day_after_until_continues_it(tmp_path: Path) -> None:
    until = date(2026, 2, 10)
    generate(tmp_path / "history", scale=SMALL_SCALE, seed=SEED, until=until)
    history = read_all(tmp_path / "history", "occupancy", "occupancy")
    folder = next_day(tmp_path / "next", scale=SMALL_SCALE, seed=SEED,
                      day=until + timedelta(days=1), until=until,
                      created_at="2026-02-11T09:30:00Z", ring=False)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["created_at"] == "2026-02-11T09:30:00Z"
    today = read_file(folder / "occupancy.csv", "occupancy")
    yesterday = history[history["census_date"] == pd.Timestamp(until)]
    both = yesterday.merge(today, on="facility_id", suffixes=("_0", ""))
    assert len(both) == len(today) > 0
    assert (both["population_0"] + both["admissions"] - both["releases"]
            == both["population"]).all()


def test_cli_until(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inbox = tmp_path / "inbox"
    assert main(["generate", "--inbox", str(inbox), "--scale", "0.05", "--seed", "7",
                 "--feeds", "recidivism", "--until", "yesterday"]) == 0
    assert (inbox / "recidivism" / f"syn-rec-{history_until().isoformat()}").is_dir()
    assert main(["next-day", "--inbox", str(inbox), "--scale", "0.05", "--seed", "7",
                 "--until", "2026-02-10", "--date", "2026-02-11"]) == 0
    assert (inbox / "occupancy" / "syn-occ-2026-02-11" / MANIFEST).exists()


def test_until_before_the_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="before the first census day"):
        generate(tmp_path, scale=SMALL_SCALE, seed=SEED, until=date(2022, 12, 31))
