"""The stack viewer's kernel side: what it sends, and how it validates."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets

from viewerlib.widgets.stack import (
    StackViewer,
    _chunks_around,
    lossless_window,
    orientation_labels,
    reduce_slices,
)


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
    # Bare voxels say how far apart the slices are, not how thick each one is.
    assert viewer.slice_spacing_mm == 2.0 and viewer.slice_thickness_mm == 0.0
    assert viewer.thickness_text == "Spacing 2.00 mm"


def _thick_slices(thickness_mm: float, spacing_mm: float):
    from viewerlib.samples.phantom import ct_head_phantom
    from viewerlib.volume.volume import read_series

    study = ct_head_phantom(rows=16, columns=16, number_of_slices=5,
                            slice_spacing_mm=spacing_mm)
    for ds in study.datasets:
        ds.SliceThickness = thickness_mm
    return read_series(study.datasets)[0]


def test_overlay_shows_slice_thickness_and_the_spacing_apart_when_they_differ(
) -> None:
    # 5 mm slices reconstructed every 4 mm: they overlap by 1 mm.
    viewer = StackViewer.from_volume(_thick_slices(5.0, 4.0))
    assert viewer.slice_thickness_mm == 5.0
    assert viewer.slice_spacing_mm == pytest.approx(4.0)
    assert viewer.thickness_text.splitlines() == ["Thick 5.00 mm", "Spacing 4.00 mm"]
    # Where they agree, the overlay says it once.
    same = StackViewer.from_volume(_thick_slices(4.0, 4.0))
    assert same.thickness_text == "Thick 4.00 mm"


def test_thickness_follows_a_relayout_and_is_validated() -> None:
    viewer = StackViewer.from_volume(_thick_slices(5.0, 4.0))
    # As viewerlib.open does while a series streams in.
    viewer.begin_loading(lambda: None)
    viewer.relayout(_thick_slices(3.0, 2.0), moved=False)
    assert viewer.thickness_text.splitlines() == ["Thick 3.00 mm", "Spacing 2.00 mm"]
    viewer.slice_thickness_mm = -1.0
    assert viewer.slice_thickness_mm == 0.0
    viewer.slice_spacing_mm = float("nan")
    assert viewer.slice_spacing_mm == 0.0 and viewer.thickness_text == ""


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


def _sent_on_ready(viewer: StackViewer, first: int, monkeypatch) -> list:
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(
        viewer, "send", lambda content, buffers=None: sent.append((content, buffers))
    )
    viewer._handle_message(viewer, {"type": "ready", "first": first}, [])
    return sent


def test_frames_go_as_binary_buffers_not_in_the_json(monkeypatch) -> None:
    voxels = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    viewer = _viewer(voxels)
    sent = _sent_on_ready(viewer, 1, monkeypatch)
    first_content, first_buffers = sent[0]
    assert first_content == {"type": "slices", "start": 1, "stop": 2, "dtype": "int16"}
    assert bytes(first_buffers[0]) == voxels[1].tobytes()
    assert all(isinstance(b[0], memoryview) for _, b in sent)
    received = {c["start"]: bytes(b[0]) for c, b in sent if c["type"] == "slices"}
    assert b"".join(received[k] for k in sorted(received)) == voxels.tobytes()


def test_previews_follow_the_first_slice_and_cover_the_series(monkeypatch) -> None:
    voxels = np.zeros((40, 8, 8), np.int16)
    voxels[:, :4, :4] = 100  # one 4 x 4 block per slice at 100 HU
    viewer = _viewer(voxels, preview_reduction=4)
    sent = _sent_on_ready(viewer, 20, monkeypatch)
    assert [c["type"] for c, _ in sent[:3]] == ["slices", "previews", "previews"]
    previews = [(c, b) for c, b in sent if c["type"] == "previews"]
    assert [(c["start"], c["stop"]) for c, _ in previews] == [(0, 32), (32, 40)]
    content, buffers = previews[0]
    assert (content["rows"], content["columns"], content["reduction"]) == (2, 2, 4)
    block = np.frombuffer(bytes(buffers[0]), np.int16).reshape(32, 2, 2)
    # The mean of each 4 x 4 square: 100 where the square is all 100, else 0.
    assert block[0].tolist() == [[100, 0], [0, 0]]


def test_reduce_slices_pads_by_repeating_the_edge() -> None:
    # Rows 0-2 of one column: the 2 x 2 squares are (1, 3) and (5, 5 repeated).
    voxels = np.array([[[1], [3], [5]]], np.int16)
    assert reduce_slices(voxels, 2).tolist() == [[[2], [5]]]
    floats = np.array([[[0.5, 1.0]]], np.float32)
    assert reduce_slices(floats, 2).dtype == np.float32
    assert reduce_slices(floats, 2).tolist() == [[[0.75]]]


def test_only_the_lossless_window_streams_at_first(monkeypatch) -> None:
    voxels = np.arange(12 * 2 * 2, dtype=np.int16).reshape(12, 2, 2)
    viewer = _viewer(voxels, lossless_slices=3)
    sent = _sent_on_ready(viewer, 5, monkeypatch)
    lossless = sorted(
        i
        for c, _ in sent
        if c["type"] == "slices"
        for i in range(c["start"], c["stop"])
    )
    assert lossless == [4, 5, 6]
    sent.clear()
    viewer._handle_message(viewer, {"type": "need", "start": 9, "stop": 11}, [])
    ((content, buffers),) = sent
    assert (content["start"], content["stop"]) == (9, 11)
    assert bytes(buffers[0]) == voxels[9:11].tobytes()


def test_lossless_budget_defaults_to_the_whole_of_a_short_series() -> None:
    viewer = _viewer(np.zeros((48, 16, 16), np.int16))
    assert viewer.lossless_slices == 48
    viewer.lossless_slices = 0
    assert viewer.lossless_slices == 1
    viewer.preview_reduction = 99
    assert viewer.preview_reduction == 16


@pytest.mark.parametrize(
    "index,size,expected",
    [(5, 3, (4, 7)), (0, 4, (0, 4)), (11, 4, (8, 12)), (6, 50, (0, 12))],
    ids=["centred", "at-start", "at-end", "whole-series"],
)
def test_lossless_window_stays_inside_the_series(index, size, expected) -> None:
    assert lossless_window(index, 12, size) == expected


def test_saved_widget_state_holds_no_image_data(monkeypatch) -> None:
    viewer = _viewer(np.full((2, 64, 64), 1234, np.int16))
    # Also after the page said "ready" and got its lossless slices and previews:
    # they went as messages, not into synced traits.
    _sent_on_ready(viewer, 0, monkeypatch)
    state = viewer.get_state()
    assert all(not isinstance(v, (bytes, memoryview)) for v in state.values())
    # The front-end source is in the state; 16 KiB of pixels must not be.
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
