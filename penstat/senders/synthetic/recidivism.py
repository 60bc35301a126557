"""Person-level release cohorts and their later convictions (the recidivism feed).

Persons are released in release cohorts by calendar year. Whether a release is
followed by a new offence within two years that leads to a conviction (WODC
two-year general prevalence) follows a logistic model on the release's risk
factors plus a TRUE EFFECT of being discharged from a small-scale facility:

    logit P(reoffend within 2 years) = risk_design(x) . RISK_COEFFICIENTS
                                       + TRUE_SMALL_SCALE_LOG_ODDS * small_scale

SELECTION: small-scale units receive lower-risk people (older, fewer prior
convictions, shorter sentences, fewer violent offences), so the raw gap
between small and other facilities overstates the true effect; only a
risk-adjusted comparison recovers it.

RETURNS: a share of the people who reoffend within two years are sent back to
custody for that first new offence (a custodial conviction) and released again,
from a facility drawn afresh, with the same outcome model: one person, several
releases (some in the same calendar year), several facilities. The release
cohort counts persons (their first release in the year), as WODC and the UK
MoJ do. The model holds for every release exactly: a return only follows an
offence that already made the earlier release a reoffender, and the first new
offence of a reoffender is always convicted within the window plus waiting
period (CONVICTION_DEADLINE_DAYS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from penstat.contract.feeds import FEEDS, ICCS_SECTIONS, SEXES
from penstat.senders.synthetic.register import SMALL_MAX_PLACES, FacilityRegister
from penstat.senders.synthetic.streams import stream

# The causal effect of discharge from a small-scale facility (<= 30 places) on the
# log-odds of two-year general reoffending: odds ratio exp(-0.30) = 0.74.
TRUE_SMALL_SCALE_LOG_ODDS = -0.30

RELEASE_COLUMNS = FEEDS["recidivism"].file("releases").column_names
RECONVICTION_COLUMNS = FEEDS["recidivism"].file("reconvictions").column_names
EXTRACTION_DATE = date(2026, 6, 30)  # the criminal-records extraction (manifest created_at)
FIRST_COHORT, LAST_COHORT = 2018, 2024
RELEASES_PER_YEAR = 5000  # at scale 1
# First offences inside the two-year window fall on days 1..700 after release and
# those outside it on day 760 or later, so no definition of "24 months" is borderline.
IN_WINDOW_MAX_DAYS = 700
OUT_OF_WINDOW_MIN_DAYS = 760
LATE_FIRST_OFFENCE_SHARE = 0.35  # of people not reoffending within 2 years
OLD_CASE_SHARE = 0.02  # people convicted after release for an offence before it
PERSON_REF_MULTIPLIER = 73_939_133  # odd, not a multiple of 5: a bijection mod 10**8
# The first new offence of a reoffender is convicted by day 880 after release: before
# the 24 + 6 months' deadline (>= 910 days), so the latent outcome is the observed one.
CONVICTION_DEADLINE_DAYS = 880
RETURN_SHARE = 0.4  # of those reoffending within 2 years: back in custody for that offence
RETURN_SENTENCE_MEDIAN_DAYS = 60

VIOLENT_SECTIONS = ("01", "02", "03", "04")
OFFENCE_SHARES = np.array([0.03, 0.22, 0.05, 0.08, 0.25, 0.14, 0.06, 0.06, 0.06, 0.01, 0.04])
REOFFENCE_SHARES = np.array([0.01, 0.20, 0.02, 0.07, 0.33, 0.15, 0.06, 0.08, 0.05, 0.01, 0.02])
SENTENCE_MEDIAN_DAYS = np.array([2500, 180, 700, 500, 90, 240, 150, 45, 60, 60, 60])
SEX_SHARES = np.array([0.085, 0.91, 0.005])  # in SEXES order: F, M, X

# Two-year general reoffending model (log-odds); offences relative to section 01.
RISK_COEFFICIENTS: dict[str, float] = {
    "const": -0.1,
    "age_at_release": -0.035,
    "sex_F": -0.30,
    "sex_X": 0.0,
    "offence_02": 0.8,
    "offence_03": 0.2,
    "offence_04": 0.9,
    "offence_05": 1.2,
    "offence_06": 0.9,
    "offence_07": 0.5,
    "offence_08": 1.1,
    "offence_09": 0.7,
    "offence_10": 0.3,
    "offence_11": 0.8,
    "log1p_prior_convictions": 0.55,
    "log_sentence_days": -0.08,
}
# Who is discharged from a small-scale unit (adults): log-odds of selection.
SELECTION_COEFFICIENTS: dict[str, float] = {
    "const": -1.7,
    "priors_over_3": -0.25,
    "age_over_35": 0.05,
    "log_sentence_over_120": -0.45,
    "violent": -0.8,
    "female": 0.5,
}


@dataclass(frozen=True)
class RecidivismData:
    releases: pd.DataFrame  # contract columns (+ nothing else)
    reconvictions: pd.DataFrame
    small_scale: np.ndarray  # discharged from a facility of <= 30 places (truth, per release)
    reoffended_2y: np.ndarray  # two-year general reoffending (truth = observed, per release)
    facility_type: np.ndarray  # of the facility of final discharge (per release)


def risk_design(releases: pd.DataFrame) -> pd.DataFrame:
    """The generator's covariates, as a design matrix in RISK_COEFFICIENTS order."""
    age = pd.to_datetime(releases["release_date"]).dt.year - releases["birth_year"].astype(int)
    sex = releases["sex"].astype(str)
    offence = releases["index_offence"].astype(str)
    design = {"const": np.ones(len(releases)), "age_at_release": age.to_numpy(float),
              "sex_F": (sex == "F").to_numpy(float), "sex_X": (sex == "X").to_numpy(float)}
    for section in ICCS_SECTIONS[1:]:
        design[f"offence_{section}"] = (offence == section).to_numpy(float)
    design["log1p_prior_convictions"] = np.log1p(releases["prior_convictions"].to_numpy(float))
    design["log_sentence_days"] = np.log(releases["sentence_days"].to_numpy(float))
    return pd.DataFrame(design, index=releases.index)[list(RISK_COEFFICIENTS)]


def reoffending_log_odds(releases: pd.DataFrame, small_scale: np.ndarray) -> np.ndarray:
    beta = np.array(list(RISK_COEFFICIENTS.values()))
    return risk_design(releases).to_numpy() @ beta + TRUE_SMALL_SCALE_LOG_ODDS * small_scale


def build_recidivism(seed: int, scale: float, register: FacilityRegister,
                     cohorts: tuple[int, int] = (FIRST_COHORT, LAST_COHORT),
                     extraction: date = EXTRACTION_DATE) -> RecidivismData:
    releases = draw_releases(seed, scale, register, cohorts)
    cases = _cases(stream(seed, "recidivism-cases"), releases, extraction)
    return RecidivismData(releases[list(RELEASE_COLUMNS)].reset_index(drop=True), cases,
                          releases["_small"].to_numpy(), releases["_reoffended"].to_numpy(),
                          releases["_facility_type"].to_numpy())


def draw_releases(seed: int, scale: float, register: FacilityRegister,
                  cohorts: tuple[int, int] = (FIRST_COHORT, LAST_COHORT)) -> pd.DataFrame:
    """Every release (first releases and returns) sorted by release date, with the contract
    columns and the truth: `_small`, `_capacity`, `_facility_type`, `_reoffended`, `_first_day` and
    `_first_lag` (day and conviction lag of the first new offence), `_returned` (that
    offence brought the person back to custody) and `_generation` (0 = first release).

    The simulation study (benchmarks/validate_stats.py) draws from here directly."""
    rng = stream(seed, "recidivism-persons")
    people = _draw_people(rng, scale, cohorts)
    first = _discharge(seed, "recidivism-facilities", rng, register, people)
    timing = stream(seed, "recidivism-returns")
    _first_offences(timing, first)
    returns = _returns(timing, first, cohorts)
    first["_returned"] = first.index.isin(returns["_from"])
    if len(returns):
        second = _discharge(seed, "recidivism-return-facilities", timing, register, returns)
        _first_offences(timing, second)
        second["_returned"] = False
        releases = pd.concat([first, second.drop(columns="_from")], ignore_index=True)
    else:
        releases = first
    releases = releases.sort_values(["release_date", "_generation", "person_ref"],
                                    kind="stable", ignore_index=True)
    year = releases["release_date"].dt.year.to_numpy()
    rank_in_year = pd.Series(year).groupby(year).cumcount().to_numpy() + 1
    releases["release_id"] = [f"SYR-{y}-{k:06d}" for y, k in zip(year, rank_in_year,
                                                                 strict=True)]
    return releases


def _discharge(seed: int, stream_name: str, rng: np.random.Generator,
               register: FacilityRegister, people: pd.DataFrame) -> pd.DataFrame:
    """The facility of final discharge, the days in small-scale units and the outcome."""
    people = people.copy()
    facility_id, capacity, row_start, facility_type = _discharge_facilities(
        stream(seed, stream_name), register, people)
    small = capacity <= SMALL_MAX_PLACES
    people["facility_id"] = facility_id
    people["days_in_small_scale"] = _days_in_small_scale(rng, people, small, row_start)
    p = 1 / (1 + np.exp(-reoffending_log_odds(people, small)))
    people["_reoffended"] = rng.random(len(people)) < p
    people["_small"] = small
    people["_capacity"] = capacity
    people["_facility_type"] = facility_type
    return people


def _first_offences(rng: np.random.Generator, people: pd.DataFrame) -> None:
    """Day of the first new offence after release (in the window for reoffenders, day 760
    or later for 35 % of the others, none for the rest) and its conviction lag."""
    n = len(people)
    reoffended = people["_reoffended"].to_numpy()
    in_window = 1 + np.floor((IN_WINDOW_MAX_DAYS - 1) * rng.beta(0.9, 1.8, n))
    late = OUT_OF_WINDOW_MIN_DAYS + np.floor(rng.exponential(500, n))
    is_late = ~reoffended & (rng.random(n) < LATE_FIRST_OFFENCE_SHARE)
    day = np.where(reoffended, in_window, np.where(is_late, late, np.nan))
    lag = np.minimum(30 + np.floor(rng.gamma(2.0, 55, n)), 365)
    lag = np.where(reoffended, np.minimum(lag, CONVICTION_DEADLINE_DAYS - day), lag)
    people["_first_day"] = day
    people["_first_lag"] = lag


def _returns(rng: np.random.Generator, first: pd.DataFrame,
             cohorts: tuple[int, int]) -> pd.DataFrame:
    """Second releases of those whose first new offence brought them back to custody,
    released by the end of the last cohort year: same person, new offence and sentence."""
    n = len(first)
    back = first["_reoffended"].to_numpy() & (rng.random(n) < RETURN_SHARE)
    section = rng.choice(len(ICCS_SECTIONS), size=n, p=REOFFENCE_SHARES)
    sentence = np.clip(np.round(RETURN_SENTENCE_MEDIAN_DAYS * np.exp(rng.normal(0, 0.8, n))),
                       3, 3650).astype(np.int64)
    offence_day = np.nan_to_num(first["_first_day"].to_numpy(), nan=0)
    conviction = (first["release_date"].to_numpy().astype("datetime64[D]")
                  + (offence_day + first["_first_lag"].to_numpy()).astype("timedelta64[D]"))
    release = conviction + sentence.astype("timedelta64[D]")
    keep = back & (release <= np.datetime64(f"{cohorts[1]}-12-31"))
    returns = pd.DataFrame({
        "release_id": "",
        "person_ref": first["person_ref"].to_numpy(),
        "release_date": pd.to_datetime(release),
        "sex": first["sex"].to_numpy(),
        "birth_year": first["birth_year"].to_numpy(),
        "index_offence": np.array(ICCS_SECTIONS)[section],
        "prior_convictions": first["prior_convictions"].to_numpy() + 1,
        "sentence_days": sentence,
        "_generation": 1,
        "_from": first.index.to_numpy(),
    })[keep]
    return returns.reset_index(drop=True)


def _draw_people(rng: np.random.Generator, scale: float, cohorts: tuple[int, int]) -> pd.DataFrame:
    """Released persons, sorted by release date, with ids and risk factors."""
    per_year = max(1, round(RELEASES_PER_YEAR * scale))
    dates = []
    for year in range(cohorts[0], cohorts[1] + 1):
        first = np.datetime64(f"{year}-01-01")
        length = int((np.datetime64(f"{year + 1}-01-01") - first).astype(int))
        dates.append(np.sort(first + rng.integers(0, length, per_year)))
    release_date = np.concatenate(dates)
    n = len(release_date)
    year = release_date.astype("datetime64[Y]").astype(int) + 1970
    youth = rng.random(n) < 0.02
    age = np.where(youth, rng.integers(15, 18, n),
                   np.minimum(18 + np.floor(rng.gamma(2.2, 7.5, n)), 80)).astype(np.int64)
    section = rng.choice(len(ICCS_SECTIONS), size=n, p=OFFENCE_SHARES)
    mean_priors = np.minimum(0.5 + 0.18 * (age - 15), 8) * np.where(section == 4, 1.4, 1.0)
    priors = rng.negative_binomial(1.2, 1.2 / (1.2 + mean_priors))
    log_sentence = np.log(SENTENCE_MEDIAN_DAYS[section]) + 0.04 * priors + rng.normal(0, 0.7, n)
    offset = int(rng.integers(0, 10**8))
    person = (rng.permutation(n).astype(np.int64) * PERSON_REF_MULTIPLIER + offset) % 10**8
    rank_in_year = pd.Series(year).groupby(year).cumcount().to_numpy() + 1
    return pd.DataFrame({
        "release_id": [f"SYR-{y}-{k:06d}" for y, k in zip(year, rank_in_year, strict=True)],
        "person_ref": ["9" + f"{p:08d}" for p in person],
        "release_date": pd.to_datetime(release_date),
        "sex": np.array(SEXES)[rng.choice(len(SEXES), size=n, p=SEX_SHARES)],
        "birth_year": year - age,
        "index_offence": np.array(ICCS_SECTIONS)[section],
        "prior_convictions": priors,
        "sentence_days": np.clip(np.round(np.exp(log_sentence)), 3, 7300).astype(np.int64),
        "_generation": 0,
    })


def _selection_group(rng: np.random.Generator, people: pd.DataFrame) -> np.ndarray:
    """0 = youth unit, 1 = adult small-scale unit, 2 = other facility.

    Youths mostly go to youth units; adults go to small-scale units with a
    probability that falls with their risk (the selection the KPIs warn about)."""
    c = SELECTION_COEFFICIENTS
    age = people["release_date"].dt.year - people["birth_year"]
    violent = people["index_offence"].isin(VIOLENT_SECTIONS).to_numpy(float)
    eta = (c["const"] + c["priors_over_3"] * (people["prior_convictions"] - 3)
           + c["age_over_35"] * (age - 35)
           + c["log_sentence_over_120"] * np.log(people["sentence_days"] / 120)
           + c["violent"] * violent + c["female"] * (people["sex"] == "F"))
    to_small = rng.random(len(people)) < 1 / (1 + np.exp(-eta.to_numpy()))
    youth = (age < 18).to_numpy()
    to_youth_unit = rng.random(len(people)) < 0.8
    return np.where(youth, np.where(to_youth_unit, 0, 2), np.where(to_small, 1, 2))


def _discharge_facilities(rng: np.random.Generator, register: FacilityRegister,
                          people: pd.DataFrame
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Facility of final discharge (valid on the release date): id, its places then,
    the first day of its register row and its type."""
    group = _selection_group(rng, people)
    n = len(people)
    facility_id = np.empty(n, dtype=object)
    facility_type = np.empty(n, dtype=object)
    capacity = np.zeros(n, dtype=np.int64)
    row_start = np.empty(n, dtype="datetime64[ns]")
    dates = people["release_date"].to_numpy()
    span = people["release_date"].min().date(), people["release_date"].max().date()
    for first, last in register.epochs(*span):
        in_epoch = (dates >= np.datetime64(first)) & (dates <= np.datetime64(last))
        rows = register.valid_on(first)
        for g, candidates in enumerate(_group_candidates(rows)):
            who = np.flatnonzero(in_epoch & (group == g))
            if len(who) == 0:
                continue
            weight = candidates["capacity_places"].to_numpy(float)
            pick = rng.choice(len(candidates), size=len(who), p=weight / weight.sum())
            facility_id[who] = candidates["facility_id"].to_numpy()[pick]
            capacity[who] = candidates["capacity_places"].to_numpy()[pick]
            row_start[who] = candidates["valid_from"].to_numpy()[pick]
            facility_type[who] = candidates["facility_type"].to_numpy()[pick]
    return facility_id, capacity, row_start, facility_type


def _group_candidates(rows: pd.DataFrame) -> list[pd.DataFrame]:
    """Facilities open to each selection group; an empty group falls back to 'other'."""
    small = rows["capacity_places"] <= SMALL_MAX_PLACES
    youth_type = rows["facility_type"] == "juvenile_small_scale"
    other = rows[~small & ~youth_type]
    groups = [rows[youth_type & small], rows[small & ~youth_type], other]
    return [g if len(g) else other for g in groups]


def _days_in_small_scale(rng: np.random.Generator, people: pd.DataFrame, small: np.ndarray,
                         row_start: np.ndarray) -> np.ndarray:
    """Most of the custody for discharges from small units; usually none otherwise."""
    sentence = people["sentence_days"].to_numpy()
    open_days = (people["release_date"].to_numpy() - row_start).astype("timedelta64[D]").astype(int)
    in_small = np.maximum(1, np.round(sentence * rng.uniform(0.4, 1.0, len(people))))
    in_small = np.minimum(in_small, np.maximum(open_days, 1))
    earlier = np.where(rng.random(len(people)) < 0.12,
                       np.round(sentence * rng.uniform(0, 0.3, len(people))), 0)
    return np.minimum(np.where(small, in_small, earlier), sentence).astype(np.int64)


def _cases(rng: np.random.Generator, releases: pd.DataFrame,
           extraction: date) -> pd.DataFrame:
    """Convictions after each release: the first new offence (in or after the two-year
    window; `_first_offences`), further cases for frequent reoffenders, and a few old
    offences tried after release. A first offence that brought the person back to custody
    (`_returned`) is custodial and the last case of that release: the next release's own
    cases follow it."""
    n = len(releases)
    priors = releases["prior_convictions"].to_numpy()
    first = releases["_first_day"].to_numpy()
    first_lag = releases["_first_lag"].to_numpy()
    returned = releases["_returned"].to_numpy()
    who = np.flatnonzero(~np.isnan(first))
    cases_each = np.where(returned[who], 1,
                          1 + rng.poisson(0.3 + 0.35 * np.log1p(priors[who])))
    person = np.repeat(who, cases_each)
    block_start = np.repeat(np.cumsum(cases_each) - cases_each, cases_each)
    sequence = np.arange(len(person)) - block_start
    step = np.where(sequence == 0, np.nan_to_num(first[person]),
                    14 + np.floor(rng.exponential(180, len(person))))
    cumulative = np.cumsum(step)
    offence_day = cumulative - (cumulative - step)[block_start]
    lag = np.minimum(30 + np.floor(rng.gamma(2.0, 55, len(person))), 365)
    lag = np.where(sequence == 0, first_lag[person], lag)

    old = np.flatnonzero(rng.random(n) < OLD_CASE_SHARE)
    old_offence = -(30 + rng.integers(0, 700, len(old)))
    old_lag = 10 + rng.integers(0, 230, len(old)) - old_offence

    person = np.concatenate([person, old])
    offence_day = np.concatenate([offence_day, old_offence]).astype(np.int64)
    lag = np.concatenate([lag, old_lag]).astype(np.int64)
    repeat = np.concatenate([sequence > 0, np.zeros(len(old), dtype=bool)])
    back = np.concatenate([returned[who][np.repeat(np.arange(len(who)), cases_each)]
                           & (sequence == 0), np.zeros(len(old), dtype=bool)])
    released = releases["release_date"].to_numpy().astype("datetime64[D]")[person]
    offence_date = released + offence_day.astype("timedelta64[D]")
    conviction_date = offence_date + lag.astype("timedelta64[D]")
    section = _case_offences(rng, releases["index_offence"].to_numpy()[person])
    custodial = _custodial(rng, section, priors[person], repeat) | back

    frame = pd.DataFrame({
        "person_ref": releases["person_ref"].to_numpy()[person],
        "offence_date": pd.to_datetime(offence_date),
        "conviction_date": pd.to_datetime(conviction_date),
        "offence": section,
        "custodial": custodial,
        "_person": person,
    })
    frame = frame[frame["conviction_date"] <= pd.Timestamp(extraction)]
    frame = frame.sort_values(["conviction_date", "_person", "offence_date"], ignore_index=True)
    frame.insert(0, "case_id", [f"SYC-{i + 1:08d}" for i in range(len(frame))])
    return frame[list(RECONVICTION_COLUMNS)]


def _case_offences(rng: np.random.Generator, index_offence: np.ndarray) -> np.ndarray:
    """Often the same ICCS section as the index offence, otherwise the usual mix."""
    same = rng.random(len(index_offence)) < 0.45
    other = np.array(ICCS_SECTIONS)[rng.choice(len(ICCS_SECTIONS), len(index_offence),
                                               p=REOFFENCE_SHARES)]
    return np.where(same, index_offence, other)


def _custodial(rng: np.random.Generator, section: np.ndarray, priors: np.ndarray,
               repeat: np.ndarray) -> np.ndarray:
    """Custodial sentence: likelier for violent offences, more priors and repeat cases."""
    violent = np.isin(section, VIOLENT_SECTIONS)
    eta = -1.4 + 1.1 * violent + 0.35 * np.log1p(priors) + 0.2 * repeat
    return rng.random(len(section)) < 1 / (1 + np.exp(-eta))
