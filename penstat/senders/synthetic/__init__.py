"""A deterministic synthetic national prison system that sends contract-v1 deliveries.

    from penstat.senders.synthetic import generate, next_day
    generate(inbox, scale=1, seed=42, split="year")
    generate(inbox, until=history_until())  # a history ending yesterday: nothing late
    next_day(inbox, scale=1, seed=42, day=date(2026, 1, 1))

See docs/synthetic.md for what is modelled and TRUE_SMALL_SCALE_LOG_ODDS.
"""

from penstat.senders.delivery import csv_bytes, write_delivery
from penstat.senders.synthetic.periods import history_until
from penstat.senders.synthetic.recidivism import TRUE_SMALL_SCALE_LOG_ODDS
from penstat.senders.synthetic.sender import generate, next_day, summarize
from penstat.senders.synthetic.system import SyntheticSystem, SystemConfig

__all__ = [
    "TRUE_SMALL_SCALE_LOG_ODDS",
    "SyntheticSystem",
    "SystemConfig",
    "csv_bytes",
    "generate",
    "history_until",
    "next_day",
    "summarize",
    "write_delivery",
]
