"""Presenter mode under the real hub: a project lead presents, a radiologist follows.

Both sign in through the identity provider in their own browser context and work in
their own single-user server. The kernels reach the relay service with their hub
tokens; the relay asks the hub who each token belongs to, so the radiologist cannot
take the session over, and a request without a valid hub token is refused.
"""
from __future__ import annotations

import json
import re
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from test_radiologist_first_study import sign_in

from lightbox_hub.demo import EmbeddedDefault

pytestmark = [pytest.mark.browser, pytest.mark.orthanc]

SESSION = "lunch-1"
NOTEBOOK = "presenter-hub.ipynb"
STACK = ".jp-NotebookPanel:visible .jp-OutputArea .lbx-stack"
IDLE = re.compile(r"Python 3 \(ipykernel\) \| Idle")

LEAD_CELLS = [
    "import viewerlib\nfrom viewerlib.teaching import presenter",
    # Test^Case's current study: the latest of patient LBX-0001.
    "study = max(viewerlib.connect().search_for_studies(patient_id='LBX-0001'),\n"
    "            key=lambda s: s.StudyDate)\nviewer = viewerlib.open(study)\n"
    f"talk = presenter.present(viewer, {SESSION!r})\nviewer",
]
ATTENDEE_CELLS = [
    "from viewerlib.teaching import presenter",
    f"viewer, following = presenter.join({SESSION!r})\nviewer",
    # The attendee tries to present the same session: the relay says no.
    "try:\n"
    f"    presenter.present(viewer, {SESSION!r})\n"
    "    outcome = 'took over'\n"
    "except presenter.PresenterError as err:\n"
    "    outcome = str(err)\n"
    "print('takeover:', outcome, '| presenter:', following.presenter)",
]


class _Workspace:
    """One user's JupyterLab under the hub, driven through the user's own pages."""

    def __init__(self, context: Any, hub_url: str, user: str) -> None:
        self.context, self.user = context, user
        self.base = f"{hub_url}/user/{user}"
        self.page = context.new_page()

    def _xsrf(self) -> dict[str, str]:
        cookies = self.context.cookies(self.base + "/")
        token = next((c["value"] for c in cookies if c["name"] == "_xsrf"), "")
        return {"X-XSRFToken": token}

    def api(self, method: str, path: str, body: object | None = None) -> Any:
        """The server's REST API with the page's cookies, as JupyterLab calls it."""
        response = self.page.request.fetch(
            self.base + "/api" + path, method=method, headers=self._xsrf(),
            data=json.dumps(body) if body is not None else None)
        assert response.ok, (method, path, response.status, response.text())
        text = response.text()
        return json.loads(text) if text else None

    def write(self, cells: list[str]) -> None:
        notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {},
                       "source": source, "outputs": [], "execution_count": None}
                      for i, source in enumerate(cells)]}
        self.api("PUT", f"/contents/{NOTEBOOK}",
                 {"type": "notebook", "format": "json", "content": notebook})

    def open_and_run(self) -> None:
        page = self.page
        # A fresh workspace, so the role's lesson is not open beside our notebook.
        page.goto(f"{self.base}/lab/workspaces/w{secrets.token_hex(4)}/tree/"
                  f"{NOTEBOOK}?reset")
        page.wait_for_selector(".jp-NotebookPanel:visible .jp-CodeCell",
                               timeout=60_000)
        page.get_by_text(IDLE).wait_for(timeout=60_000)
        page.get_by_text("Run", exact=True).first.click()
        page.get_by_text("Run All Cells", exact=True).click()
        page.wait_for_selector(f"{STACK}[data-painted='true']", timeout=60_000)

    def shut_down_kernel(self) -> None:
        for session in self.api("GET", "/sessions") or []:
            if session["path"].endswith(NOTEBOOK):
                self.api("DELETE", f"/sessions/{session['id']}")

    def reopen(self) -> None:
        self.page.close()
        self.page = self.context.new_page()


def _view(page: Any) -> dict[str, str]:
    return page.eval_on_selector(STACK, """(e) => ({slice: e.dataset.sliceIndex,
        center: e.dataset.windowCenter, width: e.dataset.windowWidth,
        overlay: e.querySelector('.lbx-bl').textContent})""")


def _follows(page: Any, expected: dict[str, str], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if _view(page) == expected:
                return True
        except Exception:  # noqa: BLE001 - the output is being re-rendered
            pass
        page.wait_for_timeout(200)
    return False


def _status_with_token(url: str, token: str | None) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as err:
        err.close()
        return err.code


def test_radiologist_follows_the_project_lead_through_the_hub(
        browser, embedded_default: EmbeddedDefault, artifacts: Path) -> None:
    assert embedded_default.hub is not None
    hub_url = embedded_default.hub.url
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900})
                for _ in range(2)]
    lead = _Workspace(contexts[0], hub_url, "project-lead")
    attendee = _Workspace(contexts[1], hub_url, "radiologist")
    try:
        # Both sign in before either waits: the two servers spawn side by side.
        sign_in(lead.page, hub_url, "project-lead")
        sign_in(attendee.page, hub_url, "radiologist")
        for workspace in (lead, attendee):
            workspace.page.wait_for_url(re.compile(
                rf".*/user/{workspace.user}/lab.*"), timeout=90_000)

        lead.write(LEAD_CELLS)
        lead.open_and_run()
        attendee.write(ATTENDEE_CELLS)
        attendee.open_and_run()
        assert _follows(attendee.page, _view(lead.page))

        # Presenting is the project lead's: the hub says who each token belongs to.
        result = attendee.page.locator(
            ".jp-NotebookPanel:visible .jp-OutputArea-output:has-text('takeover:')")
        result.wait_for(timeout=30_000)
        text = result.inner_text()
        assert "HTTP 403" in text and "presented by project-lead" in text, text
        assert "presenter: project-lead" in text, text

        # The lead scrolls with the keyboard and windows with a drag.
        stack = lead.page.locator(STACK)
        stack.click()
        for _ in range(4):
            lead.page.keyboard.press("ArrowUp")
        box = stack.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        lead.page.mouse.move(x, y)
        lead.page.mouse.down()
        lead.page.mouse.move(x + 60, y + 20, steps=6)
        lead.page.mouse.up()
        lead.page.wait_for_timeout(500)
        moved = _view(lead.page)
        assert _follows(attendee.page, moved), (moved, _view(attendee.page))
        lead.page.screenshot(path=str(artifacts / "presenter-hub-lead.png"))
        attendee.page.screenshot(path=str(artifacts / "presenter-hub-radiologist.png"))

        # The radiologist leaves (kernel shut down); the lead goes on meanwhile.
        attendee.shut_down_kernel()
        attendee.reopen()
        lead.page.locator(STACK).click()
        for _ in range(3):
            lead.page.keyboard.press("ArrowDown")
        lead.page.wait_for_timeout(500)
        now = _view(lead.page)
        assert now["slice"] != moved["slice"]

        # Rejoining in a new kernel lands on the lead's current view at once.
        attendee.open_and_run()
        assert _follows(attendee.page, now), (now, _view(attendee.page))
        attendee.page.screenshot(
            path=str(artifacts / "presenter-hub-radiologist-rejoined.png"))

        # Without a user's hub token the relay answers nobody.
        relay = f"{hub_url}/services/presenter/sessions/{SESSION}"
        assert _status_with_token(relay, None) == 401
        assert _status_with_token(relay, secrets.token_hex(16)) == 403
        # A hub service's token is genuine but names no user: refused as well.
        assert _status_with_token(
            relay, embedded_default.hub.operator_token) == 403
    except Exception:
        for workspace in (lead, attendee):
            workspace.page.screenshot(
                path=str(artifacts / f"presenter-hub-{workspace.user}-FAILED.png"))
        raise
    finally:
        for context in contexts:
            context.close()
