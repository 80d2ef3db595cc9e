"""viewerlib.open against a real Orthanc: the first image before the series is whole.

The archive holds a synthetic Test^Case CT whose Instance Numbers run in a different
order from the slice positions, so that the display order can only come from the
positions along the slice normal. A loopback proxy in front of the archive holds the
series answer back after a few instances (a slowed archive) or cuts it (an archive
that dies mid-series).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "sources"))

from lightbox_source_testing import (  # noqa: E402
    FAKE_PATIENT,
    LoopbackProxy,
    make_ct_series,
    write_datasets,
)

import viewerlib  # noqa: E402
from viewerlib import cache  # noqa: E402
from viewerlib.errors import (  # noqa: E402
    PartialSeriesError,
    SourceNotFoundError,
    SourceUnreachableError,
)
from viewerlib.samples.phantom import ct_head_phantom  # noqa: E402
from viewerlib.sources.dicomweb import ArchiveQuirks, DICOMwebSource  # noqa: E402
from viewerlib.sources.local import FolderSource  # noqa: E402
from viewerlib.volume.progressive import SeriesLoad, plan_volume  # noqa: E402
from viewerlib.volume.volume import read_series  # noqa: E402
from viewerlib.widgets.stack import StackViewer  # noqa: E402

pytestmark = pytest.mark.orthanc

SLICES = 12
ROWS = 256  # 128 KiB of pixel data per instance
INSTANCE_BYTES = ROWS * ROWS * 2
# Slice position (z, mm) of Instance Number n: a shuffle, so order is by position.
POSITIONS = {
    n: z
    for n, z in zip(
        range(1, SLICES + 1), [5, 11, 0, 7, 2, 9, 1, 10, 3, 8, 4, 6], strict=True
    )
}


def _series() -> list:
    datasets = make_ct_series(SLICES, rows=ROWS)
    for ds in datasets:
        z = 2.5 * POSITIONS[int(ds.InstanceNumber)]
        ds.ImagePositionPatient = [-64.0, -64.0, z]
    return datasets


@pytest.fixture(scope="module")
def archive(orthanc_factory, tmp_path_factory):
    server = orthanc_factory("openfirst").start()
    datasets = _series()
    paths = write_datasets(datasets, tmp_path_factory.mktemp("open-series"))
    report = server.load_files(paths)
    assert report.stored == SLICES, report
    return server, datasets, paths


@pytest.fixture(autouse=True)
def _empty_caches():
    cache.purge()
    yield
    cache.purge()


def _uids(datasets) -> tuple[str, str]:
    return str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)


def _expected_slice(number: int) -> np.ndarray:
    # make_ct_series writes uint16 arange + 10 * n; with (0028,0101) Bits Stored 12
    # only the low 12 bits are the stored value (PS3.5 8.1.1); then PS3.3
    # C.11.1.1.2: HU = SV * 1 - 1024.
    written = (np.arange(ROWS * ROWS) + 10 * number) % 2**16
    stored = (written & 0x0FFF).reshape(ROWS, ROWS)
    return (stored - 1024).astype(np.int16)


def _number_at(position_mm: float) -> int:
    """The Instance Number whose slice lies `position_mm` along the normal (z)."""
    (number,) = [n for n, z in POSITIONS.items() if abs(2.5 * z - position_mm) < 1e-6]
    return number


def _numbers_by_position() -> list[int]:
    return sorted(POSITIONS, key=POSITIONS.get)


def _port(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_first_image_shows_while_the_series_is_still_held_back(archive, caplog):
    caplog.set_level(logging.INFO, logger="viewerlib.volume.progressive")
    server, datasets, paths = archive
    study, series = _uids(datasets)
    # The proxy passes the small QIDO and metadata answers, then ~2.5 instances of
    # the series stream, and holds the rest until the test lets it go.
    with LoopbackProxy(
        _port(server), hold_after_bytes=int(2.5 * INSTANCE_BYTES), hold_timeout_s=30
    ) as proxy:
        source = DICOMwebSource(
            proxy.url(), "slow-archive", quirks=ArchiveQuirks.for_orthanc_1_10()
        )
        viewer = viewerlib.open(study, source)
        assert viewer.wait_for_slices(1, timeout=20)
        assert proxy.held.wait(20) and not proxy.hold_timed_out.is_set()
        loading = dict(viewer.loading)
        assert loading["state"] == "loading"
        assert 1 <= loading["received"] < SLICES
        # The image on screen is the instance at the position the viewer gives it
        # (its index may change while the layout settles; its place may not).
        shown = viewer.slice_index
        number = _number_at(viewer.slice_positions_mm[shown])
        np.testing.assert_array_equal(viewer.voxels[shown], _expected_slice(number))
        proxy.release.set()
        assert viewer.volume.voxels.shape == (SLICES, ROWS, ROWS)  # waits
    assert viewer.loading["state"] == "complete"
    assert viewer.loading["received"] == SLICES
    # The shuffled series was laid out from its metadata.
    assert "an instance out of order; laying the series out from its metadata" in (
        caplog.text
    )


def test_streamed_volume_equals_read_series_of_the_same_files(archive):
    server, datasets, paths = archive
    study, series = _uids(datasets)
    source = DICOMwebSource(
        server.dicomweb_url, "archive", quirks=ArchiveQuirks.for_orthanc_1_10()
    )
    viewer = viewerlib.open(study, source)
    volume = viewer.volume
    (reference,) = read_series(paths)

    # Ordered by position along the normal (z), not by Instance Number.
    for slot, number in enumerate(_numbers_by_position()):
        np.testing.assert_array_equal(volume.voxels[slot], _expected_slice(number))
    assert np.diff(volume.slice_positions_mm[:, 2]).tolist() == [2.5] * (SLICES - 1)
    # ... and exactly what read_series builds from the files.
    assert volume.voxels.dtype == reference.voxels.dtype
    np.testing.assert_array_equal(volume.voxels, reference.voxels)
    np.testing.assert_array_equal(volume.affine, reference.affine)
    np.testing.assert_array_equal(
        volume.slice_positions_mm, reference.slice_positions_mm
    )
    assert volume.spacing_mm == reference.spacing_mm == (2.5, 0.5, 0.5)
    assert [d.SOPInstanceUID for d in volume.datasets] == [
        d.SOPInstanceUID for d in reference.datasets
    ]
    assert (volume.modality, volume.frame_of_reference_uid) == (
        reference.modality,
        reference.frame_of_reference_uid,
    )
    assert volume.window_presets == reference.window_presets
    assert volume.default_window == reference.default_window
    assert volume.warnings == reference.warnings
    # Identity from the series metadata, whichever instance comes first in space.
    family, given = FAKE_PATIENT.split("^")
    assert viewer.overlay["patient"].startswith(f"{family}, {given}")
    # The viewer shows the volume's own voxels, in the browser's int16.
    np.testing.assert_array_equal(viewer.voxels, volume.voxels)
    assert viewer.number_of_slices == SLICES


def test_archive_dying_mid_series_keeps_the_slices_and_says_what_to_do(archive):
    server, datasets, paths = archive
    study, series = _uids(datasets)
    with LoopbackProxy(
        _port(server), cut_after_bytes=int(3.5 * INSTANCE_BYTES)
    ) as proxy:
        source = _through(proxy, "dying-archive")
        viewer = viewerlib.open(study, source)
        with pytest.raises(
            PartialSeriesError, match="dying-archive: only [1-3] of 12 instances"
        ) as caught:
            viewer.volume  # noqa: B018 (reading it is the test)
    error = caught.value
    arrived = {str(d.SOPInstanceUID) for d in error.datasets}
    assert len(arrived) + len(error.missing_sop_instance_uids) == SLICES
    assert viewer.loading["state"] == "failed"
    message = viewer.loading["message"]
    assert message.startswith(
        f"Loading stopped after {len(arrived)} of {SLICES} images"
    )
    assert "cut short" in message and "Run the cell again to retry" in message
    # The slices that arrived stay, each at its place along the normal.
    numbers = {int(d.InstanceNumber) for d in error.datasets}
    for slot, number in enumerate(_numbers_by_position()):
        if number in numbers:
            np.testing.assert_array_equal(viewer.voxels[slot], _expected_slice(number))
        else:
            assert not viewer.voxels[slot].any()


def _through(proxy: LoopbackProxy, name: str) -> DICOMwebSource:
    """The archive behind `proxy`, asked once (no retries), as Orthanc 1.10."""
    return DICOMwebSource(proxy.url(), name, retries=0,
                          quirks=ArchiveQuirks.for_orthanc_1_10())


def _series_in_order(orthanc_factory, name: str, folder: Path):
    """An archive of its own holding the series in position order (no metadata
    is asked for to lay it out); returns it and the study and series UIDs."""
    server = orthanc_factory(name).start()
    datasets = make_ct_series(SLICES, rows=ROWS)
    for ds in datasets:
        ds.ImagePositionPatient = [0.0, 0.0, 2.5 * int(ds.InstanceNumber)]
    assert server.load_files(write_datasets(datasets, folder)).stored == SLICES
    return (server, *_uids(datasets))


def test_archive_gone_mid_series_says_how_many_of_how_many_arrived(
        orthanc_factory, tmp_path):
    # The archive counted the series, then stopped: the stream is cut and the
    # listing that would name the missing instances fails too. The count said
    # before is what the reader is told, not "3 of 3 arrived, 0 missing".
    # In position order, so that no metadata names the instances either.
    server, study, series = _series_in_order(orthanc_factory, "gone", tmp_path)
    with LoopbackProxy(
        _port(server), cut_after_bytes=int(3.5 * INSTANCE_BYTES)
    ) as proxy:
        source = _through(proxy, "gone-archive")
        viewer = viewerlib.open(study, source, series=series)
        assert viewer.wait_for_slices(1, timeout=20)

        def gone(*_args, **_kwargs):
            raise SourceUnreachableError(
                "gone-archive", "could not reach the archive (connection refused)")

        source.search_for_instances = gone  # type: ignore[method-assign]
        with pytest.raises(PartialSeriesError) as caught:
            viewer.volume  # noqa: B018 (reading it is the test)
    error = caught.value
    arrived = len(error.datasets)
    assert 1 <= arrived < SLICES
    assert error.missing_count == SLICES - arrived
    assert error.missing_sop_instance_uids == []
    message = str(error)
    assert f"only {arrived} of the {SLICES} instances of the series arrived" in message
    assert f"the other {SLICES - arrived} cannot be named" in message
    assert "could not reach the archive" in message
    assert viewer.loading["message"].startswith(
        f"Loading stopped after {arrived} of {SLICES} images")


def test_open_mpr_of_a_series_cut_short_says_so_above_the_planes(
        orthanc_factory, tmp_path):
    # The archive stops after about half the series: the MPR opens with what
    # arrived and says on its own line how many images are missing, with no
    # warning besides (told once).
    server, study, series = _series_in_order(orthanc_factory, "mprcut", tmp_path)
    with LoopbackProxy(_port(server), cut_after_bytes=int(5.5 * INSTANCE_BYTES)
                       ) as proxy:
        source = _through(proxy, "cut-archive")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mpr = viewerlib.open_mpr(study, source, series)
    arrived = mpr.volume.shape[0]
    assert 1 <= arrived < SLICES
    first_line = mpr.warning.splitlines()[0]
    assert first_line == (f"Incomplete series: {SLICES - arrived} of {SLICES} images "
                          "missing")
    assert not [w for w in caught if "instances" in str(w.message)]


def test_folder_source_and_volumes_open_as_before(tmp_path):
    phantom = ct_head_phantom("current", rows=32, columns=32, number_of_slices=6)
    paths = write_datasets(phantom.datasets, tmp_path / "cd")
    folder = FolderSource(tmp_path / "cd", name="cd")
    viewer = viewerlib.open(str(phantom.datasets[0].StudyInstanceUID), folder)
    assert viewer.loading == {}
    (reference,) = read_series(paths)
    np.testing.assert_array_equal(viewer.volume.voxels, reference.voxels)
    again = viewerlib.open(reference)
    assert again.volume is reference and again.loading == {}


def test_plan_orders_slices_by_position_before_any_pixel_data():
    datasets = _series()
    metadata = []
    for ds in datasets:
        header = ds.copy()
        del header.PixelData
        metadata.append(header)
    plan, uids = plan_volume(metadata[::-1])
    assert uids == [str(d.SOPInstanceUID) for d in datasets[::-1]]
    order = [int(metadata[::-1][i].InstanceNumber) for i, _ in plan.source_frames]
    assert order == _numbers_by_position()
    assert plan.voxels.shape == (SLICES, ROWS, ROWS) and not plan.voxels.any()


def test_plan_of_a_series_without_images_raises():
    report = make_ct_series(1)[0]
    del report.PixelData, report.Rows, report.Columns
    report.Modality = "SR"
    with pytest.raises(LookupError, match=r"describes no grayscale image \(only SR\)"):
        plan_volume([report])


@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["feet-first", "head-first"])
def test_series_streamed_in_order_is_placed_without_metadata(
    orthanc_factory, tmp_path, caplog, direction
):
    # Positions one step apart in Instance Number order: each arrival lands where
    # the one before predicts (for a stack that descends along the normal, once the
    # second slice has turned the layout round); no metadata request is needed.
    server = orthanc_factory(f"inorder{int(direction)}").start()
    datasets = make_ct_series(8, rows=64)
    for ds in datasets:
        ds.ImagePositionPatient = [0.0, 0.0, direction * 3.0 * int(ds.InstanceNumber)]
    paths = write_datasets(datasets, tmp_path / "series")
    assert server.load_files(paths).stored == 8
    source = DICOMwebSource(
        server.dicomweb_url, "in-order", quirks=ArchiveQuirks.for_orthanc_1_10()
    )
    with caplog.at_level(logging.INFO, logger="viewerlib.volume.progressive"):
        viewer = viewerlib.open(_uids(datasets)[0], source)
        volume = viewer.volume
    (reference,) = read_series(paths)
    np.testing.assert_array_equal(volume.voxels, reference.voxels)
    np.testing.assert_array_equal(viewer.voxels, reference.voxels)
    assert "from its metadata" not in caplog.text
    assert "laid out again" not in caplog.text
    assert viewer.slice_positions_mm == pytest.approx(
        sorted(direction * 3.0 * n for n in range(1, 9))
    )


def _watched_stream(source: DICOMwebSource) -> tuple[list[str], threading.Event]:
    """Record the thread that reads each instance of `source`'s streams, and
    set an event when a stream is closed."""
    readers: list[str] = []
    closed = threading.Event()
    stream_series = source.iter_series

    def iter_series(*uids):
        try:
            for dataset in stream_series(*uids):
                readers.append(threading.current_thread().name)
                yield dataset
        finally:
            closed.set()

    source.iter_series = iter_series  # type: ignore[method-assign]
    return readers, closed


def _loading_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "viewerlib-series-load"]


def test_the_stream_reads_on_only_once_the_first_image_is_on_screen(archive):
    # Waking the loading thread while the viewer is being made took the
    # processor from it: the rest of the series waits for attached().
    server, datasets, _ = archive
    study, series = _uids(datasets)
    source = DICOMwebSource(
        server.dicomweb_url, "archive", quirks=ArchiveQuirks.for_orthanc_1_10()
    )
    readers, closed = _watched_stream(source)
    deadline = time.monotonic() + 10  # earlier tests' loads end first
    while _loading_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    load = SeriesLoad(source, study, series).start(first_here=True)
    assert load.plan is not None
    assert readers == [threading.current_thread().name]
    time.sleep(0.3)
    assert not _loading_threads(), "a loading thread woke before the image was shown"
    assert len(readers) == 1, "the stream read on before the first image was shown"
    load.expect(SLICES)
    load.attached()
    volume = load.result(timeout=30)
    assert volume.voxels.shape == (SLICES, ROWS, ROWS)
    assert len(readers) == SLICES and closed.is_set()
    assert set(readers[1:]) == {"viewerlib-series-load"}


@pytest.mark.parametrize("end", ["cancel", "result"])
def test_a_load_left_before_its_viewer_was_made_still_ends(archive, end):
    # open() cancels the load when the series turns out to be no image stack;
    # a caller may also just wait for the volume. Neither leaves the stream open.
    server, datasets, _ = archive
    study, series = _uids(datasets)
    source = DICOMwebSource(
        server.dicomweb_url, "archive", quirks=ArchiveQuirks.for_orthanc_1_10()
    )
    readers, closed = _watched_stream(source)
    load = SeriesLoad(source, study, series).start(first_here=True)
    if end == "cancel":
        load.cancel()
        with pytest.raises(RuntimeError, match="cancelled"):
            load.result(timeout=30)
        assert len(readers) < SLICES
    else:
        load.expect(SLICES)
        assert load.result(timeout=30).voxels.shape[0] == SLICES
    assert closed.wait(10)
    assert load.done


def test_unknown_series_raises_the_archive_error_at_once(archive):
    server, datasets, _ = archive
    source = DICOMwebSource(
        server.dicomweb_url, "archive", quirks=ArchiveQuirks.for_orthanc_1_10()
    )
    missing = "1.2.826.0.1.3680043.8.498.1"
    with pytest.raises(SourceNotFoundError, match="archive: .*HTTP 404"):
        viewerlib.open(str(datasets[0].StudyInstanceUID), source, series=missing)


def test_stopped_archive_raises_unreachable_with_what_to_do():
    with LoopbackProxy(1) as proxy:  # nothing listens behind it: refused at once
        url = proxy.url()
    source = DICOMwebSource(url, "stopped", retries=0, timeout=5)
    with pytest.raises(SourceUnreachableError, match="stopped: could not reach"):
        viewerlib.open("1.2.3", source, series="1.2.3.4")


def test_loading_viewer_sends_only_the_slices_that_arrived():
    (volume,) = read_series(
        ct_head_phantom("current", rows=16, columns=16, number_of_slices=6).datasets
    )
    plan = dataclasses.replace(volume, voxels=np.zeros_like(volume.voxels))
    viewer = StackViewer.from_volume(plan)
    sent: list[tuple[str, int, int]] = []
    # The comm is recorded here; the browser test drives the real one.
    viewer.send = lambda content, buffers=None: sent.append(
        (content["type"], content.get("start", -1), content.get("stop", -1))
    )
    viewer.begin_loading(lambda: volume)

    viewer.receive_slice(4, volume.voxels[4])
    assert sent == [] and viewer.slice_index == 4  # no page yet; shown first
    viewer._handle_message(viewer, {"type": "ready", "first": 2}, [])
    assert sent == [("slices", 4, 5)]
    viewer._handle_message(viewer, {"type": "need", "start": 0, "stop": 6}, [])
    assert sent[1:] == [("slices", 4, 5)]  # never the black slices
    viewer.receive_slice(1, volume.voxels[1])
    assert sent[2:] == [("slices", 1, 2)]
    assert viewer.loading == {"state": "loading", "received": 2, "total": 6,
                              "message": ""}

    viewer.end_loading(volume, moved=True)
    assert viewer.volume is volume and viewer.loading["state"] == "complete"
    np.testing.assert_array_equal(viewer.voxels, volume.voxels)
    viewer._handle_message(viewer, {"type": "need", "start": 0, "stop": 2}, [])
    assert sent[-1] == ("slices", 0, 2)  # whole now: every slice may go


def test_one_corrupt_instance_streamed_costs_only_its_slice(orthanc_factory):
    """A slice that cannot be decoded is blanked and named, the others are shown."""
    import warnings

    from pydicom.encaps import encapsulate, generate_frames
    from pydicom.uid import RLELossless

    study = ct_head_phantom("prior", rows=32, columns=32, number_of_slices=10)
    bad = 4  # an inner slice (the phantom is written foot to head)
    expected = []
    for ds in study.datasets:
        # PS3.3 C.11.1.1.2: HU = slope * stored value + intercept.
        stored = np.frombuffer(ds.PixelData, "<u2").reshape(32, 32)
        expected.append(float(ds.RescaleSlope) * stored + float(ds.RescaleIntercept))
        ds.compress(RLELossless)
    victim = study.datasets[bad]
    fragment = next(generate_frames(victim.PixelData, number_of_frames=1))
    victim.PixelData = encapsulate([fragment[: len(fragment) // 3]])
    server = orthanc_factory("corrupt-slice").start()
    assert server.load_datasets(study.datasets).stored == 10
    source = DICOMwebSource(
        server.dicomweb_url, "archive", quirks=ArchiveQuirks.for_orthanc_1_10()
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viewer = viewerlib.open(study.study_instance_uid, source)
        volume = viewer.volume
    assert volume.voxels.shape[0] == 10 and volume.missing_slices == [bad]
    for k in range(10):
        if k != bad:
            np.testing.assert_array_equal(volume.voxels[k], expected[k])
    note = next(w for w in volume.warnings if w.startswith("Missing slice"))
    assert str(victim.SOPInstanceUID) in note and "RLE Lossless" in note
    assert viewer.loading["state"] == "complete"
    # The page learns of it when the series is whole: it marks the slice, and
    # says so on the alert line, the one place it is told (no UserWarning).
    assert viewer.missing_slices == [bad]
    assert note not in [str(w.message) for w in caught]
    assert [row["text"] for row in viewer.alerts] == [
        "1 of 10 slices not decoded (blank)"]


def test_a_study_of_an_ecg_and_of_a_report_open_without_a_traceback(
        orthanc_factory):
    """Through DICOMweb, as the Studies panel opens them: no decoding attempted."""
    sys.path.insert(0, str(Path(__file__).parent / "widgets"))
    from widget_builders import ecg_waveform, text_report

    from viewerlib.widgets.notice import StudyNotice
    from viewerlib.widgets.report import ReportViewer
    from viewerlib.widgets.report_layout import ReportPane

    ecg = ecg_waveform("1.2.826.0.1.3680043.8.498.79")
    images = ct_head_phantom("prior", rows=16, columns=16, number_of_slices=2)
    report = text_report(images.datasets, ["Normal study"])
    server = orthanc_factory("no-images").start()
    assert server.load_datasets([ecg, report]).stored == 2
    source = DICOMwebSource(
        server.dicomweb_url, "archive", quirks=ArchiveQuirks.for_orthanc_1_10()
    )

    notice = viewerlib.open(str(ecg.StudyInstanceUID), source)
    shown = viewerlib.open(str(report.StudyInstanceUID), source)

    assert isinstance(notice, StudyNotice)
    assert notice.lines[0].startswith("an ECG waveform (12-lead ECG Waveform Storage")
    assert "open it in the cardiology system" in notice.lines[0]
    assert isinstance(shown, ReportPane) and isinstance(shown.report, ReportViewer)


def test_nothing_found_while_an_archive_is_down_names_that_archive(tmp_path):
    from lightbox_hub.embedded.ports import free_port

    from viewerlib.errors import IncompleteResultsWarning
    from viewerlib.sources.federated import FederatedSource

    (tmp_path / "empty").mkdir()
    down = DICOMwebSource(f"http://127.0.0.1:{free_port()}/dicom-web", "Closed PACS")
    everywhere = FederatedSource([FolderSource(tmp_path / "empty", "Teaching"), down])
    with pytest.warns(IncompleteResultsWarning), pytest.raises(LookupError) as nothing:
        viewerlib.open("1.2.826.0.1.3680043.8.498.1", everywhere)
    message = str(nothing.value)
    assert "no archive holds a series of this study" in message
    assert "'Closed PACS' could not be searched" in message


def test_a_folder_whose_files_went_missing_opens_what_is_left(tmp_path):
    study = ct_head_phantom("prior", rows=16, columns=16, number_of_slices=6)
    folder = tmp_path / "cd"
    folder.mkdir()
    paths = []
    for ds in study.datasets:
        path = folder / f"{ds.InstanceNumber:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    source = FolderSource(folder)
    source.search_for_studies()  # indexed, then the CD loses a file
    paths[-1].unlink()
    # Told once, on the alert line below: no UserWarning besides.
    viewer = viewerlib.open(study.study_instance_uid, source)
    assert viewer.volume.voxels.shape[0] == 5
    assert any("06.dcm" in note for note in viewer.volume.warnings)
    # Above the image, in a few words; the file by its name, not its folder.
    (alert,) = viewer.alerts
    assert alert["text"] == "Incomplete series: 1 of 6 images missing"
    assert "06.dcm" in alert["detail"] and str(folder) not in alert["detail"]


def test_a_volume_from_an_archive_that_stopped_says_so_above_the_image(archive):
    server, datasets, _ = archive
    study, series = _uids(datasets)
    with LoopbackProxy(
        _port(server), cut_after_bytes=int(3.5 * INSTANCE_BYTES)
    ) as proxy:
        source = _through(proxy, "dying-archive")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the gaps left depend on where it cut
            volume = viewerlib.viewer.open_volume(study, source, series)
    assert any(str(w.message).startswith("dying-archive: only") for w in caught)
    arrived = volume.voxels.shape[0]
    assert 1 <= arrived < SLICES

    viewer = StackViewer.from_volume(volume)

    assert viewer.alerts[0]["text"] == (
        f"Incomplete series: {SLICES - arrived} of {SLICES} images missing")
    assert viewer.alerts[0]["detail"].startswith(
        f"dying-archive: only {arrived} of {SLICES} instances of the series arrived")


# -- An uncompressed file whose pixel data is cut short -------------------------------
# The CT head phantom (32 x 32, 10 slices 4 mm apart, written foot to head) with the
# native (7FE0,0010) Pixel Data of one inner slice 100 bytes short. read_series of the
# folder keeps that slice in place, blank, named in missing_slices and warnings
# (tests/viewerlib/volume/test_bad_slices.py); every way of opening it must too.
_CUT_SLICES = 10
_CUT = 4  # an inner slice: dropping it would leave a gap, not a shorter stack
_CUT_BYTES = 100


def _phantom_with_short_pixel_data():
    """The phantom's datasets, each slice's modality values, and the cut dataset."""
    study = ct_head_phantom("current", rows=32, columns=32,
                            number_of_slices=_CUT_SLICES, slice_spacing_mm=4.0)
    expected = []
    for ds in study.datasets:
        # PS3.3 C.11.1.1.2: HU = slope * stored value + intercept.
        stored = np.frombuffer(ds.PixelData, "<u2").reshape(32, 32)
        expected.append(float(ds.RescaleSlope) * stored + float(ds.RescaleIntercept))
    return study, expected, study.datasets[_CUT]


def _cut_folder(folder: Path):
    """Write the phantom and cut the end off slice _CUT's file (inside its pixels)."""
    study, expected, victim = _phantom_with_short_pixel_data()
    paths = write_datasets(study.datasets, folder)
    cut = paths[_CUT]
    cut.write_bytes(cut.read_bytes()[:-_CUT_BYTES])
    return study, expected, victim, cut


def _check_kept_in_place(viewer, expected, named: str) -> list:
    """The cut slice is blank at its place, named; the others are the phantom's.

    Returns the warnings that reading ``viewer.volume`` gave.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volume = viewer.volume
    assert volume.voxels.shape[0] == _CUT_SLICES
    assert volume.missing_slices == [_CUT]
    for k in range(_CUT_SLICES):
        if k != _CUT:
            np.testing.assert_array_equal(volume.voxels[k], expected[k])
    low = min(float(e.min()) for k, e in enumerate(expected) if k != _CUT)
    assert (volume.voxels[_CUT] == low).all()
    # The geometry stays true: one 4 mm step, no gap, no spacing alarm.
    np.testing.assert_allclose(np.diff(volume.slice_positions_mm[:, 2]), 4.0)
    assert volume.spacing_mm[0] == pytest.approx(4.0)
    assert not any(w.startswith("Non-uniform") for w in volume.warnings)
    needed = 32 * 32 * 2  # Rows * Columns * Bits Allocated / 8
    note = next(w for w in volume.warnings if w.startswith("Missing slice"))
    assert named in note
    assert f"needs {needed} bytes and {needed - _CUT_BYTES} are there" in note
    # The stack viewer's banner, slider marks and alert line are driven by these.
    assert viewer.missing_slices == [_CUT]
    assert [row["text"] for row in viewer.alerts] == [
        f"1 of {_CUT_SLICES} slices not decoded (blank)"]
    return caught


@pytest.mark.parametrize("how", ["folder path", "folder source", "streamed"])
def test_a_file_cut_inside_its_pixel_data_keeps_its_slice_in_place_when_opened(
    tmp_path, how
):
    from viewerlib.sources.federated import FederatedSource

    study, expected, victim, cut = _cut_folder(tmp_path / "cd")
    # A folder's file is named by its path in the folder; a streamed instance
    # by its number and UID (the stream does not know the file).
    named = (f"'{cut.name}'" if how != "streamed"
             else str(victim.SOPInstanceUID))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if how == "folder path":
            viewer = viewerlib.open(str(tmp_path / "cd"))
        elif how == "folder source":
            viewer = viewerlib.open(study.study_instance_uid,
                                    FolderSource(tmp_path / "cd", name="cd"))
        else:
            # Through a federation the folder streams (Source.iter_series), slice
            # by slice, into viewerlib.volume.progressive.
            viewer = viewerlib.open(
                study.study_instance_uid,
                FederatedSource([FolderSource(tmp_path / "cd", name="cd")]))
        late = _check_kept_in_place(viewer, expected, named)
    # Told once, on the viewer's alert line (checked above): no UserWarning.
    alerts = [str(w.message) for w in [*caught, *late]]
    assert not any(a.startswith(("Missing slice", "Non-uniform", "left out"))
                   for a in alerts)
    note = next(w for w in viewer.volume.warnings if w.startswith("Missing slice"))
    assert "the file is cut short" in note and str(tmp_path) not in note


def test_a_short_native_instance_streamed_from_orthanc_keeps_its_slice_in_place(
    orthanc_factory, caplog
):
    study, expected, victim = _phantom_with_short_pixel_data()
    # Stored whole by the archive, its (7FE0,0010) 100 bytes shorter than Rows x
    # Columns x Bits Allocated asks: written so (or cut before it was archived),
    # the same in every copy the archive gives.
    victim.PixelData = victim.PixelData[:-_CUT_BYTES]
    server = orthanc_factory("short-native").start()
    assert server.load_datasets(study.datasets).stored == _CUT_SLICES
    source = DICOMwebSource(
        server.dicomweb_url, "archive", quirks=ArchiveQuirks.for_orthanc_1_10()
    )
    with caplog.at_level(logging.INFO, logger="viewerlib.volume.progressive"), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viewer = viewerlib.open(study.study_instance_uid, source)
        late = _check_kept_in_place(viewer, expected, str(victim.SOPInstanceUID))
    # Told once, on the viewer's alert line (checked above): no UserWarning.
    alerts = [str(w.message) for w in [*caught, *late]]
    assert not any(a.startswith("Missing slice") for a in alerts)
    # Whole in the archive, or cut before it got there: a stream cannot tell, and
    # the note says both, and what to do (not only "copy it again").
    note = next(w for w in viewer.volume.warnings if w.startswith("Missing slice"))
    assert "its pixel data does not fit its header" in note
    assert "if the new copy is the same, ask the sender" in note
    assert viewer.loading["state"] == "complete"
    # The slices streamed in place are the volume: no second lay-out for the blank.
    assert "laid out again" not in caplog.text


# -- A series of two stacks: the axial images and a stray instance --------------------
# The CT head phantom (Test^Case, 32 x 32, 8 axial slices 4 mm apart) with a stray
# instance in its series: a sagittal localizer (ImageType LOCALIZER, 48 x 48), as a
# scanner files the scout with the axial images, sent first or last; or an inner
# slice turned sagittal, which leaves a gap in the axial stack where it lies. The
# streamed route shows the axial stack and names what it leaves out (and what lies
# in the gap) in the words of the route that reads the series whole.
_AXIAL = 8
_LOCALIZER_UID = "1.2.826.0.1.3680043.8.498.4242"
_SAGITTAL = [0, 1, 0, 0, 0, -1]


def _localizer(like):
    localizer = copy.deepcopy(like)  # Dataset.copy() shares the elements
    localizer.SOPInstanceUID = _LOCALIZER_UID
    localizer.file_meta.MediaStorageSOPInstanceUID = localizer.SOPInstanceUID
    localizer.InstanceNumber = _AXIAL + 1
    localizer.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    localizer.ImageOrientationPatient = _SAGITTAL
    localizer.Rows = localizer.Columns = 48
    localizer.PixelData = np.full(48 * 48, 1024, "<u2").tobytes()
    return localizer


def _turned(datasets, index):
    datasets[index].ImageOrientationPatient = _SAGITTAL
    return datasets


_STRAYS = {
    "localizer last": lambda axial: axial + [_localizer(axial[0])],
    "localizer first": lambda axial: [_localizer(axial[0])] + axial,
    "a slice turned, in a gap": lambda axial: _turned(axial, 3),
}
_LOCALIZER_NOTE = (
    "Not shown: 1 file(s) in 1 other stack(s) of this series. Shown is the largest "
    f"stack, {_AXIAL} file(s); left out: instance {_AXIAL + 1} (SOP Instance UID "
    f"{_LOCALIZER_UID}) (another size: (0028,0010) Rows x (0028,0011) Columns 48 x "
    "48, not 32 x 32; a localizer ((0008,0008) Image Type LOCALIZER); another "
    "orientation: (0020,0037) Image Orientation (Patient) 0\\1\\0\\0\\0\\-1 "
    "(sagittal), not 1\\0\\0\\0\\1\\0 (axial)). To see a stack left out, "
    "viewerlib.read_series(source.retrieve_series(study, series)) returns each stack "
    "as a volume, and viewerlib.open(volume) shows one")


@pytest.mark.parametrize("stray", _STRAYS.values(), ids=_STRAYS)
def test_streamed_series_names_the_stack_it_leaves_out(orthanc_factory, stray):
    study = ct_head_phantom("current", rows=32, columns=32, number_of_slices=_AXIAL)
    datasets = stray(list(study))
    server = orthanc_factory("strays").start()
    assert server.load_datasets(datasets).stored == len(datasets)
    source = DICOMwebSource(
        server.dicomweb_url, "archive", quirks=ArchiveQuirks.for_orthanc_1_10()
    )
    series = study.series_instance_uid

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viewer = viewerlib.open(study.study_instance_uid, source, series=series)
        streamed = viewer.volume
    # open_volume returns a volume nothing shows yet: it warns besides.
    with warnings.catch_warnings(record=True) as told:
        warnings.simplefilter("always")
        read = viewerlib.viewer.open_volume(study.study_instance_uid, source, series)

    shown = len(datasets) - 1
    assert streamed.voxels.shape == read.voxels.shape == (shown, 32, 32)
    np.testing.assert_array_equal(streamed.voxels, read.voxels)
    (note,) = [w for w in streamed.warnings if w.startswith("Not shown")]
    assert streamed.warnings == read.warnings
    assert note in [str(w.message) for w in told]
    if shown == _AXIAL:
        assert note == _LOCALIZER_NOTE
    else:
        # The gap it leaves is told with it, not as a spacing problem besides.
        assert not [w for w in streamed.warnings if w.startswith("Non-uniform")]
        assert "another orientation" in note
        assert "the stack shown has uneven slice spacing" in note
    # Above the image, as for the volume read whole: the one place it is told.
    assert viewer.alerts == StackViewer.from_volume(read).alerts
    assert len(viewer.alerts) == 1
    assert viewer.alerts[0]["text"].startswith("1 file(s) of another stack not shown")
    assert not {note, *streamed.warnings} & {str(w.message) for w in caught}
