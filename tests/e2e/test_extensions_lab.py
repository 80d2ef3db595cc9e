"""The Lightbox JupyterLab extension in Chromium: Studies panel, launcher, app view.

One JupyterLab for the module, with two Orthanc archives (the current CT head phantom
in one, the prior in the other) and a third archive nobody serves, as a radiologist's
server sees them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from conftest import ARTIFACTS
from lightbox_hub.handlers import launch_notebook
from playwright.sync_api import Error as PlaywrightError
from widget_fixtures import JupyterLab

pytestmark = pytest.mark.browser

REPOSITORY = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LightboxLab(JupyterLab):
    """The widget tests' JupyterLab, with the environment the hub gives a user."""

    def __init__(self, folder: Path, environment: dict[str, str]) -> None:
        super().__init__(folder)
        self.environment = environment

    def start(self) -> LightboxLab:
        # The server (and its kernels) inherit these; this process keeps its own.
        with mock.patch.dict(os.environ, self.environment):
            super().start()
        return self

    def api_json(self, path: str) -> Any:
        return self.api("GET", path)


@pytest.fixture(scope="module")
def archives(orthanc_factory: Any) -> dict[str, str]:
    from viewerlib.samples.phantom import ct_head_phantom

    uids = {}
    for name, kind in (("north", "current"), ("south", "prior")):
        study = ct_head_phantom(kind, rows=96, columns=96, number_of_slices=12)
        server = orthanc_factory(name).start()
        server.load_datasets(study.datasets)
        uids[kind] = study.study_instance_uid
        uids[name] = server.dicomweb_url
    return uids


@pytest.fixture(scope="module")
def lab(
    tmp_path_factory: pytest.TempPathFactory, archives: dict[str, str]
) -> Iterator[LightboxLab]:
    folder = tmp_path_factory.mktemp("lightbox-lab")
    entries = [
        ("North PACS", archives["north"]),
        ("South PACS", archives["south"]),
        ("Closed PACS", f"http://127.0.0.1:{_closed_port()}/dicom-web"),
    ]
    text = "".join(
        f'[[archive]]\nname = "{name}"\ntype = "dicomweb"\nurl = "{url}"\n'
        'quirks = "orthanc-1.10"\ntimeout_s = 3\nretries = 0\n\n'
        for name, url in entries
    )
    (folder / "archives.toml").write_text(text)
    server = LightboxLab(
        folder,
        {
            "LIGHTBOX_ARCHIVES": str(folder / "archives.toml"),
            "LIGHTBOX_ROLE": "radiologist",
            "LIGHTBOX_PANELS": "studies,launcher,app-view",
        },
    )
    shutil.copytree(
        REPOSITORY / "notebooks" / "radiologist", server.root / "radiologist"
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def page(
    browser: Any, lab: LightboxLab, request: pytest.FixtureRequest
) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        yield page
    finally:
        # The last view of every test, for the review (and for a failure).
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"extensions-{request.node.name}.png"))
        except PlaywrightError:
            pass
        context.close()
        lab.shut_down_kernels()


def _open_lab(page: Any, lab: LightboxLab, tree: str = "") -> None:
    workspace = "w" + secrets.token_hex(4)
    suffix = f"/tree/{tree}" if tree else ""
    page.goto(f"{lab.url}/lab/workspaces/{workspace}{suffix}?reset&token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)


def _accept_kernel_dialog(page: Any) -> None:
    button = page.locator(".jp-Dialog button:has-text('Select')")
    if button.count():
        try:
            button.first.click(timeout=1_000)
        except PlaywrightError:
            pass


def _wait_for_painted_viewer(page: Any, scope: str, timeout_s: float = 120) -> Any:
    viewer = page.locator(f"{scope} .lbx-stack[data-painted='true']").first
    for _ in range(int(timeout_s * 2)):
        _accept_kernel_dialog(page)
        if viewer.count():
            return viewer
        page.wait_for_timeout(500)
    raise AssertionError(f"no painted viewer in {scope} after {timeout_s} s")


def test_studies_panel_searches_both_archives_and_opens_a_study_as_an_app(
    page: Any, lab: LightboxLab, archives: dict[str, str]
) -> None:
    _open_lab(page, lab)
    page.locator(".lm-TabBar-tab[data-id='lightbox-studies']").click()
    panel = page.locator("#lightbox-studies")

    # Health first: two archives answer, the third is down and the panel says so.
    panel.locator(
        ".lbx-archive[data-archive='Closed PACS'][data-state='down']"
    ).wait_for(timeout=30_000)
    for name in ("North PACS", "South PACS"):
        row = panel.locator(f".lbx-archive[data-archive='{name}']")
        assert row.get_attribute("data-state") in {"ok", "slow"}
        assert re.search(r"\d+ ms", row.inner_text())
    assert (
        "Not reachable now: Closed PACS"
        in panel.locator(".lbx-studies-message").inner_text()
    )

    panel.locator("input[name='modality']").fill("CT")
    panel.locator("button.lbx-studies-search").click()
    page.wait_for_function(
        "(el) => el.querySelectorAll('.lbx-study').length === 2 && "
        "el.dataset.searching === 'false'",
        arg=panel.element_handle(),
        timeout=60_000,
    )
    studies = {
        item.get_attribute("data-study-instance-uid"): item.inner_text()
        for item in panel.locator(".lbx-study").all()
    }
    assert "in North PACS" in studies[archives["current"]]
    assert "in South PACS" in studies[archives["prior"]]
    message = panel.locator(".lbx-studies-message").inner_text()
    assert message.startswith("2 studies") and "Closed PACS" in message
    page.wait_for_function(
        "(el) => el.querySelectorAll('img[data-loaded=true]').length === 2",
        arg=panel.element_handle(),
        timeout=60_000,
    )

    current = panel.locator(
        f".lbx-study[data-study-instance-uid='{archives['current']}']"
    )
    current.locator("button.lbx-study-open").click()

    # The app view: the viewer runs by itself, and no code is shown.
    notebook = ".jp-NotebookPanel.lbx-app-view"
    viewer = _wait_for_painted_viewer(page, notebook)
    assert "CT HEAD" in viewer.locator(".lbx-tl").inner_text()
    app = page.locator(notebook).first
    assert app.locator(".jp-CodeCell").count() >= 1
    assert app.locator(".jp-CodeCell .jp-Cell-inputWrapper:visible").count() == 0
    assert app.locator(".cm-content:visible").count() == 0
    assert not [
        node for node in app.get_by_text("viewerlib.open").all() if node.is_visible()
    ]
    assert page.locator("#main").get_attribute("data-shell-mode") == "single-document"
    page.wait_for_function(
        "(el) => el.dataset.lightboxRun === 'ran'",
        arg=app.element_handle(),
        timeout=60_000,
    )


def test_launcher_shows_the_lessons_of_the_role(page: Any, lab: LightboxLab) -> None:
    config = lab.api_json("/lightbox/api/config")
    assert config["role"] == "radiologist"

    _open_lab(page, lab)
    section = page.locator(".jp-Launcher-section").filter(
        has_text="Lightbox: Radiologist"
    )
    section.wait_for(timeout=60_000)
    cards = section.locator(".jp-LauncherCard")
    labels = [
        card.locator(".jp-LauncherCard-label").inner_text() for card in cards.all()
    ]
    assert labels == [lesson["title"] for lesson in config["lessons"]]
    assert len(labels) == 3

    cards.first.click()
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=60_000)
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    assert tab.inner_text().strip().startswith("01-first-study.ipynb")


def test_hub_launch_notebook_runs_when_it_opens(
    page: Any, lab: LightboxLab, archives: dict[str, str]
) -> None:
    folder = lab.root / "ehr-launch"
    folder.mkdir(exist_ok=True)
    name = f"study-{secrets.token_hex(4)}.ipynb"
    (folder / name).write_text(json.dumps(launch_notebook(archives["prior"])))

    _open_lab(page, lab, f"ehr-launch/{name}")

    # Nobody presses Run All: the launch folder's notebooks run as they open.
    viewer = _wait_for_painted_viewer(page, ".jp-NotebookPanel")
    assert "CT HEAD" in viewer.locator(".lbx-tl").inner_text()
    # The hub's notebook is not marked as an app: its code stays readable.
    assert page.locator(".jp-NotebookPanel.lbx-app-view").count() == 0
    assert page.locator(".jp-CodeCell .cm-content:visible").count() >= 1


def test_show_as_app_command_hides_the_code_of_any_notebook(
    page: Any, lab: LightboxLab, archives: dict[str, str]
) -> None:
    notebook = launch_notebook(archives["current"])
    (lab.root / "my-viewer.ipynb").write_text(json.dumps(notebook))
    _open_lab(page, lab, "my-viewer.ipynb")
    page.locator(".jp-NotebookPanel .jp-CodeCell .cm-content").first.wait_for(
        timeout=60_000
    )
    assert page.locator(".jp-NotebookPanel.lbx-app-view").count() == 0

    # The notebook's context menu offers the command (so does the palette).
    page.locator(".jp-NotebookPanel .jp-CodeCell").first.click(button="right")
    page.locator(".lm-Menu-item:visible").filter(
        has_text="Show as app (hide code, run all)"
    ).first.click()

    viewer = _wait_for_painted_viewer(page, ".jp-NotebookPanel.lbx-app-view")
    assert "CT HEAD" in viewer.locator(".lbx-tl").inner_text()
    assert page.locator(".jp-NotebookPanel .cm-content:visible").count() == 0
