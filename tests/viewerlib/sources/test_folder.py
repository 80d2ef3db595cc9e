"""FolderSource: folders, DICOMDIRs, photographs, broken files, upload."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import av
import numpy as np
import pydicom
import pytest
from lightbox_source_testing import FAKE_PATIENT, make_ct_series, write_datasets
from PIL import Image

import viewerlib
from viewerlib.errors import (
    PartialSeriesError,
    SourceNotFoundError,
    SourceResponseError,
    UnreadableFilesError,
)
from viewerlib.sources.local import FolderSource
from viewerlib.widgets.media import MediaViewer


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_datasets(make_ct_series(4), tmp_path / "ct")
    (tmp_path / "notes.txt").write_text("not an image")
    good = (tmp_path / "ct" / "slice001.dcm").read_bytes()
    (tmp_path / "ct" / "cut.dcm").write_bytes(good[:300])
    return tmp_path


def test_folder_indexes_series_and_lists_broken_files_with_reasons(folder):
    source = FolderSource(folder)
    studies = source.search_for_studies(patient_name="Test")
    assert [str(s.PatientName) for s in studies] == [FAKE_PATIENT]
    assert studies[0].NumberOfStudyRelatedInstances == 4
    assert studies[0].locations == [folder.name]
    reasons = dict(source.unreadable)
    assert set(reasons) == {str(folder / "ct" / "cut.dcm")}
    # A text file beside the images is no DICOM and not meant to be: nothing is
    # wrong with it, so it is listed apart, not as unreadable.
    assert source.not_dicom == [str(folder / "notes.txt")]
    # pydicom stops quietly at the cut, so what is missing is the reason given
    assert "without (0020,000D)" in reasons[str(folder / "ct" / "cut.dcm")]
    # Our API has no force=True to pass: the reasons say what a user can do.
    assert not any("force" in why.lower() for why in reasons.values())


def test_broken_dicomdir_reason_offers_nothing_the_api_lacks(tmp_path):
    write_datasets(make_ct_series(2), tmp_path)
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 64)
    source = FolderSource(tmp_path)
    assert len(source.search_for_instances(
        source.search_for_studies()[0].StudyInstanceUID)) == 2
    [(path, why)] = source.unreadable
    assert path == str(tmp_path / "DICOMDIR")
    assert why.startswith("DICOMDIR could not be read (")
    assert "force" not in why.lower()
    assert why.endswith("indexing every file in the folder instead")


def test_files_gone_after_indexing_cost_only_themselves_and_are_named(tmp_path):
    paths = write_datasets(make_ct_series(6), tmp_path / "ct")
    source = FolderSource(tmp_path / "ct")
    series = source.search_for_series()[0]
    uids = (series.StudyInstanceUID, series.SeriesInstanceUID)
    expected = {int(pydicom.dcmread(p).InstanceNumber): p for p in paths}
    sop_of = {p: str(pydicom.dcmread(p).SOPInstanceUID) for p in paths}
    expected[2].unlink()                                   # deleted
    expected[4].write_text("now a text file")              # overwritten with text
    write_datasets(make_ct_series(1), tmp_path / "other")
    expected[5].write_bytes((tmp_path / "other" / "slice001.dcm").read_bytes())

    with pytest.raises(PartialSeriesError) as caught:
        source.retrieve_series(*uids)
    error = caught.value
    # Every readable file arrives, also those after the first missing one.
    assert [int(d.InstanceNumber) for d in error.datasets] == [1, 3, 6]
    reasons = dict(error.missing_files)
    assert list(reasons) == [str(expected[n]) for n in (2, 4, 5)]
    assert reasons[str(expected[2])] == "deleted or moved since the folder was indexed"
    assert reasons[str(expected[4])].startswith("overwritten since the folder was "
                                                "indexed: it holds no DICOM data set")
    assert reasons[str(expected[5])].startswith("overwritten since the folder was "
                                                "indexed: it holds another instance")
    assert error.missing_sop_instance_uids == [sop_of[expected[n]] for n in (2, 4, 5)]
    message = str(error)
    assert "3 of the 6 files of the series could not be read, so 3 of 6" in message
    assert all(str(expected[n]) in message for n in (2, 4, 5))
    assert "refresh()" in message and "Put the files back" in message

    # Streamed, the readable files come first, then the error naming the others.
    stream = source.iter_series(*uids)
    arrived = []
    with pytest.raises(UnreadableFilesError) as streamed:
        for dataset in stream:
            arrived.append(int(dataset.InstanceNumber))
    assert arrived == [1, 3, 6]
    assert [p for p, _ in streamed.value.files] == [str(expected[n])
                                                    for n in (2, 4, 5)]
    assert str(expected[2]) in str(streamed.value)

    # One file read alone says the same.
    with pytest.raises(Exception, match="deleted or moved") as alone:
        source.retrieve_instance(*uids, sop_of[expected[2]])
    assert str(expected[2]) in str(alone.value)

    # After refresh() the index holds what is there now, and the series is whole.
    source.refresh()
    now = source.retrieve_series(*uids)
    assert len(source.search_for_series()) == 2  # the overwriting file's own
    assert [int(d.InstanceNumber) for d in now] == [1, 3, 6]
    assert str(expected[4]) in dict(source.unreadable)


def test_folder_reads_pixels_only_on_retrieve(folder):
    source = FolderSource(folder)
    study = source.search_for_studies()[0]
    series = source.search_for_series(study.StudyInstanceUID)[0]
    metadata = source.retrieve_series_metadata(series.StudyInstanceUID,
                                               series.SeriesInstanceUID)
    assert all("PixelData" not in m for m in metadata)
    datasets = list(source.iter_series(series.StudyInstanceUID,
                                       series.SeriesInstanceUID))
    assert [int(d.InstanceNumber) for d in datasets] == [1, 2, 3, 4]
    frame = source.retrieve_instance_frames(
        series.StudyInstanceUID, series.SeriesInstanceUID,
        str(datasets[2].SOPInstanceUID), [1])[0]
    assert frame == datasets[2].PixelData


@pytest.mark.parametrize(("query", "hits"), [
    ({"study_date": "20240101-20240110"}, 1), ({"study_date": "20250101-"}, 0),
    ({"patient_name": "*case"}, 1), ({"patient_name": "Other"}, 0),
    ({"modality": "CT"}, 1), ({"modality": "MR"}, 0),
    ({"patient_id": "TEST-0001"}, 1), ({"accession_number": "nope"}, 0),
])
def test_folder_search_filters(folder, query, hits):
    assert len(FolderSource(folder).search_for_studies(**query)) == hits


def test_dicomdir_lists_the_referenced_files():
    dicomdir = Path(pydicom.data.get_testdata_file("DICOMDIR"))
    source = FolderSource(dicomdir.parent)
    records = pydicom.dcmread(dicomdir).DirectoryRecordSequence
    uids = {str(r.ReferencedSOPInstanceUIDInFile) for r in records
            if "ReferencedSOPInstanceUIDInFile" in r}
    found = {i.SOPInstanceUID for s in source.search_for_studies()
             for i in source.search_for_instances(s.StudyInstanceUID)}
    assert found == uids
    assert source.unreadable == []
    assert source.name == "dicomdirtests"


def _cd_with_missing_files(tmp_path: Path, missing: int) -> tuple[
        Path, str, list[Path]]:
    """pydicom's test CD copied, with `missing` files of its 4-image CT deleted.

    Returns the copy, the series' Series Instance UID and the deleted paths.
    """
    original = Path(pydicom.data.get_testdata_file("DICOMDIR")).parent
    cd = tmp_path / "cd"
    shutil.copytree(original, cd)
    series_uid, gone = None, []
    for record in pydicom.dcmread(cd / "DICOMDIR").DirectoryRecordSequence:
        if record.DirectoryRecordType == "SERIES":
            series_uid = record.SeriesInstanceUID
        if (record.DirectoryRecordType == "IMAGE" and series_uid == _CD_SERIES
                and len(gone) < missing):
            path = cd.joinpath(*record.ReferencedFileID)
            path.unlink()
            gone.append(path)
    return cd, _CD_SERIES, gone


# The CT series of four images on pydicom's test CD (dicomdirtests).
_CD_SERIES = "1.3.6.1.4.1.5962.1.1.0.0.0.1196530851.28319.0.2"


def test_cd_with_files_missing_counts_them_and_the_series_is_partial_raises(
        tmp_path):
    cd, series_uid, gone = _cd_with_missing_files(tmp_path, missing=2)
    source = FolderSource(cd)

    (series,) = [s for s in source.search_for_series()
                 if s.SeriesInstanceUID == series_uid]
    study_uid = series.StudyInstanceUID
    reasons = dict(source.unreadable)

    # The DICOMDIR lists four images: the search says four, not the two left.
    assert series.NumberOfSeriesRelatedInstances == 4
    assert set(reasons) == {str(p) for p in gone}
    assert all("listed in the DICOMDIR but missing" in why
               for why in reasons.values())
    with pytest.raises(PartialSeriesError, match="2 of the 4 files") as caught:
        source.retrieve_series(study_uid, series_uid)
    assert len(caught.value.datasets) == 2
    assert {p for p, _ in caught.value.missing_files} == {str(p) for p in gone}


def test_cd_with_files_missing_opens_what_is_there_and_says_what_is_not(tmp_path):
    cd, series_uid, gone = _cd_with_missing_files(tmp_path, missing=1)
    source = FolderSource(cd)
    (series,) = [s for s in source.search_for_series()
                 if s.SeriesInstanceUID == series_uid]

    with pytest.warns(UserWarning, match="1 of the 4 files") as caught:
        volume = viewerlib.viewer.open_volume(series.StudyInstanceUID,
                                              source=source, series=series_uid)

    assert volume.voxels.shape[0] == 3
    assert str(gone[0]) in str(caught[0].message)
    assert any("listed in the DICOMDIR but missing" in w for w in volume.warnings)


def test_photographs_form_one_study_with_the_exif_date(tmp_path):
    album = tmp_path / "clinic-photos"
    album.mkdir()
    image = Image.new("RGB", (8, 6), (200, 10, 10))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2023:05:17 14:30:00"
    image.save(album / "wound.jpg", exif=exif)
    Image.new("RGB", (4, 4), (0, 0, 255)).save(album / "scale.png")
    (album / "walk.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 32)
    source = FolderSource(album)
    studies = source.search_for_studies()
    assert len(studies) == 1
    assert studies[0].StudyDate == "20230517"
    assert studies[0].NumberOfStudyRelatedSeries == 2  # photographs + one video
    series = {s.SeriesDescription: s for s in source.search_for_series()}
    photos = series["photographs"]
    instances = source.search_for_instances(photos.StudyInstanceUID,
                                            photos.SeriesInstanceUID)
    assert len(instances) == 2
    dataset = next(d for d in source.iter_series(photos.StudyInstanceUID,
                                                 photos.SeriesInstanceUID)
                   if d.Rows == 6)
    assert dataset.pixel_array.shape == (6, 8, 3)
    assert np.all(dataset.pixel_array[..., 0] > 150)
    # The "video" is an MP4 signature and zeros: found, but not readable.
    video = series["walk.mp4"]
    [clip] = source.search_for_instances(video.StudyInstanceUID,
                                         video.SeriesInstanceUID)
    with pytest.raises(SourceResponseError,
                       match=r"walk.mp4 is no longer a readable video \(FFmpeg "
                       r"could not read it.*Put the files back"):
        source.retrieve_instance(video.StudyInstanceUID, video.SeriesInstanceUID,
                                 clip.SOPInstanceUID)


def test_damaged_photographs_are_named_not_counted_as_a_study(tmp_path):
    album = tmp_path / "photos"
    album.mkdir()
    Image.new("RGB", (8, 6), (200, 10, 10)).save(album / "good.png")
    (album / "zeros.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(buffer, "JPEG")
    (album / "cut.jpg").write_bytes(buffer.getvalue()[:300])
    source = FolderSource(album)

    reasons = dict(source.unreadable)
    assert set(reasons) == {str(album / "zeros.png"), str(album / "cut.jpg")}
    assert all("image file that could not be read" in why and "copy it again" in why
               for why in reasons.values())
    (photos,) = source.search_for_series()
    assert photos.NumberOfSeriesRelatedInstances == 1


def test_a_photograph_damaged_after_indexing_is_named_when_opened(tmp_path):
    album = tmp_path / "photos"
    album.mkdir()
    Image.new("RGB", (8, 6), (200, 10, 10)).save(album / "good.png")
    source = FolderSource(album)
    (photos,) = source.search_for_series()
    (album / "good.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)

    with pytest.raises(SourceResponseError,
                       match=r"good.png is no longer a readable image .*damaged"):
        list(source.iter_series(photos.StudyInstanceUID, photos.SeriesInstanceUID))


# Solid colours that survive 4:2:0 chroma and H.264 quantisation within a few
# levels: 3 frames, 10 frames/s, 64 x 48.
_COLORS = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]


def _mp4(codec: str = "libx264") -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as output:
        stream = output.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if codec == "libx264":
            # Nearly lossless, but not qp 0 (lossless is High 4:4:4 Predictive,
            # a profile no DICOM transfer syntax names).
            stream.options = {"qp": "4"}
        for color in _COLORS:
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), color, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def test_folder_video_opens_as_a_dicom_video(tmp_path):
    (tmp_path / "ward-round").mkdir()
    (tmp_path / "ward-round" / "gait.mp4").write_bytes(_mp4())
    source = FolderSource(tmp_path / "ward-round")
    [study] = source.search_for_studies()
    [series] = source.search_for_series(study.StudyInstanceUID)
    [clip] = source.search_for_instances(study.StudyInstanceUID,
                                         series.SeriesInstanceUID)
    uids = (study.StudyInstanceUID, series.SeriesInstanceUID, clip.SOPInstanceUID)

    dataset = source.retrieve_instance(*uids)
    # Video Photographic Image, the H.264 stream as stored (PS3.5 A.4.7):
    # MPEG-4 AVC/H.264 High Profile / Level 4.1, one fragment, Annex B.
    assert dataset.SOPClassUID == "1.2.840.10008.5.1.4.1.1.77.1.4.1"
    assert dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.102"
    assert (dataset.Rows, dataset.Columns, dataset.NumberOfFrames) == (48, 64, 3)
    assert dataset.PhotometricInterpretation == "YBR_PARTIAL_420"
    assert float(dataset.FrameTime) == pytest.approx(100.0)
    offset_table, stream = pydicom.encaps.generate_fragments(dataset.PixelData)
    assert offset_table == b""  # an empty Basic Offset Table, then the stream
    assert stream.startswith((b"\0\0\0\1", b"\0\0\1"))  # Annex B start code

    metadata = source.retrieve_instance_metadata(*uids)
    assert "PixelData" not in metadata and metadata.NumberOfFrames == 3
    with pytest.raises(NotImplementedError, match="frames of a video"):
        source.retrieve_instance_frames(*uids, [1])

    # The path users call: the media viewer, frames decoded in the kernel.
    for viewer in (viewerlib.open(study, source, series),
                   viewerlib.open(study.StudyInstanceUID, source,
                                  series.SeriesInstanceUID)):
        assert isinstance(viewer, MediaViewer) and viewer.kind == "video"
        assert viewer.frames_per_second == pytest.approx(10.0)
        assert len(viewer.frames) == len(_COLORS)
        for frame, color in zip(viewer.frames, _COLORS, strict=True):
            assert frame.shape == (48, 64, 3)
            assert np.abs(frame[24, 32].astype(int) - color).max() <= 6


def test_folder_video_no_dicom_transfer_syntax_carries_raises(tmp_path):
    # MPEG-4 Part 2 in an MP4: FFmpeg plays it, DICOM has no transfer syntax.
    (tmp_path / "old-camera.mp4").write_bytes(_mp4("mpeg4"))
    source = FolderSource(tmp_path)
    [series] = source.search_for_series()
    [clip] = source.search_for_instances(series.StudyInstanceUID,
                                         series.SeriesInstanceUID)
    with pytest.raises(NotImplementedError,
                       match=r"old-camera.mp4 holds mpeg4 video .* no DICOM video "
                       r"transfer syntax carries .*viewerlib.open\(Path\("):
        source.retrieve_instance(series.StudyInstanceUID, series.SeriesInstanceUID,
                                 clip.SOPInstanceUID)
    # The file itself opens, as the message says.
    assert isinstance(viewerlib.open(tmp_path / "old-camera.mp4"), MediaViewer)


def test_missing_folder_raises(tmp_path):
    source = FolderSource(tmp_path / "nowhere")
    assert source.health().state == "down"
    with pytest.raises(SourceNotFoundError, match="not a folder"):
        source.search_for_studies()


@pytest.mark.orthanc
def test_upload_to_archive_reports_per_file(folder, archives):
    target = archives.source_a()
    report = FolderSource(folder).upload_to(target, batch_size=3)
    assert len(report.stored) == 4
    assert all(p.endswith(".dcm") for p in report.stored)
    failed = dict(report.failed)
    assert set(failed) == {str(folder / "notes.txt"), str(folder / "ct" / "cut.dcm")}
    assert failed[str(folder / "notes.txt")].startswith("not sent: not DICOM, nor meant")
    studies = target.search_for_studies(patient_name="Test", study_date="20240102")
    assert any(s.NumberOfStudyRelatedInstances == 4 for s in studies)
