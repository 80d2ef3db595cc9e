"""A plain JupyterLab on loopback for the widget tests, and a notebook driver.

One ``jupyter lab`` serves the whole test session (starting it costs seconds); each
test module writes its own notebook, opens it in a fresh workspace, runs every cell
through the menu and shuts its kernel down afterwards, because a live kernel replays
its widget models, buffers included, into every page that opens the notebook.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

_STARTUP_S = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class JupyterLab:
    """One ``jupyter lab`` process on 127.0.0.1 with a token, stopped by PID."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.root = folder / "notebooks"
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> JupyterLab:
        env = dict(
            os.environ,
            HOME=str(self.folder),
            JUPYTER_CONFIG_DIR=str(self.folder / "config"),
            JUPYTER_RUNTIME_DIR=str(self.folder / "runtime"),
            PYTHONPATH=os.pathsep.join(
                filter(
                    None,
                    [
                        str(Path(__file__).resolve().parents[2]),
                        os.environ.get("PYTHONPATH", ""),
                    ],
                )
            ),
        )
        arguments = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            arguments.append("--allow-root")
        with (self.folder / "jupyter.log").open("wb") as log:
            self.process = subprocess.Popen(
                arguments, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + _STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited at start-up; see {self.folder / 'jupyter.log'}"
                )
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"jupyter lab did not answer on {self.url} in {_STARTUP_S} s"
        )

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session and kernel of this server (all were started by tests)."""
        for session in self.api("GET", "/api/sessions") or []:  # type: ignore[union-attr]
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels") or []:  # type: ignore[union-attr]
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def write_notebook(self, name: str, cells: Sequence[str]) -> str:
        notebook = {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {
                    "name": "python3",
                    "display_name": "Python 3",
                    "language": "python",
                }
            },
            "cells": [
                {
                    "cell_type": "code",
                    "id": f"c{index}",
                    "metadata": {},
                    "source": source,
                    "outputs": [],
                    "execution_count": None,
                }
                for index, source in enumerate(cells)
            ],
        }
        (self.root / name).write_text(json.dumps(notebook), encoding="utf-8")
        return name

    def open_and_run(
        self, page: object, name: str, ready_selector: str, timeout_ms: int = 90_000
    ) -> None:
        """Open notebook `name` in a fresh workspace, run all cells, await a selector."""
        workspace = "w" + secrets.token_hex(4)
        page.goto(
            f"{self.url}/lab/workspaces/{workspace}/tree/{name}"  # type: ignore[attr-defined]
            f"?reset&token={self.token}"
        )
        page.wait_for_selector(
            ".jp-NotebookPanel .jp-CodeCell",  # type: ignore[attr-defined]
            timeout=60_000,
        )
        idle_text = re.compile(r"Python 3 \(ipykernel\) \| Idle")
        idle = page.get_by_text(idle_text)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # JupyterLab 4 may ask for a kernel or about news in a headless run.
            for selector in (
                ".jp-Dialog button:has-text('Select')",
                ".jp-toast-button:has-text('No')",
            ):
                button = page.locator(selector)  # type: ignore[attr-defined]
                if button.count():
                    try:
                        # Toasts slide in; a moving or vanished button is retried.
                        button.first.click(timeout=1_000)
                    except PlaywrightError:
                        pass
            if idle.count():
                break
            page.wait_for_timeout(250)  # type: ignore[attr-defined]
        page.get_by_text("Run", exact=True).first.click()  # type: ignore[attr-defined]
        page.get_by_text("Run All Cells", exact=True).click()  # type: ignore[attr-defined]
        page.wait_for_selector(ready_selector, timeout=timeout_ms)  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.shut_down_kernels()
        except OSError:
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    lab = JupyterLab(tmp_path_factory.mktemp("lab")).start()
    yield lab
    lab.stop()


# Pixel statistics and lookups on a viewer canvas, computed in the page.
CANVAS_PIXELS = """
(canvas, points) => {
  const context = canvas.getContext("2d");
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  return points.map(([x, y]) => data[4 * (Math.floor(y) * canvas.width + Math.floor(x))]);
}
"""

CANVAS_STATISTICS = """
(canvas) => {
  const context = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const data = context.getImageData(0, 0, w, h).data;
  let sum = 0, sumSquares = 0, n = 0;
  for (let i = 0; i < data.length; i += 4) {
    sum += data[i]; sumSquares += data[i] * data[i]; n += 1;
  }
  const mean = sum / n;
  return { width: w, height: h, mean, sd: Math.sqrt(Math.max(0, sumSquares / n - mean * mean)) };
}
"""

# Python that builds the phantoms in the kernel (and in the test, for comparisons).
PHANTOM_SETUP = """\
import numpy as np
from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume.volume import read_series
current = read_series(ct_head_phantom("current").datasets)[0]
prior = read_series(ct_head_phantom("prior").datasets)[0]
"""
