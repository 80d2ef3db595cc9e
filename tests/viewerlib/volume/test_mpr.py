"""Tests of viewerlib.volume.mpr: reformats, slabs and orientation labels."""

from __future__ import annotations

import numpy as np
import pytest
from volume_builders import build_slice

from viewerlib import read_series
from viewerlib.volume.mpr import axial, coronal, direction_label, oblique, sagittal


@pytest.fixture
def cube():
    """An axial 5 x 6 x 7 volume, 1 mm voxels, voxel value = 100 s + 10 r + c."""
    slices = []
    for s in range(5):
        r, c = np.mgrid[0:6, 0:7]
        stored = 100 * s + 10 * r + c + 1024  # intercept -1024 gives 100s+10r+c
        slices.append(build_slice(stored, (0, 0, float(s)), spacing=(1, 1)))
    return read_series(slices)[0]


def test_axial_of_an_axial_volume_is_the_slice(cube):
    reformat = axial(cube, location_mm=2.0, order=0)
    # Rows go posterior (+y = row index), columns to the patient's left (+x).
    np.testing.assert_array_equal(reformat.pixels, cube.voxels[2])
    assert reformat.orientation_labels == {"top": "A", "bottom": "P",
                                           "left": "R", "right": "L"}


def test_coronal_has_head_at_the_top(cube):
    reformat = coronal(cube, location_mm=3.0, order=0)
    # Top row is the highest z (slice 4); row index 3 of the volume.
    np.testing.assert_array_equal(reformat.pixels[0], cube.voxels[4, 3])
    np.testing.assert_array_equal(reformat.pixels[-1], cube.voxels[0, 3])
    assert reformat.orientation_labels["top"] == "H"


def test_sagittal_has_anterior_on_the_left(cube):
    reformat = sagittal(cube, location_mm=1.0, order=0)
    np.testing.assert_array_equal(reformat.pixels[0], cube.voxels[4, :, 1])
    assert reformat.orientation_labels["left"] == "A"
    assert reformat.orientation_labels["right"] == "P"


@pytest.mark.parametrize(("mode", "pick"), [("mip", 3), ("minip", 1), ("average", 2)])
def test_thick_slab_combines_planes(cube, mode, pick):
    # A 3 mm slab around z = 2 covers slices 1, 2, 3; values rise with the slice.
    reformat = axial(cube, location_mm=2.0, slab_thickness_mm=3.0, slab_mode=mode,
                     order=0)
    np.testing.assert_allclose(reformat.pixels, cube.voxels[pick])


def test_oblique_interpolates_between_voxels(cube):
    # A plane halfway between slices 1 and 2 averages them (value is linear).
    reformat = oblique(cube, np.array([0, 1.0, 0]), np.array([1.0, 0, 0]),
                       center_mm=np.array([3.0, 2.5, 1.5]))
    np.testing.assert_allclose(reformat.pixels, (cube.voxels[1] + cube.voxels[2]) / 2)


def test_parallel_directions_raise(cube):
    with pytest.raises(ValueError, match="parallel"):
        oblique(cube, np.array([1.0, 0, 0]), np.array([2.0, 0, 0]))


@pytest.mark.parametrize(
    ("vector", "label"),
    [((1, 0, 0), "L"), ((-1, 0, 0), "R"), ((0, 1, 0), "P"), ((0, -1, 0), "A"),
     ((0, 0, 1), "H"), ((0, 0, -1), "F"), ((0.1, -0.9, 0.5), "AH")],
)
def test_direction_labels(vector, label):
    assert direction_label(np.array(vector, float)) == label


def test_axial_plane_on_a_slice_is_the_slice_itself():
    # The plane falls on voxel centres: the slicing fast path must return
    # exactly the stored slice, the same as interpolation would.
    from viewerlib import read_series
    from viewerlib.samples.phantom import ct_head_phantom
    from viewerlib.volume import mpr

    volume = read_series(ct_head_phantom(rows=12, columns=10,
                                         number_of_slices=5).datasets)[0]
    z = float(volume.slice_positions_mm[3, 2])

    fast = mpr.axial(volume, z)
    assert mpr._lattice_plane(volume.voxels, np.array([3.0, 0, 0]),
                              np.array([0, 1.0, 0]), np.array([0, 0, 1.0]),
                              12, 10) is not None

    np.testing.assert_array_equal(fast.pixels, volume.voxels[3])
    shifted = mpr.oblique(volume, np.array([0, 1.0, 0]), np.array([1.0, 0, 0]),
                          volume.affine[:3, 3] + [0, 0, 3 * volume.spacing_mm[0]
                                                  + 1e-3])
    np.testing.assert_allclose(shifted.pixels, fast.pixels, atol=0.5)
