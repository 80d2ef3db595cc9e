"""Colour and ultrasound images go to the media viewer and play at their frame rate."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import traitlets
from pydicom.data import get_testdata_file
from widget_builders import CINE_COLORS, us_cine, write

import viewerlib
from viewerlib.objects.media import MediaFrames, decode_video
from viewerlib.sources.local import FolderSource
from viewerlib.widgets.dispatch import is_colour_image, shows_as_media
from viewerlib.widgets.media import MediaViewer
from viewerlib.widgets.stack import StackViewer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "objects"))
from object_builders import numbered_video, video_frame_number  # noqa: E402


def test_colour_ultrasound_study_opens_as_a_cine_at_its_frame_time(
    tmp_path: Path,
) -> None:
    # 100 ms between frames (0018,1063): 10 frames per second.
    loop = us_cine(frame_time_ms=100.0)
    write([loop], tmp_path)

    viewer = viewerlib.open(loop.StudyInstanceUID, FolderSource(tmp_path))

    assert isinstance(viewer, MediaViewer)
    assert viewer.kind == "cine" and viewer.frames_per_second == pytest.approx(10.0)
    assert viewer.number_of_frames == len(CINE_COLORS)
    for frame, color in zip(viewer.frames, CINE_COLORS, strict=True):
        assert frame.shape == (24, 32, 3) and frame[12, 16].tolist() == list(color)
    assert viewer.overlay["series"] == "US Se 1 Apical four chamber"


def test_cine_rate_is_preferred_to_frame_time() -> None:
    # (0018,0040) Cine Rate is the rate the loop is meant to be shown at.
    viewer = viewerlib.open(us_cine(frame_time_ms=100.0, cine_rate=25.0))
    assert isinstance(viewer, MediaViewer) and viewer.frames_per_second == 25.0


def test_colour_xa_series_is_told_by_its_header_not_its_modality(
    tmp_path: Path,
) -> None:
    loop = us_cine(frame_time_ms=None)
    loop.Modality = "XA"
    loop.SOPClassUID = loop.file_meta.MediaStorageSOPClassUID = (
        "1.2.840.10008.5.1.4.1.1.12.1"  # X-Ray Angiographic Image Storage
    )
    write([loop], tmp_path)
    source = FolderSource(tmp_path)
    (series,) = source.search_for_series(study_instance_uid=loop.StudyInstanceUID)

    viewer = viewerlib.open(loop.StudyInstanceUID, source, series=series)

    # No frame timing in the header: the loop plays at 10 frames per second.
    assert isinstance(viewer, MediaViewer)
    assert viewer.kind == "cine" and viewer.frames_per_second == 10.0


def test_pydicom_colour_echo_file_plays_at_30_frames_per_second() -> None:
    path = Path(get_testdata_file("color3d_jpeg_baseline.dcm"))
    header = pydicom.dcmread(path, stop_before_pixels=True)
    assert (
        header.Modality == "US" and header.PhotometricInterpretation == "YBR_FULL_422"
    )

    viewer = viewerlib.open(path)

    assert isinstance(viewer, MediaViewer) and viewer.kind == "cine"
    assert viewer.number_of_frames == 120
    # (0018,1063) Frame Time 33.333 ms.
    assert viewer.frames_per_second == pytest.approx(30.0, abs=0.01)
    # The frames are RGB: the loop is not grey.
    frames = np.stack(viewer.frames[:10]).astype(int)
    assert np.abs(frames[..., 0] - frames[..., 2]).max() > 40


def test_grey_ct_is_still_a_stack_and_colour_is_told_apart() -> None:
    from object_builders import phantom

    images, _ = phantom()
    assert not is_colour_image(images[0]) and not shows_as_media(images[0])
    assert isinstance(viewerlib.open(images[0]), StackViewer)
    assert is_colour_image(us_cine()) and shows_as_media(us_cine())


def test_media_traits_are_validated() -> None:
    viewer = MediaViewer(MediaFrames([np.zeros((2, 2, 3), np.uint8)] * 3, 25.0, "cine"))
    viewer.frames_per_second = -4
    assert viewer.frames_per_second == 0.0
    viewer.frames_per_second = 1e6
    assert viewer.frames_per_second == 240.0
    viewer.frame_index = 7
    assert viewer.frame_index == 2
    with pytest.raises(traitlets.TraitError, match="kind 'gif' is not one of"):
        viewer.kind = "gif"


def test_cine_frames_go_as_binary_buffers_and_not_into_the_state(monkeypatch) -> None:
    viewer = viewerlib.open(us_cine())
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(
        viewer, "send", lambda content, buffers=None: sent.append((content, buffers))
    )
    viewer._handle_message(viewer, {"type": "need", "start": 0, "stop": 6}, [])
    assert [content["start"] for content, _ in sent] == [0, 4]
    first = np.frombuffer(bytes(sent[0][1][0]), np.uint8).reshape(24, 32, 3)
    assert first[0, 0].tolist() == list(CINE_COLORS[0])
    state = viewer.get_state()
    state.pop("_esm")
    assert all(not isinstance(v, bytes | memoryview) for v in state.values())
    assert len(repr(state)) < 2_000


def test_video_frames_are_decoded_when_the_view_asks_for_them(monkeypatch) -> None:
    # 120 frames of 64 x 48; the kernel keeps at most 16 decoded (two chunks).
    media = decode_video(numbered_video(120, "mp4", key_every=10),
                         cache_bytes=16 * 64 * 48 * 3)
    viewer = MediaViewer(media)
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(
        viewer, "send", lambda content, buffers=None: sent.append((content, buffers))
    )

    # The view seeks to frame 90 and asks for it and the next few.
    viewer._handle_message(viewer, {"type": "need", "start": 90, "stop": 96}, [])

    assert viewer.number_of_frames == 120 and viewer.kind == "video"
    # One size for every frame of a video, not 120 copies of it in the state.
    assert viewer.frame_shapes == [[48, 64]]
    numbers = [video_frame_number(np.frombuffer(bytes(buffer), np.uint8).reshape(
        48, 64, 3)) for _, buffers in sent for buffer in buffers]
    assert numbers == list(range(90, 96))
    assert media.frames.held_frames <= 16
