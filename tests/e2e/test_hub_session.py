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


def test_launch_signs_on_silently_opens_the_study_and_logout_leaves_nothing(
        browser, sso: EmbeddedDefault, artifacts: Path) -> None:
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

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        sign_in_at_hub(page, sso, user)
        page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=90_000)

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

        state = context.storage_state()
        local_values = [item["value"] for origin in state["origins"]
                        for item in origin.get("localStorage", [])]
        assert not [v for v in local_values if "data:image" in v or len(v) > 20_000]
        probe = page.evaluate("""async () => ({
            idb: (await indexedDB.databases()).map(d => d.name),
            caches: await caches.keys(),
            local: Object.keys(localStorage).map(k => [k, localStorage[k].length])})""")
        assert probe["idb"] == [] and probe["caches"] == [], probe
        assert all(size < 20_000 for _, size in probe["local"]), probe
    except Exception:
        page.screenshot(path=str(artifacts / "hub-launch-FAILED.png"))
        raise
    finally:
        context.close()

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
    purge = [r for r in records if r["event"] == "purge"][0]
    # viewerlib.purge ran in the kernel (its receipt names the caches); how many
    # entries it held depends on viewerlib's caching (see tests/hub/test_kernel_purge).
    assert purge["where"] == "kernel" and set(purge["kinds"]) >= {"metadata", "pixel"}
    assert all(r["client_ip"] for r in records if r["event"] in {"sign-in", "launch"})

    # Neither the audit nor the hub's log names the patient or the launch context.
    text = (sso.hub.directory / "audit.jsonl").read_text()
    log = (sso.hub.directory / "jupyterhub.log").read_text()
    for secret in (str(PATIENT_NAME), str(PATIENT_NAME).replace("^", " "), PATIENT_ID,
                   "LBXACC01", "ctx="):
        assert secret not in text
        assert secret not in log, secret


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
    # check needs a signed-in user.
    user = "researcher"
    context = browser.new_context()
    page = context.new_page()
    try:
        if case == "tampered":
            assert sso.hub is not None
            real = sign_launch(CURRENT_CT, secret=sso.hub.launch_secret.encode())
            forged = sign_launch(dict(CURRENT_CT, acc="LBXACC00"), secret=b"x" * 32)
            url = launch_url(sso.hub.url, {"ctx": forged["ctx"], "sig": real["sig"],
                                           "alg": "hs256"})
        elif case == "expired":
            url = link(sso, CURRENT_CT, now=time.time() - 600)
        elif case == "replayed":
            url = link(sso, CURRENT_CT)
            page.goto(url)
            page.wait_for_url(re.compile(r".*/interaction/.*"), timeout=30_000)
        else:
            sign_in_at_hub(page, sso, user)
            page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=90_000)
            url = link(sso, CLINICAL_ONLY)
        response = page.goto(url)
        assert response is not None and response.status == 403
        assert expected in page.locator("body").inner_text()
    finally:
        context.close()
        if case == "outside-role-archives":
            stop_server(sso, user)
