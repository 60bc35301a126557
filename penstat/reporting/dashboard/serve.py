"""A plain static web server for a dashboard folder, on the loopback interface only.

The dashboard needs nothing more than this (or any static server, or the file system):
no server-side code, no network. Used by `penstat dashboard` (`make dashboard`) and by
the browser test.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def static_server(folder: Path, port: int = 0) -> ThreadingHTTPServer:
    """A server for the files of `folder` on 127.0.0.1 (`port` 0: a free one); the caller
    runs serve_forever() (or `serve_in_thread`) and closes it."""
    handler = partial(_QuietHandler, directory=str(Path(folder).resolve()))
    return ThreadingHTTPServer((LOOPBACK, port), handler)


def address(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="dashboard-server",
                              daemon=True)
    thread.start()
    return thread
