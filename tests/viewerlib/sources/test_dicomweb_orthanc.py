"""DICOMwebSource against real Orthanc 1.10 archives on loopback."""

from __future__ import annotations

import dataclasses
import io
import threading

import numpy as np
import pydicom
import pytest
from lightbox_source_testing import CREDENTIALS, JPEG_LS_FILE, SERIES_LENGTH
from lightbox_source_testing import FAKE_PATIENT, LoopbackProxy, make_ct_series
from PIL import Image

from viewerlib.errors import (
    PartialSeriesError,
    SourceAuthenticationError,
    SourceNotFoundError,
    SourceResponseError,
)
from viewerlib.sources.dicomweb import ArchiveQuirks, DICOMwebSource

pytestmark = pytest.mark.orthanc


def _series_uids(archives):
    first = archives.series[0]
    return str(first.StudyInstanceUID), str(first.SeriesInstanceUID)


@pytest.mark.parametrize("query", ["Test^Case", "test", "Test*", "T?st^C*", "*Case"],
                         ids=["exact", "fuzzy-prefix", "star", "question",
                              "leading-star"])
def test_name_search_finds_the_patient(archives, query):
    studies = archives.source_b().search_for_studies(patient_name=query)
    assert [str(s.PatientName) for s in studies] == [FAKE_PATIENT]
    assert studies[0].locations == ["b"]


def test_name_search_without_quirks_finds_nothing_on_orthanc(archives):
    # Documents why the quirk exists: percent-encoded wildcards do not match.
    plain = DICOMwebSource(archives.b.dicomweb_url, "b", auth=CREDENTIALS)
    assert plain.search_for_studies(patient_name="Test*") == []


def test_name_search_for_another_name_finds_nothing(archives):
    assert archives.source_b().search_for_studies(patient_name="Nobody") == []


@pytest.mark.parametrize(("date", "found"), [
    ("20240101-20240131", True), (("20240102", None), True), ("20240102", True),
    ("-20231231", False), (("20240103", "20250101"), False),
], ids=["range", "open-end", "single", "before", "after"])
def test_study_date_search(archives, date, found):
    studies = archives.source_b().search_for_studies(patient_id="TEST-0001",
                                                     study_date=date)
    assert bool(studies) is found


def test_modality_accession_and_patient_id_filters(archives):
    source = archives.source_b()
    found = source.search_for_studies(modality="CT", accession_number="ACC-TEST-1")
    assert len(found) == 1
    assert source.search_for_studies(modality="MR", patient_id="TEST-0001") == []
    study = source.search_for_studies(patient_id="TEST-0001")[0]
    assert study.NumberOfStudyRelatedInstances == SERIES_LENGTH
    assert study.ModalitiesInStudy == ["CT"]


def test_paging_across_pages_returns_every_instance_once(archives):
    study, series = _series_uids(archives)
    source = archives.source_b(quirks=dataclasses.replace(
        ArchiveQuirks.for_orthanc_1_10(), max_page_size=5))
    sent = []
    send = source.session.send

    def recording_send(request, **kwargs):
        sent.append(request.url)
        return send(request, **kwargs)

    source.session.send = recording_send
    instances = source.search_for_instances(study, series)
    assert [u.split("offset=")[1].split("&")[0] for u in sent] == ["0", "5", "10"]
    uids = [i.SOPInstanceUID for i in instances]
    assert len(uids) == SERIES_LENGTH == len(set(uids))
    assert set(uids) == {str(d.SOPInstanceUID) for d in archives.series}


def test_wrong_password_raises(archives):
    source = archives.source_b(auth=("viewer", "not-the-password"))
    with pytest.raises(SourceAuthenticationError, match="b: .*HTTP 401"):
        source.search_for_studies()
    assert source.health().state == "down"


def test_wrong_password_while_retrieving_says_retrieving_raises(archives):
    # The instance count is searched alongside the stream; the refusal reported
    # is the retrieval's own, whichever of the two requests is refused first.
    source = archives.source_b(auth=("viewer", "not-the-password"), retries=0)
    for _ in range(3):
        with pytest.raises(SourceAuthenticationError,
                           match="HTTP 401.* while retrieving a series") as caught:
            source.retrieve_series(*_series_uids(archives))
        assert "searching" not in str(caught.value)


def test_unknown_series_raises(archives):
    study, _ = _series_uids(archives)
    with pytest.raises(SourceNotFoundError, match="HTTP 404"):
        archives.source_b().retrieve_series_metadata(study, "1.2.3.4.5.6.7.8.9")


def test_series_metadata_has_headers_without_pixels(archives):
    study, series = _series_uids(archives)
    metadata = archives.source_b().retrieve_series_metadata(study, series)
    assert len(metadata) == SERIES_LENGTH
    assert {str(m.PatientName) for m in metadata} == {FAKE_PATIENT}
    assert all(m.get("PixelData") is None for m in metadata)


def test_retrieve_instance_keeps_stored_syntax_and_pixels(archives):
    source = archives.source_a()
    ct = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    dataset = source.retrieve_instance(str(ct.StudyInstanceUID),
                                       str(ct.SeriesInstanceUID),
                                       str(ct.SOPInstanceUID))
    assert dataset.file_meta.TransferSyntaxUID == ct.file_meta.TransferSyntaxUID
    np.testing.assert_array_equal(dataset.pixel_array, ct.pixel_array)


def test_stored_jpeg_ls_comes_back_as_stored_and_decodes_here(archives):
    path = pydicom.data.get_testdata_file(JPEG_LS_FILE)
    original = pydicom.dcmread(path)
    uids = (str(original.StudyInstanceUID), str(original.SeriesInstanceUID),
            str(original.SOPInstanceUID))
    source = archives.source_a()
    dataset = source.retrieve_instance(*uids)
    assert dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"
    np.testing.assert_array_equal(dataset.pixel_array, original.pixel_array)
    frames = source.retrieve_instance_frames(*uids, [2, 10])
    # JPEG-LS codestreams as stored, not pixels decoded by the archive
    assert [f[:4] for f in frames] == [b"\xff\xd8\xff\xf7"] * 2
    assert source.health().state == "ok"  # the archive is still up


def test_frames_equal_the_pixel_data_of_the_file(archives):
    study, series = _series_uids(archives)
    original = archives.series[3]
    frames = archives.source_b().retrieve_instance_frames(
        study, series, str(original.SOPInstanceUID), [1])
    assert frames == [original.PixelData]


def test_iter_series_yields_the_first_instance_before_the_body_ends(archives):
    study, series = _series_uids(archives)
    port = int(archives.b.url.rsplit(":", 1)[1])
    # Hold the answer after ~3 instances' worth of bytes until we let it go.
    with LoopbackProxy(port, hold_after_bytes=8_000, hold_timeout_s=5) as proxy:
        source = DICOMwebSource(proxy.url(), "b-proxied", auth=CREDENTIALS,
                                quirks=ArchiveQuirks.for_orthanc_1_10())
        stream = source.iter_series(study, series)
        first = next(stream)
        # The rest of the body is still held back by the proxy (its thread may set
        # the flag a moment after the first bytes went through).
        assert proxy.held.wait(5) and not proxy.hold_timed_out.is_set()
        proxy.release.set()
        rest = list(stream)
    assert 1 + len(rest) == SERIES_LENGTH
    assert str(first.PatientName) == FAKE_PATIENT
    assert "PixelData" in first


def test_series_cut_short_keeps_what_arrived_raises(archives):
    study, series = _series_uids(archives)
    port = int(archives.b.url.rsplit(":", 1)[1])
    with LoopbackProxy(port, cut_after_bytes=12_000) as proxy:
        source = DICOMwebSource(proxy.url(), "b-cut", auth=CREDENTIALS,
                                quirks=ArchiveQuirks.for_orthanc_1_10(), retries=0)
        # The listing comes straight from the archive; only the transfer breaks.
        source.search_for_instances = archives.source_b().search_for_instances
        with pytest.raises(PartialSeriesError, match="b-cut: only") as caught:
            source.retrieve_series(study, series)
    error = caught.value
    assert 1 <= len(error.datasets) < SERIES_LENGTH
    assert len(error.datasets) + len(error.missing_sop_instance_uids) == SERIES_LENGTH
    assert isinstance(error.__cause__, SourceResponseError)
    arrived = {str(d.SOPInstanceUID) for d in error.datasets}
    assert arrived.isdisjoint(error.missing_sop_instance_uids)


def test_retrieve_series_whole(archives):
    study, series = _series_uids(archives)
    datasets = archives.source_b().retrieve_series(study, series)
    assert sorted(int(d.InstanceNumber) for d in datasets) == list(
        range(1, SERIES_LENGTH + 1))


def test_stow_rs_round_trip(archives):
    source = archives.source_a()
    new = make_ct_series(2, patient_id="TEST-STOW")
    report = source.store_instances(new)
    assert report.ok and sorted(report.stored) == sorted(str(d.SOPInstanceUID)
                                                         for d in new)
    study = source.search_for_studies(patient_id="TEST-STOW")
    assert len(study) == 1
    back = source.retrieve_instance(str(new[1].StudyInstanceUID),
                                    str(new[1].SeriesInstanceUID),
                                    str(new[1].SOPInstanceUID))
    assert back.PixelData == new[1].PixelData


def test_stow_rs_reports_the_instance_the_archive_refused(archives):
    source = archives.source_a()
    good = make_ct_series(1, patient_id="TEST-STOW2")[0]
    bad = make_ct_series(1, patient_id="TEST-STOW2")[0]
    del bad.StudyInstanceUID  # Orthanc refuses an instance without it
    report = source.store_instances([good, bad])
    assert report.stored == [str(good.SOPInstanceUID)]
    assert len(report.failed) == 1 and "HTTP 400" in report.failed[0][1]


def test_rendered_with_window_and_thumbnail_fallback(archives):
    study, series = _series_uids(archives)
    sop = str(archives.series[0].SOPInstanceUID)
    source = archives.source_b()
    png = source.retrieve_instance_rendered(study, series, sop,
                                            window=(40, 400, "linear"))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    thumbnail = source.retrieve_instance_thumbnail(study, series, sop, size=16)
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert image.format == "JPEG" and max(image.size) <= 16


def test_health_ok_and_slow(archives):
    assert archives.source_a().health().state == "ok"
    port = int(archives.a.url.rsplit(":", 1)[1])
    with LoopbackProxy(port, delay_s=0.3) as proxy:
        slow = DICOMwebSource(proxy.url(), "a-slow", slow_after_s=0.1)
        health = slow.health()
    assert health.state == "slow" and health.latency_ms >= 300


def test_concurrent_searches_share_one_source(archives):
    source = archives.source_b()
    results: list[int] = []

    def search():
        results.append(len(source.search_for_studies(patient_name="Test")))

    threads = [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [1, 1, 1, 1]
