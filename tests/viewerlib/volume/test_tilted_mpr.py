"""MPR of a gantry-tilted volume, checked against a linear field worked by hand.

The slices are tilted about the x axis: (0020,0037) Image Orientation
(Patient) has row cosines (1, 0, 0) and column cosines (0, 0.8, 0.6), a tilt
of acos(0.8) = 36.87 degrees, while the table moves the slice origins
straight along z by 3 mm. With 5 mm rows and 1 mm columns, PS3.3 C.7.6.2.1.1
puts voxel (slice k, row r, column c) at

    x = 10 + c,   y = -20 + 4 r,   z = 3 k + 3 r      (mm, LPS),

and every voxel holds HU = 2 x + 3 y + 5 z. That field is linear in the voxel
index, so trilinear interpolation reproduces it exactly anywhere inside the
volume: a reformat pixel at (x, y, z) must read 2 x + 3 y + 5 z, and a
misplaced slice or a dropped shear shows up as a wrong value.
"""

from __future__ import annotations

import numpy as np
import pytest
from volume_builders import build_slice

from viewerlib import read_series
from viewerlib.volume import mpr
from viewerlib.volume.resample import on_uniform_grid

SLICES, ROWS, COLUMNS = 6, 6, 8
ORIENTATION = (1.0, 0.0, 0.0, 0.0, 0.8, 0.6)


def field(x, y, z):
    """HU of the linear field at LPS (x, y, z) mm."""
    return 2 * x + 3 * y + 5 * z


def tilted_slices(steps):
    """Slices k of `steps`, origin (10, -20, 3 k), holding the field."""
    slices = []
    r, c = np.mgrid[0:ROWS, 0:COLUMNS]
    for k in steps:
        hu = field(10 + c, -20 + 4 * r, 3 * k + 3 * r)
        slices.append(build_slice(hu + 1024, (10.0, -20.0, 3.0 * k), ORIENTATION,
                                  spacing=(5.0, 1.0)))
    return slices


@pytest.fixture(scope="module")
def tilted():
    with pytest.warns(UserWarning, match="Gantry tilt"):
        return read_series(tilted_slices(range(SLICES)))[0]


def pixel_at(reformat, point):
    """The reformat's value at an LPS point lying on its grid."""
    solved = np.linalg.lstsq(reformat.affine[:3, :2],
                             np.asarray(point, float) - reformat.affine[:3, 3],
                             rcond=None)[0]
    row, column = (int(v) for v in np.rint(solved))
    np.testing.assert_allclose(solved, [row, column], atol=1e-6)
    return float(reformat.pixels[row, column])


def assert_matches_field(reformat, at_least):
    r, c = np.mgrid[0:reformat.pixels.shape[0], 0:reformat.pixels.shape[1]]
    points = (reformat.affine[:3, 3] + r[..., None] * reformat.affine[:3, 0]
              + c[..., None] * reformat.affine[:3, 1])
    inside = np.isfinite(reformat.pixels)
    assert inside.sum() >= at_least
    expected = field(points[..., 0], points[..., 1], points[..., 2])
    np.testing.assert_allclose(reformat.pixels[inside], expected[inside], atol=1e-3)


def test_the_tilted_volume_keeps_its_shear(tilted):
    np.testing.assert_allclose(tilted.affine[:3, 0], [0, 0, 3])
    np.testing.assert_allclose(tilted.affine[:3, 1], [0, 4, 3])
    assert tilted.affine_is_exact
    # Slice 1, row 2, column 2 is at (12, -12, 9) and holds 24 - 36 + 45 = 33.
    assert tilted.voxels[1, 2, 2] == 33


def test_axial_reads_the_field_at_known_positions(tilted):
    plane = mpr.axial(tilted, 9.0)

    # (12, -12, 9): slice 1, row 2, column 2 exactly: HU 33.
    assert pixel_at(plane, (12, -12, 9)) == pytest.approx(33, abs=1e-3)
    # (13, -16, 9): row 1 of slice 2 (z = 6 + 3), column 3: 26 - 48 + 45 = 23.
    assert pixel_at(plane, (13, -16, 9)) == pytest.approx(23, abs=1e-3)
    assert_matches_field(plane, at_least=ROWS * COLUMNS // 2)


def test_axial_between_slices_interpolates_along_the_tilt(tilted):
    # z = 7.5 at y = -16 (row 1, 3 mm up the slice): slice origin z = 4.5,
    # halfway between slices 1 and 2. HU = 2 * 11 - 48 + 37.5 = 11.5.
    plane = mpr.axial(tilted, 7.5)
    assert pixel_at(plane, (11, -16, 7.5)) == pytest.approx(11.5, abs=1e-3)
    assert_matches_field(plane, at_least=ROWS * COLUMNS // 2)


def test_coronal_reads_the_field_at_known_positions(tilted):
    plane = mpr.coronal(tilted, -12.0)

    # y = -12 is row 2 of every slice: z = 3 k + 6. At x = 15, z = 12 (k = 2):
    # 30 - 36 + 60 = 54.
    assert pixel_at(plane, (15, -12, 12)) == pytest.approx(54, abs=1e-3)
    assert_matches_field(plane, at_least=SLICES * COLUMNS // 2)


def test_oblique_reads_the_field_at_known_positions(tilted):
    # A double oblique plane through (13, -10, 10.5), the voxel (1.5, 2.5, 3).
    rows = np.array([0.0, 0.6, -0.8])
    columns = np.array([0.8, 0.36, 0.27])
    centre = np.array([13.0, -10.0, 10.5])
    plane = mpr.oblique(tilted, rows, columns, centre)

    # 26 - 30 + 52.5 = 48.5 at the centre, which lies on the plane.
    r, c = np.mgrid[0:plane.pixels.shape[0], 0:plane.pixels.shape[1]]
    points = (plane.affine[:3, 3] + r[..., None] * plane.affine[:3, 0]
              + c[..., None] * plane.affine[:3, 1])
    nearest = np.unravel_index(np.argmin(np.linalg.norm(points - centre, axis=-1)),
                               r.shape)
    x, y, z = points[nearest]
    assert plane.pixels[nearest] == pytest.approx(field(x, y, z), abs=1e-3)
    assert field(*centre) == 48.5
    assert_matches_field(plane, at_least=20)


def test_3d_grid_is_resampled_without_shear(tilted):
    upright = on_uniform_grid(tilted, orthogonal=True)

    linear = upright.affine[:3, :3]
    gram = linear.T @ linear
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-9)
    # Planes along the normal (0, -0.6, 0.8), 3 * 0.8 = 2.4 mm apart.
    np.testing.assert_allclose(upright.affine[:3, 0], [0, -1.44, 1.92])
    assert upright.warnings[-1].startswith("Resampled")
    # Every voxel inside the data still reads the field (rounded to integers).
    s, r, c = np.mgrid[0:upright.shape[0], 0:upright.shape[1], 0:upright.shape[2]]
    points = upright.index_to_lps(np.stack([s, r, c], -1))
    inside = upright.voxels > upright.voxels.min()
    assert inside.mean() > 0.3
    expected = field(points[..., 0], points[..., 1], points[..., 2])
    np.testing.assert_allclose(upright.voxels[inside], expected[inside], atol=0.51)


def test_tilted_volume_with_a_missing_slice_still_reads_the_field():
    # Slice k = 3 is missing: a 6 mm gap between k = 2 and k = 4, with tilt.
    with pytest.warns(UserWarning) as caught:
        volume = read_series(tilted_slices([0, 1, 2, 4, 5]))[0]
    said = " ".join(str(w.message) for w in caught)
    assert "Gantry tilt" in said and "Non-uniform" in said
    assert not volume.affine_is_exact

    # (11, -16, 12): row 1 of the missing slice k = 3 (z = 9 + 3), so halfway
    # between slices 2 and 3 of the volume: 22 - 48 + 60 = 34.
    plane = mpr.axial(volume, 12.0)
    assert pixel_at(plane, (11, -16, 12)) == pytest.approx(34, abs=1e-3)
    assert_matches_field(plane, at_least=ROWS * COLUMNS // 2)
    assert_matches_field(mpr.coronal(volume, -12.0), at_least=SLICES * COLUMNS // 2)
