"""The dashboard page: one self-contained HTML file (inline CSS, SVG and a little script).

It needs no server-side code, no CDN and no network: any static web server (or the
file system) can serve it. Sections: national overview, small-scale detention,
facilities, recidivism, data quality. Every chart has the table of its numbers beside
it; every value cell carries its published value (`data-value`), its flags
(`data-flags`), its mart column (`data-col`) and its row key (`data-key`), so that a
reader can copy it and a test can compare it with the publication. A withheld value
reads `c` with its flag's meaning, never blank or zero; a value that is not available
reads `:`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from html import escape

from penstat.reporting.dashboard import charts, extract
from penstat.reporting.dashboard.extract import Column, Publication, Table
from penstat.reporting.dashboard.flags import FLAG_MEANINGS, NOT_AVAILABLE, Cell, describe

# Delivery statuses that need no one's attention (mart_delivery_status.status).
QUIET_STATUSES = ("ok", "closed")
REVISIONS_SHOWN = 500

SECTIONS = (("national", "National overview"), ("small-scale", "Small-scale detention"),
            ("facilities", "Facilities"), ("recidivism", "Recidivism"),
            ("quality", "Data quality"))


# ---------------------------------------------------------------- values


def number_text(value: float | int, column: Column | None) -> str:
    """How a published number is shown: shares 0..1 as percent with 1 decimal, per-100
    figures with 1 decimal, other decimals with 2, whole numbers as they are."""
    unit = column.unit if column else None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "share":
        return f"{100 * value:.1f}"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.1f}" if unit == "per100" else f"{value:.2f}"


def value_text(value: object, column: Column | None) -> str:
    if isinstance(value, bool | int | float):
        return number_text(value, column)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def raw_value(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def flag_marks(flags: str, shown_value: bool) -> str:
    """Superscript flag letters; on a shown value `c` is left out (it says that another
    value of the row is withheld)."""
    letters = [f for f in dict.fromkeys(flags) if not (shown_value and f == "c")]
    if not letters:
        return ""
    text = "".join(letters)
    return f'<sup class="flag" title="{escape(describe(text))}">{escape(text)}</sup>'


def cell_html(cell: Cell, column: Column | None, key: str = "", tag: str = "td",
              extra: str = "") -> str:
    col = column.name if column else ""
    attrs = f' data-col="{escape(col)}" data-key="{escape(key)}"' + extra
    if cell.withheld:
        return (f'<{tag} class="withheld"{attrs} data-flags="{escape(cell.flags)}">'
                f'<abbr title="{escape(describe(cell.flags))}">c</abbr></{tag}>')
    if cell.value is None:
        meaning = "not available" + (f"; {describe(cell.flags)}" if cell.flags else "")
        return (f'<{tag} class="missing"{attrs} data-flags="{escape(cell.flags)}">'
                f'<abbr title="{escape(meaning)}">{NOT_AVAILABLE}</abbr></{tag}>')
    numeric = isinstance(cell.value, int | float) and not isinstance(cell.value, bool)
    cls = ' class="num"' if numeric else ""
    marks = flag_marks(cell.flags, True) if numeric else ""
    return (f'<{tag}{cls}{attrs} data-value="{escape(raw_value(cell.value))}" '
            f'data-flags="{escape(cell.flags)}">{escape(value_text(cell.value, column))}'
            f"{marks}</{tag}>")


def header_html(column: Column) -> str:
    unit = {"share": " (%)", "per100": " (per 100)"}.get(column.unit or "", "")
    title = f' title="{escape(column.comment)}"' if column.comment else ""
    return f'<th data-col="{escape(column.name)}"{title}>{escape(column.name)}{unit}</th>'


def table_html(table: Table, *, ident: str, caption: str, columns: Sequence[str] | None = None,
               rows: Iterable[dict[str, Cell]] | None = None, sortable: bool = True,
               row_extra=None, extra_headers: Sequence[str] = (),
               after: str | None = None, scroll: bool = False) -> str:
    """`row_extra(row)` gives cells (headed `extra_headers`) placed after the column
    `after`, or at the end of the row."""
    cols = [table.column(c) for c in columns] if columns else list(table.columns)
    cols = [c for c in cols if c is not None]
    split = next((i + 1 for i, c in enumerate(cols) if c.name == after), len(cols))
    extra_head = "".join(f"<th>{escape(h)}</th>" for h in extra_headers)
    head = ("".join(header_html(c) for c in cols[:split]) + extra_head
            + "".join(header_html(c) for c in cols[split:]))
    body = []
    for row in (table.rows if rows is None else rows):
        key = table.key_of(row)
        attrs = "".join(f' data-{escape(c.name.replace("_", "-"))}='
                        f'"{escape(str(row[c.name].value))}"'
                        for c in cols if c.name in extract.FACILITY_FILTERS)
        more = row_extra(row) if row_extra is not None else ""
        cells = ("".join(cell_html(row[c.name], c, key) for c in cols[:split]) + more
                 + "".join(cell_html(row[c.name], c, key) for c in cols[split:]))
        body.append(f'<tr data-key="{escape(key)}"{attrs}>{cells}</tr>')
    cls = "data sortable" if sortable else "data"
    box = "table-box scroll" if scroll else "table-box"
    return (f'<div class="{box}"><table id="{escape(ident)}" class="{cls}" '
            f'data-mart="{escape(table.mart)}"><caption>{escape(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def figure(chart: str, table: str) -> str:
    return f'<div class="figure"><div class="chart-box">{chart}</div>{table}</div>'


def pivot(table: Table, row_key: str, col_key: str, value: str, col_order: Sequence[str]
          ) -> tuple[list[object], dict[tuple[object, str], dict[str, Cell]]]:
    by = {}
    rows: list[object] = []
    for row in table.rows:
        r, c = row[row_key].value, str(row[col_key].value)
        if r not in rows:
            rows.append(r)
        by[(r, c)] = row
    return rows, by


def pivot_html(table: Table, ident: str, caption: str, row_key: str, col_key: str, value: str,
               classes: Sequence[str]) -> str:
    rows, by = pivot(table, row_key, col_key, value, classes)
    column = table.column(value)
    unit = {"share": " (%)", "per100": " (per 100)"}.get((column.unit if column else "") or "", "")
    head = f"<th>{escape(row_key)}</th>" + "".join(
        f'<th data-col="{escape(value)}">{escape(c)}{unit}</th>' for c in classes)
    body = []
    for r in rows:
        cells = []
        for c in classes:
            row = by.get((r, c))
            cells.append(cell_html(row[value], column, table.key_of(row)) if row
                         else f"<td>{NOT_AVAILABLE}</td>")
        body.append(f'<tr data-key="{escape(value_text(r, None))}"><th scope="row">'
                    f'{escape(value_text(r, None))}</th>{"".join(cells)}</tr>')
    return (f'<div class="table-box scroll"><table id="{escape(ident)}" class="data" '
            f'data-mart="{escape(table.mart)}"><caption>{escape(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def classes_in(table: Table, column: str = "scale_class") -> list[str]:
    found = list(dict.fromkeys(str(r[column].value) for r in table.rows))
    known = [c for c in extract.SCALE_CLASSES if c in found]
    return known + [c for c in found if c not in known]


# ---------------------------------------------------------------- sections


def national_section(pub: Publication) -> str:
    series = extract.national_series(pub)
    if series is None or not series.rows:
        return "<p>This publication has no national series (mart_national_monthly).</p>"
    classes = classes_in(series)
    months, by = pivot(series, "month", "scale_class", "density", classes)
    labels = [value_text(m, None)[:7] for m in months]
    lines = [charts.Series(c, [by[(m, c)]["density"] if (m, c) in by else Cell(None)
                               for m in months]) for c in classes]
    chart = charts.line_chart("Density by scale class, persons per 100 places", labels, lines,
                              reference=100.0, unit="persons per 100 places")
    table = pivot_html(series, "national-density", "Density by month and scale class "
                       "(mart_national_monthly.density)", "month", "scale_class", "density",
                       classes)
    latest = extract.latest_complete_month(pub)
    provisional = [m for m in months if any("p" in by[(m, c)]["density"].flags
                                            for c in classes if (m, c) in by)]
    out = [f"<h3>Density by scale class</h3>{figure(chart, table)}"]
    if provisional:
        out.append(f'<p class="note">Provisional months (flag p, shaded): '
                   f'{escape(", ".join(value_text(m, None)[:7] for m in provisional))}.</p>')
    head = extract.headline(pub, latest)
    if head is not None and head.rows:
        out.append(f"<h3>Headline: {escape(value_text(latest, None)[:7])}, the latest complete "
                   "month</h3>")
        out.append(transposed_html(head, "headline", f"mart_national_monthly, month "
                                   f"{value_text(latest, None)}, by scale class"))
    return "".join(out)


def transposed_html(table: Table, ident: str, caption: str, by: str = "scale_class") -> str:
    """One column per row of `table` (e.g. per scale class), one row per value column."""
    heads = [str(r[by].value) for r in table.rows]
    head = "<th>column</th>" + "".join(f"<th>{escape(h)}</th>" for h in heads)
    body = []
    for column in table.columns:
        if column.name in table.keys or column.name == by:
            continue
        unit = {"share": " (%)", "per100": " (per 100)"}.get(column.unit or "", "")
        title = f' title="{escape(column.comment)}"' if column.comment else ""
        cells = "".join(cell_html(r[column.name], column, table.key_of(r)) for r in table.rows)
        body.append(f'<tr data-col="{escape(column.name)}"><th scope="row"{title}>'
                    f"{escape(column.name)}{unit}</th>{cells}</tr>")
    return (f'<div class="table-box"><table id="{escape(ident)}" class="data" '
            f'data-mart="{escape(table.mart)}"><caption>{escape(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def small_scale_section(pub: Publication) -> str:
    series = extract.national_series(pub)
    out: list[str] = []
    if series is not None and series.rows:
        everyone = Table(series.mart, series.columns, series.keys,
                         [r for r in series.rows if r["scale_class"].value == "all"])
        shares = [c.name for c in series.columns if c.name == "share_in_small_scale"
                  or c.name.startswith("vulnerable_in_small_scale")]
        labels = [value_text(r["month"].value, None)[:7] for r in everyone.rows]
        groups = (("all detainees", "Share of all detainees held in small-scale units",
                   [n for n in shares if n == "share_in_small_scale"]),
                  ("vulnerable groups", "Share of each vulnerable group held in small-scale "
                   "units", [n for n in shares if n != "share_in_small_scale"]))
        for what, title, names in groups:
            if not everyone.rows or not names:
                continue
            lines = [charts.Series(n.replace("vulnerable_in_small_scale_", "")
                                   .replace("share_in_small_scale", "all"),
                                   [r[n] for r in everyone.rows]) for n in names]
            chart = charts.line_chart(f"{title} (percent)", labels, lines, scale=100.0,
                                      unit="percent")
            table = table_html(everyone, ident=f"small-scale-{what.replace(' ', '-')}",
                               caption=f"{title} (mart_national_monthly, scale_class all, %)",
                               columns=["month", *names], sortable=False)
            out.append(f"<h3>{escape(title)}</h3>{figure(chart, table)}")
        latest = extract.latest_complete_month(pub)
        head = extract.headline(pub, latest)
        if head is not None and head.rows and head.column("facilities"):
            total = next((r["facilities"].value for r in head.rows
                          if r["scale_class"].value == "all"), None)

            def share(row: dict[str, Cell]) -> str:
                n = row["facilities"].value
                if not isinstance(n, int | float) or not total:
                    return f"<td>{NOT_AVAILABLE}</td>"
                return (f'<td class="num derived" data-col="share_of_facilities" '
                        f'data-key="{escape(head.key_of(row))}">{100 * n / total:.1f}</td>')

            cols = [c for c in ("scale_class", "facilities", "capacity_places",
                                "average_daily_population") if head.column(c)]
            out.append(f"<h3>Facilities by scale class, {escape(value_text(latest, None)[:7])}"
                       "</h3>")
            out.append(table_html(head, ident="small-scale-facilities", caption=(
                "Facilities, places and detainees by RESCALED scale class (small <= 30 places); "
                "share of facilities (%) is derived here from the published counts"),
                columns=cols, row_extra=share, extra_headers=["share of facilities (%)"],
                sortable=False))
    facts = extract.scale_class_facts(pub)
    if facts is not None:
        out.append("<h3>RESCALED classes by jurisdiction and source</h3>")
        out.append(f'<p class="note">{escape(pub.comment("mart_scale_class_facts"))}</p>')
        out.append(table_html(facts, ident="scale-class-facts", caption=(
            "mart_scale_class_facts at the latest reference date of each jurisdiction and "
            "source")))
    return "".join(out) or "<p>No small-scale figures in this publication.</p>"


def facilities_section(pub: Publication) -> str:
    table, sparks = extract.facilities(pub)
    if table is None or not table.rows:
        return "<p>This publication has no facility figures (mart_facility_monthly).</p>"
    filters = []
    for name in extract.FACILITY_FILTERS:
        if table.column(name) is None:
            continue
        options = sorted({str(r[name].value) for r in table.rows})
        opts = "".join(f'<option value="{escape(o)}">{escape(o)}</option>' for o in options)
        filters.append(f'<label>{escape(name)} <select class="filter" data-filter="'
                       f'{escape(name.replace("_", "-"))}"><option value="">all</option>{opts}'
                       "</select></label>")
    filters.append('<label>facility <input class="filter-text" type="search" '
                   'placeholder="id contains"></label>')

    def spark(row: dict[str, Cell]) -> str:
        line = charts.sparkline(sparks.get(str(row["facility_id"].value), []))
        return f'<td class="spark-cell">{line}</td>'

    note = ("Each facility's latest complete month (its latest month when none is "
            "complete). days_overcrowded_12m counts the published days "
            f"of the last {extract.OVERCROWDING_WINDOW_MONTHS} months of mart_facility_daily "
            "with overcrowding_tier over, severe or critical (density > 100); "
            "days_withheld_12m the days whose tier is withheld (flag c), not counted. Click "
            "a column heading to sort.")
    return (f'<div class="filters">{"".join(filters)} <span id="facility-count"></span></div>'
            f'<p class="note">{escape(note)}</p>'
            + table_html(table, ident="facility-table", caption="Facilities "
                         "(mart_facility_monthly, latest complete month of each facility)",
                         columns=facility_columns(table), row_extra=spark,
                         extra_headers=["density by month"], after="density"))


def facility_columns(table: Table) -> list[str]:
    """Identifiers and classes first, then density (the sparkline goes after it) and the
    overcrowding days, then every other published column in its published order."""
    first = [c.name for c in table.columns if c.name in table.keys
             or c.name in extract.FACILITY_FILTERS]
    middle = [n for n in ("density", "days_overcrowded_12m", "days_withheld_12m")
              if table.column(n) is not None]
    return first + middle + [c.name for c in table.columns if c.name not in first + middle]


def recidivism_section(pub: Publication) -> str:
    table = extract.recidivism(pub)
    out: list[str] = []
    if table is not None and table.rows:
        need = {"group_type", "group_value", "cohort_year"}
        if need <= {c.name for c in table.columns}:
            for group_type in dict.fromkeys(str(r["group_type"].value) for r in table.rows):
                rows = [r for r in table.rows if r["group_type"].value == group_type]
                out.append(recidivism_group(table, group_type, rows))
        else:
            out.append(table_html(table, ident="recidivism", caption="mart_recidivism_cohort"))
    facility = extract.facility_recidivism(pub)
    if facility is not None:
        out.append(funnel_html(facility))
    returns = extract.return_to_prison(pub)
    if returns is not None:
        out.append(return_to_prison_html(returns))
    return "".join(out) or "<p>This publication has no recidivism figures.</p>"


def return_to_prison_html(table: Table) -> str:
    """Return to prison by release cohort (the publishers' own cohorts, e.g. Iowa): the
    latest release year of each jurisdiction and group type charted, every row tabled."""
    names = {c.name for c in table.columns}
    out = ["<h3>Return to prison (publishers' cohorts)</h3>"]
    if {"jurisdiction", "group_type", "group_value", "release_year",
            "return_to_prison_rate"} <= names:
        groups = dict.fromkeys((str(r["jurisdiction"].value), str(r["group_type"].value))
                               for r in table.rows)
        for jurisdiction, group_type in groups:
            rows = [r for r in table.rows if str(r["jurisdiction"].value) == jurisdiction
                    and str(r["group_type"].value) == group_type]
            year = max(r["release_year"].value for r in rows)
            items = [charts.Interval(str(r["group_value"].value), r["return_to_prison_rate"],
                                     Cell(None), Cell(None), Cell(None))
                     for r in rows if r["release_year"].value == year]
            chart = charts.interval_chart(f"Return to prison, {jurisdiction}, by {group_type}, "
                                          f"release year {year}", items)
            ident = f"returns-{jurisdiction}-{group_type}".lower().replace("_", "-")
            out.append(f"<h4>{escape(jurisdiction)}, by {escape(group_type)}</h4>" + figure(
                chart, table_html(table, ident=ident, rows=rows, caption=(
                    f"mart_return_to_prison_cohort, {jurisdiction}, {group_type}, every "
                    "release year"))))
    else:
        out.append(table_html(table, ident="returns", caption="mart_return_to_prison_cohort"))
    return "".join(out)


def _cell(row: dict[str, Cell], name: str) -> Cell:
    return row.get(name, Cell(None))


def recidivism_group(table: Table, group_type: str, rows: list[dict[str, Cell]]) -> str:
    years = sorted({r["cohort_year"].value for r in rows
                    if isinstance(_cell(r, "recid_2y_general").value, int | float)
                    or _cell(r, "recid_2y_general").withheld}, reverse=True)
    year = years[0] if years else max(r["cohort_year"].value for r in rows)
    latest = [r for r in rows if r["cohort_year"].value == year]
    # the comparison for comparable people: the standardised rate where the publication
    # has it (marginal standardisation, docs/kpis.md), else the older adjusted rate
    names = {c.name for c in table.columns}
    rate, low, high = (("standardised_rate", "standardised_ci_low", "standardised_ci_high")
                       if "standardised_rate" in names else ("adjusted_rate", "ci_low", "ci_high"))
    items = [charts.Interval(str(r["group_value"].value), _cell(r, "recid_2y_general"),
                             _cell(r, rate), _cell(r, low), _cell(r, high))
             for r in latest]
    chart = charts.interval_chart(f"Two-year reoffending by {group_type}, cohort {year}", items)
    cols = [c.name for c in table.columns if c.name != "group_type"]
    ident = f"recidivism-{group_type}".replace("_", "-")
    body = table_html(table, ident=ident, caption=f"mart_recidivism_cohort, group_type = "
                      f"{group_type}, every cohort", columns=cols, rows=rows)
    return (f"<h3>By {escape(group_type)}</h3>"
            f'<div class="figure tall"><div class="chart-box">{chart}<p class="note">Raw rate: '
            f"recid_2y_general. For comparable people: {rate} with its 95 % interval [{low}, "
            f"{high}], as published. Cohort {escape(str(year))}; every cohort is in the "
            f"table.</p></div>{body}</div>")


def funnel_html(table: Table) -> str:
    names = {c.name for c in table.columns}
    size = next((n for n in ("cohort_size", "releases", "n") if n in names), None)
    rate = next((n for n in ("adjusted_rate", "recid_2y_general", "rate") if n in names), None)
    points, sizes = [], []
    if size and rate:
        for r in table.rows:
            n, v = r[size].value, r[rate].value
            if isinstance(n, int | float) and isinstance(v, int | float) and n > 0:
                points.append(charts.FunnelPoint(table.key_of(r), float(n), float(v)))
                sizes.append(float(n))
    centre = None
    if "national_rate" in names:
        centre = next((r["national_rate"].value for r in table.rows
                       if isinstance(r["national_rate"].value, int | float)), None)
    if centre is None and points:
        centre = sum(p.rate * p.size for p in points) / sum(sizes)
    chart = (charts.funnel_plot(f"{rate} by facility against {size}", points, centre)
             if points and centre is not None and 0 < centre < 1 else
             "<p>Too few published facility rates for a funnel plot.</p>")
    return ("<h3>By facility (funnel plot)</h3>"
            + figure(chart, table_html(table, ident="facility-recidivism",
                                       caption="mart_facility_recidivism")))


def quality_section(pub: Publication) -> str:
    out: list[str] = []
    gate = extract.gate_result(pub)
    if gate:
        verdict = "passed" if gate.get("success") else "failed"
        validated = gate.get("rows_validated", {})
        rows = "".join(f'<tr data-key="{escape(m)}"><th scope="row">{escape(m)}</th>'
                       f'<td class="num">{int(n)}</td></tr>' for m, n in validated.items())
        failures = "".join(f"<li>{escape(f)}</li>" for f in gate.get("failures", []))
        out.append(f'<h3>Publication gate: <span id="gate-verdict">{verdict}</span></h3>'
                   f"<p>{len(gate.get('suites', []))} mart suites run (Great Expectations); "
                   "rows validated per mart (0: unchanged since the previous publication, "
                   "validated then):</p>"
                   f'<div class="table-box"><table id="gate" class="data"><thead><tr>'
                   f"<th>mart</th><th>rows validated</th></tr></thead><tbody>{rows}"
                   f"</tbody></table></div>" + (f"<ul>{failures}</ul>" if failures else ""))
    status = extract.delivery_status(pub)
    if status is not None:
        out.append("<h3>Deliveries: status and lateness</h3>")
        names = {c.name for c in status.columns}
        if {"feed", "status"} <= names:
            counts: dict[tuple[str, str], int] = {}
            for r in status.rows:
                k = (str(r["feed"].value), str(r["status"].value))
                counts[k] = counts.get(k, 0) + 1
            states = sorted({s for _, s in counts})
            feeds = sorted({f for f, _ in counts})
            head = "<th>feed</th>" + "".join(f"<th>{escape(s)}</th>" for s in states)
            body = "".join(
                f'<tr data-key="{escape(f)}"><th scope="row">{escape(f)}</th>' + "".join(
                    f'<td class="num" data-col="{escape(s)}">{counts.get((f, s), 0)}</td>'
                    for s in states) + "</tr>" for f in feeds)
            out.append(f'<div class="table-box"><table id="delivery-summary" class="data">'
                       "<caption>Rows of mart_delivery_status by feed and status (counts of "
                       f"published rows)</caption><thead><tr>{head}</tr></thead><tbody>{body}"
                       "</tbody></table></div>")
            attention = [r for r in status.rows if r["status"].value not in QUIET_STATUSES]
            if attention:
                out.append(table_html(status, ident="delivery-attention", caption=(
                    f"Feeds and facilities whose status needs attention ({len(attention)}; "
                    f"not {', '.join(QUIET_STATUSES)})"),
                    rows=attention, scroll=True))
        out.append("<details><summary>Every row of mart_delivery_status</summary>"
                   + table_html(status, ident="delivery-status",
                                caption="mart_delivery_status") + "</details>")
    out.append(changes_html(pub))
    return "".join(out)


def revisions_html(revisions: Table) -> str:
    """The publication's revisions table: rows counted by mart and kind of change (the
    columns of those names it has), then its first REVISIONS_SHOWN rows."""
    names = [c.name for c in revisions.columns]
    by = [n for n in ("mart", "change", "kind", "change_type", "revision") if n in names]
    out = [f"<p>From the publication's revisions table ({len(revisions.rows)} rows).</p>"]
    if by:
        counts: dict[tuple[str, ...], int] = {}
        for r in revisions.rows:
            k = tuple(str(r[n].value) for n in by)
            counts[k] = counts.get(k, 0) + 1
        head = "".join(f"<th>{escape(n)}</th>" for n in by) + "<th>rows</th>"
        body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in k)
                       + f'<td class="num">{n}</td></tr>' for k, n in sorted(counts.items()))
        out.append('<div class="table-box"><table id="revisions-summary" class="data">'
                   "<caption>Revisions by " + escape(", ".join(by)) + "</caption>"
                   f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
    shown = revisions.rows[:REVISIONS_SHOWN]
    caption = "revisions" + (f" (the first {len(shown)} rows)"
                             if len(shown) < len(revisions.rows) else "")
    out.append(table_html(revisions, ident="revisions", caption=caption, rows=shown,
                          scroll=True))
    return "".join(out)


def changes_html(pub: Publication) -> str:
    head = "<h3>What changed since the previous publication</h3>"
    revisions = extract.revisions(pub)
    previous = pub.meta().get("previous_version")
    names = set() if revisions is None else {c.name for c in revisions.columns}
    if revisions is not None and {"mart", "change", "key"} <= names:
        if previous is None:
            return head + '<p id="changes">This is the first publication.</p>'
        keys: dict[tuple[str, str], set[str]] = {}
        for r in revisions.rows:
            keys.setdefault((str(r["mart"].value), str(r["change"].value)), set()).add(
                str(r["key"].value))
        marts = sorted({m for m, _ in keys})
        rows = "".join(
            f'<tr data-key="{escape(m)}"><th scope="row">{escape(m)}</th>' + "".join(
                f'<td class="num" data-col="{kind}">{len(keys.get((m, kind), ()))}</td>'
                for kind in ("added", "removed", "changed")) + "</tr>" for m in marts)
        return (head + f'<p id="changes">Compared with {escape(str(previous))}: keys added, '
                "removed and changed per mart, from the publication's revisions table "
                "(marts not listed are unchanged).</p>"
                '<div class="table-box"><table id="changes-table" class="data"><thead><tr>'
                "<th>mart</th><th>keys added</th><th>keys removed</th><th>keys changed</th>"
                f"</tr></thead><tbody>{rows}</tbody></table></div>" + revisions_html(revisions))
    if revisions is not None:
        return head + revisions_html(revisions)
    previous, changes = extract.changes_since_previous(pub)
    if previous is None:
        return head + '<p id="changes">This is the first publication.</p>'
    if changes is None:
        return head + (f'<p id="changes">The previous publication, {escape(previous)}, is no '
                       "longer beside this one: nothing to compare with.</p>")
    rows = "".join(
        f'<tr data-key="{escape(c.mart)}"><th scope="row">{escape(c.mart)}</th>'
        f'<td class="num" data-col="added">{c.added}</td>'
        f'<td class="num" data-col="removed">{c.removed}</td>'
        f'<td class="num" data-col="changed">{c.changed}</td>'
        f"<td>{escape('; '.join(c.examples) or 'unchanged')}</td></tr>" for c in changes)
    return (head + f'<p id="changes">Compared with {escape(previous)}: rows added, removed '
            "and changed per mart, by key (the first keys are listed).</p>"
            '<div class="table-box"><table id="changes-table" class="data"><thead><tr>'
            "<th>mart</th><th>keys added</th><th>keys removed</th><th>keys changed</th>"
            f"<th>first keys</th></tr></thead><tbody>{rows}</tbody></table></div>")


# ---------------------------------------------------------------- the page

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:12px 20px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0}
nav{background:#fff;border-bottom:1px solid #ddd;padding:6px 20px}
nav a{margin-right:16px;color:#1f3a5f}
section{padding:8px 20px 24px;border-bottom:1px solid #ddd;background:#fff;margin-bottom:8px}
.figure{display:grid;grid-template-columns:minmax(0,760px) minmax(0,1fr);gap:16px;align-items:start}
.figure.tall .table-box{max-height:420px}
.table-box{overflow:auto;max-width:100%}
.table-box.scroll,.figure .table-box{max-height:320px}
#facility-table-box{max-height:none}
table.data{border-collapse:collapse;font-size:12px;min-width:24em}
table.data caption{text-align:left;font-weight:600;padding:4px 0}
table.data th,table.data td{border:1px solid #ddd;padding:2px 6px;white-space:nowrap}
table.data tbody th{text-align:left;font-weight:600}
table.data caption{max-width:900px;white-space:normal}
table.data thead th{background:#eef2f7;position:sticky;top:0}
table.sortable thead th{cursor:pointer}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.withheld,td.missing{text-align:center;color:#8a1c1c;font-weight:600}
td.derived{font-style:italic}
sup.flag{color:#8a5a00;margin-left:2px}
.note{color:#555;font-size:12px}
.filters label{margin-right:12px}
dl.legend{display:grid;grid-template-columns:auto 1fr;gap:0 8px;font-size:12px}
@media (max-width:1100px){.figure{grid-template-columns:1fr}}
"""

SCRIPT = """
(function(){
  function key(td){
    if(!td) return [2,''];
    var v=td.getAttribute('data-value');
    if(v!==null && v!=='' && !isNaN(Number(v))) return [0,Number(v)];
    return [1,(td.textContent||'').trim()];
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('thead th').forEach(function(th,i){
      th.addEventListener('click',function(){
        var asc=th.getAttribute('aria-sort')!=='ascending';
        table.querySelectorAll('thead th').forEach(function(o){o.removeAttribute('aria-sort');});
        th.setAttribute('aria-sort',asc?'ascending':'descending');
        var body=table.tBodies[0];
        var rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){
          var x=key(a.cells[i]),y=key(b.cells[i]);
          if(x[0]!==y[0]) return x[0]-y[0];
          var r=x[1]<y[1]?-1:(x[1]>y[1]?1:0);
          return asc?r:-r;
        });
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
  var table=document.getElementById('facility-table');
  function filter(){
    if(!table) return;
    var selects=document.querySelectorAll('select.filter');
    var text=document.querySelector('input.filter-text');
    var needle=text?text.value.trim().toLowerCase():'';
    var shown=0;
    Array.prototype.forEach.call(table.tBodies[0].rows,function(row){
      var ok=true;
      selects.forEach(function(s){
        if(s.value && row.getAttribute('data-'+s.getAttribute('data-filter'))!==s.value) ok=false;
      });
      if(needle && (row.getAttribute('data-key')||'').toLowerCase().indexOf(needle)<0) ok=false;
      row.hidden=!ok; if(ok) shown++;
    });
    var count=document.getElementById('facility-count');
    if(count) count.textContent=shown+' of '+table.tBodies[0].rows.length+' facilities';
  }
  document.querySelectorAll('select.filter,input.filter-text').forEach(function(el){
    el.addEventListener('input',filter);
  });
  filter();
  document.body.setAttribute('data-ready','true');
})();
"""


def legend_html() -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in FLAG_MEANINGS.items())
    return (f'<details><summary>Flags (Eurostat)</summary><dl class="legend">{items}'
            f"<dt>{NOT_AVAILABLE}</dt><dd>not available (empty, not withheld)</dd></dl>"
            "<p class=\"note\">A withheld value reads c, never blank or zero. Shares are "
            "shown as percent; density and other per-100 figures per 100 places.</p></details>")


def render(pub: Publication) -> str:
    meta = pub.meta()
    version = str(meta.get("version") or pub.folder.name)
    published = value_text(meta.get("published_at"), None) if meta.get("published_at") else "?"
    sections = {"national": national_section, "small-scale": small_scale_section,
                "facilities": facilities_section, "recidivism": recidivism_section,
                "quality": quality_section}
    nav = "".join(f'<a href="#{ident}">{escape(title)}</a>' for ident, title in SECTIONS)
    body = "".join(
        f'<section id="{ident}" data-section="{ident}"><h2>{escape(title)}</h2>'
        f"{sections[ident](pub)}</section>" for ident, title in SECTIONS)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request: nothing to fetch
        f"<title>penstat publication {escape(version)}</title>"
        f'<meta name="penstat-version" content="{escape(version)}">'
        f"<style>{STYLE}</style></head>"
        f'<body data-version="{escape(version)}">'
        f'<header><h1>penstat: prison statistics, small-scale detention</h1>'
        f'<p>Publication <strong id="publication-version">{escape(version)}</strong>, published '
        f'<span id="published-at">{escape(published)}</span> UTC; interface version '
        f"{escape(str(meta.get('interface_version') or '?'))}; "
        f"{escape(str(meta.get('deliveries') or 0))} deliveries; previous publication "
        f"{escape(str(meta.get('previous_version') or 'none'))}.</p></header>"
        f"<nav>{nav}</nav>"
        f'<section id="about"><p>Every figure is read from this publication\'s '
        "published.duckdb; every chart has the table of its numbers beside it.</p>"
        f"{legend_html()}</section>{body}"
        f"<script>{SCRIPT}</script></body></html>\n")
