"""The hub session end to end: single sign-on, EHR launch, logout, audit, in Chromium.

Runs against the embedded default with the npm ``oidc-provider`` (passwords and a
login session) and the real Orthanc archive.
"""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom.data
import pytest

from e2e_support import cache_entry_keys, files_holding, persistent_context
from lightbox_hub.audit import AuditLog
from lightbox_hub.demo import EmbeddedDefault
from lightbox_hub.embedded.node_idp import node_idp_missing
from lightbox_hub.embedded.orthanc import orthanc_missing
from lightbox_hub.launch import launch_url, sign_launch
from lightbox_hub.roles import JOB_ROLES
from viewerlib.samples.phantom import ISSUER_OF_PATIENT_ID, PATIENT_ID, PATIENT_NAME

pytestmark = [pytest.mark.browser, pytest.mark.orthanc]

CURRENT_CT = {"pid": PATIENT_ID, "iss": ISSUER_OF_PATIENT_ID, "acc": "LBXACC01"}
_CT_SMALL = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
# pydicom's CT_small is only in the clinical demo archive, not the teaching one.
CLINICAL_ONLY = {"pid": str(_CT_SMALL.PatientID), "iss": "PYDICOM",
                 "suid": str(_CT_SMALL.StudyInstanceUID)}


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    for missing in (orthanc_missing(), node_idp_missing()):
        if missing:
            if __import__("os").environ.get("CI"):
                pytest.fail(missing)
            pytest.skip(missing)
    demo = EmbeddedDefault(tmp_path_factory.mktemp("sso"), load_extra_data=False,
                           identity_provider_kind="node").start()
    yield demo
    demo.stop()


def operator(demo: EmbeddedDefault, path: str, method: str = "GET") -> Any:
    assert demo.hub is not None
    request = urllib.request.Request(
        demo.hub.url + "/hub/api" + path, method=method,
        headers={"Authorization": f"token {demo.hub.operator_token}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        raw = reply.read()
    return json.loads(raw) if raw else None


def server_of(demo: EmbeddedDefault, user: str) -> dict[str, Any] | None:
    return operator(demo, f"/users/{user}")["servers"].get("")


def link(demo: EmbeddedDefault, context: dict[str, str], **options: Any) -> str:
    assert demo.hub is not None
    params = sign_launch(context, secret=demo.hub.launch_secret.encode(), **options)
    return launch_url(demo.hub.url, params)


def password_sign_in(page: Any, demo: EmbeddedDefault, user: str) -> None:
    """At the provider's form: user name and password, then Sign in."""
    assert demo.identity_provider is not None
    page.wait_for_url(re.compile(r".*/interaction/.*"), timeout=30_000)
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(demo.identity_provider.passwords[user])
    page.get_by_role("button", name="Sign in").click()


def sign_in_at_hub(page: Any, demo: EmbeddedDefault, user: str) -> None:
    assert demo.hub is not None
    page.goto(demo.hub.url + "/hub/")
    page.wait_for_url("**/hub/login**")
    page.get_by_role("button", name="Sign in with").click()
    password_sign_in(page, demo, user)


def stop_server(demo: EmbeddedDefault, user: str) -> None:
    try:
        operator(demo, f"/users/{user}/server", "DELETE")
    except urllib.error.HTTPError:
        pass
    deadline = time.monotonic() + 30
    while server_of(demo, user) and time.monotonic() < deadline:
        time.sleep(0.3)


@pytest.mark.parametrize("role", JOB_ROLES, ids=[role.group for role in JOB_ROLES])
def test_each_role_lands_in_its_workspace(browser, sso: EmbeddedDefault, role) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in_at_hub(page, sso, role.group)
        page.wait_for_url(re.compile(
            rf".*/user/{role.group}/lab/tree/{role.curriculum}(/.*\.ipynb)?$"),
            timeout=90_000)
    finally:
        context.close()
        # Stop without waiting: the next role's spawn runs meanwhile.
        operator(sso, f"/users/{role.group}/server", "DELETE")


def test_outsider_is_refused_with_a_clear_page(browser, sso: EmbeddedDefault) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in_at_hub(page, sso, "outsider")
        page.get_by_text("403").first.wait_for(timeout=30_000)
        text = page.locator("body").inner_text()
        assert "in no Lightbox job role (your groups: billing)" in text
        assert "Ask your Lightbox administrator" in text
    finally:
        context.close()


def _navigations(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("framenavigated", lambda frame: seen.append(frame.url)
            if frame == page.main_frame else None)
    return seen


_IMAGE_TYPES = ("image/", "application/dicom", "multipart/related")
# Scripts, styles, the hub's logo and icons: the same for everyone, no patient's.
_STATIC = re.compile(r"/static/|/hub/logo$|/favicon\.ico")


class _Responses:
    """Every response of a browser context that carries images or patient data.

    Image types by their Content-Type; patient data by the identifiers in the body
    (static assets are the exception the README allows: they hold neither).
    """

    def __init__(self, identifiers: list[bytes]) -> None:
        self.identifiers = identifiers
        self.carrying: list[dict[str, Any]] = []
        self.image_bodies: list[bytes] = []
        self.seen = 0

    def __call__(self, response: Any) -> None:
        self.seen += 1
        # blob: and data: URLs are the page's own memory, never the HTTP cache.
        if (not response.url.startswith("http") or _STATIC.search(response.url)
                or not 200 <= response.status < 300):
            return
        headers = response.headers
        kind = headers.get("content-type", "")
        try:
            body = response.body()
        except Exception:  # a body the browser no longer holds (e.g. aborted)
            return
        image = kind.startswith(_IMAGE_TYPES)
        patient = [i.decode() for i in self.identifiers if i in body]
        if image or patient:
            self.carrying.append({"url": response.url.split("?")[0], "type": kind,
                                  "patient": patient,
                                  "cache": headers.get("cache-control", "")})
        if image and len(body) > 256:
            self.image_bodies.append(body)


def _search_studies_panel(page: Any, patient_id: str) -> None:
    """A clinician looks the patient up by ID: the current and prior, thumbnails.

    Typed into the form, so the storage check below also proves the panel keeps
    what was typed out of Chromium's autofill and session files.
    """
    page.locator(".lm-TabBar-tab[data-id='lightbox-studies']").click()
    panel = page.locator("#lightbox-studies")
    panel.locator("input[name='patient_id']").fill(patient_id)
    panel.locator("button.lbx-studies-search").click()
    page.wait_for_function(
        "(el) => el.querySelectorAll('.lbx-study').length >= 2 && "
        "el.dataset.searching === 'false' && "
        "el.querySelectorAll('img[data-loaded=true]').length >= 2",
        arg=panel.element_handle(), timeout=90_000)


def test_launch_signs_on_silently_opens_the_study_and_logout_leaves_nothing(
        browser, sso: EmbeddedDefault, artifacts: Path, tmp_path: Path) -> None:
    """SSO, launch, second launch, logout, storage and audit: one clinician's day."""
    assert sso.hub is not None
    audit = AuditLog(sso.hub.directory / "audit.jsonl")
    user = "radiologist"

    # Without a provider session the launch asks for the password (control case).
    fresh = browser.new_context()
    try:
        page = fresh.new_page()
        page.goto(link(sso, CURRENT_CT))
        page.wait_for_url(re.compile(r".*/interaction/.*"), timeout=30_000)
        assert page.get_by_label("Password").is_visible()
    finally:
        fresh.close()

    # A browser profile on disk, as a clinician's: its cache and storage are read
    # after the logout.
    profile = tmp_path / "chromium-profile"
    identifiers = [PATIENT_ID.encode(), b"LBXACC01", str(PATIENT_NAME).encode(),
                   b"Test, Case"]
    responses = _Responses(identifiers)
    context = persistent_context(browser, profile,
                                 viewport={"width": 1400, "height": 900})
    context.on("response", responses)
    page = context.pages[0] if context.pages else context.new_page()
    try:
        sign_in_at_hub(page, sso, user)
        page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=90_000)
        page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
        _search_studies_panel(page, PATIENT_ID)

        # The hub session ends (cookies gone), the provider's session lives: the
        # EHR launch signs on again without asking anything.
        context.clear_cookies(name=re.compile(r"^(jupyterhub|_xsrf).*"))
        seen = _navigations(page)
        page.goto(link(sso, CURRENT_CT))
        page.wait_for_url(re.compile(rf".*/user/{user}/lab/tree/ehr-launch/.*ipynb"),
                          timeout=90_000)
        assert not [url for url in seen if "/interaction/" in url], seen
        first_pid = server_of(sso, user)["state"]["pid"]

        # The extension opens a launch notebook in the app view and runs it itself.
        viewer = page.locator(
            ".jp-NotebookPanel.lbx-app-view .lbx-stack[data-painted='true']").first
        viewer.wait_for(timeout=120_000)
        overlay = viewer.locator(".lbx-tl").inner_text()
        assert "CT HEAD" in overlay
        assert re.search(r"Im \d+/48", viewer.locator(".lbx-tr").inner_text())
        page.screenshot(path=str(artifacts / "hub-launch-current-ct.png"))

        # A second launch switches the running server to another study.
        page.goto(link(sso, CLINICAL_ONLY))
        page.wait_for_url(re.compile(rf".*/user/{user}/lab/tree/ehr-launch/.*ipynb"),
                          timeout=60_000)
        # The extension opens it in the app view (code hidden) and runs it: the
        # viewer shows pydicom's one-slice CT_small.
        viewer = page.locator(
            ".jp-NotebookPanel.lbx-app-view .lbx-stack[data-painted='true']").first
        viewer.wait_for(timeout=120_000)
        assert "Im 1/1" in viewer.locator(".lbx-tr").inner_text()
        assert server_of(sso, user)["state"]["pid"] == first_pid

        # Logout stops the server; the kernel's purge receipt reaches the audit.
        ended: list[str] = []
        page.on("request", lambda request: ended.append(request.url)
                if "id_token_hint=" in request.url else None)
        page.goto(sso.hub.url + "/hub/logout")
        page.wait_for_url("**/hub/login**", timeout=60_000)
        assert server_of(sso, user) is None
        # The provider was told whose session to end (RP-initiated logout).
        assert ended and ended[0].startswith(sso.identity_provider.issuer), ended
    except Exception:
        page.screenshot(path=str(artifacts / "hub-launch-FAILED.png"))
        raise
    finally:
        context.close()  # the profile is flushed to disk

    # Every response that carried images or patient data said not to store it,
    # and there were such responses (the search and its thumbnails at least).
    assert responses.image_bodies, responses.carrying
    assert any(r["patient"] for r in responses.carrying), responses.carrying
    stored = [r for r in responses.carrying if "no-store" not in r["cache"]]
    assert stored == [], [(r["url"], r["type"], r["cache"]) for r in stored]
    # The profile on disk holds no identifier, no byte run of an image shown, and
    # no cache entry of anything but static assets (which the cache did keep, so
    # this looks at the real cache).
    keys = cache_entry_keys(profile)
    assert any("/static/" in key for key in keys), keys
    dynamic = [key for key in keys if "/static/" not in key
               and re.search(r"/(lightbox/api|api/contents|files|hub/lightbox)/", key)]
    assert dynamic == [], dynamic
    needles = identifiers + [body[len(body) // 2:len(body) // 2 + 64]
                             for body in responses.image_bodies]
    assert files_holding(profile, needles) == {}

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
            r["event"] == "purge" and r["user"] == user for r in audit.read()):
        time.sleep(0.5)
    records = [r for r in audit.read() if r["user"] == user]
    events = [r["event"] for r in records]
    for expected in ("sign-in", "launch", "study-opened", "sign-out", "purge",
                     "server-stopped"):
        assert expected in events, events
    opened = [r for r in records if r["event"] == "study-opened"]
    assert opened[0]["series_instance_uid"]
    purge = [r for r in records if r["event"] == "purge" and r["where"] == "kernel"][0]
    # viewerlib.purge ran in the kernel (its receipt names the caches); how many
    # entries it held depends on viewerlib's caching (see tests/hub/test_kernel_purge).
    assert set(purge["kinds"]) >= {"metadata", "pixel"}
    assert "purge-missing" not in events, events
    assert all(r["client_ip"] for r in records if r["event"] in {"sign-in", "launch"})

    # Neither the audit nor the hub's log names the patient or the launch context.
    text = (sso.hub.directory / "audit.jsonl").read_text()
    log = (sso.hub.directory / "jupyterhub.log").read_text()
    for secret in (str(PATIENT_NAME), str(PATIENT_NAME).replace("^", " "), PATIENT_ID,
                   "LBXACC01", "ctx="):
        assert secret not in text
        assert secret not in log, secret


def test_launch_to_a_stopped_server_signs_on_silently_and_starts_it(
        browser, sso: EmbeddedDefault, artifacts: Path) -> None:
    """The clinician's first click of the day: no server, no hub session."""
    assert sso.hub is not None
    user = "emergency"
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        sign_in_at_hub(page, sso, user)
        page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=90_000)
        stop_server(sso, user)
        assert server_of(sso, user) is None
        # Yesterday's hub session is gone; the provider's session still lives.
        context.clear_cookies(name=re.compile(r"^(jupyterhub|_xsrf).*"))

        seen = _navigations(page)
        page.goto(link(sso, CURRENT_CT))
        page.wait_for_url(re.compile(rf".*/user/{user}/lab/tree/ehr-launch/.*ipynb"),
                          timeout=150_000)

        assert not [url for url in seen if "/interaction/" in url], seen
        assert (server_of(sso, user) or {}).get("ready")
        viewer = page.locator(
            ".jp-NotebookPanel.lbx-app-view .lbx-stack[data-painted='true']").first
        viewer.wait_for(timeout=120_000)
        assert "CT HEAD" in viewer.locator(".lbx-tl").inner_text()
        assert re.search(r"Im \d+/48", viewer.locator(".lbx-tr").inner_text())
        # The study of the link's accession, not the prior of the same patient:
        # the archive itself says which UID that is.
        assert sso.archive is not None
        with urllib.request.urlopen(sso.archive.dicomweb_url
                                    + "/studies?AccessionNumber=LBXACC01",
                                    timeout=30) as reply:
            (study,) = json.loads(reply.read())
        audit = AuditLog(sso.hub.directory / "audit.jsonl")
        launch = [r for r in audit.read() if r["user"] == user
                  and r["event"] == "launch"][-1]
        assert launch["outcome"] == "opened"
        assert launch["study_instance_uid"] == study["0020000D"]["Value"][0]
        opened = [r for r in audit.read() if r["user"] == user
                  and r["event"] == "study-opened"]
        assert opened and opened[-1]["study_instance_uid"] == launch[
            "study_instance_uid"]
    except Exception:
        page.screenshot(path=str(artifacts / "hub-launch-stopped-FAILED.png"))
        raise
    finally:
        context.close()
        stop_server(sso, user)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("tampered", "changed after the EHR signed it"),
        ("expired", "has expired"),
        ("replayed", "already used"),
        ("outside-role-archives", "not in any archive your role may open"),
    ],
    ids=["tampered", "expired", "replayed", "outside role archives"],
)
def test_bad_launch_is_refused_with_a_page_that_says_why(
        browser, sso: EmbeddedDefault, case: str, expected: str) -> None:
    # The link is checked before anything else, signed in or not; only the role
    # check needs a signed-in user. A link is used up only when its study opened.
    user = "radiologist" if case == "replayed" else "researcher"
    context = browser.new_context()
    page = context.new_page()
    try:
        if case == "tampered":
            assert sso.hub is not None
            real = sign_launch(CURRENT_CT, secret=sso.hub.launch_secret.encode())
            forged = sign_launch(dict(CURRENT_CT, acc="LBXACC00"), secret=b"x" * 32)
            url = launch_url(sso.hub.url, {"ctx": forged["ctx"], "sig": real["sig"],
                                           "alg": "hs256", "enc": "a256gcm"})
        elif case == "expired":
            url = link(sso, CURRENT_CT, now=time.time() - 600)
        elif case == "replayed":
            sign_in_at_hub(page, sso, user)
            page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=90_000)
            url = link(sso, CURRENT_CT)
            page.goto(url)
            page.wait_for_url(
                re.compile(rf".*/user/{user}/lab/tree/ehr-launch/.*ipynb"),
                timeout=90_000)
        else:
            sign_in_at_hub(page, sso, user)
            page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=90_000)
            url = link(sso, CLINICAL_ONLY)
        response = page.goto(url)
        assert response is not None and response.status == 403
        assert expected in page.locator("body").inner_text()
    finally:
        context.close()
        if case in ("outside-role-archives", "replayed"):
            stop_server(sso, user)
