"""The dashboard: figures as published (never recomputed), withheld values as `c`, built
into a read-only publication without touching its data files, generic over columns and
marts. The browser test (tests/e2e/test_dashboard_browser.py) renders it in Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path

import duckdb
import pytest

from penstat.publication.publish import publish
from penstat.reporting.dashboard import extract, install
from penstat.reporting.dashboard.extract import Publication
from penstat.reporting.dashboard.flags import Cell, flag_column
from penstat.reporting.dashboard.install import install_dashboard
from penstat.reporting.dashboard.render import render
from tests.unit.publication.test_publication import build_marts


def fake_publication(folder: Path, sql: str, manifest: dict | None = None) -> Path:
    """A publication folder whose published.duckdb holds what `sql` creates."""
    folder.mkdir(parents=True)
    con = duckdb.connect(str(folder / "published.duckdb"))
    con.execute("CREATE SCHEMA marts")
    con.execute(sql)
    con.close()
    (folder / "manifest.json").write_text(json.dumps(manifest or {"version": folder.name}))
    return folder


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.iterdir() if p.is_file()}


def test_flag_column_prefers_the_values_own_flag():
    assert flag_column("density", ["density", "density_flag", "flag"]) == "density_flag"
    assert flag_column("density", ["density", "flag"]) == "flag"
    assert flag_column("density", ["density"]) is None
    assert Cell(None, "cp").withheld and not Cell(None, "p").withheld
    assert Cell(None, "p").missing and not Cell(0, "c").withheld  # zero is a value


PER_VALUE_FLAGS = """
CREATE TABLE marts.mart_national_monthly AS SELECT * FROM (VALUES
  (DATE '2024-01-01', 'small', 3, NULL::DOUBLE, 'c', 0.5, NULL::VARCHAR, 'x'),
  (DATE '2024-01-01', 'all', 9, 97.5, NULL, NULL::DOUBLE, NULL::VARCHAR, 'x'),
  (DATE '2024-02-01', 'small', 3, 88.25, 'p', 0.5, 'p', 'y'),
  (DATE '2024-02-01', 'all', 9, 99.0, 'p', 0.25, 'p', 'y')
) t(month, scale_class, facilities, density, density_flag, share_in_small_scale,
    share_in_small_scale_flag, brand_new_column);
COMMENT ON COLUMN marts.mart_national_monthly.density IS 'Unit: per 100 places. Density.';
COMMENT ON COLUMN marts.mart_national_monthly.share_in_small_scale IS 'Share 0..1 of ...';
"""


def test_per_value_flags_decide_what_is_withheld(tmp_path):
    folder = fake_publication(tmp_path / "v1", PER_VALUE_FLAGS)
    with Publication(folder) as pub:
        table = extract.national_series(pub)
        assert extract.latest_complete_month(pub).isoformat() == "2024-01-01"
    rows = {(r["month"].value.isoformat(), r["scale_class"].value): r for r in table.rows}
    assert rows[("2024-01-01", "small")]["density"].withheld
    # an empty value whose own flag has no c is not available, not withheld
    assert rows[("2024-01-01", "all")]["share_in_small_scale"].missing
    assert rows[("2024-02-01", "small")]["density"] == Cell(88.25, "p")
    assert [c.name for c in table.columns] == [  # flag columns are not values
        "month", "scale_class", "facilities", "density", "share_in_small_scale",
        "brand_new_column"]


def test_withheld_reads_c_with_its_meaning_never_blank_or_zero(tmp_path):
    folder = fake_publication(tmp_path / "v1", PER_VALUE_FLAGS)
    with Publication(folder) as pub:
        page = render(pub)
    cell = re.search(r'<td class="withheld" data-col="density" data-key="2024-01-01\|small"'
                     r'[^>]*><abbr title="([^"]*)">c</abbr></td>', page)
    assert cell, "the withheld density of small in 2024-01 is not shown as c"
    assert "confidential" in cell.group(1)
    assert re.search(r'data-col="share_in_small_scale" data-key="2024-01-01\|all"[^>]*>'
                     r'<abbr title="not available[^"]*">:</abbr>', page)
    # shares are shown as percent, per-100 figures with one decimal, flags beside them
    assert re.search(r'data-col="share_in_small_scale" data-key="2024-02-01\|all" '
                     r'data-value="0.25" data-flags="p">25.0<sup class="flag"', page)
    assert 'data-col="density" data-key="2024-02-01|small" data-value="88.25" ' \
           'data-flags="p">88.2' in page or '>88.3<' in page
    # a column the dashboard has never heard of is shown too (generic over columns)
    assert 'data-col="brand_new_column"' in page
    assert 'data-ready' in page and "publication v1" in page


FACILITY_RECIDIVISM = """
CREATE TABLE marts.mart_facility_recidivism AS SELECT * FROM (VALUES
  ('F-1', 2022, 120, 0.40, 0.41, 'n'), ('F-2', 2022, 300, 0.45, 0.44, NULL),
  ('F-3', 2022, 3, NULL, NULL, 'c')
) t(facility_id, cohort_year, cohort_size, recid_2y_general, national_rate, flag);
"""


def test_the_funnel_plot_appears_only_with_a_facility_recidivism_mart(tmp_path):
    without = fake_publication(tmp_path / "a", "CREATE TABLE marts.x (a INTEGER)")
    with Publication(without) as pub:
        assert "funnel" not in render(pub).lower()
    folder = fake_publication(tmp_path / "b", FACILITY_RECIDIVISM)
    with Publication(folder) as pub:
        page = render(pub)
    assert "By facility (funnel plot)" in page
    assert page.count("<circle") >= 2  # F-1 and F-2; the withheld F-3 is not drawn
    assert re.search(r'data-col="recid_2y_general" data-key="[^"]*F-3[^"]*"[^>]*>'
                     r'<abbr title="c: confidential', page)


def test_a_revisions_table_is_shown_when_the_publication_has_one(tmp_path):
    sql = ("CREATE SCHEMA meta; CREATE TABLE meta.revisions AS SELECT 'mart_facility_daily' "
           "AS mart, 'changed' AS change, 'SY-0001|2024-01-01' AS key_text, '5' AS old_value, "
           "'6' AS new_value")
    folder = fake_publication(tmp_path / "v2", sql, {"version": "v2", "previous_version": "v1"})
    with Publication(folder) as pub:
        page = render(pub)
    assert "From the publication's revisions table (1 rows)" in page
    assert "<caption>Revisions by mart, change</caption>" in page
    assert "SY-0001|2024-01-01" in page


def test_dashboard_is_built_into_the_read_only_publication_leaving_its_data_as_is(paths):
    build_marts(paths)
    pub = publish(paths)
    before = digest(pub.folder)
    manifest = json.loads((pub.folder / "manifest.json").read_text())
    made = install_dashboard(paths.current_publication)
    assert made.built and made.folder == pub.folder / "dashboard"
    assert digest(pub.folder) == before  # data files and manifest untouched
    assert json.loads((pub.folder / "manifest.json").read_text()) == manifest
    for path in (pub.folder, made.folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o555
    for path in made.folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    stamp = json.loads((made.folder / "dashboard.json").read_text())
    assert stamp["version"] == pub.version
    assert install.complete(made.folder)
    page = (made.folder / "index.html").read_text()
    assert pub.version in page and 'data-section="quality"' in page
    # the withheld facility-day of the fixture (TS-0002, flag c) counts as withheld
    assert not install_dashboard(paths.current_publication).built  # complete: left alone
    assert [p.name for p in paths.published.iterdir() if p.name.startswith(".")] == []


def test_an_interrupted_build_is_cleaned_up_and_the_folder_sealed_again(paths):
    build_marts(paths)
    pub = publish(paths)
    leftover = paths.published / f"{install.DRAFT_PREFIX}999999-dead"
    leftover.mkdir()
    (leftover / "index.html").write_text("half")
    leftover.chmod(0o555)
    pub.folder.chmod(0o755)  # killed between the two chmods of a swap
    made = install_dashboard(pub.folder)
    assert made.built and not leftover.exists()
    assert stat.S_IMODE(pub.folder.stat().st_mode) == 0o555


def test_a_tampered_dashboard_is_not_complete_and_is_rebuilt(paths):
    build_marts(paths)
    pub = publish(paths)
    made = install_dashboard(pub.folder)
    index = made.folder / "index.html"
    os.chmod(made.folder, 0o755)
    os.chmod(index, 0o644)
    index.write_text(index.read_text().replace("publication", "publikation"))
    assert not install.complete(made.folder)
    again = install_dashboard(pub.folder)
    assert again.built and install.complete(again.folder)


def test_changes_since_the_previous_publication_are_counted_by_key(paths):
    build_marts(paths)
    first = publish(paths)
    build_marts(paths, density=104.0)
    second = publish(paths)
    with Publication(second.folder) as pub:
        previous, changes = extract.changes_since_previous(pub)
    assert previous == first.version
    by_mart = {c.mart: c for c in changes}
    national = by_mart["mart_national_monthly"]
    assert (national.added, national.removed, national.changed) == (0, 0, 1)
    assert national.examples == ["changed: 2024-01-01|all"]
    assert all((c.added, c.removed, c.changed) == (0, 0, 0)
               for m, c in by_mart.items() if m != "mart_national_monthly")


def test_no_previous_publication_beside_it_is_said_not_guessed(tmp_path):
    folder = fake_publication(tmp_path / "v2", "CREATE TABLE marts.x (a INTEGER)",
                              {"version": "v2", "previous_version": "v1"})
    with Publication(folder) as pub:
        assert extract.changes_since_previous(pub) == ("v1", None)
        assert "is no longer beside this one" in render(pub)


@pytest.mark.parametrize("missing", ["published.duckdb"])
def test_a_folder_without_published_duckdb_is_refused(tmp_path, missing):
    with pytest.raises(FileNotFoundError, match=missing):
        install_dashboard(tmp_path)


def test_the_dbt_exposure_lists_every_published_mart_the_dashboard_reads():
    import yaml

    from penstat.contract.published import MART_COLUMNS
    from penstat.core.locations import REPO_ROOT

    exposures = yaml.safe_load((REPO_ROOT / "dbt_project" / "models" / "marts"
                                / "_exposures.yml").read_text())["exposures"]
    [dashboard] = [e for e in exposures if e["name"] == "penstat_dashboard"]
    refs = {re.fullmatch(r"ref\('(\w+)'\)", d).group(1) for d in dashboard["depends_on"]}
    source = (Path(extract.__file__)).read_text()
    read = set(re.findall(r'"(mart_\w+)"', source)) & set(MART_COLUMNS)
    assert refs == read, (refs ^ read)


def test_published_text_is_escaped_never_markup(tmp_path):
    sql = """CREATE TABLE marts.mart_facility_monthly AS SELECT * FROM (VALUES
      ('<script>alert(1)</script>', DATE '2024-01-01', 'prison"><b', 'large', 95.5, NULL)
    ) t(facility_id, month, facility_type, scale_class, density, flag)"""
    folder = fake_publication(tmp_path / "v1", sql)
    with Publication(folder) as pub:
        page = render(pub)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'prison"><b' not in page and "prison&quot;&gt;&lt;b" in page
