"""Finding the EHR-launched study in the role's archives, with one archive down."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lightbox_hub.config import LightboxHub
from lightbox_hub.embedded.ports import free_port
from lightbox_hub.launch import LaunchContext, LaunchRefused
from lightbox_hub.services import LightboxServices, is_the_launched_study
from viewerlib.model import Study
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


@pytest.fixture(scope="module")
def both_studies(orthanc_factory):
    """One patient, two studies: the prior (LBXACC00) and the current (LBXACC01)."""
    archive = orthanc_factory("launch-both").start()
    studies = {kind: ct_head_phantom(kind, rows=16, columns=16, number_of_slices=2)
               for kind in ("prior", "current")}
    for study in studies.values():
        archive.load_datasets(study.datasets)
    return archive, studies


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


def test_the_accession_of_the_link_picks_that_study_of_the_patient(
        tmp_path, both_studies):
    archive, studies = both_studies
    services = _services(tmp_path, [_archive("Main PACS", archive.dicomweb_url)])
    for kind, study in studies.items():
        uid, _ = services.resolve_study("radiologist",
                                        _context(study.accession_number))
        assert uid == study.study_instance_uid, kind


@pytest.mark.parametrize("accession_number", ["LBXACC0*", "LBXACC0?", "*"],
                         ids=["trailing star", "question mark", "star alone"])
def test_an_archive_that_matches_loosely_opens_no_other_study_raises(
        tmp_path, both_studies, accession_number):
    # Orthanc reads * and ? in a QIDO query as wildcards (PS3.4 C.2.2.2.4), so it
    # answers with both studies of the patient; neither is the link's, exactly.
    archive, _ = both_studies
    services = _services(tmp_path, [_archive("Main PACS", archive.dicomweb_url)])
    with pytest.raises(LaunchRefused) as refused:
        services.resolve_study("radiologist", _context(accession_number))
    assert (refused.value.status, refused.value.reason) == (
        403, "study-not-in-role-archives")


def _study(**attributes: str) -> Study:
    values = {"StudyInstanceUID": "1.2.3.1", "PatientID": PATIENT_ID,
              "IssuerOfPatientID": ISSUER_OF_PATIENT_ID, "AccessionNumber": "A1"}
    values.update(attributes)
    return Study(**values)


def _link(accession_number: str | None = "A1", study_instance_uid: str | None = None
          ) -> LaunchContext:
    return LaunchContext(PATIENT_ID, ISSUER_OF_PATIENT_ID, accession_number,
                         study_instance_uid, "n-1", time.time() + 60)


@pytest.mark.parametrize(
    ("study", "link", "same"),
    [
        (_study(), _link(), True),
        (_study(AccessionNumber="A2"), _link(), False),
        (_study(AccessionNumber="a1"), _link(), False),
        (_study(AccessionNumber=""), _link(), False),
        (_study(), _link(None, "1.2.3.1"), True),
        (_study(StudyInstanceUID="1.2.3.2"), _link(None, "1.2.3.1"), False),
        (_study(StudyInstanceUID="1.2.3.10"), _link(None, "1.2.3.1"), False),
        (_study(), _link("A1", "1.2.3.2"), False),
        (_study(PatientID="LBX-0002"), _link(), False),
        (_study(IssuerOfPatientID="OTHER"), _link(), False),
        (_study(IssuerOfPatientID=""), _link(), True),
    ],
    ids=["same accession", "same patient, other accession", "accession in another "
         "case", "archive records no accession", "same study uid", "other study uid",
         "uid with the link's as prefix", "accession matches, uid does not",
         "other patient", "other issuer", "archive records no issuer"],
)
def test_only_the_exact_study_of_the_link_counts(study, link, same) -> None:
    assert is_the_launched_study(study, link) is same
