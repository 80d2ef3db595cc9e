"""The cheap MPR routes give what trilinear interpolation gives, by hand.

A volume whose values are a linear function of the voxel index is reproduced
exactly by trilinear interpolation, so every reformat of it can be checked
against the function itself at the sample's index position.
"""

from __future__ import annotations

import numpy as np
import pytest
from volume_builders import build_slice

from viewerlib import read_series
from viewerlib.volume import mpr

_A, _B, _C = 40.0, 3.0, 1.0  # value = 40 s + 3 r + c (+ a constant below)


@pytest.fixture(scope="module")
def linear_volume():
    """Axial, 9 slices 2.5 mm apart, 16 x 12 pixels of 0.5 x 0.8 mm."""
    slices = []
    for s in range(9):
        r, c = np.mgrid[0:16, 0:12]
        stored = _A * s + _B * r + _C * c + 1024  # intercept -1024
        slices.append(build_slice(stored.astype(np.uint16), (0, 0, 2.5 * s),
                                  spacing=(0.5, 0.8)))
    return read_series(slices)[0]


def _expected(volume, reformat) -> np.ndarray:
    rows, cols = reformat.pixels.shape
    r, c = np.mgrid[0:rows, 0:cols]
    points = (reformat.affine[:3, 3][:, None, None]
              + reformat.affine[:3, 0][:, None, None] * r
              + reformat.affine[:3, 1][:, None, None] * c)
    inverse = np.linalg.inv(volume.affine)
    index = np.tensordot(inverse[:3, :3], points, axes=1) + inverse[:3, 3][:, None, None]
    return _A * index[0] + _B * index[1] + _C * index[2]


def test_coronal_keeps_the_acquired_voxels_at_their_spacing(linear_volume):
    row = 7
    y = float((linear_volume.affine @ [0, row, 0, 1])[1])
    reformat = mpr.coronal(linear_volume, y)
    # Head at the top: the last slice first; no interpolation at all.
    np.testing.assert_array_equal(reformat.pixels,
                                  linear_volume.voxels[::-1, row, :].astype(np.float32))
    assert reformat.spacing_mm == pytest.approx((2.5, 0.8))


def test_sagittal_keeps_the_acquired_voxels_at_their_spacing(linear_volume):
    column = 5
    x = float((linear_volume.affine @ [0, 0, column, 1])[0])
    reformat = mpr.sagittal(linear_volume, x)
    np.testing.assert_array_equal(reformat.pixels,
                                  linear_volume.voxels[::-1, :, column].astype(np.float32))
    assert reformat.spacing_mm == pytest.approx((2.5, 0.5))


@pytest.mark.parametrize("degrees", [10, 30, 45, 80])
def test_oblique_about_one_axis_is_trilinear(linear_volume, degrees):
    angle = np.radians(degrees)
    down = np.array([0.0, np.cos(angle), np.sin(angle)])
    reformat = mpr.oblique(linear_volume, down, np.array([1.0, 0, 0]))
    expected = _expected(linear_volume, reformat)
    inside = ~np.isnan(reformat.pixels)
    assert inside.sum() > 0.3 * inside.size
    np.testing.assert_allclose(reformat.pixels[inside], expected[inside], atol=1e-3)


def test_oblique_between_columns_interpolates_along_the_line(linear_volume):
    down = np.array([0.0, np.cos(0.4), np.sin(0.4)])
    reformat = mpr.oblique(linear_volume, down, np.array([1.0, 0, 0]),
                           spacing_mm=0.37)
    expected = _expected(linear_volume, reformat)
    inside = ~np.isnan(reformat.pixels)
    np.testing.assert_allclose(reformat.pixels[inside], expected[inside], atol=1e-3)


def test_double_oblique_still_samples_trilinearly(linear_volume):
    down = np.array([0.2, np.cos(0.5), np.sin(0.5)])
    across = np.array([1.0, -0.3, 0.1])
    reformat = mpr.oblique(linear_volume, down, across)
    expected = _expected(linear_volume, reformat)
    inside = ~np.isnan(reformat.pixels)
    np.testing.assert_allclose(reformat.pixels[inside], expected[inside], atol=1e-3)


def test_samples_outside_the_volume_are_nan(linear_volume):
    down = np.array([0.0, np.cos(0.7), np.sin(0.7)])
    reformat = mpr.oblique(linear_volume, down, np.array([1.0, 0, 0]))
    expected = _expected(linear_volume, reformat)
    rows, cols = reformat.pixels.shape
    r, c = np.mgrid[0:rows, 0:cols]
    points = (reformat.affine[:3, 3][:, None, None]
              + reformat.affine[:3, 0][:, None, None] * r
              + reformat.affine[:3, 1][:, None, None] * c)
    inverse = np.linalg.inv(linear_volume.affine)
    index = np.tensordot(inverse[:3, :3], points, axes=1) + inverse[:3, 3][:, None, None]
    shape = np.array(linear_volume.voxels.shape)[:, None, None]
    outside = np.any((index < -1e-3) | (index > shape - 1 + 1e-3), axis=0)
    assert np.isnan(reformat.pixels[outside]).all()
    assert not np.isnan(reformat.pixels[~outside]).any()
    assert expected.shape == reformat.pixels.shape


@pytest.mark.parametrize(("view", "lps_axis"), [(mpr.axial, 2), (mpr.coronal, 1),
                                                (mpr.sagittal, 0)])
def test_standard_views_on_voxel_planes_match_the_general_route(linear_volume, view,
                                                                lps_axis):
    # The location of the 3rd plane of voxels along the view's fixed axis.
    step = {2: 2.5, 1: 0.5, 0: 0.8}[lps_axis]
    location = 3 * step
    directions = {2: ([0, 1.0, 0], [1.0, 0, 0]), 1: ([0, 0, -1.0], [1.0, 0, 0]),
                  0: ([0, 0, -1.0], [0, 1.0, 0])}[lps_axis]
    centre = mpr._through(linear_volume, lps_axis, location)

    fast = view(linear_volume, location)
    general = mpr.oblique(linear_volume, np.array(directions[0]),
                          np.array(directions[1]), centre, order=1)

    # Voxels one to one: value = 40 s + 3 r + c at each sample's index.
    np.testing.assert_allclose(fast.pixels, _expected(linear_volume, fast), atol=1e-4)
    np.testing.assert_array_equal(fast.pixels, general.pixels)
    np.testing.assert_allclose(fast.affine, general.affine, atol=1e-9)
    assert fast.spacing_mm == general.spacing_mm
    assert fast.orientation_labels == general.orientation_labels


def test_standard_view_between_planes_blends_them(linear_volume):
    # Halfway between slices 2 and 3 (z = 6.25 mm): the mean of the two planes.
    reformat = mpr.axial(linear_volume, 6.25)
    expected = (linear_volume.voxels[2] + linear_volume.voxels[3]) / 2
    np.testing.assert_allclose(reformat.pixels, expected, atol=1e-4)


def test_standard_view_follows_a_new_affine():
    slices = [build_slice(np.full((4, 5), 1024 + 10 * s, np.uint16), (0, 0, float(s)),
                          spacing=(1, 1)) for s in range(4)]
    volume = read_series(slices)[0]
    assert mpr.axial(volume, 2.0).pixels[0, 0] == 20

    # Moved 1 mm towards the feet: z = 2 mm is now the 4th slice.
    moved = volume.affine.copy()
    moved[2, 3] -= 1.0
    volume.affine = moved

    assert mpr.axial(volume, 2.0).pixels[0, 0] == 30
    # A change of the affine returned earlier does not reach the memo.
    reformat = mpr.axial(volume, 2.0)
    reformat.affine[0, 3] = 1e6
    assert mpr.axial(volume, 2.0).affine[0, 3] != 1e6


def test_a_reformat_stays_frozen(linear_volume):
    import dataclasses

    reformat = mpr.coronal(linear_volume)

    with pytest.raises(dataclasses.FrozenInstanceError):
        reformat.pixels = np.zeros(1)  # type: ignore[misc]
    assert dataclasses.asdict(reformat).keys() == {
        "pixels", "affine", "spacing_mm", "orientation_labels"}
