"""The Debian packages the Celery stack runs: present, installed by root, or named.

PostgreSQL and Redis come from Debian (`postgresql`, `redis-server`), not from
PyPI. When a binary is missing and we are root, `apt-get install` fetches the
package (waiting up to five minutes for a held dpkg lock instead of failing);
otherwise the error names the packages to install.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

APT_LOCK_TIMEOUT = 300
# Debian package -> how to tell it is installed
PACKAGES = {
    "postgresql": "/usr/lib/postgresql/*/bin/initdb",
    "redis-server": "redis-server",
}


class MissingPackages(RuntimeError):
    """Debian packages the Celery stack needs are missing and cannot be installed here."""


def _present(probe: str) -> bool:
    return bool(glob.glob(probe)) if probe.startswith("/") else shutil.which(probe) is not None


def missing_packages() -> list[str]:
    return [name for name, probe in PACKAGES.items() if not _present(probe)]


def ensure_packages() -> None:
    """Install the missing packages as root; raise MissingPackages naming them otherwise."""
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise MissingPackages(
            f"the Celery stack needs the Debian package(s) {', '.join(missing)}: install "
            f"them (sudo apt-get install {' '.join(missing)}) or run as root, which "
            "installs them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT}"
    for args in (["update"], ["install", "-y", "--no-install-recommends", *missing]):
        done = subprocess.run(["apt-get", "-qq", "-o", lock, *args], env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise MissingPackages(f"apt-get {args[0]} failed for {', '.join(missing)}: "
                                  f"{done.stderr.strip()[-2000:]}")
    if missing_packages():
        raise MissingPackages(f"still missing after apt-get: {', '.join(missing_packages())}")


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's binary folder (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not found:
        raise MissingPackages("PostgreSQL is not installed (Debian package postgresql)")
    return Path(found[-1]).parent
