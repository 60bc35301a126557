"""make rebuild: through Airflow when this PENSTAT_HOME's stack is up, directly otherwise.

The direct path (a full refresh giving byte-identical marts) is proven in
tests/integration/test_incremental.py; here, what is sent to a running api-server.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

from penstat.orchestration import rebuild as rebuild_module


class _ApiServer(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, body))
        payload = json.dumps({"dag_run_id": "manual__rebuild"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_with_the_stack_up_rebuild_queues_a_full_refresh_run_of_penstat_build(
        paths, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _ApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api = f"http://127.0.0.1:{server.server_port}"
    try:
        monkeypatch.setattr(rebuild_module.Stack, "read_state", lambda self: {"api": api})
        monkeypatch.setattr(rebuild_module, "health", lambda url: {"status": "healthy"})
        result = rebuild_module.rebuild(paths)
    finally:
        server.shutdown()
        server.server_close()
    assert result == {"via": "airflow", "dag_run_id": "manual__rebuild"}
    [(path, body)] = _ApiServer.received
    assert path == "/api/v2/dags/penstat_build/dagRuns"
    assert body["conf"] == {"full_refresh": True}
