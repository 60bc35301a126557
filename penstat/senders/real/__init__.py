"""Adapters for real published data sets: each reads a file as published and *sends* it.

An adapter is a sender like any other: it writes contract deliveries (data files,
manifest with checksums and row counts, `_READY`) with
penstat.senders.delivery.write_delivery,
and the warehouse validates them with the same gate as every delivery. Nothing here
writes to the warehouse.

Every quirk of a source (the SOURCE.md next to each data set) has an explicit rule in
its adapter. A rule either *maps* a value (and counts the rows it touched) or *sets
aside* a row (counted per rule, and written with the source row number to the adapter's
report), so no row is ever dropped quietly. `SourceReport` carries those counts.

    california  CDCR monthly institution population     -> facility_register, occupancy
    italy       Ministero della Giustizia, 2 snapshots    -> facility_register, occupancy,
                                                             staffing
    hifld       US HIFLD Prison Boundaries register       -> reference_register (v2)
    iowa        Iowa DOC 3-year recidivism, 26,020 rows   -> recidivism_cohort (v2)
    eurostat    Eurostat crim_pris_cap native TSV         -> national_reference (v2)
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from penstat.core.locations import REAL_DATA_DIR

# The real data sets, byte for byte, one folder per source with its SOURCE.md (read-only).
DEFAULT_DATA_DIR = REAL_DATA_DIR


def data_dir() -> Path:
    """Where the real data sets are: $PENSTAT_REAL_DATA or data/real in the checkout."""
    return Path(os.environ.get("PENSTAT_REAL_DATA") or DEFAULT_DATA_DIR)


@dataclass
class SourceReport:
    """What an adapter did with a source: rows read and delivered, and every rule's count."""

    source: str
    rows_read: int = 0
    # rows sent per delivery file, e.g. {"occupancy/cdcr-occ-1996-2022/occupancy.csv": 11014}
    rows_delivered: dict[str, int] = field(default_factory=dict)
    # rule -> rows set aside (not delivered) by it
    set_aside: Counter = field(default_factory=Counter)
    # rule -> rows (or values) mapped by it and still delivered
    mapped: Counter = field(default_factory=Counter)
    # rule -> explanation (one line, for the report and the README)
    rules: dict[str, str] = field(default_factory=dict)
    # (rule, source row number, short description) of every set-aside row
    set_aside_rows: list[tuple[str, int, str]] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)  # "<feed>/<delivery_id>"

    def delivered(self, folder: Path, file: str, rows: int) -> None:
        """Record a delivery this adapter wrote (`<inbox>/<feed>/<delivery_id>/`)."""
        delivery = f"{folder.parent.name}/{folder.name}"
        self.rows_delivered[f"{delivery}/{file}"] = rows
        self.deliveries.append(delivery)

    def set_aside_row(self, rule: str, source_row: int, what: str) -> None:
        self.set_aside[rule] += 1
        self.set_aside_rows.append((rule, source_row, what))

    def map(self, rule: str, n: int = 1) -> None:
        if n:
            self.mapped[rule] += n

    def describe(self, rule: str, text: str) -> None:
        self.rules[rule] = text

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_delivered": dict(self.rows_delivered),
            "set_aside": dict(sorted(self.set_aside.items())),
            "mapped": dict(sorted(self.mapped.items())),
            "rules": dict(sorted(self.rules.items())),
            "deliveries": list(self.deliveries),
        }

    def set_aside_csv(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["source", "rule", "source_row", "what"])
        for rule, row, what in self.set_aside_rows:
            writer.writerow([self.source, rule, row, what])
        return out.getvalue().encode("utf-8")
