"""The demo command fails with one clear line, not a traceback."""
from __future__ import annotations

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
