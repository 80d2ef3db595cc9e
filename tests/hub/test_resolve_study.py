"""Finding the EHR-launched study in the role's archives, with one archive down."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lightbox_hub.config import LightboxHub
from lightbox_hub.embedded.ports import free_port
from lightbox_hub.launch import LaunchContext, LaunchRefused
from lightbox_hub.services import LightboxServices
from viewerlib.samples.phantom import ISSUER_OF_PATIENT_ID, PATIENT_ID, ct_head_phantom

pytestmark = pytest.mark.orthanc


def _services(tmp_path: Path, archives: list[dict[str, str]]) -> LightboxServices:
    archives_file = tmp_path / "archives.json"
    archives_file.write_text(json.dumps({"archive": archives}))
    settings = LightboxHub(state_dir=str(tmp_path / "state"),
                           archives_file=str(archives_file),
                           audit_log=str(tmp_path / "audit.jsonl"))
    return LightboxServices(settings)


def _archive(name: str, url: str) -> dict[str, str]:
    return {"name": name, "type": "dicomweb", "url": url, "quirks": "orthanc-1.10"}


def _closed() -> dict[str, str]:
    # A port nobody listens on: the archive is down.
    return _archive("Closed PACS", f"http://127.0.0.1:{free_port()}/dicom-web")


def _context(accession_number: str) -> LaunchContext:
    return LaunchContext(
        patient_id=PATIENT_ID, issuer_of_patient_id=ISSUER_OF_PATIENT_ID,
        accession_number=accession_number, study_instance_uid=None, nonce="n-1",
        expires_at=time.time() + 60)


@pytest.fixture(scope="module")
def north(orthanc_factory):
    archive = orthanc_factory("launch-north").start()
    study = ct_head_phantom("prior", rows=16, columns=16, number_of_slices=2)
    archive.load_datasets(study.datasets)
    return archive, study


def test_an_archive_that_is_down_does_not_hide_the_study_another_holds(tmp_path, north):
    archive, study = north
    services = _services(tmp_path, [_closed(),
                                    _archive("North PACS", archive.dicomweb_url)])
    uid, name = services.resolve_study("radiologist", _context(study.accession_number))
    assert (uid, name) == (study.study_instance_uid, "North PACS")


def test_a_study_not_found_while_an_archive_is_down_says_which_and_what_to_do(
        tmp_path, north):
    archive, _ = north
    services = _services(tmp_path, [_archive("North PACS", archive.dicomweb_url),
                                    _closed()])
    with pytest.raises(LaunchRefused) as refused:
        services.resolve_study("radiologist", _context("NO-SUCH-ACCESSION"))
    assert refused.value.status == 503
    assert refused.value.reason == "archives-unreachable"
    assert "Closed PACS" in refused.value.message
    assert "North PACS" not in refused.value.message
    assert "again" in refused.value.message


def test_a_study_in_no_archive_is_refused_as_before(tmp_path, north):
    archive, _ = north
    services = _services(tmp_path, [_archive("North PACS", archive.dicomweb_url)])
    with pytest.raises(LaunchRefused) as refused:
        services.resolve_study("radiologist", _context("NO-SUCH-ACCESSION"))
    assert (refused.value.status, refused.value.reason) == (
        403, "study-not-in-role-archives")
