"""One patient under different IDs in two real Orthanc archives: linked, not merged.

Orthanc 1.10's QIDO-RS returns (0010,0021) *Issuer of Patient ID* when asked, but
never (0010,1002) *Other Patient IDs Sequence*; the ``orthanc-1.10`` quirks read it
from one instance's WADO-RS metadata per study.
"""

from __future__ import annotations

import dataclasses

import pytest
from lightbox_source_testing import make_ct_series

from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.quirks import ArchiveQuirks
from viewerlib.sources.federated import FederatedSource

pytestmark = pytest.mark.orthanc

# Legend: the hospital knows the patient as H-1, the region as R-9; a second
# patient in the region has the same name as the first one but is someone else.
NAME = "Test^Linked"


@pytest.fixture(scope="module")
def hospital_and_region(orthanc_factory):
    hospital = orthanc_factory("linkhosp").start()
    region = orthanc_factory("linkregion").start()
    own = make_ct_series(2, patient_name=NAME, patient_id="H-1", issuer="HOSP",
                         other_ids=[("R-9", "REGION")], study_date="20240301")
    same_patient = make_ct_series(1, patient_name=NAME + "^Middle", patient_id="R-9",
                                  issuer="REGION", study_date="20240302")
    namesake = make_ct_series(1, patient_name=NAME, patient_id="X-5",
                              issuer="REGION", study_date="20240303")
    assert hospital.load_datasets(own).stored == 2
    assert region.load_datasets(same_patient + namesake).stored == 2
    studies = {"own": str(own[0].StudyInstanceUID),
               "same_patient": str(same_patient[0].StudyInstanceUID),
               "namesake": str(namesake[0].StudyInstanceUID)}
    return hospital, region, studies


def _federation(hospital, region, quirks: ArchiveQuirks) -> FederatedSource:
    return FederatedSource([
        DICOMwebSource(hospital.dicomweb_url, "hospital", quirks=quirks),
        DICOMwebSource(region.dicomweb_url, "region", quirks=quirks)])


def test_same_patient_with_other_ids_in_two_archives_is_linked(hospital_and_region):
    hospital, region, studies = hospital_and_region
    federation = _federation(hospital, region, ArchiveQuirks.for_orthanc_1_10())
    results = federation.search_for_studies(patient_name=NAME)
    by_uid = {s.StudyInstanceUID: s for s in results}
    assert set(by_uid) == set(studies.values())  # three studies, none merged

    own = by_uid[studies["own"]]
    assert own.IssuerOfPatientID == "HOSP"
    assert [str(i) for i in own.other_patient_identifiers] == ["R-9 (REGION)"]
    assert [str(i) for i in own.linked_identifiers] == ["R-9 (REGION)"]
    assert [str(i) for i in by_uid[studies["same_patient"]].linked_identifiers] == [
        "H-1 (HOSP)"]

    linked = [p for p in results.patients if p.is_linked]
    assert len(linked) == 1 and len(results.patients) == 2
    [patient] = linked
    assert sorted(patient.study_instance_uids) == sorted(
        [studies["own"], studies["same_patient"]])
    assert sorted(patient.locations) == ["hospital", "region"]
    assert {str(i) for i in patient.identifiers} == {"H-1 (HOSP)", "R-9 (REGION)"}


def test_same_name_in_both_archives_is_never_linked(hospital_and_region):
    hospital, region, studies = hospital_and_region
    federation = _federation(hospital, region, ArchiveQuirks.for_orthanc_1_10())
    results = federation.search_for_studies(patient_name=NAME)
    by_uid = {s.StudyInstanceUID: s for s in results}
    namesake, own = by_uid[studies["namesake"]], by_uid[studies["own"]]
    assert str(namesake.PatientName) == str(own.PatientName) == NAME
    assert namesake.linked_identifiers == []
    [alone] = [p for p in results.patients
               if studies["namesake"] in p.study_instance_uids]
    assert alone.study_instance_uids == [studies["namesake"]]
    assert not alone.is_linked


def test_qido_alone_misses_the_link_on_orthanc(hospital_and_region):
    # Why the quirk exists: trusting QIDO-RS to return the sequence loses the link.
    hospital, region, studies = hospital_and_region
    trusting = dataclasses.replace(ArchiveQuirks.for_orthanc_1_10(),
                                   qido_returns_sequences=True)
    results = _federation(hospital, region, trusting).search_for_studies(
        patient_name=NAME)
    assert len(results) == 3
    assert not any(p.is_linked for p in results.patients)
    own = next(s for s in results if s.StudyInstanceUID == studies["own"])
    assert own.IssuerOfPatientID == "HOSP" and own.other_patient_identifiers == []


def test_other_patient_ids_are_read_once_then_cached(hospital_and_region):
    hospital, _, studies = hospital_and_region
    source = DICOMwebSource(hospital.dicomweb_url, "hospital",
                            quirks=ArchiveQuirks.for_orthanc_1_10())
    sent: list[str] = []
    send = source.session.send

    def recording_send(request, **kwargs):
        sent.append(request.path_url.split("?")[0])
        return send(request, **kwargs)

    source.session.send = recording_send
    first = source.search_for_studies(study_instance_uid=studies["own"])
    assert len(sent) == 3 and sent[2].endswith("/metadata")
    again = source.search_for_studies(study_instance_uid=studies["own"])
    assert len(sent) == 4  # only the QIDO-RS search itself
    assert first[0].other_patient_identifiers == again[0].other_patient_identifiers
