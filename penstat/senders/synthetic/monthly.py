"""Facility-month aggregates of the daily census, shared by regime.csv and staffing.csv."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from penstat.senders.synthetic.occupancy import OccupancyGrid


@dataclass(frozen=True)
class MonthlyCensus:
    """Arrays of shape (months, facilities) over the horizon (burn-in day excluded)."""

    months: np.ndarray  # 'YYYY-MM'
    facility_ids: np.ndarray
    days_present: np.ndarray  # days the facility was on the register in the month
    avg_population: np.ndarray  # mean daily population, NaN where no days
    avg_capacity: np.ndarray
    releases: np.ndarray  # sum of the month's daily releases

    @property
    def present(self) -> np.ndarray:
        return self.days_present > 0


def monthly_census(grid: OccupancyGrid) -> MonthlyCensus:
    days = grid.days[1:]  # drop the burn-in day
    labels = days.strftime("%Y-%m").to_numpy()
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])

    def month_sum(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values[1:].astype(np.int64), starts, axis=0)

    present = month_sum(grid.valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_population = np.round(month_sum(grid.counts["population"]) / present, 2)
        avg_capacity = month_sum(grid.capacity) / present
    return MonthlyCensus(
        months=labels[starts],
        facility_ids=grid.facility_ids,
        days_present=present,
        avg_population=avg_population,
        avg_capacity=avg_capacity,
        releases=month_sum(grid.counts["releases"]),
    )
