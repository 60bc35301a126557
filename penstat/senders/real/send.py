"""Send every real data set: run the five adapters and write their deliveries into an inbox."""

from __future__ import annotations

from pathlib import Path

from penstat.senders.real import SourceReport, california, data_dir, eurostat, hifld, iowa, italy
from penstat.senders.real.register import send_register


def send_all(inbox: Path, data: Path | None = None) -> dict[str, SourceReport]:
    """Run the five adapters: write every delivery into `inbox`; return their reports.

    California and Italy share one v1 facility register delivery (register.py)."""
    data = data or data_dir()
    ca, it = california.build(data), italy.build(data)
    us, ia, eu = hifld.build(data), iowa.build(data), eurostat.build(data)
    register = send_register(inbox, [
        ("CDCR", ca.register, california.CREATED_AT),
        ("Ministero della Giustizia", it.register, max(italy.CREATED_AT.values())),
    ])
    for report, rows in ((ca.report, ca.register), (it.report, it.register)):
        report.delivered(register, "facilities.csv", len(rows))
    california.send(inbox, ca)
    italy.send(inbox, it)
    hifld.send(inbox, us)
    iowa.send(inbox, ia)
    eurostat.send(inbox, eu)
    return {r.source: r for r in (ca.report, it.report, us.report, ia.report, eu.report)}
