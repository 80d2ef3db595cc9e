"""Uneven slice gaps: measurements and MPR follow the true slice positions.

Every volume here holds HU = 10 * z + column (z in mm, PS3.3 C.7.6.2.1.1 Image
Position (Patient)), with 1 mm pixels along +x (columns) and +y (rows). That
field is linear in z between any two slices, so placing a point between its
two true neighbours and interpolating gives 10 * z + column exactly; any slice
put at the wrong height shows up as a wrong value.
"""

from __future__ import annotations

import numpy as np
import pytest
from volume_builders import build_slice

from viewerlib import read_series
from viewerlib.volume import mpr
from viewerlib.volume.measure import distance_mm, region_statistics
from viewerlib.volume.resample import on_uniform_grid

ROWS, COLUMNS = 4, 5


def hu_field_slices(z_positions):
    """Axial slices at z (mm) whose stored values give HU 10 * z + column."""
    out = []
    for z in z_positions:
        # Stored = HU + 1024: build_slice writes Rescale Intercept -1024.
        stored = 10 * z + np.tile(np.arange(COLUMNS), (ROWS, 1)) + 1024
        out.append(build_slice(stored, (0.0, 0.0, float(z)), spacing=(1.0, 1.0)))
    return out


@pytest.fixture(scope="module")
def gap_volume():
    """Slices at z = 0, 1, 2 and 5 mm: gaps 1, 1 and 3 mm (mean 5/3)."""
    with pytest.warns(UserWarning, match="Non-uniform"):
        return read_series(hu_field_slices([0, 1, 2, 5]))[0]


def test_uneven_volume_says_its_affine_is_not_exact(gap_volume):
    assert not gap_volume.affine_is_exact
    assert read_series(hu_field_slices([0, 2, 4]))[0].affine_is_exact
    # The note says what is done about it, not only that it happened.
    note = next(w for w in gap_volume.warnings if w.startswith("Non-uniform"))
    assert "true position" in note and "resample" in note


def test_distance_between_slices_2_and_3_is_3_mm(gap_volume):
    # z = 2 and z = 5: 3 mm, where the mean step of the affine would say 5/3.
    assert distance_mm(gap_volume, (2, 0, 0), (3, 0, 0)) == pytest.approx(3.0)
    assert distance_mm(gap_volume, (0, 0, 0), (2, 0, 0)) == pytest.approx(2.0)
    # Slice 1, row 0, column 0 to slice 3, row 3, column 4: (4, 3, 4) mm.
    assert distance_mm(gap_volume, (1, 0, 0), (3, 3, 4)) == pytest.approx(
        np.sqrt(4**2 + 3**2 + 4**2))


def test_indexes_and_positions_follow_the_true_slices(gap_volume):
    # Index 2.5 is halfway from z = 2 to z = 5: z = 3.5.
    np.testing.assert_allclose(gap_volume.index_to_lps([2.5, 1, 2]), [2, 1, 3.5])
    np.testing.assert_allclose(gap_volume.lps_to_index([[2, 1, 3.5], [4, 3, 1.5]]),
                               [[2.5, 1, 2], [1.5, 3, 4]])


def test_axial_at_z_5_is_slice_3_and_at_z_2_is_slice_2(gap_volume):
    # Slice 3 holds HU 50 + column; slice 2 holds 20 + column.
    columns = np.arange(COLUMNS)
    np.testing.assert_allclose(mpr.axial(gap_volume, 5.0).pixels,
                               np.tile(50 + columns, (ROWS, 1)), atol=1e-4)
    np.testing.assert_allclose(mpr.axial(gap_volume, 2.0).pixels,
                               np.tile(20 + columns, (ROWS, 1)), atol=1e-4)


def test_axial_inside_the_gap_blends_its_two_true_neighbours(gap_volume):
    # z = 3.5 is halfway from slice 2 (z = 2) to slice 3 (z = 5): HU 35 + column.
    plane = mpr.axial(gap_volume, 3.5)
    np.testing.assert_allclose(plane.pixels[0], 35 + np.arange(COLUMNS), atol=1e-4)
    assert plane.affine[2, 3] == pytest.approx(3.5)


def test_coronal_column_shows_the_gap_at_the_right_height(gap_volume):
    plane = mpr.coronal(gap_volume, 1.0)

    # Head at the top, 1 mm rows (the median gap): z = 5, 4, 3, 2, 1, 0 mm,
    # so HU 50, 40, 30, 20, 10, 0 in column 0 (x = 0).
    assert plane.pixels.shape == (6, COLUMNS)
    np.testing.assert_allclose(plane.pixels[:, 0], [50, 40, 30, 20, 10, 0],
                               atol=1e-4)
    heights = plane.affine[2, 3] + plane.affine[2, 0] * np.arange(6)
    np.testing.assert_allclose(heights, [5, 4, 3, 2, 1, 0])


def test_oblique_plane_samples_at_the_true_heights(gap_volume):
    # A plane turned 30 degrees about x: every sample inside the volume must
    # read 10 * z + x at its own patient position.
    angle = np.radians(30)
    plane = mpr.oblique(gap_volume, np.array([0, np.cos(angle), -np.sin(angle)]),
                        np.array([1.0, 0, 0]), np.array([2.0, 1.5, 2.5]))

    r, c = np.mgrid[0:plane.pixels.shape[0], 0:plane.pixels.shape[1]]
    points = (plane.affine[:3, 3] + r[..., None] * plane.affine[:3, 0]
              + c[..., None] * plane.affine[:3, 1])
    inside = np.isfinite(plane.pixels)
    assert inside.sum() >= 10
    np.testing.assert_allclose(plane.pixels[inside],
                               (10 * points[..., 2] + points[..., 0])[inside],
                               atol=1e-3)


def test_a_file_missing_from_the_series_leaves_a_gap_in_place():
    # z = 0, 2, 4, 8, 10: the file at z = 6 is missing.
    with pytest.warns(UserWarning, match="Non-uniform"):
        volume = read_series(hu_field_slices([0, 2, 4, 8, 10]))[0]

    # Halfway between the slices at 4 and 8 mm: HU 60 + column.
    np.testing.assert_allclose(mpr.axial(volume, 6.0).pixels[0],
                               60 + np.arange(COLUMNS), atol=1e-4)
    assert distance_mm(volume, (2, 0, 0), (3, 0, 0)) == pytest.approx(4.0)
    assert distance_mm(volume, (0, 0, 0), (4, 0, 0)) == pytest.approx(10.0)


def test_region_volume_gives_each_slice_its_own_thickness(gap_volume):
    # Half the gap on each side: 1, (1 + 1) / 2, (1 + 3) / 2, 3 mm, in all
    # 7 mm, on 4 x 5 pixels of 1 mm2.
    mask = np.ones(gap_volume.shape, bool)
    assert region_statistics(gap_volume, mask).volume_mm3 == pytest.approx(140.0)
    one_slice = region_statistics(gap_volume, np.ones((ROWS, COLUMNS), bool), 2)
    assert one_slice.volume_mm3 == pytest.approx(20 * 2.0)


def test_uniform_grid_for_the_viewers_resamples_and_says_so(gap_volume):
    uniform = on_uniform_grid(gap_volume)

    # Smallest gap 1 mm: z = 0, 1, 2, 3, 4, 5, each HU 10 * z in column 0; the
    # 3 mm gap is a hole (two slices' worth): z 3 and 4 are blank (the lowest
    # value, HU 0), not made up from z 2 and 5.
    assert uniform.affine_is_exact
    assert uniform.shape == (6, ROWS, COLUMNS)
    assert uniform.voxels[:, 0, 0].tolist() == [0, 10, 20, 0, 0, 50]
    assert uniform.missing_slices == [3, 4]
    np.testing.assert_allclose(uniform.affine[:3, 0], [0, 0, 1])
    assert uniform.warnings[-2].startswith("Resampled from 4 slices to 6")
    assert uniform.warnings[-1].startswith("Gap(s) in the series: 2 resampled")
    assert gap_volume.warnings[-1] != uniform.warnings[-1]  # the input is kept


def test_uniform_grid_reaches_the_last_slice_when_gaps_do_not_divide():
    # Gaps 1, 1 and 2.5 mm: the extent 4.5 mm is cut into 5 steps of 0.9 mm
    # (never coarser than the smallest gap), so the last plane is z = 4.5.
    with pytest.warns(UserWarning, match="Non-uniform"):
        volume = read_series(hu_field_slices([0, 1, 2, 4.5]))[0]

    uniform = on_uniform_grid(volume)

    np.testing.assert_allclose(uniform.slice_positions_mm[:, 2],
                               [0, 0.9, 1.8, 2.7, 3.6, 4.5])
    # HU 10 * z, rounded to the integer voxels: 0, 9, 18, 45; z 2.7 and 3.6 lie
    # in the 2.5 mm hole, blank (HU 0).
    assert uniform.voxels[:, 0, 0].tolist() == [0, 9, 18, 0, 0, 45]


def test_even_volume_is_used_as_it_is():
    volume = read_series(hu_field_slices([0, 2, 4]))[0]
    assert on_uniform_grid(volume) is volume
    assert on_uniform_grid(volume, orthogonal=True) is volume
