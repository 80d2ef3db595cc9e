"""Tests of viewerlib.volume.resample: uneven gaps and gantry tilt made regular."""

from __future__ import annotations

import numpy as np
import pytest
from volume_builders import build_slice

from viewerlib import read_series
from viewerlib.volume.resample import resample_uniform

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
