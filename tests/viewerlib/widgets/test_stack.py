"""The stack viewer's kernel side: what it sends, and how it validates."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets

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
        "left": "R",
        "right": "L",
        "top": "A",
        "bottom": "P",
    }


def test_orientation_labels_of_a_sagittal_slice() -> None:
    # Rows run head to feet (-z), columns anterior to posterior (+y).
    affine = np.eye(4)
    affine[:3, 1] = [0, 0, -1]
    affine[:3, 2] = [0, 1, 0]
    affine[:3, 0] = [1, 0, 0]
    assert orientation_labels(affine) == {
        "left": "A",
        "right": "P",
        "top": "H",
        "bottom": "F",
    }


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
    monkeypatch.setattr(
        viewer, "send", lambda content, buffers=None: sent.append((content, buffers))
    )
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


@pytest.mark.parametrize(
    "rotation,flip_h,flip_v,expected",
    [
        (0, False, False, {"left": "R", "right": "L", "top": "A", "bottom": "P"}),
        (90, False, False, {"left": "P", "right": "A", "top": "R", "bottom": "L"}),
        (180, False, False, {"left": "L", "right": "R", "top": "P", "bottom": "A"}),
        (270, False, False, {"left": "A", "right": "P", "top": "L", "bottom": "R"}),
        (0, True, False, {"left": "L", "right": "R", "top": "A", "bottom": "P"}),
        (0, False, True, {"left": "R", "right": "L", "top": "P", "bottom": "A"}),
    ],
    ids=["stored", "rot90", "rot180", "rot270", "flipH", "flipV"],
)
def test_orientation_markers_follow_rotation_and_flips(
    rotation, flip_h, flip_v, expected
) -> None:
    viewer = _viewer(np.zeros((2, 4, 4), np.int16), affine=_axial())
    viewer.rotation = rotation
    viewer.flip_horizontal = flip_h
    viewer.flip_vertical = flip_v
    assert viewer.orientation == expected


def test_rotation_snaps_to_quarter_turns() -> None:
    viewer = _viewer(np.zeros((1, 2, 2), np.int16))
    viewer.rotation = 100
    assert viewer.rotation == 90
    viewer.rotation = 360
    assert viewer.rotation == 0


def test_unknown_window_function_raises() -> None:
    viewer = _viewer(np.zeros((1, 2, 2), np.int16))
    viewer.window_function = "sigmoid"
    assert viewer.window_function == "SIGMOID"
    with pytest.raises(traitlets.TraitError, match="VOI LUT Function"):
        viewer.window_function = "GAMMA"


def test_distance_angle_and_region_use_the_true_voxels_and_spacing() -> None:
    voxels = np.zeros((3, 20, 20), np.int16)
    voxels[1, 5:15, 5:15] = 70
    viewer = StackViewer(voxels, (2.0, 0.5, 0.8), value_unit="HU")
    assert viewer.measure("distance", 1, [(0, 0), (0, 10)])["value"] == pytest.approx(
        8.0
    )
    assert viewer.measure("distance", 1, [(0, 0), (10, 0)])["value"] == pytest.approx(
        5.0
    )
    assert viewer.measure("angle", 1, [(0, 10), (0, 0), (10, 0)])[
        "value"
    ] == pytest.approx(90)
    region = viewer.measure("region", 1, [(7, 7), (12, 12)])
    assert region["value"] == pytest.approx(70.0) and region["text"].startswith(
        "mean 70.0 HU"
    )
    assert [m["tool"] for m in viewer.measurements] == [
        "distance",
        "distance",
        "angle",
        "region",
    ]


def test_measurement_messages_are_answered_and_bad_ones_ignored() -> None:
    viewer = _viewer(np.zeros((2, 8, 8), np.int16))
    viewer._handle_message(
        viewer,
        {
            "type": "measure",
            "tool": "distance",
            "slice_index": 0,
            "points": [[0, 0], [0, 4]],
        },
        [],
    )
    viewer._handle_message(
        viewer,
        {
            "type": "measure",
            "tool": "angle",
            "slice_index": 0,
            "points": [[1, 1], [1, 1], [1, 1]],
        },
        [],
    )
    assert [m["text"] for m in viewer.measurements] == ["3.2 mm"]
    viewer._handle_message(viewer, {"type": "clear_measurements"}, [])
    assert viewer.measurements == []


def test_measure_with_wrong_points_raises() -> None:
    viewer = _viewer(np.zeros((2, 8, 8), np.int16))
    with pytest.raises(ValueError, match="needs distance"):
        viewer.measure("distance", 0, [(0, 0)])


def test_volume_presets_carry_their_voi_function() -> None:
    from viewerlib.samples.phantom import ct_head_phantom
    from viewerlib.volume.volume import read_series

    volume = read_series(
        ct_head_phantom(rows=16, columns=16, number_of_slices=3).datasets
    )[0]
    viewer = StackViewer.from_volume(volume)
    names = [row[0] for row in viewer.presets]
    assert names[:2] == ["BRAIN", "BONE"]
    assert {"Stroke", "Subdural", "Lung", "Abdomen", "Liver"} <= set(names)
    assert all(row[3] == "LINEAR" for row in viewer.presets)
    assert viewer.window_function == volume.default_window.function.value
