"""The Lightbox JupyterLab extension in Chromium: Studies panel, launcher, app view.

Two Orthanc archives (the current CT head phantom in one, the prior in the other) and
a third archive nobody serves, seen twice: by one JupyterLab set up as a radiologist's
server, and through a full hub (sign-on at the mock provider, per-role panels from
the hub's table, signed EHR launches opened by the server extension).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from e2e_support import ARTIFACTS
from lightbox_extensions.server.notebooks import read_template, viewer_notebook
from playwright.sync_api import Error as PlaywrightError
from widget_fixtures import JupyterLab

pytestmark = pytest.mark.browser

REPOSITORY = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    """An archive that is down: the widget tests' port nothing listens on."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viewerlib" / "widgets"))
    from widget_builders import closed_port

    return closed_port()


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

    def open_study(self, study_instance_uid: str, view: str) -> dict[str, str]:
        """``POST /lightbox/api/open``, as the hub's EHR launch calls it."""
        request = urllib.request.Request(
            self.url + "/lightbox/api/open",
            method="POST",
            data=json.dumps(
                {"study_instance_uid": study_instance_uid, "view": view}
            ).encode(),
            headers={
                "Authorization": f"token {self.token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            return dict(json.loads(reply.read()))

    def shut_down_kernels(self, timeout_s: float = 30) -> None:
        """End every session and kernel, tolerating kernels already stopping.

        Deleting a session stops its kernel. A kernel that is stopping already (its
        session's DELETE, or JupyterLab closing it) answers another DELETE with 404,
        or with 500 when the server's two shutdowns meet. What counts is that no
        session and no kernel is left: that is checked, and anything still there
        after ``timeout_s`` fails the test with the server's own answers.
        """
        refusals: list[str] = []

        def delete(path: str) -> None:
            try:
                self.api("DELETE", path)
            except urllib.error.HTTPError as err:
                if err.code not in (404, 500):
                    raise
                refusals.append(f"DELETE {path}: HTTP {err.code}")

        def left() -> list[str]:
            sessions = self.api_json("/api/sessions") or []
            kernels = self.api_json("/api/kernels") or []
            return [f"session {s['id']}" for s in sessions] + [
                f"kernel {k['id']}" for k in kernels
            ]

        deadline = time.monotonic() + timeout_s
        while True:
            for session in self.api_json("/api/sessions") or []:
                delete(f"/api/sessions/{session['id']}")
            for kernel in self.api_json("/api/kernels") or []:
                delete(f"/api/kernels/{kernel['id']}")
            remaining = left()
            if not remaining:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{', '.join(remaining)} still there {timeout_s} s after the "
                    f"shutdown; the server answered {refusals} (see "
                    f"{self.folder / 'jupyter.log'})"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            # A failed shutdown check must not leave the server running.
            if self.process is not None:
                self.process.terminate()
                self.process.wait(timeout=15)
                self.process = None


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
        uids[f"{kind}_accession"] = str(study.datasets[0].AccessionNumber)
        uids[f"{kind}_date"] = str(study.datasets[0].StudyDate)
        uids[f"{kind}_time"] = str(study.datasets[0].StudyTime)
        uids[f"{kind}_images"] = str(len(study.datasets))
        uids["patient_name"] = str(study.datasets[0].PatientName)
        uids["patient_id"] = str(study.datasets[0].PatientID)
    return uids


def _write_archives_file(path: Path, archives: dict[str, str]) -> Path:
    """North and South PACS (the two Orthanc servers) and a Closed PACS nobody serves."""
    entries = [
        ("North PACS", archives["north"]),
        ("South PACS", archives["south"]),
        ("Closed PACS", f"http://127.0.0.1:{_closed_port()}/dicom-web"),
    ]
    path.write_text(
        "".join(
            f'[[archive]]\nname = "{name}"\ntype = "dicomweb"\nurl = "{url}"\n'
            'quirks = "orthanc-1.10"\ntimeout_s = 3\nretries = 0\n\n'
            for name, url in entries
        )
    )
    return path


@pytest.fixture(scope="module")
def lab(
    tmp_path_factory: pytest.TempPathFactory, archives: dict[str, str]
) -> Iterator[LightboxLab]:
    folder = tmp_path_factory.mktemp("lightbox-lab")
    _write_archives_file(folder / "archives.toml", archives)
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


def _search_both_archives_and_open_as_an_app(
    page: Any, archives: dict[str, str]
) -> None:
    """In the Studies panel: health, a CT search over both archives, one-click open."""
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

    # What a clinician types: the patient's ID and the order's accession number.
    panel.locator("input[name='patient_id']").fill(archives["patient_id"])
    panel.locator("input[name='accession_number']").fill(archives["current_accession"])
    panel.locator("button.lbx-studies-search").click()
    page.wait_for_function(
        "(el) => el.querySelectorAll('.lbx-study').length === 1 && "
        "el.dataset.searching === 'false'",
        arg=panel.element_handle(),
        timeout=60_000,
    )
    found = panel.locator(".lbx-study")
    assert found.get_attribute("data-study-instance-uid") == archives["current"]
    # PS3.5 6.2 family^given, shown as the viewer's overlay shows it.
    family, given = archives["patient_name"].split("^")[:2]
    assert found.locator(".lbx-study-patient").inner_text() == (
        f"{family}, {given} ({archives['patient_id']})"
    )
    # Date and time, accession number, series and images tell alike studies apart.
    date, time_of_day = archives["current_date"], archives["current_time"]
    assert found.locator(".lbx-study-description").inner_text().startswith(
        f"{date[:4]}-{date[4:6]}-{date[6:8]} {time_of_day[:2]}:{time_of_day[2:4]}"
    )
    assert found.locator(".lbx-study-details").inner_text() == (
        f"Accession {archives['current_accession']} · 1 series · "
        f"{archives['current_images']} images"
    )
    panel.locator("input[name='patient_id']").fill("")
    panel.locator("input[name='accession_number']").fill("")

    # Several modalities as DICOM writes them (a backslash): either one matches.
    panel.locator("input[name='modality']").fill("CT\\MR")
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
    assert f"Accession {archives['prior_accession']}" in studies[archives["prior"]]
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
    overlay = viewer.locator(".lbx-tl").inner_text()
    assert "CT HEAD" in overlay
    # The panel and the viewer show the patient's name the same way.
    assert f"{family}, {given}" in overlay
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


def test_studies_panel_searches_both_archives_and_opens_a_study_as_an_app(
    page: Any, lab: LightboxLab, archives: dict[str, str]
) -> None:
    _open_lab(page, lab)
    _search_both_archives_and_open_as_an_app(page, archives)

    # The server's log holds neither the search terms nor the studies' UIDs.
    log = (lab.folder / "jupyter.log").read_text()
    for secret in (
        archives["patient_id"],
        archives["current_accession"],
        archives["current"],
    ):
        assert secret not in log, secret


def test_studies_panel_says_which_archive_is_down_when_none_answers(
    page: Any, lab: LightboxLab
) -> None:
    archives_file = lab.folder / "archives.toml"
    everything = archives_file.read_text()
    # The server reads the archives file at every request: leave only Closed PACS.
    closed = everything[everything.index('[[archive]]\nname = "Closed PACS"') :]
    archives_file.write_text(closed)
    try:
        _open_lab(page, lab)
        page.locator(".lm-TabBar-tab[data-id='lightbox-studies']").click()
        panel = page.locator("#lightbox-studies")
        panel.locator(
            ".lbx-archive[data-archive='Closed PACS'][data-state='down']"
        ).wait_for(timeout=30_000)
        panel.locator("input[name='modality']").fill("CT")
        panel.locator("button.lbx-studies-search").click()
        page.wait_for_function(
            "(el) => el.dataset.searching === 'false'",
            arg=panel.element_handle(),
            timeout=60_000,
        )
        message = panel.locator(".lbx-studies-message")
        text = message.inner_text()
    finally:
        archives_file.write_text(everything)

    # The server's words, as they are: which archive, and what to do.
    assert text.startswith("Nothing could be searched: Closed PACS is not reachable")
    assert "search again in a few minutes" in text
    assert "Internal Server Error" not in text and "failed" not in text
    assert message.get_attribute("data-kind") == "error"
    assert panel.locator(".lbx-study").count() == 0
    assert [
        row.get_attribute("data-archive") for row in panel.locator(".lbx-archive").all()
    ] == ["Closed PACS"]


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


def test_viewer_notebook_of_the_launch_folder_runs_when_it_opens(
    page: Any, lab: LightboxLab, archives: dict[str, str]
) -> None:
    # What the hub's EHR launch does for a role without the app view.
    opened = lab.open_study(archives["prior"], view="notebook")
    assert opened["path"].startswith("ehr-launch/study-")

    _open_lab(page, lab, opened["path"])

    # Nobody presses Run All: the launch folder's notebooks run as they open.
    viewer = _wait_for_painted_viewer(page, ".jp-NotebookPanel")
    assert "CT HEAD" in viewer.locator(".lbx-tl").inner_text()
    # Not marked as an app: its code stays readable.
    assert page.locator(".jp-NotebookPanel.lbx-app-view").count() == 0
    assert page.locator(".jp-CodeCell .cm-content:visible").count() >= 1


def test_show_as_app_command_hides_the_code_of_any_notebook(
    page: Any, lab: LightboxLab, archives: dict[str, str]
) -> None:
    notebook = viewer_notebook(read_template(""), archives["current"], app_view=False)
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


# -- The same extension in a full hub session: sign-on, role panels, EHR launch ------


class _Hub:
    """The hub with the mock identity provider and the archives of this module."""

    def __init__(self, hub: Any, identity_provider: Any) -> None:
        self.hub, self.identity_provider = hub, identity_provider
        self.url = hub.url

    def api(self, path: str, method: str = "GET") -> Any:
        """The hub's REST API (``/hub/api``) as the operator service."""
        request = urllib.request.Request(
            self.url + "/hub/api" + path,
            method=method,
            headers={"Authorization": f"token {self.hub.operator_token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def server_of(self, user: str) -> dict[str, Any] | None:
        return self.api(f"/users/{user}")["servers"].get("")

    def user_server_api(self, user: str, path: str) -> Any:
        """The user's Jupyter server API, through the proxy, as the operator."""
        request = urllib.request.Request(
            f"{self.url}/user/{user}/api{path}",
            headers={"Authorization": f"token {self.hub.operator_token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())

    def stop_server(self, user: str) -> None:
        try:
            self.api(f"/users/{user}/server", "DELETE")
        except urllib.error.HTTPError as err:
            if err.code == 404:  # the user never signed in
                return
            if err.code != 400:  # 400: no server running
                raise
        deadline = time.monotonic() + 30
        while self.server_of(user) and time.monotonic() < deadline:
            time.sleep(0.3)

    def launch_link(self, context: dict[str, str]) -> str:
        from lightbox_hub.launch import launch_url, sign_launch

        params = sign_launch(context, secret=self.hub.launch_secret.encode())
        return launch_url(self.url, params)


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, archives: dict[str, str]
) -> Iterator[_Hub]:
    from lightbox_hub.embedded.hub import EmbeddedHub
    from lightbox_hub.embedded.idp import EmbeddedIdentityProvider

    folder = tmp_path_factory.mktemp("lightbox-hub")
    archives_file = _write_archives_file(folder / "archives.toml", archives)
    identity_provider = EmbeddedIdentityProvider(folder / "idp").start()
    try:
        embedded = EmbeddedHub(
            folder / "hub", identity_provider.issuer, archives_file
        ).start()
    except BaseException:
        identity_provider.stop()
        raise
    yield _Hub(embedded, identity_provider)
    embedded.stop()
    identity_provider.stop()


@pytest.fixture
def hub_page(browser: Any, hub: _Hub, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"extensions-{request.node.name}.png"))
        except PlaywrightError:
            pass
        context.close()
        for user in ("radiologist", "security-admin"):
            hub.stop_server(user)


def _sign_in_to_a_fresh_workspace(page: Any, hub: _Hub, user: str) -> None:
    """Sign on at the mock provider, then open an empty workspace (the launcher)."""
    from test_radiologist_first_study import sign_in

    sign_in(page, hub.url, user)
    page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=120_000)
    workspace = "w" + secrets.token_hex(4)
    page.goto(f"{hub.url}/user/{user}/lab/workspaces/{workspace}?reset")
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)


@pytest.mark.parametrize(
    ("user", "role_title", "sees_studies"),
    [
        ("radiologist", "Radiologist", True),
        ("security-admin", "Security administrator", False),
    ],
    ids=["radiologist-sees-studies", "security-admin-does-not"],
)
def test_hub_shows_the_studies_panel_only_to_roles_that_have_it(
    hub_page: Any, hub: _Hub, user: str, role_title: str, sees_studies: bool
) -> None:
    from lightbox_hub.settings import ALL_PANELS, ROLE_PANELS

    # The expectation comes from the hub's table, the outcome from the page.
    assert ("studies" in ROLE_PANELS.get(user, ALL_PANELS)) is sees_studies
    page = hub_page
    _sign_in_to_a_fresh_workspace(page, hub, user)

    # The launcher cards come from the same settings request as the panels, so
    # once they show, the Studies panel has been added or left out.
    page.locator(".jp-Launcher-section").filter(
        has_text=f"Lightbox: {role_title}"
    ).wait_for(timeout=60_000)
    tab = page.locator(".lm-TabBar-tab[data-id='lightbox-studies']")
    assert tab.count() == (1 if sees_studies else 0)
    assert page.locator("#lightbox-studies").count() == (1 if sees_studies else 0)
    if sees_studies:
        tab.click()
        page.locator("#lightbox-studies .lbx-archive").first.wait_for(timeout=30_000)


def test_hub_studies_panel_searches_two_archives_and_opens_a_study(
    hub_page: Any, hub: _Hub, archives: dict[str, str]
) -> None:
    _sign_in_to_a_fresh_workspace(hub_page, hub, "radiologist")
    _search_both_archives_and_open_as_an_app(hub_page, archives)

    # jupyterhub-singleuser logs every request at INFO into the hub's log: the
    # searches and thumbnails are there, their query strings are not.
    log = (hub.hub.directory / "jupyterhub.log").read_text()
    assert "/user/radiologist/lightbox/api/search?[scrubbed]" in log
    for secret in (
        archives["patient_id"],
        archives["current_accession"],
        archives["current"],
        archives["prior"],
    ):
        assert secret not in log, secret


def test_hub_launch_opens_the_study_through_the_extension_and_switches_studies(
    hub_page: Any, hub: _Hub, archives: dict[str, str]
) -> None:
    from viewerlib.samples.phantom import ISSUER_OF_PATIENT_ID, PATIENT_ID

    page, user = hub_page, "radiologist"
    _sign_in_to_a_fresh_workspace(page, hub, user)
    home = hub.hub.directory / "homes" / user
    launch_url = re.compile(rf".*/user/{user}/lab/tree/ehr-launch/study-\w+\.ipynb$")
    context = {"pid": PATIENT_ID, "iss": ISSUER_OF_PATIENT_ID}

    page.goto(hub.launch_link(dict(context, suid=archives["current"])))
    page.wait_for_url(launch_url, timeout=90_000)
    first = page.url.split("/lab/tree/")[1]
    # The extension's template, in the app view (the radiologist has it): it runs
    # by itself and shows no code.
    viewer = _wait_for_painted_viewer(page, ".jp-NotebookPanel.lbx-app-view")
    assert "CT HEAD" in viewer.locator(".lbx-tl").inner_text()
    assert page.locator(".cm-content:visible").count() == 0
    notebook = json.loads((home / first).read_text())
    assert notebook["metadata"]["lightbox"]["kind"] == "study-viewer"
    server = hub.server_of(user)
    assert server is not None
    started_pid = server["state"]["pid"]
    # The launch is not a start option of the server (it would come back later).
    assert server["user_options"] == {}
    assert archives["current"] not in json.dumps(server)

    # A second launch: the running server switches to the other study.
    page.goto(hub.launch_link(dict(context, suid=archives["prior"])))
    page.wait_for_url(launch_url, timeout=90_000)
    second = page.url.split("/lab/tree/")[1]
    assert second != first
    _wait_for_painted_viewer(page, ".jp-NotebookPanel.lbx-app-view")
    code = "".join(
        "".join(cell["source"])
        for cell in json.loads((home / second).read_text())["cells"]
        if cell["cell_type"] == "code"
    )
    assert archives["prior"] in code and archives["current"] not in code
    assert not (home / first).exists()
    server = hub.server_of(user)
    assert server is not None and server["state"]["pid"] == started_pid
    assert server["user_options"] == {}
    # The first study's kernel was shut down; the second one's runs.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        paths = {s["path"] for s in hub.user_server_api(user, "/sessions")}
        if first not in paths:
            break
        time.sleep(0.5)
    assert first not in paths and second in paths, paths

    # Neither the hub's log (which holds the user server's too) nor the audit
    # names the patient; the launch context never travelled in a URL it logged.
    log = (hub.hub.directory / "jupyterhub.log").read_text()
    audit = (hub.hub.directory / "audit.jsonl").read_text()
    for secret in (PATIENT_ID, "ctx="):
        assert secret not in log, secret
        assert secret not in audit, secret
    opened = [
        json.loads(line)
        for line in audit.splitlines()
        if '"launch"' in line and user in line
    ]
    assert [r["study_instance_uid"] for r in opened if r["outcome"] == "opened"] == [
        archives["current"],
        archives["prior"],
    ]
