"""One facility_register delivery for several real sources sharing a warehouse.

Contract v1's register is a full snapshot: each delivery replaces the register in force.
Sources that share one warehouse (California and Italy in `make real`) therefore send
one register delivery holding every source's rows; the facility ids (`US-CA-...`,
`IT-...`) keep them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from penstat.contract.feeds import FEEDS
from penstat.senders.delivery import csv_rows, write_delivery

REGISTER_HEADER = list(FEEDS["facility_register"].file("facilities").column_names)
OCCUPANCY_HEADER = list(FEEDS["occupancy"].file("occupancy").column_names)
STAFFING_HEADER = list(FEEDS["staffing"].file("staffing").column_names)


def send_register(inbox: Path, parts: Sequence[tuple[str, list[list], str]],
                  delivery_id: str = "real-register-1") -> Path:
    """Write one register delivery from (source, rows, created_at) parts.

    created_at is the latest of the parts' extraction times.
    """
    rows = [row for _, part_rows, _ in parts for row in part_rows]
    ids = [(r[0], r[9]) for r in rows]
    if len(ids) != len(set(ids)):
        raise ValueError("register rows collide on (facility_id, valid_from)")
    created_at = max(created for _, _, created in parts)
    sender = "penstat real-data adapters (" + ", ".join(s for s, _, _ in parts) + ")"
    return write_delivery(inbox, "facility_register", delivery_id,
                          {"facilities.csv": csv_rows(REGISTER_HEADER, rows)},
                          sender=sender, created_at=created_at, period=None)
