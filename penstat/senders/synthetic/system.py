"""The synthetic national prison system: one seed and one scale determine everything."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd

from penstat.senders.synthetic.monthly import MonthlyCensus, monthly_census
from penstat.senders.synthetic.occupancy import (
    FacilityProfile,
    OccupancyGrid,
    facility_profile,
    simulate_occupancy,
)
from penstat.senders.synthetic.periods import horizon_end
from penstat.senders.synthetic.recidivism import (
    EXTRACTION_DATE,
    FIRST_COHORT,
    LAST_COHORT,
    RecidivismData,
    build_recidivism,
)
from penstat.senders.synthetic.regime import regime_frame
from penstat.senders.synthetic.register import MIN_SCALE, FacilityRegister, build_register
from penstat.senders.synthetic.staffing import staffing_frame

DEFAULT_SEED = 42
DEFAULT_START = date(2023, 1, 1)
DEFAULT_YEARS = 3


@dataclass(frozen=True)
class SystemConfig:
    seed: int = DEFAULT_SEED
    scale: float = 1.0
    start: date = DEFAULT_START  # first census_date
    years: int = DEFAULT_YEARS  # length of the daily occupancy horizon
    cohorts: tuple[int, int] = (FIRST_COHORT, LAST_COHORT)  # release cohorts, inclusive
    extraction: date = EXTRACTION_DATE  # criminal-records extraction date
    # Last census_date, overriding `years` (e.g. yesterday, so that no feed is late today).
    until: date | None = None

    def __post_init__(self) -> None:
        if self.scale < MIN_SCALE:
            raise ValueError(f"scale must be >= {MIN_SCALE}, got {self.scale}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.until is not None and self.until < self.start:
            raise ValueError(f"until {self.until} is before the first census day {self.start}")

    @property
    def end(self) -> date:
        """Last census_date of the generated horizon: `until`, else `years` from start."""
        return self.until if self.until is not None else horizon_end(self.start, self.years)


@dataclass
class SyntheticSystem:
    """Lazily built parts of the system; each part draws from its own random stream."""

    config: SystemConfig = field(default_factory=SystemConfig)

    @cached_property
    def register(self) -> FacilityRegister:
        c = self.config
        return build_register(c.seed, c.scale, c.start, c.end)

    @cached_property
    def occupancy(self) -> OccupancyGrid:
        return self.occupancy_through(self.config.end)

    def occupancy_through(self, last_day: date) -> OccupancyGrid:
        """The census from the horizon's start through `last_day` (may run past its end)."""
        if last_day < self.config.start:
            raise ValueError(f"{last_day} is before the first census day {self.config.start}")
        c = self.config
        return simulate_occupancy(c.seed, self.register, self.profile, c.start, last_day)

    @cached_property
    def profile(self) -> FacilityProfile:
        return facility_profile(self.config.seed, self.register)

    @cached_property
    def monthly(self) -> MonthlyCensus:
        return monthly_census(self.occupancy)

    @cached_property
    def facility_types(self) -> np.ndarray:
        return self.register.facilities["facility_type"].to_numpy()

    @cached_property
    def regime(self) -> pd.DataFrame:
        return regime_frame(self.config.seed, self.monthly, self.facility_types, self.profile)

    @cached_property
    def staffing(self) -> pd.DataFrame:
        return staffing_frame(self.config.seed, self.monthly, self.facility_types, self.profile)

    @cached_property
    def recidivism(self) -> RecidivismData:
        c = self.config
        return build_recidivism(c.seed, c.scale, self.register, c.cohorts, c.extraction)
