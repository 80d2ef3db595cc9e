"""The demo command fails with one clear line, not a traceback."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from lightbox_hub.settings import HubConfigurationError, discover_identity_provider


def test_port_in_use_gives_one_clear_line(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "lightbox_hub.cli", "demo", "--port", str(port),
             "--state-dir", str(tmp_path / "state")],
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists()


def test_identity_provider_that_does_not_answer_raises() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(HubConfigurationError,
                       match=r"does not answer .*correct LIGHTBOX_OIDC_ISSUER"):
        discover_identity_provider(f"http://127.0.0.1:{port}", timeout=2)


def _demo(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lightbox_hub.cli", "demo", *arguments],
                          capture_output=True, text=True, timeout=60)


def test_a_folder_that_is_not_a_demos_is_never_deleted(tmp_path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]
    result = _demo("--port", str(port), "--state-dir", str(precious))
    assert result.returncode == 2
    assert "not a Lightbox demo's" in result.stderr
    assert (precious / "keep.txt").read_text() == "mine"


def test_a_running_demos_folder_survives_a_second_start(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / ".lightbox-demo").write_text(str(os.getpid()))  # this test is "running"
    (state / "jupyterhub.sqlite").write_text("live")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]
    result = _demo("--port", str(port), "--state-dir", str(state))
    assert result.returncode == 2
    assert f"a demo (pid {os.getpid()}) is running" in result.stderr
    assert (state / "jupyterhub.sqlite").read_text() == "live"


def test_port_in_use_deletes_nothing(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / ".lightbox-demo").write_text("999999999")
    (state / "db").write_text("kept")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = _demo("--port", str(busy.getsockname()[1]), "--state-dir", str(state))
    assert result.returncode == 2 and "already in use" in result.stderr
    assert (state / "db").read_text() == "kept"


@pytest.mark.parametrize("port", ["70000", "0", "http"])
def test_a_port_out_of_range_is_a_usage_error(port: str, tmp_path) -> None:
    result = _demo("--port", port, "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--port" in result.stderr


def test_a_port_left_in_time_wait_counts_as_free() -> None:
    from lightbox_hub.embedded.ports import port_is_free

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME-WAIT
        client.close()
    assert port_is_free(port)
