"""DICOMwebSource against real Orthanc 1.10 archives on loopback."""

from __future__ import annotations

import dataclasses
import io
import re
import threading

import numpy as np
import pydicom
import pytest
from lightbox_source_testing import (
    CREDENTIALS,
    DROP,
    FAKE_PATIENT,
    JPEG_LS_FILE,
    SERIES_LENGTH,
    ArchiveGateway,
    LoopbackProxy,
    Reply,
    make_ct_series,
)
from PIL import Image

from viewerlib.errors import (
    PartialSeriesError,
    SourceAuthenticationError,
    SourceNotFoundError,
    SourceResponseError,
    SourceUnreachableError,
)
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.quirks import ArchiveQuirks

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
    # 5 + 5 + 2, then the empty page that ends the results.
    assert [u.split("offset=")[1].split("&")[0] for u in sent] == [
        "0", "5", "10", "12"]
    uids = [i.SOPInstanceUID for i in instances]
    assert len(uids) == SERIES_LENGTH == len(set(uids))
    assert set(uids) == {str(d.SOPInstanceUID) for d in archives.series}


def _port(archive) -> int:
    return int(archive.url.rsplit(":", 1)[1])


def _cap_page_size(cap: int):
    """Rewrite ``limit`` as an archive with a page size limit answers it."""
    def rewrite(path: str) -> str:
        return re.sub(r"([?&]limit=)(\d+)",
                      lambda m: f"{m[1]}{min(int(m[2]), cap)}", path)

    return rewrite


def test_paging_gets_everything_from_an_archive_that_caps_its_pages(archives):
    # The archive sends at most 5 per page when 100 are asked for: each short
    # page is followed by the next, until the empty one.
    study, series = _series_uids(archives)
    with ArchiveGateway(_port(archives.b), rewrite=_cap_page_size(5)) as capped:
        source = DICOMwebSource(capped.url(), "b-capped", auth=CREDENTIALS,
                                quirks=dataclasses.replace(
                                    ArchiveQuirks.for_orthanc_1_10(),
                                    max_page_size=100))
        instances = source.search_for_instances(study, series)
        asked = [re.search(r"[?&]offset=(\d+)", r.path)[1] for r in capped.requests]
        first_seven = source.search_for_instances(study, series, limit=7)
    assert asked == ["0", "5", "10", "12"]
    assert all("limit=100" in r.path for r in capped.requests[:4])
    uids = [i.SOPInstanceUID for i in instances]
    assert sorted(uids) == sorted(str(d.SOPInstanceUID) for d in archives.series)
    assert len(first_seven) == 7 and len({i.SOPInstanceUID for i in first_seven}) == 7


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


def _is_series_retrieval(recorded) -> bool:
    # WADO-RS series: /studies/{uid}/series/{uid}, no query, no /metadata.
    return re.fullmatch(r"/dicom-web/studies/[\d.]+/series/[\d.]+", recorded.path
                        ) is not None


def _is_series_count(recorded) -> bool:
    return "/series?" in recorded.path


@pytest.mark.parametrize("count_first", [True, False],
                         ids=["counted-then-died", "died-before-counting"])
def test_archive_dying_mid_series_keeps_what_arrived_raises(archives, count_first):
    # The archive passes on the first 12 000 bytes of the series (a few of its
    # 12 instances), then dies: the connection drops and nothing answers any
    # more, so neither the instance listing nor a retry can name the missing
    # instances. Either the archive had answered the series' count before, or
    # it dies first, holding the count unanswered.
    study, series = _series_uids(archives)

    def answer(recorded):
        if _is_series_count(recorded) and not count_first:
            gateway.dead.wait(10)
            return DROP
        return None

    def cut_after(recorded):
        if not _is_series_retrieval(recorded):
            return None
        if count_first:
            deadline = threading.Event()
            for _ in range(100):
                if any(_is_series_count(r) for r in gateway.answered):
                    break
                deadline.wait(0.05)
        return 12_000

    with ArchiveGateway(_port(archives.b), answer=answer, cut_after=cut_after,
                        die_at_cut=True) as gateway:
        source = DICOMwebSource(gateway.url(), "b-dying", auth=CREDENTIALS,
                                quirks=ArchiveQuirks.for_orthanc_1_10(), retries=0)
        with pytest.raises(PartialSeriesError, match="^b-dying: ") as caught:
            source.retrieve_series(study, series)
        assert gateway.dead.is_set()
        with pytest.raises(SourceUnreachableError):  # it is really gone
            source.search_for_studies()

    error = caught.value
    original = {str(d.SOPInstanceUID): d for d in archives.series}
    # What arrived is kept, whole.
    assert 1 <= len(error.datasets) < SERIES_LENGTH
    for dataset in error.datasets:
        assert dataset.PixelData == original[str(dataset.SOPInstanceUID)].PixelData
    assert isinstance(error.__cause__, SourceResponseError)  # the cut transfer
    message = str(error)
    assert "the source could not be asked for the series' instances" in message
    assert "Retry when the source answers again" in message
    assert error.missing_sop_instance_uids == []  # the listing could not be had
    if count_first:
        # The archive had counted the series: how many are missing is known.
        assert error.missing_count == SERIES_LENGTH - len(error.datasets)
        assert (f"only {len(error.datasets)} of the {SERIES_LENGTH} instances"
                in message)
    else:
        assert error.missing_count is None
        assert "how many are missing is not known" in message


def test_series_cut_short_names_the_missing_instances_raises(archives):
    # The transfer breaks, but the archive still answers: the missing instances
    # are named by UID.
    study, series = _series_uids(archives)

    def cut_after(recorded):
        return 12_000 if _is_series_retrieval(recorded) else None

    with ArchiveGateway(_port(archives.b), cut_after=cut_after) as gateway:
        source = DICOMwebSource(gateway.url(), "b-cut", auth=CREDENTIALS,
                                quirks=ArchiveQuirks.for_orthanc_1_10(), retries=0)
        with pytest.raises(PartialSeriesError, match="b-cut: only") as caught:
            source.retrieve_series(study, series)
    error = caught.value
    assert 1 <= len(error.datasets) < SERIES_LENGTH
    assert len(error.datasets) + len(error.missing_sop_instance_uids) == SERIES_LENGTH
    assert error.missing_count == len(error.missing_sop_instance_uids)
    assert isinstance(error.__cause__, SourceResponseError)
    arrived = {str(d.SOPInstanceUID) for d in error.datasets}
    assert arrived.isdisjoint(error.missing_sop_instance_uids)


@pytest.mark.parametrize("status", [406, 400, 501])
def test_series_refused_whole_is_retrieved_instance_by_instance(archives, status):
    study, series = _series_uids(archives)

    def refuse_series(recorded):
        return Reply(status) if _is_series_retrieval(recorded) else None

    with ArchiveGateway(_port(archives.b), answer=refuse_series) as gateway:
        source = DICOMwebSource(gateway.url(), "b-refusing", auth=CREDENTIALS,
                                quirks=ArchiveQuirks.for_orthanc_1_10())
        datasets = source.retrieve_series(study, series)
        paths = [r.path for r in gateway.requests]
    original = {str(d.SOPInstanceUID): d for d in archives.series}
    assert sorted(str(d.SOPInstanceUID) for d in datasets) == sorted(original)
    for dataset in datasets:
        assert dataset.PixelData == original[str(dataset.SOPInstanceUID)].PixelData
    # In Instance Number order, one request each after the refused one.
    assert [int(d.InstanceNumber) for d in datasets] == list(
        range(1, SERIES_LENGTH + 1))
    assert sum(_is_series_retrieval(r) for r in gateway.requests) == 1
    assert sum("/instances/" in p for p in paths) == SERIES_LENGTH


@pytest.mark.parametrize(("status", "error"), [
    (404, SourceNotFoundError), (403, SourceAuthenticationError)])
def test_series_not_found_or_forbidden_is_not_retried_per_instance_raises(
        archives, status, error):
    study, series = _series_uids(archives)

    def refuse_series(recorded):
        return Reply(status) if _is_series_retrieval(recorded) else None

    with ArchiveGateway(_port(archives.b), answer=refuse_series) as gateway:
        source = DICOMwebSource(gateway.url(), "b-refusing", auth=CREDENTIALS,
                                quirks=ArchiveQuirks.for_orthanc_1_10())
        with pytest.raises(error, match=f"HTTP {status}"):
            source.retrieve_series(study, series)
    assert not any("/instances/" in r.path for r in gateway.requests)


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
