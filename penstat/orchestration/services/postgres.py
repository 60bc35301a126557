"""The Celery stack's metadata database: PostgreSQL as the project's own process.

Its cluster lives in $PENSTAT_HOME/services/postgres/data, owned by the user that
runs it (accounts.py), and listens on 127.0.0.1 only, on a port chosen at start,
with no Unix socket; every connection needs the password (scram-sha-256), kept
in the stack's owner-only state (celery_stack.py). `pg_ctl -w` starts and stops
it, waiting on the server's own readiness; `pg_isready` is its health check.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from penstat.orchestration.services.accounts import (
    as_service_user,
    check_reachable,
    give_to_service_user,
)
from penstat.orchestration.services.debian import postgres_bin

HOST = "127.0.0.1"
USER = DATABASE = "airflow"
START_TIMEOUT = 120


@dataclass(frozen=True)
class Postgres:
    folder: Path
    port: int
    password: str

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    def url(self, scheme: str = "postgresql+psycopg2") -> str:
        return f"{scheme}://{USER}:{self.password}@{HOST}:{self.port}/{DATABASE}"

    def _run(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        done = subprocess.run(command, capture_output=True, text=True, **kwargs)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:6])} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")
        return done

    def _client_env(self) -> dict[str, str]:
        # the password reaches the client programs through the environment, never argv
        return {**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"}

    def initialise(self) -> None:
        """A new cluster with the `airflow` superuser, unless one is there already."""
        if (self.data / "PG_VERSION").is_file():
            return
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder.parent, 0o711)  # services/: searchable, not listable
        give_to_service_user(self.folder)
        check_reachable(self.folder)
        pwfile = self.folder / "initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.password + "\n")
        give_to_service_user(pwfile)
        try:
            self._run(as_service_user([
                str(postgres_bin() / "initdb"), "-D", str(self.data), "-U", USER,
                f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                "--no-instructions"]))
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> int:
        """Start the server, wait until it accepts connections, create the database."""
        self.initialise()
        options = (f"-p {self.port} -c listen_addresses={HOST} "
                   "-c unix_socket_directories='' -c max_connections=150")
        self._run(as_service_user([
            str(postgres_bin() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", str(START_TIMEOUT), "start"]),
            timeout=START_TIMEOUT + 30)
        if not self.ready():
            raise RuntimeError(f"PostgreSQL started but pg_isready fails; see {self.log}")
        exists = self._run([str(postgres_bin() / "psql"), "-h", HOST, "-p", str(self.port),
                            "-U", USER, "-d", "postgres", "-tAc",
                            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
                           env=self._client_env())
        if exists.stdout.strip() != "1":
            self._run([str(postgres_bin() / "createdb"), "-h", HOST, "-p", str(self.port),
                       "-U", USER, DATABASE], env=self._client_env())
        return self.pid()

    def pid(self) -> int:
        """The postmaster's pid (first line of postmaster.pid), 0 when not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def ready(self) -> bool:
        done = subprocess.run([str(postgres_bin() / "pg_isready"), "-q", "-h", HOST,
                               "-p", str(self.port), "-U", USER, "-d", DATABASE],
                              capture_output=True, env=self._client_env())
        return done.returncode == 0

    def stop(self) -> bool:
        """Fast shutdown (clients disconnected, no data lost); False if it was not running."""
        if not (self.data / "postmaster.pid").is_file():
            return False
        done = subprocess.run(as_service_user([
            str(postgres_bin() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
            "-t", "60", "stop"]), capture_output=True, text=True)
        return done.returncode == 0
