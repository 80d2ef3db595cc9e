"""Tests of viewerlib.volume.measure: distances, angles and region statistics."""

from __future__ import annotations

import numpy as np
import pytest
from volume_builders import build_slice

from viewerlib import read_series
from viewerlib.volume.measure import (
    angle_deg,
    distance_mm,
    ellipse_mask,
    polygon_mask,
    region_statistics,
)


@pytest.fixture
def anisotropic():
    """3 slices 2.5 mm apart, 0.5 mm rows, 0.8 mm columns (non-square pixels)."""
    slices = [
        build_slice(np.arange(20).reshape(4, 5) + 1024 + 1000 * s, (0, 0, 2.5 * s),
                    spacing=(0.5, 0.8))
        for s in range(3)
    ]
    return read_series(slices)[0]


def test_distance_uses_the_spacing_of_each_axis(anisotropic):
    # 2 slices (5 mm), 3 rows (1.5 mm) and 4 columns (3.2 mm) apart.
    expected = np.sqrt(5.0**2 + 1.5**2 + 3.2**2)
    assert distance_mm(anisotropic, (0, 0, 0), (2, 3, 4)) == pytest.approx(expected)


def test_angle_in_patient_space(anisotropic):
    # 1 row = 0.5 mm down, 1 column = 0.8 mm across: atan(0.5 / 0.8) from the row.
    angle = angle_deg(anisotropic, (0, 0, 0), (0, 0, 1), (0, 1, 1))
    assert angle == pytest.approx(np.degrees(np.arctan2(0.5, 0.8)))


def test_region_statistics_in_modality_units(anisotropic):
    mask = np.zeros((4, 5), bool)
    mask[0, :2] = True  # stored 1000 + 0 and 1000 + 1 -> 1000, 1001 after rescale
    mask[1, 0] = True  # 1000 + 5

    stats = region_statistics(anisotropic, mask, slice_index=1)

    values = np.array([1000, 1001, 1005])
    assert (stats.minimum, stats.maximum) == (1000, 1005)
    assert stats.mean == pytest.approx(values.mean())
    assert stats.sd == pytest.approx(values.std())
    assert stats.area_mm2 == pytest.approx(3 * 0.5 * 0.8)
    assert stats.volume_mm3 == pytest.approx(3 * 0.5 * 0.8 * 2.5)


def test_empty_region_raises(anisotropic):
    with pytest.raises(ValueError, match="no voxels"):
        region_statistics(anisotropic, np.zeros((4, 5), bool), slice_index=0)


def test_two_d_mask_without_slice_raises(anisotropic):
    with pytest.raises(ValueError, match="slice_index"):
        region_statistics(anisotropic, np.ones((4, 5), bool))


def test_mask_helpers_draw_the_shapes():
    ellipse = ellipse_mask((9, 9), (4, 4), (2, 2))
    square = polygon_mask((9, 9), [(2, 2), (2, 6), (6, 6), (6, 2)])
    assert ellipse[4, 4] and ellipse[3, 4] and not ellipse[0, 0] and not ellipse[4, 7]
    assert square[4, 4] and not square[8, 8]
