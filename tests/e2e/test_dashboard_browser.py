"""The dashboard in a real browser: Debian's Chromium (headless), driven by Playwright.

A small synthetic publication is built through the real pipeline (ingest, dbt build, GX
gate, publish), twice (a second occupancy delivery makes a second publication with
changes), and its dashboard is drawn into the publication. A plain static server
(127.0.0.1) serves the dashboard folder; nothing is fetched from anywhere else. The test
waits for `data-ready` (no sleeps), finds no console error, and compares the figures
shown with the publication's, read here with its own SQL from published.duckdb: the
latest complete month's density by scale class, one facility's row, a recidivism rate
with its interval, withheld cells shown as `c`, and what changed since the previous
publication. Screenshots of each section are saved (PENSTAT_DASHBOARD_SCREENSHOTS, else
the pytest temp folder). A tampered page is caught by the same comparison.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from penstat.reporting.dashboard.serve import address, serve_in_thread, static_server
from penstat.senders.synthetic import generate, next_day
from tests.reliability import penstat_home

pytestmark = pytest.mark.browser

SCALE, SEED = 0.1, 7
UNTIL = date(2026, 6, 30)
AS_OF = "2026-07-02"
CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ("national", "small-scale", "facilities", "recidivism", "quality")


def chromium() -> Path:
    """Debian's Chromium: installed here with apt when missing and running as root (as
    .ci/run does); otherwise the test is skipped with the reason. Never a browser CDN."""
    if CHROMIUM.is_file():
        return CHROMIUM
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"{CHROMIUM} is not installed and this user cannot install it "
                    "(apt-get install chromium, as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "-qq", "update"],
                 ["apt-get", "-qq", "-y", "install", "--no-install-recommends", "chromium"]):
        subprocess.run(args, check=True, env=env, capture_output=True, timeout=900)
    return CHROMIUM


# ---------------------------------------------------------------- the publication


@pytest.fixture(scope="module")
def publication(tmp_path_factory) -> Path:
    """Two publications of a small synthetic system, each with its dashboard; the
    second (current) one's folder."""
    from penstat.orchestration import tasks

    home = tmp_path_factory.mktemp("dashboard") / "home"
    with penstat_home(home) as paths:
        generate(paths.inbox, scale=SCALE, seed=SEED, split="year", until=UNTIL)
        for feed in ("facility_register", "occupancy", "staffing", "recidivism"):
            assert {o["outcome"] for o in tasks.ingest(feed)} == {"loaded"}
        tasks.build_marts(as_of_date=AS_OF)
        first = tasks.gate_and_publish()
        assert tasks.build_dashboard()["built"]
        next_day(paths.inbox, scale=SCALE, seed=SEED, day=date(2026, 7, 1), until=UNTIL)
        assert {o["outcome"] for o in tasks.ingest("occupancy")} == {"loaded"}
        tasks.build_marts(as_of_date=AS_OF)
        second = tasks.gate_and_publish()
        assert second["version"] != first["version"]
        made = tasks.build_dashboard()  # what the penstat_dashboard DAG runs
        assert made["built"] and made["version"] == second["version"]
        return paths.published / second["version"]


@pytest.fixture(scope="module")
def db(publication):
    con = duckdb.connect(str(publication / "published.duckdb"), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(executable), headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@dataclass
class Loaded:
    page: object
    url: str
    console_errors: list[str]
    foreign_requests: list[str]


def open_dashboard(browser, folder: Path) -> tuple[Loaded, object]:
    server = static_server(folder)
    serve_in_thread(server)
    url = address(server)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    loaded = Loaded(page, url, [], [])
    page.on("console", lambda m: loaded.console_errors.append(m.text)
            if m.type == "error" else None)
    page.on("pageerror", lambda e: loaded.console_errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith((url, "data:"))
            else loaded.foreign_requests.append(r.url))
    page.goto(url + "index.html")
    page.wait_for_selector("body[data-ready='true']", timeout=60_000)
    return loaded, server


@pytest.fixture(scope="module")
def dashboard(browser, publication):
    loaded, server = open_dashboard(browser, publication / "dashboard")
    yield loaded
    loaded.page.close()
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------- comparing figures


def unit_of(con, mart: str, column: str) -> str | None:
    comment = con.execute("SELECT comment FROM duckdb_columns() WHERE schema_name = 'marts' "
                          "AND table_name = ? AND column_name = ?", [mart, column]).fetchone()
    text = (comment[0] or "").lower() if comment else ""
    return "share" if "share 0..1" in text else None


def shown(cell) -> tuple[str, str]:
    """(the figure a reader sees in a cell, without its flag marks; the flag marks)."""
    return cell.evaluate("""el => {
        const clone = el.cloneNode(true);
        const marks = Array.from(clone.querySelectorAll('sup.flag')).map(s => s.textContent);
        clone.querySelectorAll('sup.flag').forEach(s => s.remove());
        return [clone.textContent.trim(), marks.join('')];
    }""")


def figure_problem(text: str, value, flags: str, unit: str | None) -> str | None:
    """Why `text` (as shown) is not the published `value`; None when it is. A withheld
    value must read `c`, an empty one `:`, a number must equal the value to the digits
    shown (shares as percent)."""
    if value is None:
        want = "c" if "c" in (flags or "") else ":"
        return None if text == want else f"shows {text!r} for an empty value (want {want!r})"
    if isinstance(value, bool):
        return None if text == ("yes" if value else "no") else f"shows {text!r} for {value}"
    if isinstance(value, int | float):
        expected = 100 * value if unit == "share" else float(value)
        try:
            number = float(text)
        except ValueError:
            return f"shows {text!r} for the number {value}"
        decimals = len(text.split(".")[1]) if "." in text else 0
        tolerance = 0.5 * 10 ** -decimals + 1e-9 * max(1.0, abs(expected))
        if not math.isfinite(number) or abs(number - expected) > tolerance:
            return f"shows {text} for {expected!r}"
        return None
    return None if text == str(value) else f"shows {text!r} for {value!r}"


def check_cell(page, selector: str, value, flags: str, unit: str | None) -> str | None:
    cell = page.locator(selector)
    if cell.count() != 1:
        return f"{selector}: {cell.count()} cells"
    text, _marks = shown(cell)
    problem = figure_problem(text, value, flags, unit)
    return f"{selector}: {problem}" if problem else None


def latest_complete_month(con):
    return con.execute("""SELECT month FROM marts.mart_national_monthly GROUP BY month
                          HAVING bool_and(coalesce(flag, '') NOT LIKE '%p%')
                          ORDER BY month DESC LIMIT 1""").fetchone()[0]


def headline_problems(page, con) -> list[str]:
    month = latest_complete_month(con)
    rows = con.execute("SELECT scale_class, density, flag FROM marts.mart_national_monthly "
                       "WHERE month = ?", [month]).fetchall()
    assert {r[0] for r in rows} >= {"small", "medium", "large", "all"}
    return [p for cls, density, flag in rows if (p := check_cell(
        page, f'#headline td[data-col="density"][data-key="{month.isoformat()}|{cls}"]',
        density, flag, None))]


# ---------------------------------------------------------------- the tests


def test_every_section_renders_offline_without_console_errors(dashboard, publication,
                                                              tmp_path_factory):
    page = dashboard.page
    assert dashboard.console_errors == []
    assert dashboard.foreign_requests == []  # no CDN, no network: the static server only
    assert page.locator("#publication-version").inner_text() == publication.name
    assert page.locator("#published-at").inner_text().startswith(publication.name[:10])
    out = Path(os.environ.get("PENSTAT_DASHBOARD_SCREENSHOTS")
               or tmp_path_factory.mktemp("dashboard-screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    for section in SECTIONS:
        locator = page.locator(f"section#{section}")
        assert locator.count() == 1, section
        assert locator.locator("h2").inner_text()
        locator.screenshot(path=str(out / f"{section}.png"))
        assert (out / f"{section}.png").stat().st_size > 1000
    # every chart has the table of its numbers beside it
    for figure in page.locator(".figure").all():
        assert figure.locator("svg.chart").count() >= 1 or "funnel" in figure.inner_text()
        assert figure.locator("table.data").count() == 1


def test_latest_national_density_by_scale_class_is_the_publications(dashboard, db):
    assert headline_problems(dashboard.page, db) == []


def test_a_facility_row_is_the_publications(dashboard, db):
    month, facility = db.execute("""
        SELECT max(month), facility_id FROM marts.mart_facility_monthly
        WHERE coalesce(flag, '') NOT LIKE '%p%' GROUP BY facility_id
        ORDER BY facility_id LIMIT 1""").fetchone()
    cur = db.execute("SELECT * FROM marts.mart_facility_monthly WHERE facility_id = ? AND "
                     "month = ?", [facility, month])
    row = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    key = f"{facility}|{month.isoformat()}"
    # a value's own flag is shown on the value's cell (checked there), not as a column
    problems = [p for column, value in row.items()
                if column != "flag" and not column.endswith("_flag") and (
        p := check_cell(dashboard.page, f'#facility-table td[data-col="{column}"]'
                        f'[data-key="{key}"]', value,
                        row.get(f"{column}_flag") or row["flag"],
                        unit_of(db, "mart_facility_monthly", column)))]
    assert problems == []
    overcrowded = db.execute("""
        SELECT count(*) FILTER (WHERE overcrowding_tier IN ('over', 'severe', 'critical'))
        FROM marts.mart_facility_daily WHERE facility_id = ? AND census_date >
        (SELECT max(census_date) FROM marts.mart_facility_daily) - INTERVAL 12 MONTH""",
                             [facility]).fetchone()[0]
    assert check_cell(dashboard.page, f'#facility-table td[data-col="days_overcrowded_12m"]'
                      f'[data-key="{key}"]', overcrowded, "", None) is None


def test_a_recidivism_rate_and_its_interval_are_the_publications(dashboard, db):
    year, value, rate, low, high, flag = db.execute("""
        SELECT cohort_year, group_value, adjusted_rate, ci_low, ci_high, flag
        FROM marts.mart_recidivism_cohort WHERE group_type = 'scale_class'
        AND adjusted_rate IS NOT NULL ORDER BY cohort_year DESC, group_value LIMIT 1""").fetchone()
    key = f"{year}|scale_class|{value}"
    problems = [check_cell(dashboard.page, f'#recidivism-scale-class td[data-col="{column}"]'
                           f'[data-key="{key}"]', number, flag, "share")
                for column, number in (("adjusted_rate", rate), ("ci_low", low),
                                       ("ci_high", high))]
    assert problems == [None, None, None]
    assert low <= rate <= high


def test_withheld_values_show_as_c_with_their_meaning(dashboard, db):
    """Every withheld value of the facility table and the recidivism tables reads `c`."""
    withheld = db.execute("""
        SELECT cohort_year, group_type, group_value FROM marts.mart_recidivism_cohort
        WHERE recid_2y_general IS NULL AND flag LIKE '%c%'
        ORDER BY ALL""").fetchall()
    facility_withheld = db.execute("""
        SELECT count(*) FROM marts.mart_facility_monthly m WHERE turnover IS NULL
        AND flag LIKE '%c%' AND (facility_id, month) IN (
            SELECT facility_id, max(month) FROM marts.mart_facility_monthly
            WHERE coalesce(flag, '') NOT LIKE '%p%' GROUP BY facility_id)""").fetchone()[0]
    assert withheld or facility_withheld, "nothing withheld: the test would prove nothing"
    page = dashboard.page
    for year, group_type, value in withheld:
        ident = f"recidivism-{group_type}".replace("_", "-")
        cell = page.locator(f'#{ident} td[data-col="recid_2y_general"]'
                            f'[data-key="{year}|{group_type}|{value}"]')
        assert shown(cell)[0] == "c"
        assert "confidential" in cell.locator("abbr").get_attribute("title")
    cells = page.locator('#facility-table td.withheld[data-col="turnover"]')
    assert cells.count() == facility_withheld
    assert all(shown(c)[0] == "c" for c in cells.all())
    # no empty cell anywhere in the value tables: withheld is c, not available is ':'
    assert page.locator("table.data td:empty").count() == 0


def test_facility_table_filters_and_sorts(dashboard, db):
    page = dashboard.page
    small = db.execute("""SELECT count(DISTINCT facility_id) FROM marts.mart_facility_monthly
        WHERE (facility_id, month) IN (SELECT facility_id, coalesce(max(month) FILTER (WHERE
        coalesce(flag, '') NOT LIKE '%p%'), max(month)) FROM marts.mart_facility_monthly
        GROUP BY facility_id) AND scale_class = 'small'""").fetchone()[0]
    page.select_option('select[data-filter="scale-class"]', "small")
    visible = page.locator("#facility-table tbody tr:not([hidden])")
    assert visible.count() == small > 0
    assert all(r.get_attribute("data-scale-class") == "small" for r in visible.all())
    page.select_option('select[data-filter="scale-class"]', "")
    page.locator('#facility-table th[data-col="density"]').click()
    values = [float(v) for v in page.locator(
        '#facility-table tbody td[data-col="density"][data-value]').evaluate_all(
        "cells => cells.map(c => c.getAttribute('data-value'))")]
    assert values == sorted(values)


def test_what_changed_since_the_previous_publication(dashboard, db, publication):
    previous = db.execute("SELECT previous_version FROM meta.publication").fetchone()[0]
    assert previous and (publication.parent / previous).is_dir()
    db.execute(f"ATTACH '{publication.parent / previous / 'published.duckdb'}' AS prev "
               "(READ_ONLY)")
    try:
        added = db.execute("""SELECT count(*) FROM marts.mart_facility_daily n ANTI JOIN
            prev.marts.mart_facility_daily o USING (facility_id, census_date)""").fetchone()[0]
    finally:
        db.execute("DETACH prev")
    assert added > 0  # the second occupancy delivery added a day
    page = dashboard.page
    assert previous in page.locator("#changes").inner_text()
    cell = page.locator('#changes-table tr[data-key="mart_facility_daily"] td[data-col="added"]')
    assert int(cell.inner_text()) == added


def test_a_tampered_figure_is_caught_by_the_comparison(browser, publication, db, tmp_path):
    """The bad case: the same comparison on a page whose small-scale density was changed
    by 0.2 finds the difference (and only that one)."""
    folder = tmp_path / "tampered"
    shutil.copytree(publication / "dashboard", folder)
    folder.chmod(0o755)
    index = folder / "index.html"
    index.chmod(0o644)
    month = latest_complete_month(db)
    density = db.execute("SELECT density FROM marts.mart_national_monthly WHERE month = ? AND "
                         "scale_class = 'small'", [month]).fetchone()[0]
    page = index.read_text()
    marker = f'data-col="density" data-key="{month.isoformat()}|small" data-value="{density!r}"'
    at = page.index(marker, page.index('id="headline"'))
    start = page.index(">", at) + 1
    end = page.index("<", start)
    assert float(page[start:end]) == pytest.approx(density, abs=0.05)
    index.write_text(page[:start] + f"{density + 0.2:.1f}" + page[end:])
    loaded, server = open_dashboard(browser, folder)
    try:
        problems = headline_problems(loaded.page, db)
    finally:
        loaded.page.close()
        server.shutdown()
        server.server_close()
    assert len(problems) == 1 and "|small" in problems[0], problems


def test_figure_problem_names_each_kind_of_wrong_figure():
    assert figure_problem("97.5", 97.49, "", None) is None
    assert figure_problem("97.7", 97.49, "", None)
    assert figure_problem("25.0", 0.25, "", "share") is None
    assert figure_problem("0.25", 0.25, "", "share")  # a share not shown as percent
    assert figure_problem("c", None, "cp", None) is None
    assert figure_problem("", None, "c", None)  # withheld shown blank
    assert figure_problem("0", None, "c", None)  # withheld shown as zero
    assert figure_problem(":", None, "", None) is None
