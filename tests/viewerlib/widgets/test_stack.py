"""The stack viewer's kernel side: what it sends, and how it validates."""
from __future__ import annotations

import numpy as np
import pytest

from viewerlib.widgets.stack import StackViewer, _chunks_around, orientation_labels


def _viewer(voxels: np.ndarray, **options: object) -> StackViewer:
    return StackViewer(voxels, (2.0, 0.5, 0.8), **options)


def _axial() -> np.ndarray:
    # Columns run to the patient's left (+x), rows to posterior (+y), slices to head.
    affine = np.eye(4)
    affine[:3, :3] = [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    return affine


def test_orientation_labels_of_an_axial_slice() -> None:
    assert orientation_labels(_axial()) == {
        "left": "R", "right": "L", "top": "A", "bottom": "P"}


def test_orientation_labels_of_a_sagittal_slice() -> None:
    # Rows run head to feet (-z), columns anterior to posterior (+y).
    affine = np.eye(4)
    affine[:3, 1] = [0, 0, -1]
    affine[:3, 2] = [0, 1, 0]
    affine[:3, 0] = [1, 0, 0]
    assert orientation_labels(affine) == {
        "left": "A", "right": "P", "top": "H", "bottom": "F"}


def test_oblique_direction_names_both_axes() -> None:
    affine = _axial()
    affine[:3, 2] = [np.cos(0.5), np.sin(0.5), 0]
    assert orientation_labels(affine)["right"] == "LP"


def test_int16_range_is_sent_as_int16_and_wider_as_float32() -> None:
    assert _viewer(np.zeros((2, 3, 4), np.int32)).voxels.dtype == np.dtype("<i2")
    wide = np.array([[[0, 70000]]], np.int32)
    assert _viewer(wide).voxels.dtype == np.dtype("<f4")


def test_aspect_ratio_comes_from_row_and_column_spacing() -> None:
    viewer = _viewer(np.zeros((3, 4, 5), np.int16))
    assert viewer.pixel_spacing_mm == [0.5, 0.8]
    assert viewer.slice_thickness_mm == 2.0


def test_window_width_is_at_least_one() -> None:
    viewer = _viewer(np.zeros((1, 2, 2), np.int16))
    viewer.window_width = -5
    assert viewer.window_width == 1.0


def test_slice_index_is_clamped_to_the_series() -> None:
    viewer = _viewer(np.zeros((4, 2, 2), np.int16))
    viewer.slice_index = 99
    assert viewer.slice_index == 3
    viewer.slice_index = -1
    assert viewer.slice_index == 0


def test_voxels_must_be_a_stack_raises() -> None:
    with pytest.raises(ValueError, match="slices, rows, columns"):
        _viewer(np.zeros((2, 2, 2, 2)))


def test_series_streams_from_the_shown_slice_outwards() -> None:
    chunks = _chunks_around(5, 12, 3)
    covered = sorted(i for start, stop in chunks for i in range(start, stop))
    assert covered == [i for i in range(12) if i != 5]
    assert chunks[0] == (6, 9) and chunks[1] == (2, 5)


def test_frames_go_as_binary_buffers_not_in_the_json(monkeypatch) -> None:
    voxels = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    viewer = _viewer(voxels)
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(viewer, "send",
                        lambda content, buffers=None: sent.append((content, buffers)))
    viewer._handle_message(viewer, {"type": "ready", "first": 1}, [])
    first_content, first_buffers = sent[0]
    assert first_content == {"type": "slices", "start": 1, "stop": 2, "dtype": "int16"}
    assert bytes(first_buffers[0]) == voxels[1].tobytes()
    received = {c["start"]: bytes(b[0]) for c, b in sent}
    assert b"".join(received[k] for k in sorted(received)) == voxels.tobytes()


def test_saved_widget_state_holds_no_image_data() -> None:
    viewer = _viewer(np.full((2, 64, 64), 1234, np.int16))
    state = viewer.get_state()
    assert all(not isinstance(v, (bytes, memoryview)) for v in state.values())
    # The front-end source is in the state; 8 KiB of pixels must not be.
    state.pop("_esm")
    assert len(repr(state)) < 2000
