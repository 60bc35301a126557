"""Settings every penstat DAG shares, declared once (dags/*.py spread them into @dag).

Event-driven DAGs: no catch-up, one run at a time (the warehouse has one writer; the
pool `penstat_warehouse` serialises writers across DAGs), every task failure routed to
the operator (callbacks.notify_failure).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from penstat.orchestration.callbacks import notify_failure

DAG_DEFAULTS: dict[str, Any] = {
    "start_date": datetime(2024, 1, 1),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": {"owner": "penstat", "on_failure_callback": notify_failure},
}


def dag_settings(*tags: str) -> dict[str, Any]:
    """DAG_DEFAULTS with the DAG's tags (every DAG is tagged `penstat`)."""
    return {**DAG_DEFAULTS, "tags": ["penstat", *tags]}
