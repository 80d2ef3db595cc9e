"""Stopping the embedded services ends every process they started, even after a kill.

JupyterHub starts the proxy, its services and the users' servers each in a session
of its own; a hub that has to be killed must not leave them holding its ports (the
next ``make demo`` would find the port in use).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom.data
import pytest
import requests
from live_hub import KernelOfUser, sign_in_with_provider_mock, wait_until_ready

from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider
from lightbox_hub.embedded.ports import free_port, port_is_free
from lightbox_hub.embedded.process import ManagedProcess, process_tree

# A program that ignores SIGTERM, as a hung hub does, and starts a listener in a
# session of its own (as JupyterHub starts the proxy), which starts a child in turn.
_STUBBORN_PARENT = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]],
                 start_new_session=True)
time.sleep(600)
"""
_LISTENER = """
import signal, socket, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)  # an ignored signal is inherited
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent (zombies hold no port)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_process_killed_after_its_timeout_leaves_no_descendant(
        tmp_path: Path) -> None:
    port = free_port()
    process = ManagedProcess(
        "stubborn", [sys.executable, "-c", _STUBBORN_PARENT, _LISTENER, str(port)],
        tmp_path / "stubborn.log")
    process.start()
    assert process.pid is not None
    _wait_for(lambda: not port_is_free(port), 30, "the listener is up")
    _wait_for(lambda: len(process_tree(process.pid)) == 2, 30,
              "the listener started its child")
    descendants = list(process_tree(process.pid))

    started = time.monotonic()
    process.stop(timeout=1)

    assert time.monotonic() - started < 10
    assert not _alive(process.pid)
    assert [pid for pid in descendants if _alive(pid)] == []
    assert port_is_free(port)


def test_stop_ends_no_process_it_did_not_start(tmp_path: Path) -> None:
    # Not started by the managed process: a sibling, and so not its to end.
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    other = subprocess.Popen(sleeper)
    process = ManagedProcess("short", sleeper, tmp_path / "short.log")
    try:
        process.start()
        process.stop(timeout=5)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(5)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[EmbeddedHub]:
    folder = tmp_path / "ct-small"
    folder.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    archives = tmp_path / "archives.toml"
    archives.write_text(f'[[archive]]\nname = "Test folder"\ntype = "folder"\n'
                        f'path = "{folder}"\n')
    idp = EmbeddedIdentityProvider(tmp_path / "idp").start()
    embedded = EmbeddedHub(tmp_path / "hub", idp.issuer, archives)
    try:
        yield embedded.start()
    finally:
        if embedded.process and embedded.process.pid and _alive(embedded.process.pid):
            os.kill(embedded.process.pid, signal.SIGCONT)
        embedded.stop()
        idp.stop()


def test_a_hub_killed_after_its_stop_timeout_leaves_no_listener_and_no_child(
        hub: EmbeddedHub) -> None:
    sign_in_with_provider_mock(requests.Session(), hub, "radiologist")
    wait_until_ready(hub, "radiologist")
    kernel = KernelOfUser(hub, "radiologist")  # a grandchild: the server's kernel
    kernel.socket.close()
    assert hub.process is not None and hub.process.pid is not None
    environment = hub.process.env or {}
    ports = [hub.port, int(environment["LIGHTBOX_PROXY_API_PORT"]),
             int(environment["LIGHTBOX_HUB_INTERNAL_PORT"])]
    tree = process_tree(hub.process.pid)
    # The proxy, the services, the user's server and its kernel.
    assert len(tree) >= 4, tree

    # A hung hub: SIGTERM stays pending, so the stop runs into its timeout.
    os.kill(hub.process.pid, signal.SIGSTOP)
    hub.stop(timeout=2)

    assert not _alive(hub.process.pid)
    assert [pid for pid in tree if _alive(pid)] == []
    assert [port for port in ports if not port_is_free(port)] == []
