"""A real Jupyter server on loopback with the Lightbox server extension, and fixtures.

The server runs as its own process, as a user's server does, with a temporary home,
Jupyter configuration and root folder; it is stopped by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[3]
_STARTUP_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_phantom_folder(folder: Path) -> list[str]:
    """Write small CT head phantoms (current and prior) to ``folder``; their UIDs."""
    from viewerlib.samples.phantom import ct_head_phantom

    folder.mkdir(parents=True, exist_ok=True)
    uids = []
    for kind in ("current", "prior"):
        study = ct_head_phantom(kind, rows=64, columns=64, number_of_slices=6)
        for index, dataset in enumerate(study.datasets):
            dataset.save_as(
                folder / f"{kind}-{index:02d}.dcm", enforce_file_format=True
            )
        uids.append(study.study_instance_uid)
    return uids


class Reply:
    """One HTTP reply: status, headers and body."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


class LightboxServer:
    """``jupyter server`` with the Lightbox extension on 127.0.0.1, stopped by PID."""

    def __init__(
        self,
        folder: Path,
        environment: dict[str, str],
        arguments: tuple[str, ...] = (),
        config_python: str = "",
    ) -> None:
        self.folder = folder
        # Extra command-line options and a jupyter_server_config.py, e.g. the
        # log_function jupyterhub-singleuser installs.
        self.arguments = arguments
        self.config_python = config_python
        self.root = folder / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.environment = environment
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LightboxServer:
        config = self.folder / "config"
        config.mkdir(exist_ok=True)
        (config / "jupyter_server_config.json").write_text(
            json.dumps(
                {
                    "ServerApp": {
                        "jpserver_extensions": {"lightbox_extensions.server": True}
                    }
                }
            )
        )
        if self.config_python:
            (config / "jupyter_server_config.py").write_text(self.config_python)
        environment = dict(
            os.environ,
            HOME=str(self.folder),
            JUPYTER_CONFIG_DIR=str(config),
            JUPYTER_RUNTIME_DIR=str(self.folder / "runtime"),
            PYTHONPATH=os.pathsep.join(
                filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])
            ),
            **self.environment,
        )
        for name in ("LIGHTBOX_ROLE", "LIGHTBOX_PANELS", "LIGHTBOX_ARCHIVES"):
            if name not in self.environment:
                environment.pop(name, None)
        arguments = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            *self.arguments,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            arguments.append("--allow-root")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                arguments, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + _STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited at start; see {self.log}")
            try:
                self.request("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter server did not answer in {_STARTUP_S} s")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = "",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            headers["Authorization"] = f"token {token or self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.headers, err.read())

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (what the hub's spawner sends), then wait; the exit code."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=5)
        self.process = None
        return code


def write_archives(path: Path, folder: Path | None, down_port: int | None) -> Path:
    """An archives file: the phantom folder, and a DICOMweb archive nobody serves."""
    text = ""
    if folder is not None:
        text += (
            f'[[archive]]\nname = "Teaching folder"\ntype = "folder"\n'
            f'path = "{folder}"\n'
        )
    if down_port is not None:
        text += (
            '\n[[archive]]\nname = "Closed PACS"\ntype = "dicomweb"\n'
            f'url = "http://127.0.0.1:{down_port}/dicom-web"\ntimeout_s = 2\n'
            "retries = 0\n"
        )
    path.write_text(text)
    return path
