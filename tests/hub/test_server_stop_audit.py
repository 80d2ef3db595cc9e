"""Each stop of a user's server is written to the audit log exactly once."""
from __future__ import annotations

import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_hub import KernelOfUser, operator, server_of, wait_for, wait_until_ready

from lightbox_hub.audit import AuditLog
from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider

USER = "emergency"


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[EmbeddedHub, AuditLog]]:
    (tmp_path / "empty").mkdir()
    archives = tmp_path / "archives.toml"
    archives.write_text(f'[[archive]]\nname = "Empty"\ntype = "folder"\n'
                        f'path = "{tmp_path / "empty"}"\n')
    idp = EmbeddedIdentityProvider(tmp_path / "idp").start()
    hub = EmbeddedHub(tmp_path / "hub", idp.issuer, archives)
    try:
        hub.start()
        operator(hub, f"/users/{USER}", "POST")
        operator(hub, f"/users/{USER}/server", "POST")
        wait_until_ready(hub, USER)
        yield hub, AuditLog(hub.directory / "audit.jsonl")
    finally:
        hub.stop()
        idp.stop()


def _stops(audit: AuditLog) -> list[dict]:
    return [r for r in audit.read() if r["event"] == "server-stopped"]


def test_a_stop_through_the_api_is_recorded_once(started) -> None:
    hub, audit = started
    operator(hub, f"/users/{USER}/server", "DELETE")
    wait_for(lambda: server_of(hub, USER) is None, 60, "server stopped")
    hub.stop()  # the hub's own shutdown must not record the stopped server again

    assert len(_stops(audit)) == 1, audit.read()


def test_hub_shutdown_during_a_stop_records_it_once(started) -> None:
    # A kernel makes the stop take seconds (it purges and reports first); the hub
    # shuts down meanwhile and stops every server that is still active, this one
    # included, so JupyterHub runs the post-stop hook twice for one stop.
    hub, audit = started
    kernel = KernelOfUser(hub, USER)
    assert kernel.run("print('ready')") == "ready\n"
    kernel.socket.close()

    def stop() -> None:
        try:
            operator(hub, f"/users/{USER}/server", "DELETE")
        except (urllib.error.URLError, ConnectionError):
            pass  # the hub went away while answering

    threading.Thread(target=stop, daemon=True).start()
    wait_for(lambda: (server_of(hub, USER) or {}).get("pending") == "stop", 30,
             "stop pending")
    hub.stop()

    records = [r["event"] for r in audit.read() if r["user"] == USER]
    assert records.count("server-started") == 1, records
    assert len(_stops(audit)) == 1, records
    assert _stops(audit)[0]["scratch_wiped"] is True
