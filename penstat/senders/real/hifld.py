"""US HIFLD "Prison Boundaries" register -> reference_register (contract v2).

Source: hifld_prisons/prisons.csv (SOURCE.md there): 6,737 US correctional facilities
(federal, state, county, local), with capacity and population of unstated date.

Why not the v1 register: HIFLD publishes no validity dates, security level, community
integration or operational capacity, and capacity is unknown for 1,666 facilities; v1
requires all of them. The v2 `reference_register` feed takes a register published by
another body as it is: missing stays missing.

Mapping:

- facility_id      `US-<FACILITYID>` (FACILITYID is HIFLD's key; names collide, ids do not)
- name, country    NAME, COUNTRY (USA, PRI, GUM, VIR, MNP) as published
- subdivision      STATE
- operator_level   TYPE in lower case (federal, state, county, local, multi)
- status           STATUS in lower case (open, closed): closed facilities stay in the
                   register as closed; the scale-class facts count open facilities only
- capacity_places  CAPACITY;  population  POPULATION
- reference_date   empty: the vintage of POPULATION and CAPACITY is not stated and varies
                   by facility (the delivery's created_at is when the copy was taken)

Rules (counts in the SourceReport):

- bom (map): the file starts with a UTF-8 byte-order mark (`\\ufeffFACILITYID`); it is read
  with utf-8-sig. crlf (map): CRLF line ends are read by the csv module.
- sentinel_minus_999 (map): -999 in CAPACITY or POPULATION means unknown: sent empty.
- not_available (map): `NOT AVAILABLE` in TYPE or STATUS means unknown: sent empty.
- columns_not_in_contract: ADDRESS, CITY, ZIP, TELEPHONE, COUNTY, COUNTYFIPS, WEBSITE and
  the GIS SHAPE_* columns are not part of the feed (so ZIP's and COUNTYFIPS's stripped
  leading zeros and the malformed URLs do not reach the warehouse).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from penstat.contract.feeds import FEEDS
from penstat.senders.delivery import csv_rows, write_delivery
from penstat.senders.real import SourceReport

SOURCE = "hifld"
FOLDER = "hifld_prisons"
FILE = "prisons.csv"
SENDER = "US DHS HIFLD Prison Boundaries via penstat adapter (kagansozen/US-Prison-and-" \
         "Secure-Detention-Facilities)"
CREATED_AT = "2024-12-29T00:00:00Z"  # when the copy was taken (the commit adding it)
DELIVERY_ID = "hifld-prison-boundaries-2024-12-29"
HEADER = list(FEEDS["reference_register"].file("facilities").column_names)
SENTINEL = "-999"
NOT_AVAILABLE = "NOT AVAILABLE"
UNUSED = ("ADDRESS", "CITY", "ZIP", "TELEPHONE", "COUNTY", "COUNTYFIPS", "WEBSITE",
          "SHAPE_Length", "SHAPE_Area")


@dataclass
class Hifld:
    rows: list[list] = field(default_factory=list)
    report: SourceReport = field(default_factory=lambda: SourceReport(SOURCE))


def parse(raw: bytes, report: SourceReport) -> list[dict[str, str]]:
    if raw.startswith(b"\xef\xbb\xbf"):
        report.map("bom")
    text = raw.decode("utf-8-sig")
    if "\r\n" in text:
        report.map("crlf", text.count("\r\n"))
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _known(value: str, report: SourceReport, rule: str) -> str | None:
    value = value.strip()
    if value in (SENTINEL, NOT_AVAILABLE, ""):
        report.map(rule)
        return None
    return value


def build(data: Path) -> Hifld:
    result = Hifld()
    report = result.report
    _describe_rules(report)
    records = parse((data / FOLDER / FILE).read_bytes(), report)
    report.rows_read = len(records)
    for rec in records:
        level = _known(rec["TYPE"], report, "not_available")
        status = _known(rec["STATUS"], report, "not_available")
        capacity = _known(rec["CAPACITY"], report, "sentinel_minus_999")
        population = _known(rec["POPULATION"], report, "sentinel_minus_999")
        for value in (capacity, population):
            if value is not None and int(value) < 0:
                raise ValueError(f"unexpected negative value {value} for {rec['FACILITYID']}")
        result.rows.append([
            f"US-{rec['FACILITYID']}", rec["NAME"], rec["COUNTRY"], rec["STATE"] or None,
            level.lower() if level else None, status.lower() if status else None,
            capacity, population, None,
        ])
    report.map("columns_not_in_contract", len(UNUSED))
    return result


def send(inbox: Path, result: Hifld) -> list[Path]:
    folder = write_delivery(inbox, "reference_register", DELIVERY_ID,
                            {"facilities.csv": csv_rows(HEADER, result.rows)},
                            sender=SENDER, created_at=CREATED_AT, period=None)
    result.report.delivered(folder, "facilities.csv", len(result.rows))
    return [folder]


def _describe_rules(report: SourceReport) -> None:
    d = report.describe
    d("bom", "UTF-8 byte-order mark before the header: read with utf-8-sig (files)")
    d("crlf", "CRLF line ends: read by the csv module (lines)")
    d("sentinel_minus_999", "-999 in CAPACITY / POPULATION = unknown: sent empty (values)")
    d("not_available", "NOT AVAILABLE in TYPE / STATUS = unknown: sent empty (values)")
    d("columns_not_in_contract", "address, phone, ZIP, county FIPS, website and GIS shape "
      "columns are not part of the feed (columns)")
