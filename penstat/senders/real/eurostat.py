"""Eurostat crim_pris_cap (native dissemination TSV) -> national_reference (contract v2).

Source: eurostat_crim_pris_cap/crim_pris_cap_2011-2020.tsv (SOURCE.md there): persons
held (PRIS_ACT_CAP) and official capacity (PRIS_OFF_CAP), as numbers (NR) and per
100,000 inhabitants (P_HTHAB), for 41 geos, 2011-2020.

Why not a v1 feed: the table is national, not per facility. The v2 `national_reference`
feed holds one row per published cell, in SDMX terms: the dimensions (dataset, indicator,
unit, geo, frequency, period), OBS_VALUE (`value`) and OBS_FLAG (`flag`).

Mapping: every cell becomes a row, including the missing ones (`:`), whose value is
empty: 162 series x 10 years = 1,620 rows. Values are sent as the text Eurostat printed
(no rounding), flags as printed.

Rules (every quirk of SOURCE.md; counts in the SourceReport):

- header_dimensions (map): the first header cell `freq,indic_cr,unit,geo\\TIME_PERIOD` is a
  comma-joined dimension key ending in the time dimension's name after a backslash; each
  row's first field is split on commas the same way.
- trailing_spaces (map): year headers (`'2011 '`) and values (`'4659 '`, `': '`) carry a
  trailing space: stripped.
- missing_colon (map): `:` means not available: value empty (a flag after it is kept).
- flag_suffix (map): newer extracts attach status flags to values (`123 p`, `: c`): the
  letters go to `flag` (this vintage has none; the parser is tested on them).
- crlf (map): CRLF line ends.
- unbalanced_pairs (flag): geos with persons held but no official capacity at all
  (Scotland, UKM): delivered as published; their density is undefined.
- unparseable_cell (set aside): a cell that is neither a number nor `:` (none here).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from penstat.contract.feeds import FEEDS
from penstat.senders.delivery import csv_rows, write_delivery
from penstat.senders.real import SourceReport

SOURCE = "eurostat"
FOLDER = "eurostat_crim_pris_cap"
FILE = "crim_pris_cap_2011-2020.tsv"
DATASET = "crim_pris_cap"
SENDER = "Eurostat crim_pris_cap via penstat adapter (tommasobattisti/BarsBehindBars)"
CREATED_AT = "2023-04-15T00:00:00Z"  # when the copy was taken (the commit adding it)
DELIVERY_ID = "eurostat-crim-pris-cap-2011-2020"
HEADER = list(FEEDS["national_reference"].file("values").column_names)
_CELL = re.compile(r"^(?P<value>:|-?[0-9]+(\.[0-9]+)?)\s*(?P<flag>[a-z]{1,4})?$")
DIMENSIONS = {"freq": "frequency", "indic_cr": "indicator", "unit": "unit", "geo": "geo"}


@dataclass(frozen=True)
class Cell:
    line: int  # line number in the file (1 = header)
    indicator: str
    unit: str
    geo: str
    frequency: str
    period: str
    value: str | None
    flag: str | None


@dataclass
class Eurostat:
    cells: list[Cell] = field(default_factory=list)
    report: SourceReport = field(default_factory=lambda: SourceReport(SOURCE))

    @property
    def rows(self) -> list[list]:
        return [[DATASET, c.indicator, c.unit, c.geo, c.frequency, c.period, c.value, c.flag]
                for c in self.cells]


def parse_cell(text: str) -> tuple[str | None, str | None] | None:
    """'4659 ' -> ('4659', None); ': ' -> (None, None); '123 p' -> ('123', 'p');
    ': c' -> (None, 'c'); anything else -> None."""
    match = _CELL.match(text.strip())
    if not match:
        return None
    value = match["value"]
    return (None if value == ":" else value), match["flag"]


def parse(raw: bytes, report: SourceReport) -> list[Cell]:
    text = raw.decode("utf-8-sig")
    if "\r\n" in text:
        report.map("crlf", text.count("\r\n"))
    lines = text.splitlines()
    header = lines[0].split("\t")
    dims, _, time_name = header[0].partition("\\")
    names = dims.split(",")
    if time_name != "TIME_PERIOD" or [n for n in names if n not in DIMENSIONS]:
        raise ValueError(f"unexpected Eurostat header {header[0]!r}")
    report.map("header_dimensions")
    periods = [h.strip() for h in header[1:]]
    report.map("trailing_spaces", sum(h != h.strip() for h in header[1:]))
    cells: list[Cell] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        key = dict(zip(names, fields[0].split(","), strict=True))
        for period, raw_cell in zip(periods, fields[1:], strict=True):
            if raw_cell != raw_cell.strip():
                report.map("trailing_spaces")
            parsed = parse_cell(raw_cell)
            if parsed is None:
                report.set_aside_row("unparseable_cell", number,
                                     f"{fields[0]} {period}: {raw_cell!r}")
                continue
            value, flag = parsed
            if value is None:
                report.map("missing_colon")
            if flag:
                report.map("flag_suffix")
            cells.append(Cell(line=number, indicator=key["indic_cr"], unit=key["unit"],
                              geo=key["geo"], frequency=key["freq"], period=period,
                              value=value, flag=flag))
    return cells


def build(data: Path) -> Eurostat:
    result = Eurostat()
    report = result.report
    _describe_rules(report)
    raw = (data / FOLDER / FILE).read_bytes()
    result.cells = parse(raw, report)
    report.rows_read = len(raw.decode("utf-8-sig").splitlines()) - 1
    indicators = defaultdict(set)
    for c in result.cells:
        indicators[c.geo].add(c.indicator)
    report.map("unbalanced_pairs", sum(1 for v in indicators.values() if len(v) == 1))
    return result


def send(inbox: Path, result: Eurostat) -> list[Path]:
    periods = sorted({c.period for c in result.cells})
    folder = write_delivery(
        inbox, "national_reference", DELIVERY_ID,
        {"values.csv": csv_rows(HEADER, result.rows)}, sender=SENDER, created_at=CREATED_AT,
        period=(f"{periods[0][:4]}-01-01", f"{periods[-1][:4]}-12-31"))
    result.report.delivered(folder, "values.csv", len(result.cells))
    return [folder]


def _describe_rules(report: SourceReport) -> None:
    d = report.describe
    d("header_dimensions", "`freq,indic_cr,unit,geo\\TIME_PERIOD`: dimension key split on "
      "commas (files)")
    d("trailing_spaces", "trailing space after year headers and values stripped (cells)")
    d("missing_colon", "`:` = not available: value empty (cells)")
    d("flag_suffix", "status flag letters after a value go to `flag` (cells)")
    d("crlf", "CRLF line ends (lines)")
    d("unbalanced_pairs", "geos with persons held but no official capacity (UKM): "
      "density undefined (geos)")
    d("unparseable_cell", "a cell neither a number nor `:`: set aside")
