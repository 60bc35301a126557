"""California CDCR monthly institution population -> facility_register + occupancy (v1).

Source: cdcr_monthly/monthly_cdcr_population.csv (SOURCE.md there): one row per
institution per month, 1996-01 .. 2022-12, parsed from CDCR's TPOP1 PDFs.

Mapping (contract v1, docs/contract/feeds.md; the occupancy delivery is v3):

- facility_id          `US-CA-<abbreviation>`, plus `W` for a women's line of a sex-split
                       institution (FOL ... (FEMALE) -> US-CA-FOLW, CRC ... WOMEN -> CRCW)
- name                 institution_name as printed (e.g. `VSP (VALLEY SP)`)
- capacity_places      designed_capacity (design, "bed" capacity)
- operational_capacity staffed_capacity (rule operational_below_design)
- census_date          the last day of the month (population is a month-end count)
- population           total_population (felons + civil addicts)
- validity intervals   an institution's months with the same design and staffed
                       capacity form one register row: valid_from = first day of the
                       first month, valid_to = last day of the last month; the last
                       interval of an institution still listed in the last month of
                       the file stays open. Institutions that open or close inside the
                       range (KVSP from 2005-06, CCC to 2022-10, ...) get those dates.

Rules (every quirk of SOURCE.md; counts in the SourceReport):

- duplicate_month (set aside): 153 (year, month, institution) keys have two lines with
  different values (SCC's camp and institution lines, LAC, CCWF, ...). The line with the
  largest design capacity is the institution line and is kept (ties: the larger
  population, then the first line); the other line is set aside.
- sex_split_repeats_capacity (set aside): a line of a sex-split institution whose design
  capacity equals that of another line of the same institution that month repeats the
  main prison's capacity (SQ (SAN QUENTIN SP) (FEMALE) in 2019: 1 person on 3,082
  places, percent_occupied 0.0); its capacity is not its own, so it is set aside (the
  line with the smaller population). FOL's and CRC's women's lines have capacities of
  their own and are kept as facilities.
- operational_below_design (map): contract v1 requires operational >= certified capacity;
  where staffed_capacity < designed_capacity, operational_capacity = designed_capacity.
- population_above_bound: SVSP 1996-12 holds 3,694 on 700 places (527.7 %) while it
  opened; with contract v1's default bound (population <= 2 x operational capacity) such
  rows would reject the whole delivery. `make real` runs with config/real.toml, which
  raises that bound; this adapter counts the rows above the default bound (mapped: they
  are delivered unchanged).
- not_published_unknown (map): CDCR publishes no places out of use, sex, remand, age or
  flow counts. The occupancy delivery declares contract v3 (docs/contract/feeds-v3.md)
  and leaves them empty (unknown), never 0, so the KPIs built on them (turnover, length
  of stay, vulnerable-group shares, in-use occupancy) are published empty, flagged m.
- security_not_published / community_not_published / type (map): register attributes CDCR
  does not publish: security_level `medium`, community_integrated false (so no
  institution is ever taken for a detention house on an assumption), facility_type
  `prison`, `remand_centre` for county-jail contract beds (SBRN, SRTA).
- percent_occupied is not delivered (the warehouse computes density itself); the test
  suite compares the published density with it.
"""

from __future__ import annotations

import calendar
import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from penstat.contract.feeds import UNKNOWN_VERSION
from penstat.senders.delivery import csv_rows, write_delivery
from penstat.senders.real import SourceReport
from penstat.senders.real.register import OCCUPANCY_HEADER

SOURCE = "california"
FOLDER = "cdcr_monthly"
FILE = "monthly_cdcr_population.csv"
SENDER = "CDCR Office of Research via penstat adapter (nrjones8/cdcr-population-data)"
# When the copy was taken (the commit that added data through 2022-12).
CREATED_AT = "2023-01-04T00:00:00Z"
JURISDICTION = "US-CA"
REGION = "USCA"  # ISO 3166-2 US-CA, in the register's region format
DEFAULT_POPULATION_BOUND = 2.0  # contract v1 default (config/penstat.toml)
NOT_PUBLISHED = ("places_out_of_use", "population_female", "population_remand",
                 "population_under_18", "population_18_22", "admissions", "releases")
_WOMEN = re.compile(r"\((FEMALE)\)|, WOMEN\)")
_SEX_SPLIT = re.compile(r"\((FEMALE|MALE)\)|, (WOMEN|MEN)\)")


@dataclass(frozen=True)
class Line:
    row: int  # data row number in the file (1 = first row after the header)
    year: int
    month: int
    institution: str
    population: int
    population_felons: int
    civil_addict: int
    designed_capacity: int
    staffed_capacity: int
    percent_occupied: float
    source_pdf: str

    @property
    def census_date(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def abbreviation(self) -> str:
        return self.institution.split(" ", 1)[0]

    @property
    def facility_id(self) -> str:
        return facility_id(self.institution)

    def describe(self) -> str:
        return (f"{self.year}-{self.month:02d} {self.institution}: {self.population} held, "
                f"design {self.designed_capacity}, staffed {self.staffed_capacity}, "
                f"{self.percent_occupied} %")


def facility_id(institution: str) -> str:
    code = institution.split(" ", 1)[0] + ("W" if _WOMEN.search(institution) else "")
    return f"{JURISDICTION}-{code}"


def read(path: Path) -> list[Line]:
    with open(path, newline="", encoding="ascii") as fh:
        reader = csv.DictReader(fh)
        return [Line(row=i, year=int(r["year"]), month=int(r["month"]),
                     institution=r["institution_name"], population=int(r["total_population"]),
                     population_felons=int(r["population_felons"]),
                     civil_addict=int(r["civil_addict"]),
                     designed_capacity=int(r["designed_capacity"]),
                     staffed_capacity=int(r["staffed_capacity"]),
                     percent_occupied=float(r["percent_occupied"]),
                     source_pdf=r["source_pdf_name"])
                for i, r in enumerate(reader, start=1)]


@dataclass
class California:
    """The adapter's result: register rows, occupancy rows and the report."""

    lines: list[Line]
    kept: list[Line] = field(default_factory=list)
    register: list[list] = field(default_factory=list)
    occupancy: list[list] = field(default_factory=list)
    report: SourceReport = field(default_factory=lambda: SourceReport(SOURCE))

    @property
    def period(self) -> tuple[str, str]:
        days = [line.census_date for line in self.kept]
        return min(days).isoformat(), max(days).isoformat()


def build(data: Path) -> California:
    lines = read(data / FOLDER / FILE)
    result = California(lines=lines)
    report = result.report
    report.rows_read = len(lines)
    _describe_rules(report)
    ids: dict[str, str] = {}
    for line in lines:
        if ids.setdefault(line.facility_id, line.institution) != line.institution:
            raise ValueError(f"two institutions map to {line.facility_id}: "
                             f"{ids[line.facility_id]!r} and {line.institution!r}")
    kept = _duplicate_rule(lines, report)
    kept = _sex_split_rule(kept, report)
    result.kept = sorted(kept, key=lambda x: (x.facility_id, x.year, x.month))
    result.register = _register(result.kept, report)
    for line in result.kept:
        if line.population > DEFAULT_POPULATION_BOUND * max(line.staffed_capacity,
                                                           line.designed_capacity):
            report.map("population_above_bound")
        result.occupancy.append([line.facility_id, line.census_date.isoformat(), None,
                                 line.population, None, None, None, None, None, None])
    report.map("not_published_unknown", len(result.occupancy))
    return result


def _duplicate_rule(lines: list[Line], report: SourceReport) -> list[Line]:
    groups: dict[tuple, list[Line]] = defaultdict(list)
    for line in lines:
        groups[(line.year, line.month, line.institution)].append(line)
    kept = []
    for group in groups.values():
        ranked = sorted(group, key=lambda x: (-x.designed_capacity, -x.population, x.row))
        kept.append(ranked[0])
        for other in ranked[1:]:
            report.set_aside_row("duplicate_month", other.row,
                                 f"{other.describe()} (kept row {ranked[0].row})")
    return kept


def _sex_split_rule(lines: list[Line], report: SourceReport) -> list[Line]:
    groups: dict[tuple, list[Line]] = defaultdict(list)
    for line in lines:
        groups[(line.year, line.month, line.abbreviation, line.designed_capacity)].append(line)
    kept = []
    for group in groups.values():
        if len(group) > 1 and any(_SEX_SPLIT.search(x.institution) for x in group):
            ranked = sorted(group, key=lambda x: (-x.population, x.row))
            kept.append(ranked[0])
            for other in ranked[1:]:
                report.set_aside_row("sex_split_repeats_capacity", other.row,
                                     f"{other.describe()} repeats the capacity of row "
                                     f"{ranked[0].row}")
        else:
            kept.extend(group)
    return kept


def _month_index(line: Line) -> int:
    return line.year * 12 + line.month - 1


def _register(lines: list[Line], report: SourceReport) -> list[list]:
    last_month = max(_month_index(x) for x in lines)
    rows: list[list] = []
    by_facility: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        by_facility[line.facility_id].append(line)
    for fid, months in sorted(by_facility.items()):
        runs: list[list[Line]] = []
        for line in months:
            operational = max(line.staffed_capacity, line.designed_capacity)
            if line.staffed_capacity < line.designed_capacity:
                report.map("operational_below_design")
            prev = runs[-1][-1] if runs else None
            if (prev is not None and _month_index(line) == _month_index(prev) + 1
                    and (line.designed_capacity, operational)
                    == (prev.designed_capacity, max(prev.staffed_capacity,
                                                    prev.designed_capacity))):
                runs[-1].append(line)
            else:
                runs.append([line])
        for i, run in enumerate(runs):
            first, last = run[0], run[-1]
            still_open = i == len(runs) - 1 and _month_index(last) == last_month
            jail = "CO. JAIL" in first.institution
            rows.append([
                fid, first.institution, REGION, "remand_centre" if jail else "prison",
                "medium", first.designed_capacity,
                max(first.staffed_capacity, first.designed_capacity), None, False,
                date(first.year, first.month, 1).isoformat(),
                None if still_open else last.census_date.isoformat(),
            ])
    report.map("security_not_published", len(rows))
    report.map("community_not_published", len(rows))
    report.map("county_jail_type", sum(1 for r in rows if r[3] == "remand_centre"))
    return rows


def send(inbox: Path, result: California) -> list[Path]:
    """Write the occupancy delivery (the register goes out with penstat.senders.real.register)."""
    start, end = result.period
    delivery_id = f"cdcr-occ-{start[:7]}-{end[:7]}"
    data = csv_rows(OCCUPANCY_HEADER, result.occupancy)
    folder = write_delivery(inbox, "occupancy", delivery_id, {"occupancy.csv": data},
                            sender=SENDER, created_at=CREATED_AT, period=(start, end),
                            contract_version=UNKNOWN_VERSION)
    result.report.delivered(folder, "occupancy.csv", len(result.occupancy))
    return [folder]


def _describe_rules(report: SourceReport) -> None:
    d = report.describe
    d("duplicate_month", "two lines for one (year, month, institution): the line with the "
      "largest design capacity (then population) is kept, the other set aside")
    d("sex_split_repeats_capacity", "a sex-split line repeating the main prison's design "
      "capacity that month (SQ female 2019) is set aside")
    d("operational_below_design", "staffed capacity below design capacity: operational "
      "capacity = design capacity (v1: operational >= certified); counted per month line")
    d("population_above_bound", "population above 2 x operational capacity (v1 default "
      "bound): delivered unchanged, accepted under config/real.toml's bound")
    d("not_published_unknown", "places out of use, female, remand, under-18, 18-22, "
      "admissions and releases are not published: sent empty (unknown, contract v3) (rows)")
    d("security_not_published", "security level not published: 'medium' (register rows)")
    d("community_not_published", "community integration not published: false "
      "(register rows)")
    d("county_jail_type", "county-jail contract beds (SBRN, SRTA): facility_type "
      "remand_centre (register rows)")
