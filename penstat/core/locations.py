"""Where the project's own files are, relative to the checkout (not PENSTAT_HOME)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
GX_CONTEXT_DIR = REPO_ROOT / "expectations"
DAGS_DIR = REPO_ROOT / "dags"
REAL_DATA_DIR = REPO_ROOT / "data" / "real"
