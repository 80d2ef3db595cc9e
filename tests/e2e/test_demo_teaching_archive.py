"""The demo's teaching archive is de-identified, and launch links show what that means.

The researcher sees only the teaching archive, so a signed EHR link to the clinical
CT head is refused for them, while a clinician opens it. The links are made with
``lightbox launch-link``, as a demo user makes them, against the running demo.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pydicom
import pytest
from lightbox_hub.demo import EmbeddedDefault

from viewerlib.samples.phantom import ISSUER_OF_PATIENT_ID, teaching_studies

pytestmark = [pytest.mark.browser, pytest.mark.orthanc]

# The current CT head in the clinical archive (the phantom's own identifiers).
CLINICAL_CT = ("--patient-id", "LBX-0001", "--issuer", ISSUER_OF_PATIENT_ID,
               "--accession", "LBXACC01")


def _clinical_identifiers() -> set[str]:
    """Every name, ID, accession number and UID of the clinical phantom studies."""
    values: set[str] = set()
    for study in teaching_studies():
        for ds in study.datasets:
            values |= {str(ds.PatientName), str(ds.PatientName).replace("^", " "),
                       ds.PatientID, ds.AccessionNumber, ds.StudyInstanceUID,
                       ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.FrameOfReferenceUID,
                       ds.InstitutionName}
    return {value for value in values if value}


def test_teaching_archive_holds_no_clinical_identity(
        embedded_default: EmbeddedDefault) -> None:
    folder = embedded_default.state_directory / "teaching-archive"
    files = sorted(folder.rglob("*.dcm"))
    clinical = {(str(ds.StudyDate), ds.StudyDescription): ds
                for study in teaching_studies() for ds in study.datasets[:1]}
    # One de-identified copy per clinical image.
    assert len(files) == sum(len(study.datasets) for study in teaching_studies())

    identifiers = _clinical_identifiers()
    dates_by_patient: dict[str, set[str]] = {}
    for path in files:
        raw = path.read_bytes()
        leaked = [value for value in identifiers if value.encode() in raw]
        assert not leaked, f"{path.name} carries clinical identifiers {leaked}"
        ds = pydicom.dcmread(path)
        # PS3.15 E.1: the identity is removed, and the file says so and how.
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.DeidentificationMethod
        assert re.fullmatch(r"TEACH-\d{4}", ds.PatientID)
        assert re.fullmatch(r"Anonymous\^Teaching-\d+", str(ds.PatientName))
        assert ds.PatientID.endswith(str(ds.PatientName).rsplit("-", 1)[1])
        for keyword in ("PatientBirthDate", "AccessionNumber", "StudyID"):
            assert not ds.get(keyword), keyword
        assert "IssuerOfPatientID" not in ds and "InstitutionName" not in ds
        dates_by_patient.setdefault(ds.PatientID, set()).add(ds.StudyDate)

    # Dates move back by one shift for the whole set: the CT head prior was 182 days
    # before the current (2026-05-04 to 2026-11-02), and still is; no date is kept.
    head = sorted(dates_by_patient["TEACH-0001"])
    assert len(head) == 2
    first, second = (datetime.datetime.strptime(d, "%Y%m%d").date() for d in head)
    assert (second - first).days == (datetime.date(2026, 11, 2)
                                     - datetime.date(2026, 5, 4)).days
    assert not {d for dates in dates_by_patient.values() for d in dates} & {
        date for date, _ in clinical}


def _mark_running(demo: EmbeddedDefault) -> Path:
    """The demo folder as `lightbox demo` leaves it: marked by the running process."""
    marker = demo.state_directory / ".lightbox-demo"
    if not marker.exists():
        marker.write_text(str(os.getpid()))  # this test process runs the demo
    return demo.state_directory


def _launch_link(demo: EmbeddedDefault, *context: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "lightbox_hub.cli", "launch-link", *context,
         "--state-dir", str(_mark_running(demo))],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _sign_in(page, hub_url: str, user: str) -> None:
    page.goto(hub_url + "/hub/")
    page.wait_for_url("**/hub/login**")
    page.get_by_role("button", name="Sign in with").click()
    page.wait_for_url(re.compile(r".*/oauth2/authorize.*"))
    page.get_by_placeholder("sub").fill(user)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=120_000)


def _stop_server(demo: EmbeddedDefault, user: str) -> None:
    assert demo.hub is not None
    request = urllib.request.Request(
        f"{demo.hub.url}/hub/api/users/{user}/server", method="DELETE",
        headers={"Authorization": f"token {demo.hub.operator_token}"})
    try:
        urllib.request.urlopen(request, timeout=30).close()
    except urllib.error.HTTPError as err:
        err.close()


def test_researchers_link_to_the_clinical_ct_is_refused(
        browser, embedded_default: EmbeddedDefault, artifacts: Path) -> None:
    assert embedded_default.hub is not None
    context = browser.new_context()
    page = context.new_page()
    try:
        _sign_in(page, embedded_default.hub.url, "researcher")
        response = page.goto(_launch_link(embedded_default, *CLINICAL_CT))
        assert response is not None and response.status == 403
        text = page.locator("body").inner_text()
        assert "not in any archive your role may open" in text
        assert "de-identified teaching archive" in text
    except Exception:
        page.screenshot(path=str(artifacts / "teaching-refusal-FAILED.png"))
        raise
    finally:
        context.close()
        _stop_server(embedded_default, "researcher")

    # The refusal is audited with its reason (and without the patient).
    records = [json.loads(line) for line in
               (embedded_default.hub.directory / "audit.jsonl").read_text().splitlines()]
    refusals = [r for r in records if r.get("user") == "researcher"
                and "study-not-in-role-archives" in json.dumps(r)]
    assert refusals, [r.get("event") for r in records if r.get("user") == "researcher"]
    assert "LBX-0001" not in json.dumps(refusals)


def test_launch_link_command_opens_the_clinical_ct_for_a_clinician(
        browser, embedded_default: EmbeddedDefault, artifacts: Path) -> None:
    assert embedded_default.hub is not None
    user = "emergency"
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        _sign_in(page, embedded_default.hub.url, user)
        page.goto(_launch_link(embedded_default, *CLINICAL_CT))
        page.wait_for_url(re.compile(rf".*/user/{user}/lab/tree/ehr-launch/.*ipynb"),
                          timeout=90_000)
        viewer = page.locator(
            ".jp-NotebookPanel.lbx-app-view .lbx-stack[data-painted='true']").first
        viewer.wait_for(timeout=120_000)
        overlay = viewer.locator(".lbx-tl").inner_text()
        assert "LBX-0001" in overlay and "CT HEAD" in overlay
        assert re.search(r"Im \d+/48", viewer.locator(".lbx-tr").inner_text())
    except Exception:
        page.screenshot(path=str(artifacts / "launch-link-FAILED.png"))
        raise
    finally:
        context.close()
        _stop_server(embedded_default, user)


def test_the_example_link_the_demo_prints_is_accepted(
        embedded_default: EmbeddedDefault) -> None:
    class _Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
            return None

    opener = urllib.request.build_opener(_Stay)
    # A valid link is kept for the sign-on round trip: the hub sends the browser on
    # to sign in. The same link with its signature changed is refused outright.
    link = embedded_default.example_launch_link()
    with pytest.raises(urllib.error.HTTPError) as accepted:
        opener.open(link, timeout=30)
    accepted.value.close()
    assert accepted.value.code in (302, 303), accepted.value.code
    forged = re.sub(r"sig=[^&]+", "sig=" + "A" * 43, embedded_default.example_launch_link())
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(forged, timeout=30)
    refused.value.close()
    assert refused.value.code == 403
