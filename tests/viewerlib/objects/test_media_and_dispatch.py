"""Photos and videos decode to the right pixels; viewerlib.open picks the viewer."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from object_builders import (
    encapsulated_pdf,
    key_objects,
    numbered_video,
    pdf_bytes,
    phantom,
    presentation_state,
    segmentation,
    structure_set,
    video_frame_number,
    x_mm,
    y_mm,
)
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import generate_uid

import viewerlib
from viewerlib.objects.media import (
    VideoFrames,
    decode_video,
    read_dicom_video,
    read_image_file,
)
from viewerlib.sources.local import FolderSource
from viewerlib.widgets.document import DocumentViewer
from viewerlib.widgets.media import MediaViewer
from viewerlib.widgets.overlays import AnnotatedStackViewer
from viewerlib.widgets.report import ReportViewer

# Solid colours that survive 4:2:0 chroma and H.264 quantisation within a few levels.
_COLORS = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]
_TOLERANCE = 6


def _encode(colors: list[tuple[int, int, int]], container: str,
            codec: str = "libx264") -> bytes:
    """A 64 x 48 clip at 10 frames/s, one solid colour per frame."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"qp": "0"} if codec == "libx264" else {}
        for color in colors:
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), color, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def _assert_colors(frames: list[np.ndarray], colors: list[tuple[int, int, int]]
                   ) -> None:
    assert len(frames) == len(colors)
    for frame, color in zip(frames, colors, strict=True):
        assert frame.shape == (48, 64, 3)
        assert np.abs(frame[24, 32].astype(int) - color).max() <= _TOLERANCE


def test_mp4_file_decodes_frame_by_frame(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(_encode(_COLORS, "mp4"))

    viewer = viewerlib.open(path)

    assert isinstance(viewer, MediaViewer) and viewer.kind == "video"
    assert viewer.frames_per_second == pytest.approx(10.0)
    _assert_colors(viewer.frames, _COLORS)


def _dicom_video(stream: bytes) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    # PS3.5 A.4.7: MPEG-4 AVC/H.264 High Profile / Level 4.1.
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.4.1"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Test^Case"
    ds.Modality = "XC"
    ds.FrameTime = 40.0  # ms: 25 frames/s
    ds.NumberOfFrames = 3
    ds.PixelData = encapsulate([stream])
    return ds


def test_dicom_h264_video_decodes_and_keeps_its_frame_time() -> None:
    ds = _dicom_video(_encode(_COLORS, "h264"))

    media = read_dicom_video(ds)
    viewer = viewerlib.open(ds)

    _assert_colors(media.frames, _COLORS)
    assert media.frames_per_second == pytest.approx(25.0)
    assert isinstance(viewer, MediaViewer) and viewer.number_of_frames == 3


_FRAME_BYTES = 64 * 48 * 3


@pytest.mark.parametrize("container", ["mp4", "h264"], ids=["mp4", "bare-h264"])
def test_long_video_is_decoded_on_demand_within_its_cache(container: str) -> None:
    # 200 frames, a key frame every 10; room for 16 decoded frames (two chunks
    # of 8). A bare H.264 stream, as a DICOM video holds it, cannot seek: it is
    # decoded from its packets, starting at the key frame.
    data = numbered_video(200, container, key_every=10)
    media = decode_video(data, None if container == "mp4" else "h264",
                         cache_bytes=16 * _FRAME_BYTES)
    frames = media.frames
    assert isinstance(frames, VideoFrames) and len(frames) == 200

    for index in [150, 3, 199, 77, 78, 79, 80, 12, 151]:
        before = frames.decoded_frames
        assert video_frame_number(frames[index]) == index
        # At most from the key frame before the chunk of 8 to the chunk's end:
        # one group of pictures and one chunk, never the video up to there.
        assert frames.decoded_frames - before <= 10 + 8, index
        assert frames.held_frames <= 16

    # Playing on decodes each frame once more at most, chunk after chunk.
    before = frames.decoded_frames
    shown = [video_frame_number(frames[i]) for i in range(152, 176)]
    assert shown == list(range(152, 176))
    assert frames.decoded_frames - before <= 24 + 8
    assert frames.held_frames <= 16


def test_not_a_video_raises() -> None:
    with pytest.raises(ValueError, match="could not be decoded"):
        decode_video(b"not a video at all" * 10)


def test_photo_files_turn_as_exif_says(tmp_path: Path) -> None:
    # A 4 x 2 photo, red on the left half, stored with EXIF Orientation 6 (the
    # camera was turned: show it turned 90 degrees clockwise), becomes 2 x 4
    # with red on top.
    pixels = np.zeros((2, 4, 3), np.uint8)
    pixels[:, :2] = (255, 0, 0)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / "photo.png"
    image.save(path, exif=exif)

    upright = read_image_file(path)

    assert upright.shape == (4, 2, 3)
    assert upright[0, 0].tolist() == [255, 0, 0] and upright[3, 0].tolist() == [0, 0, 0]


def test_jpeg_vl_photographic_instance_is_shown_in_rgb() -> None:
    # A JPEG baseline (PS3.5 A.4.1) photo: left half (200, 40, 40), right half
    # (40, 40, 200), 16 x 16; JPEG keeps flat areas within a few levels.
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[:, :8] = (200, 40, 40)
    pixels[:, 8:] = (40, 40, 200)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, subsampling=0)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.4"
    ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.PatientName = "XC", "Test^Case"
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "YBR_FULL"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([buffer.getvalue()])

    viewer = viewerlib.open(ds)

    assert isinstance(viewer, MediaViewer) and viewer.kind == "photo"
    (frame,) = viewer.frames
    assert np.abs(frame[8, 2].astype(int) - (200, 40, 40)).max() <= _TOLERANCE
    assert np.abs(frame[8, 13].astype(int) - (40, 40, 200)).max() <= _TOLERANCE


def _folder(tmp_path: Path) -> tuple[FolderSource, list[Dataset], dict[str, Dataset]]:
    images, _ = phantom()
    masks = np.zeros((4, 16, 16, 1), np.uint8)
    masks[1, 3:6, 4:9, 0] = 1
    square = [(x_mm(2.5), y_mm(3.5)), (x_mm(6.5), y_mm(3.5)), (x_mm(6.5), y_mm(7.5)),
              (x_mm(2.5), y_mm(7.5))]
    objects = {
        "seg": segmentation(images, masks, ["Bleed"], [(50.0, 60.0, 40.0)]),
        "rtstruct": structure_set(images, [("Tumour", (255, 0, 0),
                                            [(2, square, 2)])]),
        "gsps": presentation_state(images, (35.0, 90.0)),
        "kos": key_objects(images, [2]),
        "pdf": encapsulated_pdf(pdf_bytes([(255, 255, 255)])),
    }
    # The RTSTRUCT names its series as RT Referenced Series (PS3.3 C.8.8.5).
    series = Dataset()
    series.SeriesInstanceUID = images[0].SeriesInstanceUID
    series.ContourImageSequence = []
    study = Dataset()
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = images[0].FrameOfReferenceUID
    frame.RTReferencedStudySequence = [study]
    objects["rtstruct"].ReferencedFrameOfReferenceSequence = [frame]
    objects["pdf"].StudyInstanceUID = images[0].StudyInstanceUID
    for number, ds in enumerate(images):
        ds.save_as(tmp_path / f"ct{number}.dcm", enforce_file_format=True)
    for name, ds in objects.items():
        ds.save_as(tmp_path / f"{name}.dcm", enforce_file_format=True)
    Image.new("RGB", (8, 6), (10, 120, 230)).save(tmp_path / "wound.png")
    return FolderSource(tmp_path), images, objects


def test_open_chooses_the_viewer_by_sop_class(tmp_path: Path) -> None:
    source, images, objects = _folder(tmp_path)
    study = images[0].StudyInstanceUID

    def opened(name: str):
        return viewerlib.open(study, source, series=objects[name].SeriesInstanceUID)

    seg_viewer = opened("seg")
    assert isinstance(seg_viewer, AnnotatedStackViewer)
    assert [layer["name"] for layer in seg_viewer.layers] == ["Bleed"]
    assert seg_viewer.overlay_layers[0].masks[1][3:6, 4:9].all()
    rt_viewer = opened("rtstruct")
    assert rt_viewer.layers[0]["style"] == "outline"
    assert opened("gsps").window_width == 90.0
    assert opened("kos").key_images == [{"slice_index": 2, "label": "Im 3"}]
    assert isinstance(opened("pdf"), DocumentViewer)

    photos = [s for s in source.search_for_series(study_instance_uid=None)
              if s.Modality == "XC"]
    viewer = viewerlib.open(photos[0].StudyInstanceUID, source, series=photos[0])
    assert isinstance(viewer, MediaViewer) and viewer.kind == "photo"
    assert viewer.frames[0][0, 0].tolist() == [10, 120, 230]

    ct = viewerlib.open(study, source)
    assert ct.number_of_slices == 4


def test_open_a_dataset_shows_reports_as_text() -> None:
    import pydicom
    from pydicom.data import get_testdata_file

    sr = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    assert isinstance(viewerlib.open(sr), ReportViewer)


def test_open_a_file_reads_dicom_without_preamble_and_refuses_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "report"
    encapsulated_pdf(pdf_bytes([(0, 0, 0)])).save_as(path, enforce_file_format=False)
    assert isinstance(viewerlib.open(path), DocumentViewer)
    other = tmp_path / "notes.txt"
    other.write_text("not an image", encoding="utf-8")
    # As viewerlib.read_instance says it (a NotAnImageError is a ValueError).
    with pytest.raises(ValueError, match="notes.txt' is not a DICOM file: .*neither "
                       ".0008,0016. 'SOP Class UID'"):
        viewerlib.open(other)
