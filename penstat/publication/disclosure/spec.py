"""What disclosure control protects in each published mart, declared once.

A *unit* is a set of published columns of one row that stand or fall together: they
all give back the same person count (a day's population, its density = population /
capacity, its occupancy in use and overcrowding tier). `requires` names units of the same
row whose withholding withholds this one (a rate on a withheld denominator would give
the denominator's count back through the rate; a share on the 'all' row gives a class
back). The columns a unit does not cover are the marts' own (dbt) decisions, kept as they
are; their withheld values are flagged `c` too. Every column that can be withheld has a
flag of its own, `<column>_flag` (penstat.contract.published.VALUE_FLAG_COLUMNS).

A new mart or column plugs in here: a MartSpec with the intermediate relation that holds
its values before disclosure control (same column names, same key) and its units; the
cells and relations behind the units are built in linked.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from penstat.contract.published import MART_KEYS, VALUE_FLAG_COLUMNS


@dataclass(frozen=True)
class UnitSpec:
    name: str
    columns: tuple[str, ...]
    requires: tuple[str, ...] = ()
    # True: the columns keep the mart's own (dbt) value and decision, and are withheld
    # as well whenever a unit they require is (a staff ratio times the published FTE
    # gives the population back); such a unit has no cells of its own
    kept: bool = False


@dataclass(frozen=True)
class MartSpec:
    mart: str
    source: str  # the relation of the warehouse with the values before disclosure control
    units: tuple[UnitSpec, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return MART_KEYS[self.mart]

    @property
    def unit_columns(self) -> dict[str, str]:
        """column -> the unit that carries it (its value decided here)."""
        return {c: u.name for u in self.units if not u.kept for c in u.columns}

    @property
    def kept_columns(self) -> dict[str, str]:
        """column -> the unit whose withholding withholds it too (its value and other
        decisions the mart's own)."""
        return {c: u.name for u in self.units if u.kept for c in u.columns}


# the staff and regime rates on a count of persons (linked.REGIME_COUNTS): each its own
# unit, in the facility-month and the national rows alike
REGIME_UNITS = (
    UnitSpec("work", ("work_participation",)),
    UnitSpec("education", ("education_participation",)),
    UnitSpec("digital", ("digital_contact_share",)),
    UnitSpec("plan", ("release_plan_coverage",)),
)

MARTS: tuple[MartSpec, ...] = (
    MartSpec("mart_facility_daily", "intermediate.int_facility_days", (
        UnitSpec("population", ("population", "density", "occupancy_in_use",
                                "overcrowding_tier")),
    )),
    MartSpec("mart_facility_monthly", "intermediate.int_facility_month_kpis", (
        UnitSpec("population", ("average_daily_population", "density", "occupancy_in_use",
                                "detainees_per_custodial_fte")),
        *REGIME_UNITS,
        UnitSpec("trained", ("staff_trained_share",)),
        # rehabilitation FTE per 100 detainees: each facility's FTE is the ratio times
        # its ADP, and the national rehab_fte their sum: one withheld ADP comes back
        UnitSpec("staff_ratios", ("rehab_staff_per_100",), requires=("population",),
                 kept=True),
    )),
    MartSpec("mart_national_monthly", "intermediate.int_national_month_kpis", (
        UnitSpec("population", ("average_daily_population", "density", "occupancy_in_use")),
        UnitSpec("overcrowded", ("share_in_overcrowded",), requires=("population",)),
        # on the 'all' row: the small class's population over all (linked.py adds the
        # small row's population unit to its requirements)
        UnitSpec("small_share", ("share_in_small_scale",), requires=("population",)),
        *REGIME_UNITS,
        # detainees per custodial FTE x custodial_fte, and rehab_fte x 100 / rehab staff
        # per 100, give the average daily population back
        UnitSpec("staff_ratios", ("detainees_per_custodial_fte", "rehab_staff_per_100"),
                 requires=("population",), kept=True),
    )),
    MartSpec("mart_recidivism_cohort", "intermediate.int_recidivism_groups", (
        UnitSpec("size", ("cohort_size",)),
        UnitSpec("rates", ("recid_2y_general", "recid_2y_custodial", "proven_reoffending_1y",
                           "observed_expected", "adjusted_rate", "ci_low", "ci_high",
                           "observed_expected_se"), requires=("size",)),
        UnitSpec("frequency", ("reoffences_per_reoffender_1y",), requires=("rates",)),
    )),
    # the control limits are a function of the releases: they give it back
    MartSpec("mart_facility_recidivism", "intermediate.int_facility_recidivism_funnel", (
        UnitSpec("size", ("releases", "limit_95_low", "limit_95_high", "limit_998_low",
                          "limit_998_high")),
        UnitSpec("rates", ("reoffenders", "observed_rate", "outside_95", "outside_998"),
                 requires=("size",)),
    )),
)
SPECS: dict[str, MartSpec] = {s.mart: s for s in MARTS}


def check() -> list[str]:
    """Disagreements between the spec and the published interface (empty = agree)."""
    out = []
    for spec in MARTS:
        flagged = set(VALUE_FLAG_COLUMNS.get(spec.mart, ()))
        for column in (*spec.unit_columns, *spec.kept_columns):
            if column not in flagged:
                out.append(f"{spec.mart}.{column}: in a disclosure unit but has no flag column")
    return out
