"""Who runs a service: root hands PostgreSQL to the `postgres` system user.

`initdb` and `postgres` refuse to run as root. As root, the PostgreSQL binaries
run as Debian's `postgres` user (runuser) and its data folder belongs to it; as
anyone else they run as that user, who owns the folder already.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

SERVICE_USER = "postgres"


def is_root() -> bool:
    return os.geteuid() == 0


def as_service_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVICE_USER, "--", *command] if is_root() else command


def give_to_service_user(path: Path) -> None:
    if is_root():
        account = pwd.getpwnam(SERVICE_USER)
        os.chown(path, account.pw_uid, account.pw_gid)


def check_reachable(folder: Path) -> None:
    """The service user can write `folder`: every folder above it must be searchable."""
    if not is_root():
        return
    done = subprocess.run(as_service_user(["test", "-w", str(folder)]), capture_output=True)
    if done.returncode != 0:
        blocked = [str(p) for p in reversed(folder.parents)
                   if p.exists() and not os.stat(p).st_mode & 0o001]
        raise PermissionError(
            f"PostgreSQL runs as the `{SERVICE_USER}` user, who cannot reach {folder}: "
            f"these folders above it are not searchable by others: {blocked}. Put "
            f"PENSTAT_HOME elsewhere or allow searching them (chmod o+x)")
