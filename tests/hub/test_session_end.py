"""At every stop of a user's server, logout or idle cull: purge receipts and scratch.

A real hub signs users in through the provider mock; their kernels open a series of
pydicom's CT_small from a folder and write a file to ``$TMPDIR`` (the scratch folder),
as a notebook would. The audit log must then show each kernel's purge before the
server's stop, say ``purge-missing`` for a kernel that was killed, and tell the truth
in ``scratch_wiped``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom.data
import pytest
import requests
from live_hub import (
    KernelOfUser,
    server_of,
    sign_in_with_provider_mock,
    wait_for,
    wait_until_ready,
)

from lightbox_hub.audit import AuditLog
from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider

_OPEN_AND_WRITE = """
import os, pathlib
from viewerlib.sources.local import FolderSource
from viewerlib.viewer import open_volume
source = FolderSource({folder!r}, name="Test folder")
volume = open_volume(source.search_for_studies()[0], source=source)
export = pathlib.Path(os.environ["TMPDIR"], "export.raw")
export.write_bytes(volume.voxels.tobytes())
print(export)
"""
# The kernel ends itself a moment after the cell, as the kernel of a notebook that
# ran out of memory would: no exit handler runs, so no purge receipt is sent.
_KILL_SOON = """
import os, signal, threading
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGKILL)).start()
"""


def _hub(root: Path, **extra_env: str) -> Iterator[tuple[EmbeddedHub, Path]]:
    folder = root / "ct-small"
    folder.mkdir(parents=True)
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    archives = root / "archives.toml"
    archives.write_text(f'[[archive]]\nname = "Test folder"\ntype = "folder"\n'
                        f'path = "{folder}"\n')
    idp = EmbeddedIdentityProvider(root / "idp").start()
    hub = EmbeddedHub(root / "hub", idp.issuer, archives, extra_env=extra_env)
    try:
        yield hub.start(), folder
    finally:
        hub.stop()
        idp.stop()


@pytest.fixture
def culling_hub(tmp_path: Path) -> Iterator[tuple[EmbeddedHub, Path]]:
    # Long enough for a kernel to open a series first, short enough for a test.
    yield from _hub(tmp_path, LIGHTBOX_IDLE_TIMEOUT_S="40", LIGHTBOX_CULL_EVERY_S="4")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[EmbeddedHub, Path]]:
    yield from _hub(tmp_path)


def _signed_in(hub: EmbeddedHub, user: str) -> requests.Session:
    session = requests.Session()
    sign_in_with_provider_mock(session, hub, user)
    return session


def _events(audit: AuditLog, user: str) -> list[dict[str, Any]]:
    return [r for r in audit.read() if r["user"] == user]


def _open_and_write(hub: EmbeddedHub, user: str, folder: Path,
                    then: str = "") -> Path:
    kernel = KernelOfUser(hub, user)
    try:
        written = Path(kernel.run(_OPEN_AND_WRITE.format(folder=str(folder))).strip())
        if then:
            kernel.run(then)
    finally:
        # The kernel stays: only the stop of the server may end it.
        kernel.socket.close()
    assert written.parent == hub.directory / "scratch" / user and written.stat().st_size
    return written


def _purges_before_the_stop(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The kernel's purge of the series opened, and the server's, precede the stop."""
    events = [r["event"] for r in records]
    stop = events.index("server-stopped")
    opened = next(r for r in records if r["event"] == "study-opened")
    purges = [r for r in records[:stop] if r["event"] == "purge"]
    kernel = [r for r in purges if r["where"] == "kernel"
              and r["session"] == opened["session"]]
    assert kernel, records
    assert set(kernel[0]["kinds"]) >= {"pixel"}, kernel
    assert [r for r in purges if r["where"] == "server"], records
    return records[stop]


def _make_undeletable(path: Path) -> Any:
    """Make ``path`` impossible to delete (as root: the immutable attribute)."""
    if os.geteuid() != 0:
        path.parent.chmod(0o500)
        return lambda: path.parent.chmod(0o700)
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {done.stderr.strip()}")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_idle_cull_purges_before_the_stop_and_reports_what_it_could_not(
        culling_hub: tuple[EmbeddedHub, Path]) -> None:
    hub, folder = culling_hub
    audit = AuditLog(hub.directory / "audit.jsonl")
    users = ("emergency", "neurologist", "orthopaedics")
    for user in users:
        _signed_in(hub, user)
    for user in users:
        wait_until_ready(hub, user)

    # A kernel that opened a series and left a file in the scratch folder.
    written = _open_and_write(hub, "emergency", folder)
    # A kernel that opened a series and was killed: it sends no purge receipt.
    _open_and_write(hub, "neurologist", folder, then=_KILL_SOON)
    # A scratch file that cannot be deleted.
    locked_folder = hub.directory / "scratch" / "orthopaedics" / "locked"
    locked_folder.mkdir()
    locked = locked_folder / "frame.raw"
    locked.write_bytes(b"\0" * 64)
    release = _make_undeletable(locked)
    try:
        wait_for(lambda: all(server_of(hub, user) is None for user in users), 150,
                 "the idle culler stopped every server")
        assert locked.exists()
    finally:
        release()

    records = _events(audit, "emergency")
    stopped = _purges_before_the_stop(records)
    assert stopped["scratch_wiped"] is True
    assert "purge-missing" not in [r["event"] for r in records]
    assert not written.exists() and not written.parent.exists()

    records = _events(audit, "neurologist")
    events = [r["event"] for r in records]
    assert "purge-missing" in events, events
    missing = records[events.index("purge-missing")]
    assert missing["kernels"] == 1
    assert events.index("purge-missing") < events.index("server-stopped")
    # The server's own purge still came; it does not stand in for the kernel's.
    assert any(r["event"] == "purge" and r["where"] == "server" for r in records)

    stopped = [r for r in _events(audit, "orthopaedics")
               if r["event"] == "server-stopped"]
    assert [r["scratch_wiped"] for r in stopped] == [False]


def test_logout_purges_before_the_stop_and_empties_the_scratch_folder(
        hub: tuple[EmbeddedHub, Path]) -> None:
    embedded, folder = hub
    audit = AuditLog(embedded.directory / "audit.jsonl")
    session = _signed_in(embedded, "radiologist")
    wait_until_ready(embedded, "radiologist")
    written = _open_and_write(embedded, "radiologist", folder)

    session.get(embedded.url + "/hub/logout", timeout=120)
    wait_for(lambda: server_of(embedded, "radiologist") is None, 60,
             "logout stopped the server")

    records = _events(audit, "radiologist")
    events = [r["event"] for r in records]
    assert events.index("sign-out") < events.index("server-stopped")
    stopped = _purges_before_the_stop(records)
    assert stopped["scratch_wiped"] is True
    assert "purge-missing" not in events
    assert not written.exists() and not written.parent.exists()
