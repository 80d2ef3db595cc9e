"""Tests of viewerlib.volume.resample: uneven gaps and gantry tilt made regular."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from volume_builders import build_slice

from viewerlib import read_series
from viewerlib.volume.resample import on_uniform_grid, resample_uniform

ROWS, COLUMNS, SPACING = 6, 7, (0.5, 0.8)


def linear_field(points: np.ndarray) -> np.ndarray:
    """A stored value linear in LPS mm: linear interpolation reproduces it."""
    return 2000 + 4 * points[..., 0] + 6 * points[..., 1] + 10 * points[..., 2]


def slices_of(z_positions, tilt_deg=0.0, shift_per_mm=0.0):
    angle = np.radians(tilt_deg)
    column = np.array([0, np.cos(angle), np.sin(angle)])
    row = np.array([1.0, 0, 0])
    out = []
    for z in z_positions:
        position = np.array([-3.0, -2.0 + shift_per_mm * z, z])
        r, c = np.mgrid[0:ROWS, 0:COLUMNS]
        points = (position + r[..., None] * SPACING[0] * column
                  + c[..., None] * SPACING[1] * row)
        out.append(build_slice(np.rint(linear_field(points)), position,
                               (*row, *column), SPACING))
    return out


def check_against_field(volume):
    s, r, c = np.mgrid[0:volume.shape[0], 0:volume.shape[1], 0:volume.shape[2]]
    index = np.stack([s, r, c, np.ones_like(s)], -1).astype(float)
    points = (index @ volume.affine.T)[..., :3]
    expected = linear_field(points) - 1024
    inside = volume.voxels > volume.voxels.min()
    assert inside.mean() > 0.5
    np.testing.assert_allclose(volume.voxels[inside], expected[inside], atol=1.01)


def test_uneven_gaps_are_resampled_to_the_smallest_gap():
    with pytest.warns(UserWarning, match="Non-uniform"):
        volume = read_series(slices_of([0, 1, 2, 4, 5]))[0]

    uniform = resample_uniform(volume)

    assert uniform.shape == (6, ROWS, COLUMNS)
    assert uniform.spacing_mm == (1.0, 0.5, 0.8)
    assert uniform.voxels.dtype == volume.voxels.dtype
    check_against_field(uniform)
    # Slice 3 (z = 3) lies between the originals at z = 2 and 4.
    assert uniform.source_order[0] == 0 and uniform.source_order[-1] == 4


def test_tilted_stack_is_resampled_onto_an_orthogonal_grid():
    with pytest.warns(UserWarning, match="Gantry tilt"):
        volume = read_series(slices_of([0, 2, 4, 6], tilt_deg=20))[0]

    upright = resample_uniform(volume)

    # No shear left: the slice axis is the normal of the slices.
    columns = upright.affine[:3, :3]
    gram = columns.T @ columns
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-9)
    assert upright.shape[1] > ROWS  # the grid widens to hold the sheared slices
    check_against_field(upright)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"order": 3}, "order must be 0 or 1"),
     ({"slice_spacing_mm": -1.0}, "must be positive")],
    ids=["order", "spacing"],
)
def test_bad_arguments_raise(kwargs, match):
    volume = read_series(slices_of([0, 1, 2]))[0]
    with pytest.raises(ValueError, match=match):
        resample_uniform(volume, **kwargs)


def test_single_slice_raises():
    volume = read_series(slices_of([0]))[0]
    with pytest.raises(ValueError, match="at least two slices"):
        resample_uniform(volume)


def _with_blank_slices(z_positions, blank):
    """A volume read from slices at `z_positions`, those in `blank` cut short.

    Their (7FE0,0010) Pixel Data lacks its last pixel, so read_series keeps them
    in place, blank, in ``missing_slices`` (tests/viewerlib/volume/
    test_bad_slices.py).
    """
    datasets = slices_of(z_positions)
    for index in blank:
        datasets[index].PixelData = datasets[index].PixelData[:-2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uneven gaps and missing slices, by design
        (volume,) = read_series(datasets)
    assert volume.missing_slices == sorted(blank)
    return volume


# Positions worked by hand. New slice n lies at z = z0 + n * spacing; its
# fractional original index s comes from the two original slices around it
# (np.interp over the true positions); it is interpolated from slice floor(s)
# with weight 1 - (s - floor(s)) and from the next with weight s - floor(s).
# order 0 takes the nearest (both at an exact half).
@pytest.mark.parametrize(
    ("z_positions", "blank", "order", "spoiled"),
    [
        # z 0..5 at 1 mm: s = 0, 1, 2, 2.5, 3, 4. Slice 3 (z 4) feeds s 2.5, 3.
        ([0, 1, 2, 4, 5], [3], 1, [3, 4]),
        # The last slice (z 5) feeds only s = 4, the last new slice.
        ([0, 1, 2, 4, 5], [4], 1, [5]),
        # s 2.5 is an exact half: nearest could be either, both count.
        ([0, 1, 2, 4, 5], [2], 0, [2, 3]),
        # z 0..3 at 1 mm: s = 0, 1/2, 1, 2. Slice 0 feeds s 0 and 1/2, linearly
        # and as the nearest (an exact half). A gap of 3 mm or more would be a
        # hole, left blank (test_a_hole_in_the_series_is_left_blank_...).
        ([0, 2, 3], [0], 1, [0, 1]),
        ([0, 2, 3], [0], 0, [0, 1]),
    ],
    ids=["inner", "last", "half-nearest", "lost-file-linear", "lost-file-nearest"],
)
def test_missing_slices_move_to_every_resampled_slice_made_from_them(
    z_positions, blank, order, spoiled
):
    volume = _with_blank_slices(z_positions, blank)

    with pytest.warns(UserWarning, match="Missing slice.s. after resampling") as got:
        uniform = resample_uniform(volume, order=order)

    assert uniform.spacing_mm[0] == pytest.approx(1.0)
    assert uniform.missing_slices == spoiled
    (note,) = [w for w in uniform.warnings if "after resampling" in w]
    assert str(got[0].message) == note
    # Messages count slices from 1, as the viewer's "Im n/N" does.
    shown = ", ".join(str(n + 1) for n in spoiled)
    assert f"resampled slice(s) {shown} of {uniform.shape[0]}" in note
    originals = ", ".join(str(n + 1) for n in blank)
    assert f"original slice(s) {originals} of {len(z_positions)}" in note
    # The other new slices are the true field (linear, or the nearest slice).
    good = [n for n in range(uniform.shape[0]) if n not in spoiled]
    s, r, c = np.mgrid[0:uniform.shape[0], 0:ROWS, 0:COLUMNS]
    index = np.stack([s, r, c, np.ones_like(s)], -1).astype(float)
    points = (index @ uniform.affine.T)[..., :3]
    if order == 0:
        nearest = np.interp(points[good, 0, 0, 2], z_positions,
                            np.arange(len(z_positions)))
        points[good, ..., 2] = np.asarray(z_positions)[
            np.floor(nearest + 0.5).astype(int)][:, None, None]
    np.testing.assert_allclose(uniform.voxels[good],
                               linear_field(points[good]) - 1024, atol=1.01)


def test_on_uniform_grid_maps_missing_slices_onto_its_grid():
    # Gaps 2, 1, 2 mm: the grid steps by the smallest, 1 mm, over z 0..5, so
    # s = 0, 0.5, 1, 2, 2.5, 3. Slice 1 (z 2) feeds s 0.5 and 1.
    volume = _with_blank_slices([0, 2, 3, 5], [1])

    with pytest.warns(UserWarning, match="resampled slice.s. 2, 3 of 6"):
        uniform = on_uniform_grid(volume)

    assert uniform.shape[0] == 6 and uniform.missing_slices == [1, 2]
    # The note of the original read stays, naming the file's own slice (counted
    # from 1, as the viewer's "Im n/N").
    assert any(w.startswith("Missing slice(s) 2 of 4") for w in uniform.warnings)


def test_a_whole_volume_resamples_without_missing_slices():
    with pytest.warns(UserWarning, match="Non-uniform"):
        volume = read_series(slices_of([0, 1, 2, 4, 5]))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        uniform = on_uniform_grid(volume)
    assert uniform.missing_slices == []
    assert not any("after resampling" in w for w in uniform.warnings)


# A hole: slices 1 mm apart with those at z 3 to 7 never arrived, a 6 mm gap
# (more than _HOLE_FACTOR = 2.2 spacings). The grid steps by 1 mm over z 0..10:
# the new slices at z 3 to 7 would be made up from z 2 and 8 alone.
HOLE = [0, 1, 2, 8, 9, 10]


@pytest.mark.parametrize("order", [0, 1])
def test_a_hole_in_the_series_is_left_blank_not_interpolated(order):
    with pytest.warns(UserWarning, match="Non-uniform"):
        volume = read_series(slices_of(HOLE))[0]

    uniform = resample_uniform(volume, order=order)

    assert uniform.shape[0] == 11
    assert uniform.missing_slices == [3, 4, 5, 6, 7]
    assert (uniform.voxels[3:8] == volume.voxels.min()).all()
    (note,) = [w for w in uniform.warnings if w.startswith("Gap(s) in the series")]
    assert "5 resampled slice(s) of 11 lie in 1 gap(s)" in note
    assert "between original slices 3 and 4 (6.0 mm) of 6" in note
    assert "resampled slice(s) 4, 5, 6, 7, 8 are left blank" in note
    # On both sides of the hole the slices are the patient's, as before.
    check_against_field(uniform)


def test_on_uniform_grid_leaves_a_hole_blank_and_small_unevenness_bridged():
    # Gaps 1, 1, 2 (one file lost: bridged), 1, 6 (a hole), 1 mm.
    with pytest.warns(UserWarning, match="Non-uniform"):
        volume = read_series(slices_of([0, 1, 2, 4, 5, 11, 12]))[0]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # told by the note, not warned here
        uniform = on_uniform_grid(volume)

    assert uniform.affine_is_exact  # every plane is where the affine says
    assert uniform.missing_slices == [6, 7, 8, 9, 10]
    good = [n for n in range(uniform.shape[0]) if n not in uniform.missing_slices]
    assert (uniform.voxels[good] > uniform.voxels.min()).any(axis=(1, 2)).all()
    assert any(w.startswith("Gap(s) in the series: 5 resampled slice(s) of 13")
               for w in uniform.warnings)
