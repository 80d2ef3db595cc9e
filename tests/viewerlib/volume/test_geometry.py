"""Tests of viewerlib.volume.geometry: normals, spacing, tilt and stacks."""

from __future__ import annotations

import numpy as np
import pytest
from volume_builders import axial_series, build_slice

from viewerlib.volume.geometry import (
    frame_geometry,
    slice_normal,
    split_into_stacks,
    stack_spacing,
)


@pytest.mark.parametrize(
    ("orientation", "normal"),
    [
        ((1, 0, 0, 0, 1, 0), (0, 0, 1)),  # axial
        ((1, 0, 0, 0, 0, -1), (0, 1, 0)),  # coronal
        ((0, 1, 0, 0, 0, -1), (-1, 0, 0)),  # sagittal
    ],
    ids=["axial", "coronal", "sagittal"],
)
def test_slice_normal_is_row_cross_column(orientation, normal):
    np.testing.assert_allclose(slice_normal(orientation), normal, atol=1e-12)


def test_parallel_orientation_raises():
    with pytest.raises(ValueError, match="parallel or zero"):
        slice_normal([1, 0, 0, 1, 0, 0])


def test_spacing_comes_from_positions_not_slice_thickness():
    slices = axial_series([0, 2.5, 5.0, 7.5])
    for ds in slices:
        ds.SliceThickness = 5
    geometries = [frame_geometry(ds) for ds in slices]

    spacing = stack_spacing(geometries, np.array([0, 0, 1.0]))

    assert spacing.spacing_mm == 2.5 and spacing.is_uniform
    assert not spacing.is_tilted


def test_non_uniform_spacing_is_detected():
    geometries = [frame_geometry(ds) for ds in axial_series([0, 1, 2, 4])]
    spacing = stack_spacing(geometries, np.array([0, 0, 1.0]))
    assert not spacing.is_uniform
    assert spacing.gaps_mm.tolist() == [1.0, 1.0, 2.0]


def test_gantry_tilt_is_detected_from_orientation_and_positions():
    # Slices tilted 20 deg about the x axis, stacked straight along z.
    angle = np.radians(20)
    orientation = (1, 0, 0, 0, np.cos(angle), np.sin(angle))
    geometries = [
        frame_geometry(build_slice(np.zeros((2, 2)), (0, 0, z), orientation))
        for z in (0, 3, 6)
    ]
    normal = geometries[0].normal

    spacing = stack_spacing(geometries, normal)

    assert spacing.is_tilted
    assert spacing.tilt_deg == pytest.approx(20.0, abs=1e-6)
    # The planes are 3 * cos(20 deg) apart along their normal.
    assert spacing.spacing_mm == pytest.approx(3 * np.cos(angle))


def test_series_split_by_orientation_localizer_echo_and_size():
    axial = axial_series([0, 1, 2])
    localizer = build_slice(np.zeros((4, 5)), (0, 0, 0), (1, 0, 0, 0, 0, -1),
                            ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    echo_2 = axial_series([0, 1])
    for ds in echo_2:
        ds.EchoNumbers = 2
    bigger = build_slice(np.zeros((8, 8)), (0, 0, 0))
    frames = [(ds, 0) for ds in [*axial, localizer, *echo_2, bigger]]

    stacks = split_into_stacks(frames)

    assert sorted(stacks) == sorted([[0, 1, 2], [3], [4, 5], [6]])


def test_repeated_positions_start_a_second_stack():
    frames = [(ds, 0) for ds in axial_series([0, 1, 0, 1])]
    assert split_into_stacks(frames) == [[0, 1], [2, 3]]
