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
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

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


class SeriesHoldingProxy:
    """A loopback TCP proxy in front of an archive that holds back series streams.

    Every answer passes at once, except, while :attr:`hold` is set, the answer
    to a WADO-RS series retrieval (``GET .../studies/{uid}/series/{uid}``): its
    first ``pass_bytes`` go on (a few instances), the rest wait until
    :attr:`release` is set, as a slow archive would. Requests on one connection
    come one after the other (no pipelining), so the request last seen on a
    connection is the one being answered.

    Parameters
    ----------
    target_port : int
        The archive's HTTP port on 127.0.0.1.
    pass_bytes : int
        Bytes of a held series answer that go on before it is held.
    hold_timeout_s : float
        Longest hold; then the rest goes on (a test never hangs).
    """

    _REQUEST = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")
    _SERIES = re.compile(r"/studies/[^/?]+/series/[^/?]+(\?.*)?$")

    def __init__(self, target_port: int, pass_bytes: int,
                 hold_timeout_s: float = 60.0) -> None:
        self.target_port = target_port
        self.pass_bytes = pass_bytes
        self.hold_timeout_s = hold_timeout_s
        self.hold = threading.Event()
        self.release = threading.Event()
        self.held = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path: str = "/dicom-web") -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            state = {"series": False, "answered": 0}
            for args in ((client, upstream, state, False),
                         (upstream, client, state, True)):
                threading.Thread(target=self._pipe, args=args, daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket,
              state: dict[str, Any], answer: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not answer:
                    request = self._REQUEST.match(data)
                    if request is not None:
                        path = request.group(2).decode("latin-1")
                        state["series"] = bool(self._SERIES.search(path))
                        state["answered"] = 0
                    target.sendall(data)
                    continue
                answered = int(state["answered"])
                if (state["series"] and self.hold.is_set()
                        and not self.release.is_set()
                        and answered + len(data) > self.pass_bytes):
                    keep = max(self.pass_bytes - answered, 0)
                    target.sendall(data[:keep])
                    answered += keep
                    data = data[keep:]
                    self.held.set()
                    self.release.wait(self.hold_timeout_s)
                target.sendall(data)
                state["answered"] = answered + len(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._stop.set()
        self._thread.join(timeout=2)
        self.listener.close()


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

# Python that writes the CT head phantom to a folder with the RLE pixel data of
# slice CUT_SLICE cut to a third (as tests/viewerlib/volume/test_bad_slices.py cuts
# it): the volume keeps that slice in place, blank, in ``missing_slices``.
CUT_SLICE = 20
CUT_SLICE_SETUP = f"""\
import tempfile, warnings
from pathlib import Path
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import RLELossless
import viewerlib
from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume.volume import read_series
cut_folder = Path(tempfile.mkdtemp(prefix="lbx-cut-"))
for ds in ct_head_phantom("current").datasets:
    ds.compress(RLELossless)
    if ds.InstanceNumber == {CUT_SLICE} + 1:
        fragment = next(generate_frames(ds.PixelData, number_of_frames=1))
        ds.PixelData = encapsulate([fragment[: len(fragment) // 3]])
    ds.save_as(cut_folder / f"{{ds.InstanceNumber:03d}}.dcm", enforce_file_format=True)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the volume's warnings name the slice too
    cut = viewerlib.open(cut_folder)
    assert cut.missing_slices == [{CUT_SLICE}], cut.missing_slices
"""
