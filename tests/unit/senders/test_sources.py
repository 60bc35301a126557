"""The real-data adapters' rules, one quirk at a time (penstat/senders/real/, SOURCE.md files).

Small inputs are built in code in the layout of ../shared/real/<folder>/, so each rule is
seen in isolation; a few tests read the real files (milliseconds) to pin the counts the
README reports. The whole pipeline on the real files is tests/integration/test_real_data.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from penstat.contract.feeds import FEEDS
from penstat.ingestion.pipeline import ingest_feed
from penstat.senders.delivery import write_delivery
from penstat.senders.real import california, data_dir, eurostat, hifld, iowa, italy

REAL = data_dir()


def write(root: Path, folder: str, name: str, text: str | bytes) -> None:
    path = root / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))


# --- California ----------------------------------------------------------------------

CA_HEADER = ("year,month,institution_name,population_felons,civil_addict,total_population,"
             "designed_capacity,percent_occupied,staffed_capacity,source_pdf_name")


def ca(tmp_path: Path, lines: list[str]) -> california.California:
    write(tmp_path, california.FOLDER, california.FILE, "\n".join([CA_HEADER, *lines]) + "\n")
    return california.build(tmp_path)


def test_california_duplicate_month_keeps_the_institution_line(tmp_path):
    result = ca(tmp_path, [
        "1996,01,SCC (SIERRA CONSERVATION CENTER),322,0,322,320,100.6,320,a.pdf",
        "1996,01,SCC (SIERRA CONSERVATION CENTER),6010,0,6010,3606,166.7,5884,a.pdf",
        "1996,02,SCC (SIERRA CONSERVATION CENTER),5912,0,5912,3606,163.9,5884,b.pdf",
        # equal capacities (2021 lines): the larger population is the institution line
        "1996,02,SCC (SIERRA CONSERVATION CENTER),2,0,2,3606,0.1,837,b.pdf",
    ])
    assert result.report.set_aside["duplicate_month"] == 2
    assert [r for r, *_ in result.report.set_aside_rows] == ["duplicate_month"] * 2
    assert [row for _, row, _ in result.report.set_aside_rows] == [1, 4]
    assert [(r[1], r[3]) for r in result.occupancy] == [("1996-01-31", 6010),
                                                        ("1996-02-29", 5912)]


def test_california_sex_split_line_repeating_the_capacity_is_set_aside(tmp_path):
    result = ca(tmp_path, [
        "2019,02,SQ (SAN QUENTIN SP),3851,0,3851,3082,125.0,3984,a.pdf",
        "2019,02,SQ (SAN QUENTIN SP) (FEMALE),1,0,1,3082,0.0,3273,a.pdf",
        # FOL's women's line has a capacity of its own: a facility of its own
        "2019,02,FOL (FOLSOM SP) (MALE),2925,0,2925,2066,141.6,2895,a.pdf",
        "2019,02,FOL (FOLSOM SP) (FEMALE),450,0,450,403,111.7,530,a.pdf",
    ])
    assert dict(result.report.set_aside) == {"sex_split_repeats_capacity": 1}
    assert result.report.set_aside_rows[0][1] == 2
    assert sorted(r[0] for r in result.occupancy) == ["US-CA-FOL", "US-CA-FOLW", "US-CA-SQ"]


def test_california_validity_intervals_open_close_and_capacity_changes(tmp_path):
    result = ca(tmp_path, [
        "2022,10,CCC (CA CORRECTIONAL CENTER),3000,0,3000,3883,77.3,4000,a.pdf",  # closes
        "2022,10,KVSP (KERN VALLEY SP),3700,0,3700,2448,151.1,3700,a.pdf",
        "2022,11,KVSP (KERN VALLEY SP),3700,0,3700,2448,151.1,3700,b.pdf",
        "2022,12,KVSP (KERN VALLEY SP),3700,0,3700,2500,148.0,2400,c.pdf",  # staffed < design
    ])
    register = {(r[0], r[9]): r for r in result.register}
    assert register[("US-CA-CCC", "2022-10-01")][10] == "2022-10-31"  # closed
    assert register[("US-CA-KVSP", "2022-10-01")][5:7] == [2448, 3700]
    assert register[("US-CA-KVSP", "2022-10-01")][10] == "2022-11-30"
    # the last interval of an institution still listed in the last month stays open;
    # staffed 2400 < design 2500: operational capacity = design capacity
    assert register[("US-CA-KVSP", "2022-12-01")][5:7] == [2500, 2500]
    assert register[("US-CA-KVSP", "2022-12-01")][10] is None
    assert result.report.mapped["operational_below_design"] == 1
    assert register[("US-CA-CCC", "2022-10-01")][3:5] == ["prison", "medium"]


def test_california_real_file_rule_counts():
    result = california.build(REAL)
    report = result.report
    assert report.rows_read == 11_178
    assert dict(report.set_aside) == {"duplicate_month": 153, "sex_split_repeats_capacity": 11}
    assert len(result.occupancy) == 11_178 - 164
    # every census date lies in exactly one register interval of its facility
    intervals: dict[str, list] = {}
    for r in result.register:
        intervals.setdefault(r[0], []).append((r[9], r[10] or "9999-12-31"))
    for fid, day, *_ in result.occupancy:
        assert sum(a <= day <= b for a, b in intervals[fid]) == 1, (fid, day)


# --- Italy ---------------------------------------------------------------------------

IT_CAP = "id_pagina,posti regolamentari,posti non disponibili,totale detenuti\n"
IT_STAFF = ("id_pagina,polizia penitenziaria - effettivi,polizia penitenziaria - previsti,"
            "amministrativi - effettivi,amministrativi - previsti,educatori - effettivi,"
            "educatori - previsti\n")


def italy_fixture(root: Path) -> None:
    for day, ana in (
        ("2024-09-12",
         "id_pagina,codiceIstituto,title,nome,tipo,latitude,longitude,indirizzo,telefono,url,"
         "data_aggiornamento\n"
         "MII1,AA1,Forl&igrave,,Casa circondariale,0,0,x,y,u,2024-09-12\n"
         "MII2,AA2,Bolzano,,Casa di reclusione,0,0,x,y,u,2024-09-12\n"),
        ("2025-01-07",
         "id_pagina,codiceIstituto,titolo,nome,tipo,latitude,longitude,indirizzo,telefono,url,"
         "data_aggiornamento,comune_istat,comune,cod_reg\n"
         "MII1,AA1,Forl&igrave,NULL,Casa circondariale,0,0,x,y,u,2025-01-07,040012,Forli,8\n"
         "MII2,AA2,Bolzano,Onan&igrave-Mamone,Casa di reclusione,0,0,x,y,u,2025-01-07,"
         "021008,Bolzano,4\n"),
    ):
        folder = f"{italy.FOLDER}/snapshot_{day}"
        write(root, folder, "anagrafica.csv", ana)
        cap = "MII1,100,10,130\nMII2,98,98,0\n" if day < "2025" else \
            "MII1,110,10,130\nMII2,98,98,0\n"
        write(root, folder, "capienza_presenze.csv", IT_CAP + cap)
        write(root, folder, "personale.csv", IT_STAFF + "MII1,50,60,5,4,2,3\nMII2,0,0,0,0,0,0\n")
        write(root, folder, "data_aggiornamento.csv",
              f"id_pagina,data_aggiornamento\nMII1,{day}\nMII2,{day}\n")


def test_italy_rules_schema_drift_null_entities_regions_staff(tmp_path):
    italy_fixture(tmp_path)
    result = italy.build(tmp_path)
    report = result.report
    assert report.mapped["schema_drift_title"] == 2          # `title` in 2024
    assert report.mapped["region_from_2025"] == 2            # 2024 has no cod_reg
    assert report.mapped["literal_null_name"] == 1           # `NULL` is not a name
    register = {(r[0], r[9]): r for r in result.register}
    forli = register[("IT-MII1", "2024-09-12")]
    assert forli[1] == "Forlì" and forli[2] == "ITH5" and forli[3] == "remand_centre"
    assert forli[10] == "2025-01-06"                          # capacity 100 -> 110
    assert register[("IT-MII1", "2025-01-07")][5:7] == [110, 110]
    bolzano = register[("IT-MII2", "2024-09-12")]
    assert bolzano[2] == "ITH1"                               # Trentino split by province
    # the name changed between snapshots (proper name added): two intervals
    assert register[("IT-MII2", "2025-01-07")][1] == "Bolzano - Onanì-Mamone"
    assert report.mapped["no_places_in_use"] == 2             # 98 places, 98 out of use
    # all six staff figures 0: no staff data, no staffing rows, counted
    assert report.set_aside["no_staff_data"] == 2
    staff = {(r[0], r[1], r[2]): r for rows in result.staffing.values() for r in rows}
    assert staff[("IT-MII1", "2024-09", "custodial")][3:6] == [50, 50, 10]
    assert staff[("IT-MII1", "2024-09", "management")][3:6] == [5, 5, 0]  # above plan
    assert report.mapped["staff_above_establishment"] == 2
    occ = result.occupancy["2025-01-07"]
    # unpublished counts are sent empty (unknown, contract v3), never 0
    assert occ[0] == ["IT-MII1", "2025-01-07", 10, 130, None, None, None, None, None, None]
    assert report.mapped["not_published_unknown"] == sum(map(len, result.occupancy.values()))


def test_italy_real_files_counts():
    result = italy.build(REAL)
    assert result.report.rows_read == 380
    assert result.report.mapped["register_changed_between_snapshots"] == 19
    assert result.report.mapped["literal_null_name"] == 127
    assert len({r[0] for r in result.register}) == 190
    assert {len(v) for v in result.occupancy.values()} == {190}


# --- HIFLD ---------------------------------------------------------------------------

HIFLD_HEADER = ("FACILITYID,NAME,ADDRESS,CITY,STATE,ZIP,TELEPHONE,TYPE,STATUS,POPULATION,COUNTY,"
                "COUNTYFIPS,COUNTRY,WEBSITE,CAPACITY,SHAPE_Length,SHAPE_Area")


def test_hifld_bom_crlf_and_sentinels(tmp_path):
    body = "\r\n".join([
        HIFLD_HEADER,
        "10000001,A JAIL,1 ST,X,TX,7970,NOT AVAILABLE,COUNTY,OPEN,-999,M,6037,USA,NOT AVAILABLE,"
        "24,1.0,2.58E-06",
        '10000002,"CAMP LIMÓN, B",1 ST,X,PR,602,1,NOT AVAILABLE,CLOSED,12,M,NOT AVAILABLE,PRI,'
        "ttps://x,-999,1.0,1.0",
    ]) + "\r\n"
    write(tmp_path, hifld.FOLDER, hifld.FILE, b"\xef\xbb\xbf" + body.encode("utf-8"))
    result = hifld.build(tmp_path)
    assert result.rows == [
        ["US-10000001", "A JAIL", "USA", "TX", "county", "open", "24", None, None],
        ["US-10000002", "CAMP LIMÓN, B", "PRI", "PR", None, "closed", None, "12", None],
    ]
    assert result.report.mapped["bom"] == 1
    assert result.report.mapped["sentinel_minus_999"] == 2
    assert result.report.mapped["not_available"] == 1


def test_hifld_real_file_counts():
    result = hifld.build(REAL)
    assert result.report.rows_read == 6_737
    assert sum(r[6] is None for r in result.rows) == 1_666  # capacity unknown
    assert sum(r[7] is None for r in result.rows) == 1_924  # population unknown
    assert sum(r[5] == "closed" for r in result.rows) == 619


# --- Iowa ----------------------------------------------------------------------------

IOWA_HEADER = ("Fiscal Year Released,Recidivism Reporting Year,Main Supervising District,"
               "Release Type,Race - Ethnicity,Age At Release ,Sex,Offense Classification,"
               "Offense Type,Offense Subtype,Return to Prison,Days to Return,Recidivism Type,"
               "New Offense Classification,New Offense Type,New Offense Sub Type,"
               "Target Population")


def test_iowa_spellings_shift_duplicates_and_truncated_race(tmp_path):
    rows = [
        "2010,2013,Interstate Compact,Discharged – End of Sentence,White -,25-34,Male,"
        "D Felony,Drug,Trafficking,Yes,10,New,Public Order,Flight/Escape,,No",
        "2010,2013,ISC,Discharged - Expiration of Sentence,N/A -,Under 25,,C Felony,Violent,"
        "Robbery,No,,No Recidivism,,,,Yes",
        "2010,2013,ISC,Discharged - Expiration of Sentence,N/A -,Under 25,,C Felony,Violent,"
        "Robbery,No,,No Recidivism,,,,Yes",  # an equal row: another person
        "2011,2014,,Parole Granted,Black - Non-Hispanic,55 and Older,Female,D Felony,"
        "Property,Theft,Yes,400,Tech,D Felony,Property,Theft,Yes",
    ]
    write(tmp_path, iowa.FOLDER, iowa.FILE, "\n".join([IOWA_HEADER, *rows]) + "\n")
    result = iowa.build(tmp_path)
    h = iowa.HEADER
    got = [dict(zip(h, r, strict=True)) for r in result.rows]
    assert [g["record_no"] for g in got] == [1, 2, 3, 4]       # duplicates kept
    assert result.report.mapped["duplicates_kept"] == 1
    assert result.report.mapped["header_trailing_space"] == 1
    assert got[0]["release_type"] == got[1]["release_type"] == "discharged_end_of_sentence"
    assert got[0]["release_type_label"] == "Discharged – End of Sentence"
    assert got[3]["release_type"] == "parole"
    assert [g["supervising_district"] for g in got] == ["ISC", "ISC", "ISC", None]
    assert (got[0]["race"], got[0]["ethnicity"]) == ("White", None)
    assert (got[1]["race"], got[1]["ethnicity"]) == (None, None)
    assert (got[3]["race"], got[3]["ethnicity"]) == ("Black", "non_hispanic")
    # shifted: class held a type, type a subtype
    assert (got[0]["new_offence_class"], got[0]["new_offence_type"],
            got[0]["new_offence_subtype"]) == (None, "public_order", "Flight/Escape")
    assert result.report.mapped["new_offence_shifted"] == 1
    assert result.report.mapped["new_offence_on_technical"] == 1
    assert (got[0]["release_period_start"], got[0]["release_period_end"]) == \
        ("2009-07-01", "2010-06-30")
    assert (got[0]["returned"], got[0]["return_type"], got[1]["returned"]) == \
        (True, "new_offence", False)
    assert got[3]["sex"] == "F" and got[1]["sex"] is None and got[3]["age_band"] == "55_plus"


def test_iowa_real_file_counts():
    result = iowa.build(REAL)
    report = result.report
    assert report.rows_read == len(result.rows) == 26_020
    assert report.mapped["duplicates_kept"] == 7_147
    assert report.mapped["new_offence_shifted"] == 19
    assert report.mapped["release_type_missing"] == 1_762
    assert report.mapped["district_spelling"] == 309
    assert report.mapped["new_offence_on_technical"] == 1_202
    assert not report.set_aside


# --- Eurostat ------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "parsed"), [
    ("4659 ", ("4659", None)), (": ", (None, None)), ("123.45 ", ("123.45", None)),
    ("123 p", ("123", "p")), ("123.4 bep", ("123.4", "bep")), (": c", (None, "c")),
    ("n/a", None), ("12,5", None),
])
def test_eurostat_cells_values_missing_and_flags(cell, parsed):
    assert eurostat.parse_cell(cell) == parsed


def test_eurostat_header_crlf_trailing_spaces_and_unparseable(tmp_path):
    text = ("freq,indic_cr,unit,geo\\TIME_PERIOD\t2019 \t2020 \r\n"
            "A,PRIS_ACT_CAP,NR,UKM\t8198 \t: \r\n"
            "A,PRIS_OFF_CAP,NR,FR\t61037 p\tbad \r\n")
    write(tmp_path, eurostat.FOLDER, eurostat.FILE, text)
    result = eurostat.build(tmp_path)
    assert result.rows == [
        ["crim_pris_cap", "PRIS_ACT_CAP", "NR", "UKM", "A", "2019", "8198", None],
        ["crim_pris_cap", "PRIS_ACT_CAP", "NR", "UKM", "A", "2020", None, None],
        ["crim_pris_cap", "PRIS_OFF_CAP", "NR", "FR", "A", "2019", "61037", "p"],
    ]
    assert dict(result.report.set_aside) == {"unparseable_cell": 1}
    assert result.report.mapped["unbalanced_pairs"] == 2  # UKM and FR have one indicator


def test_eurostat_real_file_counts():
    result = eurostat.build(REAL)
    assert len(result.cells) == 1_620
    assert sum(c.value is None for c in result.cells) == 196
    assert result.report.mapped["unbalanced_pairs"] == 1  # Scotland


# --- contract v2 at the gate ---------------------------------------------------------


def test_a_v2_feed_needs_contract_version_2_and_no_register(paths):
    header = ",".join(FEEDS["national_reference"].file("values").column_names)
    data = f"{header}\ncrim_pris_cap,PRIS_ACT_CAP,NR,IT,A,2020,54605,\n".encode()
    write_delivery(paths.inbox, "national_reference", "v1-declared", {"values.csv": data},
                   sender="TEST", created_at="2023-01-01T00:00:00Z", period=None,
                   manifest_overrides={"contract_version": "1"})
    write_delivery(paths.inbox, "national_reference", "v2-declared", {"values.csv": data},
                   sender="TEST", created_at="2023-01-02T00:00:00Z", period=None)
    outcomes = {o.delivery_id: o for o in ingest_feed("national_reference", paths)}
    assert outcomes["v1-declared"].outcome == "quarantined"
    assert outcomes["v1-declared"].problems[0].rule == "contract_version"
    # loaded although no facility register was ever delivered
    assert outcomes["v2-declared"].outcome == "loaded"
    manifest = json.loads((paths.archive / "national_reference" / "v2-declared" /
                           "manifest.json").read_text())
    assert manifest["contract_version"] == "2"
