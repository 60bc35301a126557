"""Small deliveries built in code, for tests: a tiny facility register and its feeds."""

from __future__ import annotations

from pathlib import Path

from penstat.senders.delivery import write_delivery

REGISTER_HEADER = ("facility_id,name,region,facility_type,security_level,capacity_places,"
                   "operational_capacity,living_group_size,community_integrated,valid_from,"
                   "valid_to")
REGISTER_ROWS = [
    "TS-0001,Large prison,TS11,prison,high,300,330,,false,2000-01-01,",
    "TS-0002,Detention house,TS11,detention_house,low,20,22,10,true,2000-01-01,2024-01-10",
    "TS-0002,Detention house,TS11,detention_house,low,36,40,10,true,2024-01-11,",
    "TS-0003,Remand centre,TS12,remand_centre,medium,120,130,,false,2000-01-01,",
]
OCCUPANCY_HEADER = ("facility_id,census_date,places_out_of_use,population,population_female,"
                    "population_remand,population_under_18,population_18_22,admissions,releases")
REGIME_HEADER = ("facility_id,month,avg_population,in_paid_work,in_education,"
                 "with_digital_contact,avg_hours_out_of_cell,releases_total,releases_with_plan")
STAFFING_HEADER = ("facility_id,month,staff_category,fte,headcount,vacancies_fte,"
                   "trained_last_24m")
RELEASES_HEADER = ("release_id,person_ref,release_date,facility_id,days_in_small_scale,sex,"
                   "birth_year,index_offence,prior_convictions,sentence_days")
RECONVICTIONS_HEADER = "case_id,person_ref,offence_date,conviction_date,offence,custodial"

# Raw national identifiers of the test data: they must never appear in the warehouse.
PERSON_REFS = ("912345678", "923456789", "934567890")


def csv(header: str, rows: list[str], newline: str = "\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode("utf-8")


def occupancy_rows(day: str = "2024-01-01") -> list[str]:
    return [
        f"TS-0001,{day},2,310,10,50,0,20,3,2",
        f"TS-0002,{day},0,18,2,0,0,3,1,0",
        f"TS-0003,{day},5,100,8,60,0,12,4,5",
    ]


def register(inbox: Path, delivery_id: str = "reg-1", rows: list[str] | None = None,
             **kw) -> Path:
    return write_delivery(inbox, "facility_register", delivery_id,
                          {"facilities.csv": csv(REGISTER_HEADER, rows or REGISTER_ROWS)},
                          sender="TEST", created_at="2024-01-01T00:00:00Z", period=None, **kw)


def occupancy(inbox: Path, delivery_id: str = "occ-1", rows: list[str] | None = None,
              files: dict[str, bytes] | None = None, **kw) -> Path:
    files = files or {"occupancy.csv": csv(OCCUPANCY_HEADER, rows or occupancy_rows())}
    kw.setdefault("period", ("2024-01-01", "2024-01-31"))
    return write_delivery(inbox, "occupancy", delivery_id, files, sender="TEST",
                          created_at="2024-02-01T00:00:00Z", **kw)


def staffing(inbox: Path, delivery_id: str = "stf-1", rows: list[str] | None = None,
             **kw) -> Path:
    rows = rows or ["TS-0001,2024-01,custodial,120.5,125,3.5,100",
                    "TS-0002,2024-01,custodial,9.0,10,0,10"]
    kw.setdefault("period", ("2024-01-01", "2024-01-31"))
    kw.setdefault("created_at", "2024-02-01T00:00:00Z")
    return write_delivery(inbox, "staffing", delivery_id,
                          {"staffing.csv": csv(STAFFING_HEADER, rows)}, sender="TEST", **kw)


def recidivism(inbox: Path, delivery_id: str = "rec-1", releases: list[str] | None = None,
               reconvictions: list[str] | None = None, **kw) -> Path:
    a, b, c = PERSON_REFS
    releases = releases or [
        f"R1,{a},2020-01-05,TS-0001,0,M,1990,03,2,200",
        f"R2,{b},2020-03-01,TS-0002,150,F,1985,07,0,160",
        f"R3,{c},2021-06-30,TS-0003,0,M,2001,01,5,400",
    ]
    reconvictions = reconvictions or [
        f"C1,{a},2020-05-01,2020-09-01,03,true",
        f"C2,{c},2021-01-01,2021-02-01,01,false",  # predates the release: not recidivism
    ]
    return write_delivery(inbox, "recidivism", delivery_id,
                          {"releases.csv": csv(RELEASES_HEADER, releases),
                           "reconvictions.csv": csv(RECONVICTIONS_HEADER, reconvictions)},
                          sender="TEST", created_at="2024-06-30T00:00:00Z", period=None, **kw)
