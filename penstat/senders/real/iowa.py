"""Iowa DOC 3-year recidivism (FY2010-FY2015 releases) -> recidivism_cohort (contract v2).

Source: iowa_recidivism/iowa_3yr_recidivism.csv (SOURCE.md there): 26,020 releases from
prison with their three-year return-to-prison outcome; no person id, no dates.

Why not the v1 recidivism feed: v1 is person-level (a national identifier, release and
conviction dates) and derives reoffending itself. Iowa publishes the outcome per release,
by fiscal year. The v2 `recidivism_cohort` feed takes one row per release with its
published outcome; the row's number in the file is the key, because equal rows are
different people (7,147 rows repeat an earlier row and all are delivered).

Mapping:

- record_no            data row number in the file (1 = first row after the header)
- jurisdiction         US-IA
- release_year         Fiscal Year Released; release_period_start / _end = the fiscal
                       year (Iowa's ends on 30 June: FY2010 = 2009-07-01 .. 2010-06-30)
- follow_up_months     36 (Recidivism Reporting Year = release year + 3, checked)
- release_type         canonical code (rule release_type_spelling); the published label
                       is kept in release_type_label
- supervising_district Main Supervising District (rule district_spelling)
- race, ethnicity      `Race - Ethnicity` split at " - " (rule race_truncated)
- age_band, sex        `Age At Release ` (header with a trailing space), Sex
- offence_class/type/subtype, new_offence_*: as published (types as codes)
- returned             Return to Prison (Yes/No); days_to_return; return_type from
                       Recidivism Type (New -> new_offence, Tech -> technical)
- target_population    Target Population (Yes/No)

Rules (every quirk of SOURCE.md; counts in the SourceReport):

- header_trailing_space (map): header names are stripped (`Age At Release `).
- duplicates_kept (flag): rows equal to an earlier row are different releases: all are
  delivered, none is deduplicated (counted).
- release_type_spelling (map): `Discharged – End of Sentence` (en dash) and
  `Discharged - Expiration of Sentence` -> discharged_end_of_sentence; `Parole` and
  `Parole Granted` -> parole; `Special Sentence` and `Released to Special Sentence` ->
  special_sentence; `Paroled to Detainer - *` -> paroled_to_detainer;
  `Paroled w/Immediate Discharge` -> parole_immediate_discharge; `Interstate Compact
  Parole` -> interstate_compact_parole. Empty release type (1,762) stays missing.
- district_spelling (map): `Interstate Compact` -> `ISC`; empty stays missing.
- race_truncated (map): `White -`, `Black -` keep the race with unknown ethnicity; `N/A -`
  and empty are missing.
- new_offence_shifted (map): where New Offense Classification holds an offence type
  (Public Order, Violent, Drug) and New Offense Type a subtype, the three columns are
  shifted back (class empty, type, subtype).
- new_offence_on_technical (flag): a new offence on a technical-violation return (1,202)
  is kept as published; the KPI uses Return to Prison, not the new offence.
- outcome_inconsistent (set aside): Return to Prison disagreeing with Recidivism Type, or
  Recidivism Reporting Year not release year + 3 (none in this file).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from penstat.contract.feeds import FEEDS
from penstat.senders.delivery import csv_rows, write_delivery
from penstat.senders.real import SourceReport

SOURCE = "iowa"
FOLDER = "iowa_recidivism"
FILE = "iowa_3yr_recidivism.csv"
SENDER = "Iowa Department of Corrections via penstat adapter (robertharrow/modeling-recidivism)"
# Extraction date: when the copy was taken (the commit adding it). The data run to
# recidivism reporting year FY2018 (ended 2018-06-30), so every cohort is mature.
CREATED_AT = "2022-06-21T00:00:00Z"
DELIVERY_ID = "ia-doc-3yr-recidivism-fy2010-2015"
JURISDICTION = "US-IA"
FOLLOW_UP_MONTHS = 36
HEADER = list(FEEDS["recidivism_cohort"].file("releases").column_names)

RELEASE_TYPES = {
    "Parole": "parole",
    "Parole Granted": "parole",
    "Discharged – End of Sentence": "discharged_end_of_sentence",
    "Discharged - Expiration of Sentence": "discharged_end_of_sentence",
    "Special Sentence": "special_sentence",
    "Released to Special Sentence": "special_sentence",
    "Paroled to Detainer - INS": "paroled_to_detainer",
    "Paroled to Detainer - Iowa": "paroled_to_detainer",
    "Paroled to Detainer - Out of State": "paroled_to_detainer",
    "Paroled to Detainer - U.S. Marshall": "paroled_to_detainer",
    "Paroled w/Immediate Discharge": "parole_immediate_discharge",
    "Interstate Compact Parole": "interstate_compact_parole",
}
# Spellings the rule counts as variants (the others are the canonical wording).
RELEASE_TYPE_VARIANTS = {"Parole Granted", "Discharged - Expiration of Sentence",
                         "Released to Special Sentence"}
DISTRICTS = {"Interstate Compact": "ISC"}
AGE_BANDS = {"Under 25": "under_25", "25-34": "25_34", "35-44": "35_44", "45-54": "45_54",
             "55 and Older": "55_plus"}
SEXES = {"Male": "M", "Female": "F"}
OFFENCE_TYPES = {"Drug": "drug", "Property": "property", "Violent": "violent",
                 "Public Order": "public_order", "Other": "other"}
ETHNICITY = {"Hispanic": "hispanic", "Non-Hispanic": "non_hispanic"}
RETURN_TYPES = {"New": "new_offence", "Tech": "technical", "No Recidivism": None}


@dataclass
class Iowa:
    rows: list[list] = field(default_factory=list)
    report: SourceReport = field(default_factory=lambda: SourceReport(SOURCE))


def read(path: Path, report: SourceReport) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        stripped = [h.strip() for h in header]
        report.map("header_trailing_space", sum(a != b for a, b in zip(header, stripped,
                                                                      strict=True)))
        return [dict(zip(stripped, rec, strict=True)) for rec in reader]


def _opt(value: str) -> str | None:
    value = value.strip()
    return value or None


def _race(value: str, report: SourceReport) -> tuple[str | None, str | None]:
    value = value.strip()
    if not value:
        return None, None
    race, _, ethnicity = value.partition(" - ")
    if value.endswith(" -"):
        race, ethnicity = value[:-2], ""
        report.map("race_truncated")
    if race == "N/A":
        return None, None
    return race, ETHNICITY.get(ethnicity) if ethnicity else None


def _new_offence(rec: dict[str, str], report: SourceReport) -> tuple:
    cls, typ, sub = (_opt(rec["New Offense Classification"]), _opt(rec["New Offense Type"]),
                     _opt(rec["New Offense Sub Type"]))
    if cls in OFFENCE_TYPES and typ not in OFFENCE_TYPES and sub is None:
        report.map("new_offence_shifted")
        cls, typ, sub = None, cls, typ
    return cls, OFFENCE_TYPES[typ] if typ else None, sub


def _fiscal_year(year: int) -> tuple[str, str]:
    return f"{year - 1}-07-01", f"{year}-06-30"


def build(data: Path) -> Iowa:
    result = Iowa()
    report = result.report
    _describe_rules(report)
    records = read(data / FOLDER / FILE, report)
    report.rows_read = len(records)
    seen: Counter = Counter()
    for number, rec in enumerate(records, start=1):
        signature = tuple(rec.values())
        if seen[signature]:
            report.map("duplicates_kept")
        seen[signature] += 1
        year = int(rec["Fiscal Year Released"])
        returned = {"Yes": True, "No": False}[rec["Return to Prison"]]
        return_type = RETURN_TYPES[rec["Recidivism Type"]]
        if int(rec["Recidivism Reporting Year"]) != year + 3 \
                or returned != (return_type is not None):
            report.set_aside_row("outcome_inconsistent", number,
                                 f"FY{year}: return {rec['Return to Prison']}, type "
                                 f"{rec['Recidivism Type']}, reporting year "
                                 f"{rec['Recidivism Reporting Year']}")
            continue
        label = _opt(rec["Release Type"])
        if label is None:
            report.map("release_type_missing")
        elif label in RELEASE_TYPE_VARIANTS:
            report.map("release_type_spelling")
        district = _opt(rec["Main Supervising District"])
        if district in DISTRICTS:
            report.map("district_spelling")
            district = DISTRICTS[district]
        race, ethnicity = _race(rec["Race - Ethnicity"], report)
        new_class, new_type, new_sub = _new_offence(rec, report)
        if return_type == "technical" and (new_class or new_type):
            report.map("new_offence_on_technical")
        start, end = _fiscal_year(year)
        days = _opt(rec["Days to Return"])
        target = _opt(rec["Target Population"])
        result.rows.append([
            number, JURISDICTION, year, start, end, FOLLOW_UP_MONTHS,
            RELEASE_TYPES[label] if label else None, label, district, race, ethnicity,
            AGE_BANDS.get(rec["Age At Release"].strip()), SEXES.get(rec["Sex"].strip()),
            _opt(rec["Offense Classification"]), OFFENCE_TYPES[rec["Offense Type"]],
            _opt(rec["Offense Subtype"]), None if target is None else target == "Yes",
            returned, days, return_type, new_class, new_type, new_sub,
        ])
    return result


def send(inbox: Path, result: Iowa) -> list[Path]:
    years = sorted({r[2] for r in result.rows})
    folder = write_delivery(
        inbox, "recidivism_cohort", DELIVERY_ID,
        {"releases.csv": csv_rows(HEADER, result.rows)}, sender=SENDER,
        created_at=CREATED_AT, period=(_fiscal_year(years[0])[0], _fiscal_year(years[-1])[1]))
    result.report.delivered(folder, "releases.csv", len(result.rows))
    return [folder]


def _describe_rules(report: SourceReport) -> None:
    d = report.describe
    d("header_trailing_space", "header names stripped (`Age At Release `) (columns)")
    d("duplicates_kept", "rows equal to an earlier row are different releases: all "
      "delivered (rows)")
    d("release_type_spelling", "variant spellings mapped to one code (Parole Granted, "
      "Discharged - Expiration of Sentence, Released to Special Sentence) (rows)")
    d("release_type_missing", "empty release type stays missing (rows)")
    d("district_spelling", "`Interstate Compact` -> `ISC` (rows)")
    d("race_truncated", "`White -`, `Black -`, `N/A -`: ethnicity unknown (rows)")
    d("new_offence_shifted", "new-offence class/type/subtype shifted one column left: "
      "shifted back (rows)")
    d("new_offence_on_technical", "new offence recorded on a technical-violation return: "
      "kept as published (rows)")
    d("outcome_inconsistent", "Return to Prison vs Recidivism Type, or reporting year "
      "not release year + 3: set aside")
