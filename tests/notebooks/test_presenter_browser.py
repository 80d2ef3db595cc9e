"""Presenter mode in a real browser: two notebooks, one leads, one follows.

One ``jupyter lab`` on loopback serves two pages in Debian's Chromium. The presenter
page scrolls and windows its viewer with the keyboard and mouse; the follower page's
viewer must show the same slice (``.lbx-stack[data-slice-index]``) and window. The
follower then leaves (its page closed, its kernel shut down) while the presenter
moves on, and on rejoining lands on the presenter's current slice.
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
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightbox_extensions.presenter.relay import PresenterRelay, RelayServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SESSION = "browser-1"
STACK = ".jp-OutputArea .lbx-stack"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Lab:
    """A ``jupyter lab`` on 127.0.0.1 for this test module, stopped by its PID."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.root = folder, folder / "notebooks"
        self.root.mkdir(parents=True)
        self.token, self.port = secrets.token_hex(16), _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        arguments = [sys.executable, "-m", "jupyterlab", "--no-browser",
                     "--ip=127.0.0.1", f"--port={self.port}",
                     f"--ServerApp.root_dir={self.root}",
                     f"--IdentityProvider.token={self.token}",
                     "--LabApp.news_url=None",
                     "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            arguments.append("--allow-root")
        full_env = dict(os.environ, HOME=str(folder),
                        JUPYTER_CONFIG_DIR=str(folder / "config"),
                        JUPYTER_RUNTIME_DIR=str(folder / "runtime"), **env)
        self.log = (folder / "jupyter.log").open("wb")
        self.process = subprocess.Popen(arguments, env=full_env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.api("GET", "/api/status")
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter lab did not start; see {folder}")
                time.sleep(0.3)

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(self.url + path, method=method, headers={
            "Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def write(self, name: str, cells: list[str]) -> None:
        notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {},
                       "source": s, "outputs": [], "execution_count": None}
                      for i, s in enumerate(cells)]}
        (self.root / name).write_text(json.dumps(notebook), encoding="utf-8")

    def shut_down(self, name: str) -> None:
        """End the kernel of notebook ``name``: the attendee has left."""
        sessions = self.api("GET", "/api/sessions") or []
        for session in sessions:  # type: ignore[union-attr]
            if session["path"].endswith(name):
                self.api("DELETE", f"/api/sessions/{session['id']}")

    def open_and_run(self, page, name: str) -> None:
        page.goto(f"{self.url}/lab/workspaces/w{secrets.token_hex(4)}/tree/{name}"
                  f"?reset&token={self.token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=60_000)
        idle = page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle"))
        deadline = time.monotonic() + 60
        while not idle.count() and time.monotonic() < deadline:
            for selector in (".jp-Dialog button:has-text('Select')",
                             ".jp-toast-button:has-text('No')"):
                button = page.locator(selector)
                if button.count():
                    try:
                        button.first.click(timeout=1_000)
                    except Exception:  # noqa: BLE001 - a toast that slid away
                        pass
            page.wait_for_timeout(250)
        page.get_by_text("Run", exact=True).first.click()
        page.get_by_text("Run All Cells", exact=True).click()
        page.wait_for_selector(f"{STACK}[data-painted='true']", timeout=120_000)

    def stop(self) -> None:
        try:
            sessions = self.api("GET", "/api/sessions") or []
            for session in sessions:  # type: ignore[union-attr]
                self.api("DELETE", f"/api/sessions/{session['id']}")
        except OSError:
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.log.close()


@pytest.fixture(scope="module")
def relay() -> Iterator[RelayServer]:
    server = PresenterRelay(long_poll_s=10.0).serve(port=0)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, relay: RelayServer, demo_archives_file: Path
        ) -> Iterator[_Lab]:
    lab = _Lab(tmp_path_factory.mktemp("presenter-lab"), {
        "LIGHTBOX_PRESENTER_URL": relay.url,
        "LIGHTBOX_ARCHIVES": str(demo_archives_file)})
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def chromium(browser) -> object:
    return browser


PRESENTER_CELLS = [
    "import viewerlib\nfrom viewerlib.teaching import presenter",
    "study = max(viewerlib.connect().search_for_studies(patient_id='LBX-0001'),\n"
    "            key=lambda s: s.StudyDate)\nviewer = viewerlib.open(study)\n"
    f"talk = presenter.present(viewer, {SESSION!r}, user='lead')\nviewer",
]
FOLLOWER_CELLS = [
    "from viewerlib.teaching import presenter",
    f"viewer, following = presenter.join({SESSION!r}, user='ann')\nviewer",
]


def _stack_state(page) -> dict[str, str]:
    return page.eval_on_selector(STACK, "(e) => ({slice: e.dataset.sliceIndex, "
                                 "center: e.dataset.windowCenter, "
                                 "width: e.dataset.windowWidth})")


def _same_view(follower, expected: dict[str, str], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if _stack_state(follower) == expected:
                return True
        except Exception:  # noqa: BLE001 - the viewer is being re-rendered
            pass
        follower.wait_for_timeout(200)
    return False


@pytest.mark.orthanc
@pytest.mark.browser
def test_follower_shows_the_presenters_slice_and_rejoins_on_it(lab: _Lab, chromium,
                                                               ) -> None:
    lab.write("presenter.ipynb", PRESENTER_CELLS)
    lab.write("follower.ipynb", FOLLOWER_CELLS)
    lead = chromium.new_page(viewport={"width": 1280, "height": 900})
    lab.open_and_run(lead, "presenter.ipynb")
    attendee = chromium.new_page(viewport={"width": 1280, "height": 900})
    lab.open_and_run(attendee, "follower.ipynb")
    assert _same_view(attendee, _stack_state(lead))

    # The presenter scrolls with the keyboard and windows with a drag.
    stack = lead.locator(STACK)
    stack.click()
    for _ in range(4):
        lead.keyboard.press("ArrowUp")
    box = stack.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    lead.mouse.move(x, y)
    lead.mouse.down()
    lead.mouse.move(x + 60, y + 20, steps=6)
    lead.mouse.up()
    lead.wait_for_timeout(500)
    moved = _stack_state(lead)
    assert _same_view(attendee, moved), (moved, _stack_state(attendee))
    ARTIFACTS.mkdir(exist_ok=True)
    attendee.screenshot(path=str(ARTIFACTS / "presenter-follower.png"))

    # The attendee leaves; the presenter goes on without them.
    attendee.close()
    lab.shut_down("follower.ipynb")
    lead.locator(STACK).click()
    for _ in range(3):
        lead.keyboard.press("ArrowDown")
    lead.wait_for_timeout(500)
    now = _stack_state(lead)
    assert now["slice"] != moved["slice"]

    # Rejoining: a new kernel, and the viewer opens on the presenter's current view.
    again = chromium.new_page(viewport={"width": 1280, "height": 900})
    lab.open_and_run(again, "follower.ipynb")
    assert _same_view(again, now), (now, _stack_state(again))
    again.screenshot(path=str(ARTIFACTS / "presenter-rejoined.png"))
    again.close()
    lead.close()
