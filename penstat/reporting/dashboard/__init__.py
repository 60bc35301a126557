"""The static dashboard inside every publication: `published/<version>/dashboard/`.

extract.py reads the figures out of the publication's published.duckdb (read-only, never
recomputed), flags.py says which values are withheld and what their flags mean, charts.py
draws inline SVG, render.py writes the one self-contained HTML page, install.py puts it
into the read-only publication folder. See docs/dashboard.md.
"""

from penstat.reporting.dashboard.install import (
    DASHBOARD_DIR,
    INDEX,
    Dashboard,
    install_dashboard,
    write_dashboard,
)

__all__ = ["DASHBOARD_DIR", "INDEX", "Dashboard", "install_dashboard", "write_dashboard"]
