"""Finding the EHR-launched study in the role's archives, and why one is refused."""
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


def _services(tmp_path: Path, archives: list[dict[str, str]],
              role_archives: dict[str, list[str]] | None = None) -> LightboxServices:
    archives_file = tmp_path / "archives.json"
    archives_file.write_text(json.dumps({"archive": archives}))
    settings = LightboxHub(state_dir=str(tmp_path / "state"),
                           archives_file=str(archives_file),
                           audit_log=str(tmp_path / "audit.jsonl"),
                           role_archives=role_archives or {"*": ["*"]})
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


@pytest.mark.orthanc
def test_an_archive_that_is_down_does_not_hide_the_study_another_holds(tmp_path, north):
    archive, study = north
    services = _services(tmp_path, [_closed(),
                                    _archive("North PACS", archive.dicomweb_url)])
    uid, name = services.resolve_study("radiologist", _context(study.accession_number))
    assert (uid, name) == (study.study_instance_uid, "North PACS")


@pytest.mark.orthanc
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
    # Not the link's fault: the hub gives its one-time nonce back.
    assert refused.value.link_spent is False


@pytest.mark.orthanc
def test_a_study_in_no_archive_is_refused_as_not_found(tmp_path, north):
    archive, _ = north
    services = _services(tmp_path, [_archive("North PACS", archive.dicomweb_url)])
    with pytest.raises(LaunchRefused) as refused:
        services.resolve_study("radiologist", _context("NO-SUCH-ACCESSION"))
    assert (refused.value.status, refused.value.reason) == (403, "study-not-found")
    assert refused.value.message.startswith("No archive holds a study with this "
                                            "accession number")


@pytest.mark.orthanc
def test_the_accession_of_the_link_picks_that_study_of_the_patient(
        tmp_path, both_studies):
    archive, studies = both_studies
    services = _services(tmp_path, [_archive("Main PACS", archive.dicomweb_url)])
    for kind, study in studies.items():
        uid, _ = services.resolve_study("radiologist",
                                        _context(study.accession_number))
        assert uid == study.study_instance_uid, kind


@pytest.mark.orthanc
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
    assert (refused.value.status, refused.value.reason) == (403, "study-not-found")


# -- Each reason for a refusal has its own words, and none echoes the link ---------

@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two folder archives: the current CT head in "Main PACS", nothing of it in
    the "Teaching archive" (a prior of the same patient, another accession)."""
    root = tmp_path_factory.mktemp("launch-folders")
    studies = {"current": ct_head_phantom("current", rows=16, columns=16,
                                          number_of_slices=2),
               "prior": ct_head_phantom("prior", rows=16, columns=16,
                                        number_of_slices=2)}
    for folder, kind in (("main", "current"), ("teaching", "prior")):
        (root / folder).mkdir()
        for index, dataset in enumerate(studies[kind].datasets):
            dataset.save_as(root / folder / f"{index}.dcm", enforce_file_format=True)
    return {"root": root, **studies}


def _folder_services(tmp_path: Path, folders: dict[str, object]) -> LightboxServices:
    root = folders["root"]
    return _services(tmp_path, [
        {"name": "Main PACS", "type": "folder", "path": str(root / "main")},
        {"name": "Teaching archive", "type": "folder", "path": str(root / "teaching")},
    ], role_archives={"researcher": ["Teaching archive"], "*": ["Main PACS"]})


_CURRENT = {"pid": PATIENT_ID, "iss": ISSUER_OF_PATIENT_ID, "acc": "current"}

# (case, role, link (changes to the current CT's), reason, status, the page says)
REFUSALS = [
    ("another patient than the study's", "radiologist", {"pid": "TEST-0002"},
     "patient-mismatch", 403, "belongs to another patient than the link names"),
    ("another patient, named by uid", "radiologist",
     {"pid": "TEST-0002", "acc": None, "suid": "current"},
     "patient-mismatch", 403, ("study with this Study Instance UID belongs to "
                               "another patient")),
    ("another issuer of the patient id", "radiologist", {"iss": "OTHER-HOSPITAL"},
     "issuer-mismatch", 403, "Patient ID of another issuer"),
    ("no such study", "radiologist", {"acc": "NO-SUCH-ACC"},
     "study-not-found", 403, "No archive holds a study with this accession number"),
    ("in an archive the role may not open", "researcher", {},
     "study-not-in-role-archives", 403, "your role may not open (Main PACS)"),
    ("the role may not open it, and another patient", "researcher",
     {"pid": "TEST-0002"}, "study-not-in-role-archives", 403,
     "your role may not open"),
    ("no role", None, {}, "no-role-archives", 403,
     "Your role may open no image archive"),
]


def _link_to(folders: dict[str, object], changes: dict[str, str | None]
             ) -> LaunchContext:
    current = folders["current"]
    values = dict(_CURRENT, suid=None)
    values.update(changes)
    return LaunchContext(
        patient_id=str(values["pid"]), issuer_of_patient_id=str(values["iss"]),
        accession_number=(current.accession_number if values["acc"] == "current"
                          else values["acc"]),
        study_instance_uid=(current.study_instance_uid if values["suid"] == "current"
                            else values["suid"]),
        nonce="n-1", expires_at=time.time() + 60)


@pytest.mark.parametrize(("role", "changes", "reason", "status", "says"),
                         [case[1:] for case in REFUSALS],
                         ids=[case[0] for case in REFUSALS])
def test_each_refusal_says_its_own_reason_and_names_no_identifier(
        tmp_path, folders, role, changes, reason, status, says) -> None:
    services = _folder_services(tmp_path, folders)
    link = _link_to(folders, changes)

    with pytest.raises(LaunchRefused) as refused:
        services.resolve_study(role, link)

    assert (refused.value.reason, refused.value.status) == (reason, status)
    assert says in refused.value.message
    # The link's fault or the role's: the link stays used.
    assert refused.value.link_spent is True
    # Neither the page nor the log line repeats the patient or the study.
    for value in (link.patient_id, link.issuer_of_patient_id, link.accession_number,
                  link.study_instance_uid, PATIENT_ID, ISSUER_OF_PATIENT_ID,
                  folders["current"].accession_number):
        if value:
            assert value not in refused.value.message, value
            assert value not in refused.value.detail, value


def test_every_refusal_reads_differently(tmp_path, folders) -> None:
    services = _folder_services(tmp_path, folders)
    messages = {}
    for _, role, changes, reason, _, _ in REFUSALS:
        with pytest.raises(LaunchRefused) as refused:
            services.resolve_study(role, _link_to(folders, changes))
        messages.setdefault(reason, set()).add(refused.value.message.split(".")[0])
    firsts = [sentence for sentences in messages.values() for sentence in sentences]
    assert len(set(firsts)) == len(firsts), messages


def test_the_link_with_the_studys_own_identifiers_opens_it(tmp_path, folders) -> None:
    services = _folder_services(tmp_path, folders)
    for changes in ({}, {"acc": None, "suid": "current"}):
        uid, archive = services.resolve_study("radiologist",
                                              _link_to(folders, changes))
        assert (uid, archive) == (folders["current"].study_instance_uid, "Main PACS")


@pytest.mark.orthanc
@pytest.mark.parametrize(("changes", "reason"),
                         [({"pid": "TEST-0002"}, "patient-mismatch"),
                          ({"iss": "OTHER-HOSPITAL"}, "issuer-mismatch")],
                         ids=["another patient", "another issuer"])
def test_a_dicomweb_archive_tells_another_patient_from_no_study(
        tmp_path, north, changes, reason) -> None:
    archive, study = north
    services = _services(tmp_path, [_archive("North PACS", archive.dicomweb_url)])
    link = LaunchContext(
        patient_id=changes.get("pid", PATIENT_ID),
        issuer_of_patient_id=changes.get("iss", ISSUER_OF_PATIENT_ID),
        accession_number=study.accession_number, study_instance_uid=None,
        nonce="n-1", expires_at=time.time() + 60)
    with pytest.raises(LaunchRefused) as refused:
        services.resolve_study("radiologist", link)
    assert refused.value.reason == reason


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


def test_another_archive_the_hub_cannot_use_leaves_the_refusal_unsure(
        tmp_path, folders, monkeypatch) -> None:
    # Only the role's archives must work for a launch; another archive whose
    # password the hub lacks makes "no archive holds it" a guess, and says so.
    monkeypatch.delenv("TEST_PACS_PASSWORD", raising=False)
    root = folders["root"]
    services = _services(tmp_path, [
        {"name": "Teaching archive", "type": "folder", "path": str(root / "teaching")},
        {"name": "Guarded PACS", "type": "dicomweb",
         "url": f"http://127.0.0.1:{free_port()}/dicom-web", "auth": "basic",
         "username": "test", "password_env": "TEST_PACS_PASSWORD"},
    ], role_archives={"researcher": ["Teaching archive"], "*": ["*"]})

    with pytest.raises(LaunchRefused) as refused:
        services.resolve_study("researcher", _link_to(folders, {}))

    assert refused.value.reason == "study-not-found"
    assert refused.value.message.startswith("No archive your role may open holds")
