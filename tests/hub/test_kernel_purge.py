"""A real kernel with Lightbox's startup file reports what it opens and its purge."""
from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from jupyter_client.manager import KernelManager

from lightbox_hub.spawner import _KERNEL_STARTUP, KERNEL_STARTUP_NAME


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        length = int(self.headers["Content-Length"])
        self.received.append({"path": self.path, "auth": self.headers["Authorization"],
                              "body": json.loads(self.rfile.read(length))})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_kernel_purges_at_shutdown_and_sends_the_receipt(tmp_path: Path) -> None:
    startup = tmp_path / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copyfile(_KERNEL_STARTUP, startup / KERNEL_STARTUP_NAME)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    manager = KernelManager(kernel_name="python3")
    try:
        manager.start_kernel(env={
            "HOME": str(tmp_path), "IPYTHONDIR": str(tmp_path / ".ipython"),
            "PATH": __import__("os").environ["PATH"],
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{server.server_port}/hub/api",
            "JUPYTERHUB_API_TOKEN": "server-token"})
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        # The very first cell already counts: what it opens reaches the audit.
        client.execute_interactive(
            "from viewerlib.cache import get_cache\n"
            "from viewerlib import events\n"
            "get_cache('pixel').put(('frame', 1), b'x' * 1000)\n"
            "events.series_opened('1.2.3', '1.2.3.4')", timeout=60)
        client.stop_channels()
        manager.shutdown_kernel(now=False)
        deadline = time.monotonic() + 10
        while len(_Receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
        server.shutdown()
        server.server_close()
    assert len(_Receiver.received) == 2, _Receiver.received
    opened, report = _Receiver.received
    session = opened["body"]["fields"]["session"]
    assert opened["body"] == {"event": "study-opened", "fields": {
        "study_instance_uid": "1.2.3", "series_instance_uid": "1.2.3.4",
        "session": session}}
    # One label names this kernel in both, so the hub can match receipt to opening.
    assert len(session) == 16 and report["body"]["fields"]["session"] == session
    assert report["path"] == "/hub/api/lightbox/audit"
    assert report["auth"] == "token server-token"
    assert report["body"]["event"] == "purge"
    assert report["body"]["fields"]["where"] == "kernel"
    assert report["body"]["fields"]["items"] == 1
    assert report["body"]["fields"]["bytes"] >= 1000
