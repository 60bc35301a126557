"""The Celery stack's broker: Redis as the project's own process.

Configured by an owner-only file in $PENSTAT_HOME/services/redis (the password
is never on a command line): listens on 127.0.0.1 only, on a port chosen at
start, no Unix socket, protected mode on, every client must authenticate. Its
health check is an authenticated PING.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from penstat.core.processes import pid_alive

HOST = "127.0.0.1"
START_TIMEOUT = 60


@dataclass(frozen=True)
class Redis:
    folder: Path
    port: int
    password: str

    @property
    def config(self) -> Path:
        return self.folder / "redis.conf"

    @property
    def log(self) -> Path:
        return self.folder / "redis.log"

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@{HOST}:{self.port}/{db}"

    def write_config(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join([
                f"bind {HOST}", f"port {self.port}", "protected-mode yes",
                f'requirepass "{self.password}"', f"dir {self.folder}",
                "dbfilename broker.rdb", "daemonize no", f"logfile {self.log}", ""]))

    def start(self) -> int:
        self.write_config()
        proc = subprocess.Popen(["redis-server", str(self.config)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, cwd=str(self.folder))
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready():
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({proc.returncode}); see {self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Redis did not answer PING within {START_TIMEOUT}s")
            time.sleep(0.2)
        return proc.pid

    def ready(self) -> bool:
        import redis  # the Celery lock's (requirements-celery.lock)
        try:
            client = redis.Redis(host=HOST, port=self.port, password=self.password,
                                 socket_timeout=3, socket_connect_timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    @staticmethod
    def stop(pid: int, timeout: float = 30) -> bool:
        if not pid_alive(pid) or b"redis-server" not in _cmdline(pid):
            return False  # gone, or the pid now belongs to another program
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        return True


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
