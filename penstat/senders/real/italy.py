"""Italy, Ministero della Giustizia institution pages -> facility_register, occupancy,
staffing (v1).

Source: italy_prisons/snapshot_2024-09-12 and snapshot_2025-01-07 (SOURCE.md there):
190 institutions per snapshot, joined on `id_pagina`, in four files per snapshot
(anagrafica, capienza_presenze, personale, data_aggiornamento).

Mapping (contract v1):

- facility_id          `IT-<id_pagina>` (e.g. IT-MII152284)
- name                 titolo (2024: `title`), plus ` - <nome>` when the institution has a
                       proper name, HTML entities decoded
- region               NUTS-2 from the ISTAT region code cod_reg (Trentino-Alto Adige
                       split into ITH1 Bolzano / ITH2 Trento by the province in comune_istat)
- facility_type        Casa circondariale (incl. femminile, N.C.) -> remand_centre;
                       Casa di reclusione (incl. femminile), Istituti di pena, Casa di
                       lavoro -> prison; Istituto custodia attenuata per madri (ICAM) ->
                       detention_house
- capacity_places      posti regolamentari (regulation capacity)
- places_out_of_use    posti non disponibili
- population           totale detenuti, on census_date = data_aggiornamento of the page
- staffing (month of the snapshot): polizia penitenziaria -> custodial, amministrativi ->
  management, educatori -> education; headcount = fte = effettivi (persons in post),
  vacancies_fte = previsti - effettivi where positive
- validity intervals   a register row per snapshot, merged when nothing changed: valid
                       from the first snapshot that shows it (the source says nothing
                       earlier), the first row closing the day before the second snapshot
                       when capacity (or another attribute) changed (19 institutions)

Rules (every quirk of SOURCE.md; counts in the SourceReport):

- schema_drift_title (map): the 2024 anagrafica has `title` for `titolo` and no
  comune_istat / comune / cod_reg; the 2024 rows take their region from the 2025
  anagrafica via id_pagina (region_from_2025).
- literal_null_name (map): `NULL` in nome is a missing value, not a name.
- html_entities (map): `&ordf`, `&agrave`, `&igrave` ... decoded (html.unescape).
- comune_istat is read as text (leading zeros kept) for the Trentino split.
- no_places_in_use (flag): capacity minus places out of use <= 0 (one institution, closed
  for works, 0 detainees): delivered as published; occupancy in use is then undefined
  (null in the marts), never a division by zero.
- operational_not_published (map): no operational capacity is published:
  operational_capacity = capacity_places. One institution per snapshot holds more than
  twice its regulation capacity (2.08, 2.01), above v1's default bound (population <= 2 x
  operational capacity); config/real.toml raises it.
- security_not_published / community_not_published (map): security_level `medium` (`low`
  for the ICAM, attenuated custody by definition), community_integrated false.
- not_published_unknown (map): sex, remand, age and flow counts are not published; the
  occupancy deliveries declare contract v3 (docs/contract/feeds-v3.md) and leave them
  empty (unknown), never 0.
- staff_above_establishment (map): more staff in post than planned (36 institutions'
  police): vacancies 0.
- no_staff_data (set aside): an institution-snapshot whose six staff figures are all 0
  publishes no staff data; no staffing rows are sent for it.
"""

from __future__ import annotations

import csv
import html
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from penstat.contract.feeds import UNKNOWN_VERSION
from penstat.senders.delivery import csv_rows, write_delivery
from penstat.senders.real import SourceReport
from penstat.senders.real.register import OCCUPANCY_HEADER, STAFFING_HEADER

SOURCE = "italy"
FOLDER = "italy_prisons"
SNAPSHOTS = ("2024-09-12", "2025-01-07")
# When each snapshot was copied (the commit of ondata/liberiamoli-tutti that holds it).
CREATED_AT = {"2024-09-12": "2024-12-15T00:00:00Z", "2025-01-07": "2025-07-02T00:00:00Z"}
SENDER = "Ministero della Giustizia via penstat adapter (ondata/liberiamoli-tutti, CC-BY 4.0)"
JURISDICTION = "IT"
STAFF = {  # staff_category: (effettivi column, previsti column)
    "custodial": ("polizia penitenziaria - effettivi", "polizia penitenziaria - previsti"),
    "management": ("amministrativi - effettivi", "amministrativi - previsti"),
    "education": ("educatori - effettivi", "educatori - previsti"),
}
# ISTAT region code -> NUTS-2 (2021). 4 (Trentino-Alto Adige) is split by province.
NUTS2 = {
    "1": "ITC1", "2": "ITC2", "3": "ITC4", "5": "ITH3", "6": "ITH4", "7": "ITC3",
    "8": "ITH5", "9": "ITI1", "10": "ITI2", "11": "ITI3", "12": "ITI4", "13": "ITF1",
    "14": "ITF2", "15": "ITF3", "16": "ITF4", "17": "ITF5", "18": "ITF6", "19": "ITG1",
    "20": "ITG2",
}
TRENTINO_PROVINCES = {"021": "ITH1", "022": "ITH2"}  # Bolzano, Trento
TYPES = {
    "Casa circondariale": "remand_centre",
    "Casa circondariale femminile": "remand_centre",
    "Casa circondariale N.C.": "remand_centre",
    "Casa di reclusione": "prison",
    "Casa di reclusione femminile": "prison",
    "Istituti di pena": "prison",
    "Casa di lavoro": "prison",
    "Istituto custodia attenuata per madri": "detention_house",
}
NOT_PUBLISHED = ("population_female", "population_remand", "population_under_18",
                 "population_18_22", "admissions", "releases")


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def facility_id(id_pagina: str) -> str:
    return f"{JURISDICTION}-{id_pagina}"


@dataclass
class Snapshot:
    date: str
    institutions: dict[str, dict[str, str]]  # id_pagina -> every column of the four files


@dataclass
class Italy:
    snapshots: list[Snapshot]
    register: list[list] = field(default_factory=list)
    occupancy: dict[str, list[list]] = field(default_factory=dict)  # snapshot -> rows
    staffing: dict[str, list[list]] = field(default_factory=dict)
    report: SourceReport = field(default_factory=lambda: SourceReport(SOURCE))


def read_snapshot(folder: Path, report: SourceReport) -> Snapshot:
    ana = _read(folder / "anagrafica.csv")
    cap = {r["id_pagina"]: r for r in _read(folder / "capienza_presenze.csv")}
    staff = {r["id_pagina"]: r for r in _read(folder / "personale.csv")}
    dates = {r["id_pagina"]: r["data_aggiornamento"]
             for r in _read(folder / "data_aggiornamento.csv")}
    institutions = {}
    for row in ana:
        key = row["id_pagina"]
        if "titolo" not in row and "title" in row:
            row["titolo"] = row.pop("title")
            report.map("schema_drift_title")
        if {key} - cap.keys() or {key} - staff.keys() or {key} - dates.keys():
            raise ValueError(f"{folder.name}: {key} is missing from a file of the snapshot")
        institutions[key] = {**row, **cap[key], **staff[key], "census_date": dates[key]}
    if len(institutions) != len(cap) or len(cap) != len(staff):
        raise ValueError(f"{folder.name}: the four files do not list the same institutions")
    return Snapshot(date=folder.name.removeprefix("snapshot_"), institutions=institutions)


def _clean(value: str | None, report: SourceReport) -> str | None:
    if value is None or value == "":
        return None
    if value == "NULL":
        report.map("literal_null_name")
        return None
    decoded = html.unescape(value)
    if decoded != value:
        report.map("html_entities")
    return decoded


def _region(inst: dict[str, str], latest: dict[str, str] | None,
            report: SourceReport) -> str:
    source = inst if inst.get("cod_reg") else latest
    if source is None or not source.get("cod_reg"):
        raise ValueError(f"no region for {inst['id_pagina']}")
    if source is not inst:
        report.map("region_from_2025")
    if source["cod_reg"] == "4":
        return TRENTINO_PROVINCES[source["comune_istat"][:3]]
    return NUTS2[source["cod_reg"]]


def build(data: Path) -> Italy:
    report = SourceReport(SOURCE)
    _describe_rules(report)
    snaps = [read_snapshot(data / FOLDER / f"snapshot_{s}", report) for s in SNAPSHOTS]
    result = Italy(snapshots=snaps, report=report)
    report.rows_read = sum(len(s.institutions) for s in snaps)
    latest = snaps[-1].institutions
    versions: dict[str, list[tuple[str, tuple]]] = {}
    types = Counter()
    for snap in snaps:
        occ, stf = [], []
        for key, inst in sorted(snap.institutions.items()):
            fid = facility_id(key)
            title = _clean(inst["titolo"], report)
            proper = _clean(inst.get("nome"), report)
            name = f"{title} - {proper}" if proper else title
            ftype = TYPES[inst["tipo"]]
            types[inst["tipo"]] += 1
            capacity = int(inst["posti regolamentari"])
            out_of_use = int(inst["posti non disponibili"])
            population = int(inst["totale detenuti"])
            if capacity - out_of_use <= 0:
                report.map("no_places_in_use")
            attributes = (name, _region(inst, latest.get(key), report), ftype,
                          "low" if ftype == "detention_house" else "medium", capacity,
                          capacity)
            versions.setdefault(fid, []).append((inst["census_date"], attributes))
            occ.append([fid, inst["census_date"], out_of_use, population,
                        None, None, None, None, None, None])
            month = inst["census_date"][:7]
            figures = {cat: (int(inst[a]), int(inst[p])) for cat, (a, p) in STAFF.items()}
            if not any(v for pair in figures.values() for v in pair):
                report.set_aside_row("no_staff_data", _row_of(snap, key),
                                     f"{snap.date} {fid} {name}: all staff figures 0")
                continue
            for category, (actual, planned) in figures.items():
                if actual > planned:
                    report.map("staff_above_establishment")
                stf.append([fid, month, category, actual, actual, max(planned - actual, 0),
                            None])
        report.map("not_published_unknown", len(occ))
        report.map("staff_fte_is_headcount", len(stf))
        result.occupancy[snap.date] = occ
        result.staffing[snap.date] = stf
    result.register = _register(versions, report)
    for tipo, n in sorted(types.items()):
        report.map(f"type:{tipo} -> {TYPES[tipo]}", n)
    return result


def _row_of(snap: Snapshot, key: str) -> int:
    return sorted(snap.institutions).index(key) + 1


def _register(versions: dict[str, list[tuple[str, tuple]]], report: SourceReport) -> list[list]:
    rows = []
    for fid, seen in sorted(versions.items()):
        merged: list[list] = []
        for day, attrs in seen:
            if merged and merged[-1][1] == attrs:
                continue
            if merged:
                merged[-1][2] = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
            merged.append([day, attrs, None])
        for valid_from, (name, region, ftype, security, capacity, operational), valid_to \
                in merged:
            rows.append([fid, name, region, ftype, security, capacity, operational, None,
                         False, valid_from, valid_to])
        if len(merged) > 1:
            report.map("register_changed_between_snapshots")
    report.map("operational_not_published", len(rows))
    report.map("security_not_published", len(rows))
    report.map("community_not_published", len(rows))
    return rows


def send(inbox: Path, result: Italy) -> list[Path]:
    """Write occupancy and staffing per snapshot (the register goes out with
    penstat.senders.real.register)."""
    folders = []
    for snap in result.snapshots:
        day = snap.date
        month_start = day[:8] + "01"
        for feed, name, header, rows, period in (
            ("occupancy", "occupancy.csv", OCCUPANCY_HEADER, result.occupancy[day],
             (day, day)),
            ("staffing", "staffing.csv", STAFFING_HEADER, result.staffing[day],
             (month_start, day)),
        ):
            delivery_id = f"it-giustizia-{feed[:3]}-{day}"
            folders.append(write_delivery(
                inbox, feed, delivery_id, {name: csv_rows(header, rows)}, sender=SENDER,
                created_at=CREATED_AT[day], period=period,
                # occupancy leaves unpublished census columns empty: contract v3
                contract_version=UNKNOWN_VERSION if feed == "occupancy" else None))
            result.report.delivered(folders[-1], name, len(rows))
    return folders


def _describe_rules(report: SourceReport) -> None:
    d = report.describe
    d("schema_drift_title", "2024 anagrafica: `title` read as `titolo` (rows)")
    d("region_from_2025", "2024 rows: region (cod_reg, comune_istat) from the 2025 "
      "anagrafica via id_pagina (rows)")
    d("literal_null_name", "nome `NULL` is a missing value (values)")
    d("html_entities", "HTML entities in titolo / nome decoded (values)")
    d("no_places_in_use", "capacity - places out of use <= 0: delivered as published; "
      "occupancy in use undefined (rows)")
    d("operational_not_published", "operational capacity not published: = regulation "
      "capacity (register rows)")
    d("security_not_published", "security level not published: 'medium', 'low' for the "
      "ICAM (register rows)")
    d("community_not_published", "community integration not published: false "
      "(register rows)")
    d("not_published_unknown", "female, remand, under-18, 18-22, admissions and releases "
      "not published: sent empty (unknown, contract v3) (rows)")
    d("staff_fte_is_headcount", "staff published as persons in post: fte = headcount "
      "(staffing rows)")
    d("staff_above_establishment", "more staff in post than planned: vacancies 0 "
      "(category rows)")
    d("no_staff_data", "all six staff figures 0: no staff data published, no staffing rows")
    d("register_changed_between_snapshots", "institutions whose register row changed "
      "between the snapshots (two validity intervals)")
