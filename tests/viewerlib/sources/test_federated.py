"""FederatedSource: fan-out, merging, patient linking, slow and stopped archives."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pydicom
import pytest
from lightbox_source_testing import CREDENTIALS
from lightbox_source_testing import LoopbackProxy, make_ct_series, write_datasets

from viewerlib.errors import IncompleteResultsWarning, SourceNotFoundError
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.quirks import ArchiveQuirks
from viewerlib.sources.federated import THREAD_NAME_PREFIX, FederatedSource
from viewerlib.sources.local import FolderSource

CT = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"),
                     stop_before_pixels=True)


@pytest.mark.orthanc
def test_same_study_in_two_archives_is_one_study_with_two_locations(archives):
    federation = FederatedSource([archives.source_a(), archives.source_b()],
                                 timeout_s=10)
    results = federation.search_for_studies(study_instance_uid=str(CT.StudyInstanceUID))
    assert len(results) == 1
    assert sorted(results[0].locations) == ["a", "b"]
    assert {h.state for h in results.source_health.values()} == {"ok"}
    everything = federation.search_for_studies()
    by_uid = {s.StudyInstanceUID: s.locations for s in everything}
    assert len(by_uid) == len(everything)
    assert by_uid[str(archives.series[0].StudyInstanceUID)] == ["b"]


@pytest.mark.orthanc
def test_retrieval_goes_to_an_archive_that_holds_the_study(archives):
    federation = FederatedSource([archives.source_a(), archives.source_b()])
    first = archives.series[0]
    dataset = federation.retrieve_instance(str(first.StudyInstanceUID),
                                           str(first.SeriesInstanceUID),
                                           str(first.SOPInstanceUID))
    assert dataset.PixelData == first.PixelData
    with pytest.raises(SourceNotFoundError, match="no source holds it"):
        federation.retrieve_instance(str(first.StudyInstanceUID),
                                     str(first.SeriesInstanceUID), "1.2.3.4.5")


@pytest.mark.orthanc
def test_stopped_archive_is_down_and_the_other_still_answers(archives, orthanc_factory):
    c = orthanc_factory("srcc").start()
    assert c.load_files([pydicom.data.get_testdata_file("CT_small.dcm")]).stored == 1
    source_c = DICOMwebSource(c.dicomweb_url, "c",
                              quirks=ArchiveQuirks.for_orthanc_1_10(), retries=0)
    federation = FederatedSource([archives.source_b(), source_c], timeout_s=10)
    before = federation.search_for_studies(study_instance_uid=str(CT.StudyInstanceUID))
    assert sorted(before[0].locations) == ["b", "c"]
    c.stop()
    with pytest.warns(IncompleteResultsWarning, match="Archive 'c' could not be "
                      "searched.*could not reach"):
        after = federation.search_for_studies(
            study_instance_uid=str(CT.StudyInstanceUID))
    assert after[0].locations == ["b"]
    assert list(after.not_searched) == ["c"] and after.incomplete
    assert after.source_health["c"].state == "down"
    assert "could not reach" in after.source_health["c"].message
    assert after.source_health["b"].state == "ok"
    assert federation.health_by_source()["c"].state == "down"
    assert federation.health().state == "slow"  # partly working


@pytest.mark.orthanc
def test_slow_archive_does_not_hold_up_the_others(archives):
    port = int(archives.a.url.rsplit(":", 1)[1])
    with LoopbackProxy(port, delay_s=3.0) as proxy:
        slow = DICOMwebSource(proxy.url(), "a-slow", timeout=10,
                              quirks=ArchiveQuirks.for_orthanc_1_10())
        federation = FederatedSource([slow, archives.source_b()], timeout_s=1.0)
        started = time.perf_counter()
        with pytest.warns(IncompleteResultsWarning, match="'a-slow'.*no answer "
                          "within 1 s"):
            results = federation.search_for_studies(patient_name="Test")
        elapsed = time.perf_counter() - started
    assert elapsed < 2.5
    assert [r.locations for r in results] == [["b"]]
    assert results.source_health["a-slow"].state == "slow"
    # How long it was waited for: at least the federation's time limit.
    assert results.source_health["a-slow"].latency_ms >= 1000 - 50
    assert not results.source_health["a-slow"].answered
    assert results.source_health["b"].state == "ok"
    assert not results.complete


@pytest.mark.orthanc
def test_late_but_in_time_archive_is_marked_slow_and_kept(archives):
    port = int(archives.a.url.rsplit(":", 1)[1])
    with LoopbackProxy(port, delay_s=0.4) as proxy:
        late = DICOMwebSource(proxy.url(), "a-late",
                              quirks=ArchiveQuirks.for_orthanc_1_10())
        federation = FederatedSource([late, archives.source_b()], timeout_s=5,
                                     slow_after_s=0.2)
        results = federation.search_for_studies(study_instance_uid=str(
            CT.StudyInstanceUID))
    assert sorted(results[0].locations) == ["a-late", "b"]
    health = results.source_health["a-late"]
    assert health.state == "slow" and health.latency_ms >= 400


def _folder(tmp_path: Path, name: str, **patient) -> FolderSource:
    write_datasets(make_ct_series(1, **patient), tmp_path / name)
    return FolderSource(tmp_path / name, name=name)


def test_same_patient_under_two_ids_is_linked_through_other_patient_ids(tmp_path):
    hospital = _folder(tmp_path, "hospital", patient_id="H-1", issuer="HOSP",
                       other_ids=[("R-9", "REGION")])
    region = _folder(tmp_path, "region", patient_id="R-9", issuer="REGION",
                     patient_name="Test^Case^Middle")
    results = FederatedSource([hospital, region]).search_for_studies()
    assert len(results) == 2
    [patient] = results.patients
    assert patient.is_linked
    assert {str(i) for i in patient.identifiers} == {"H-1 (HOSP)", "R-9 (REGION)"}
    assert sorted(patient.locations) == ["hospital", "region"]
    assert len(patient.names) == 2  # both names shown, neither used to link
    region_study = next(s for s in results if s.PatientID == "R-9")
    assert [str(i) for i in region_study.linked_identifiers] == ["H-1 (HOSP)"]


def test_same_name_alone_is_never_linked(tmp_path):
    one = _folder(tmp_path, "one", patient_id="A-1", issuer="HOSP")
    two = _folder(tmp_path, "two", patient_id="B-2", issuer="HOSP")
    results = FederatedSource([one, two]).search_for_studies(patient_name="Test^Case")
    assert len(results) == 2 and len(results.patients) == 2
    assert not any(p.is_linked for p in results.patients)


def test_same_id_without_issuer_links_only_inside_one_source(tmp_path):
    one = _folder(tmp_path, "one", patient_id="123")
    two = _folder(tmp_path, "two", patient_id="123")
    results = FederatedSource([one, two]).search_for_studies()
    assert len(results.patients) == 2


def test_federation_needs_distinct_names_raises(tmp_path):
    with pytest.raises(ValueError, match="distinct"):
        FederatedSource([FolderSource(tmp_path, "x"), FolderSource(tmp_path, "x")])


@pytest.mark.orthanc
@pytest.mark.extra_data
def test_real_corpus_study_in_both_archives_is_merged(archives, extra_data):
    files = sorted((extra_data / "dcm_qa_decubitus").rglob("*.dcm"))[:12]
    if not files:
        pytest.skip("dcm_qa_decubitus is not in the corpus")
    assert archives.a.load_files(files).stored == len(files)
    assert archives.b.load_files(files).stored == len(files)
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    federation = FederatedSource([archives.source_a(),
                                  archives.source_b(auth=CREDENTIALS)])
    results = federation.search_for_studies(
        study_instance_uid=str(header.StudyInstanceUID))
    assert len(results) == 1 and sorted(results[0].locations) == ["a", "b"]
    series = federation.search_for_series(str(header.StudyInstanceUID))
    assert all(sorted(s.locations) == ["a", "b"] for s in series)
    datasets = federation.retrieve_series(str(header.StudyInstanceUID),
                                          str(header.SeriesInstanceUID))
    assert len(datasets) == sum(
        1 for f in files
        if pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID
        == header.SeriesInstanceUID)


def _fan_out_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.name.startswith(THREAD_NAME_PREFIX)]


@pytest.mark.orthanc
def test_stalled_archive_does_not_pile_up_threads_over_repeated_searches(archives):
    port = int(archives.a.url.rsplit(":", 1)[1])
    # The proxy passes no byte of any answer on until released: a stalled archive.
    with LoopbackProxy(port, hold_after_bytes=0, hold_timeout_s=30) as proxy:
        http_timeout_s = 4.0
        stalled = DICOMwebSource(proxy.url(), "a-stalled", timeout=http_timeout_s,
                                 retries=0, quirks=ArchiveQuirks.for_orthanc_1_10())
        # 1 s, not less: on a loaded 2-core machine the live archive alone can
        # take a few tenths of a second, and it must answer every time here.
        federation = FederatedSource([stalled, archives.source_b()], timeout_s=1.0,
                                     max_calls_per_source=2)
        bound = 2 * 2  # sources x max_calls_per_source
        before = len(_fan_out_threads())
        states = []
        for _ in range(8):
            started = time.perf_counter()
            with pytest.warns(IncompleteResultsWarning, match="a-stalled"):
                results = federation.search_for_studies(patient_name="Test")
            # Never held until the stalled request's own HTTP timeout.
            assert time.perf_counter() - started < http_timeout_s
            assert [r.locations for r in results] == [["b"]]
            health = results.source_health["a-stalled"]
            assert health.state == "slow" and not health.answered
            assert health.latency_ms is not None and health.latency_ms >= 1000 - 50
            states.append(health.message.split(",")[0].split(";")[0])
            assert len(_fan_out_threads()) - before <= bound
            assert not results.complete and results.source_health["b"].answered
        # Two searches wait on the archive; the next ones skip it instead of
        # adding a thread (until a left-behind call ends by the HTTP timeout).
        assert states[:3] == ["no answer within 1 s"] * 2 + [
            "still waiting for 2 earlier requests"]
        assert set(states) == {"no answer within 1 s",
                               "still waiting for 2 earlier requests"}

        # The left-behind calls end by the HTTP timeout, freeing the source again.
        deadline = time.perf_counter() + http_timeout_s + 5
        while federation._in_flight["a-stalled"] and time.perf_counter() < deadline:
            time.sleep(0.1)
        assert not federation._in_flight["a-stalled"]
        # Asked again once the earlier calls have ended: not written off.
        proxy.release.set()
        again = federation.search_for_studies(patient_name="Test")
        assert not again.source_health["a-stalled"].message.startswith(
            "still waiting")
    federation.close()
    assert len(_fan_out_threads()) - before <= bound
