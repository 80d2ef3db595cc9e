"""Tests of viewerlib.volume.volume: read_series from datasets and files."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from volume_builders import axial_series, build_slice

from viewerlib import read_series


def test_slices_stored_out_of_order_are_sorted_along_the_normal():
    slices = axial_series([4.0, 0.0, 2.0, 6.0])

    volume = read_series(slices)[0]

    assert volume.source_order == [1, 2, 0, 3]
    assert volume.spacing_mm == (2.0, 0.5, 0.8)
    # Stored 100 * z + column, intercept -1024.
    assert volume.voxels[:, 0, 0].tolist() == [-1024, -824, -624, -424]
    assert volume.voxels.dtype == np.int16
    assert volume.frame_of_reference_uid == slices[0].FrameOfReferenceUID
    assert volume.modality == "CT"
    assert "PixelData" not in volume.datasets[0]


# Stacks whose Instance Numbers contradict their positions. For each: Image
# Orientation (Patient), and the slice normal row x column worked by hand
# (PS3.3 C.7.6.2.1.1), along which the slices must be sorted.
_ORIENTED_STACKS = {
    # Row +y (posterior), column -z (feet): (0, 1, 0) x (0, 0, -1) = (-1, 0, 0).
    "sagittal": ((0, 1, 0, 0, 0, -1), (-1, 0, 0)),
    # Row +x (left), column -z: normal (0, 1, 0), towards posterior.
    "coronal": ((1, 0, 0, 0, 0, -1), (0, 1, 0)),
    # Row (0.6, 0.8, 0), column -z: normal (-0.8, 0.6, 0).
    "oblique": ((0.6, 0.8, 0, 0, 0, -1), (-0.8, 0.6, 0)),
    # Feet first: row -x (patient right), column +y: normal (0, 0, -1), so
    # slices run from head to feet.
    "feet-first": ((-1, 0, 0, 0, 1, 0), (0, 0, -1)),
    "axial": ((1, 0, 0, 0, 1, 0), (0, 0, 1)),
}


@pytest.mark.parametrize("name", list(_ORIENTED_STACKS))
def test_slices_are_sorted_along_the_normal_whatever_the_orientation(name):
    orientation, normal = _ORIENTED_STACKS[name]
    origin = np.array([5.0, -7.0, 11.0])
    # Input i lies at distance t[i] mm along the normal; Instance Numbers
    # 1..4 follow the input order, which is not the order of the positions.
    along = [6.0, 0.0, 9.0, 3.0]
    slices = []
    for number, t in enumerate(along, start=1):
        position = origin + t * np.array(normal, float)
        stored = np.full((3, 4), 1024 + int(10 * t))
        slices.append(build_slice(stored, position, orientation,
                                  InstanceNumber=number))

    volume = read_series(slices)[0]

    # Sorted by distance along the normal: 0, 3, 6, 9 mm, i.e. inputs 1, 3, 0, 2
    # (Instance Numbers 2, 4, 1, 3).
    assert volume.source_order == [1, 3, 0, 2]
    assert volume.voxels[:, 0, 0].tolist() == [0, 30, 60, 90]
    np.testing.assert_allclose(volume.affine[:3, 0], 3.0 * np.array(normal, float),
                               atol=1e-9)
    np.testing.assert_allclose(volume.affine[:3, 3], origin)
    assert volume.spacing_mm[0] == pytest.approx(3.0)
    assert not any(w.startswith(("Non-uniform", "Gantry")) for w in volume.warnings)


def test_a_series_is_split_by_orientation_alone():
    # One series, one size, one Image Type and echo: only the orientation
    # differs (axial, then coronal through the same block).
    axial = [build_slice(np.full((3, 3), 1024 + 1), (0, 0, z)) for z in (0, 2, 4)]
    coronal = [build_slice(np.full((3, 3), 1024 + 2), (0, y, 4), (1, 0, 0, 0, 0, -1))
               for y in (3, 1)]
    for ds in coronal:
        ds.ImageType = axial[0].ImageType

    volumes = read_series([coronal[0], *axial, coronal[1]])

    assert len(volumes) == 2
    by_value = {int(v.voxels[0, 0, 0]): v for v in volumes}
    # Axial inputs 1, 2, 3 by z; coronal inputs 4 (y = 1) then 0 (y = 3).
    assert by_value[1].source_order == [1, 2, 3]
    assert by_value[2].source_order == [4, 0]
    np.testing.assert_allclose(by_value[2].affine[:3, 0], [0, 2, 0])


def test_affine_maps_indexes_to_patient_positions():
    volume = read_series(axial_series([0.0, 2.0, 4.0]))[0]

    # Slice 2, row 3, column 4: IPP + 3 * 0.5 mm down the column direction (+y)
    # + 4 * 0.8 mm along the row direction (+x) + 2 slices of 2 mm up (+z).
    point = volume.affine @ np.array([2, 3, 4, 1.0])

    np.testing.assert_allclose(point[:3], [-10 + 3.2, -20 + 1.5, 4.0])


def test_gantry_tilt_shears_the_affine_and_warns():
    angle = np.radians(15)
    orientation = (1, 0, 0, 0, np.cos(angle), np.sin(angle))
    slices = [build_slice(np.zeros((2, 2)), (0, 0, z), orientation) for z in (0, 3, 6)]

    with pytest.warns(UserWarning, match="Gantry tilt"):
        volume = read_series(slices)[0]

    # Slice index steps straight along z by 3 mm: the true positions.
    np.testing.assert_allclose(volume.affine[:3, 0], [0, 0, 3])
    np.testing.assert_allclose(volume.affine @ [2, 0, 0, 1], [0, 0, 6, 1])
    assert volume.spacing_mm[0] == pytest.approx(3 * np.cos(angle))


def test_non_uniform_spacing_warns_and_keeps_true_positions():
    with pytest.warns(UserWarning, match="Non-uniform"):
        volume = read_series(axial_series([0, 1, 2, 5]))[0]
    assert volume.slice_positions_mm[:, 2].tolist() == [0, 1, 2, 5]


def test_float_rescale_is_stored_as_float32_and_noted():
    slices = axial_series([0, 1])
    for ds in slices:
        ds.RescaleSlope = "0.5"
    volume = read_series(slices)[0]
    assert volume.voxels.dtype == np.float32
    assert volume.voxels[0, 0, 0] == pytest.approx(0.5 * 0 - 1024)
    assert any("float32" in w for w in volume.warnings)


def test_int16_widens_only_when_values_need_it():
    slices = axial_series([0, 1])
    slices[1].PixelData = np.full((4, 5), -32000, "<i2").tobytes()
    volume = read_series(slices)[0]
    assert volume.voxels.dtype == np.int32
    assert volume.voxels[1, 0, 0] == -32000 - 1024  # below int16


def test_default_window_and_presets_come_from_the_header():
    slices = axial_series([0, 1])
    for ds in slices:
        ds.WindowCenter, ds.WindowWidth = [40, 400], [400, 2000]
    volume = read_series(slices)[0]
    assert [(p.center, p.width) for p in volume.window_presets] == [
        (40.0, 400.0), (400.0, 2000.0)]
    assert volume.default_window.center == 40.0


def test_series_from_files_reads_each_file(tmp_path):
    paths = []
    for i, ds in enumerate(axial_series([3.0, 1.0, 2.0])):
        path = tmp_path / f"{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)

    volume = read_series(paths)[0]

    assert volume.source_order == [1, 2, 0]
    assert volume.voxels[:, 0, 1].tolist() == [100 + 1 - 1024, 200 + 1 - 1024,
                                              300 + 1 - 1024]


def test_enhanced_multiframe_places_frames_by_plane_position():
    stored = np.stack([np.full((2, 3), v) for v in (30, 10, 20)])
    ds = build_slice(np.zeros((2, 3)), (0, 0, 0))
    ds.NumberOfFrames = 3
    ds.PixelData = stored.astype("<i2").tobytes()
    del ds.ImagePositionPatient
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared = Dataset()
    shared.PlaneOrientationSequence = [orientation]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for z in (3.0, 1.0, 2.0):
        position = Dataset()
        position.ImagePositionPatient = [0, 0, z]
        group = Dataset()
        group.PlanePositionSequence = [position]
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = per_frame

    volume = read_series([ds])[0]

    assert volume.source_frames == [(0, 1), (0, 2), (0, 0)]
    assert volume.voxels[:, 0, 0].tolist() == [10 - 1024, 20 - 1024, 30 - 1024]


def test_no_image_inputs_raises():
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    with pytest.raises(ValueError, match="grayscale pixel data"):
        read_series([ds])


@pytest.mark.parametrize("route", ["threads", "processes"])
def test_parallel_workers_give_the_same_volume(tmp_path, monkeypatch, route):
    # RLE-compressed files take a parallel route (native data never does):
    # threads when imagecodecs decodes the syntax, else worker processes.
    from pydicom.uid import RLELossless

    from viewerlib.pipeline import codecs
    from viewerlib.volume import reading

    paths = []
    for index, ds in enumerate(axial_series([float(z) for z in range(10)])):
        ds.compress(RLELossless)
        ds.save_as(tmp_path / f"{index}.dcm", enforce_file_format=True)
        paths.append(tmp_path / f"{index}.dcm")
    in_process = read_series(paths, workers=1)[0]

    if route == "processes":
        monkeypatch.setattr(codecs, "imagecodecs", None)
    threaded = []
    real = reading._fill_with_threads
    monkeypatch.setattr(reading, "_fill_with_threads",
                        lambda *a: threaded.append(1) or real(*a))
    parallel = read_series(paths, workers=2)[0]

    if route == "threads":
        assert threaded  # the threads really ran
    else:
        assert not threaded and reading._pool is not None
    np.testing.assert_array_equal(parallel.voxels, in_process.voxels)
    np.testing.assert_array_equal(parallel.affine, in_process.affine)
    assert parallel.voxels[:, 0, 0].tolist() == [100 * z - 1024 for z in range(10)]


def test_threads_widen_the_volume_when_a_slice_does_not_fit(tmp_path):
    # Rescale Slope 16 takes 4095 past int16 (PS3.3 C.11.1.1.2: 16 * 4095 - 1024
    # = 64496): the slice is kept aside and the whole volume widened once.
    from pydicom.uid import RLELossless

    paths = []
    for index, ds in enumerate(axial_series([float(z) for z in range(10)])):
        if index == 7:
            ds.RescaleSlope = 16
            ds.PixelData = np.full((ds.Rows, ds.Columns), 4095, "<i2").tobytes()
        ds.compress(RLELossless)
        ds.save_as(tmp_path / f"{index}.dcm", enforce_file_format=True)
        paths.append(tmp_path / f"{index}.dcm")

    volume = read_series(paths, workers=2)[0]

    assert volume.voxels.dtype == np.int32
    assert int(volume.voxels[7, 0, 0]) == 16 * 4095 - 1024
    assert volume.voxels[:, 0, 0].tolist()[:3] == [-1024, -924, -824]


def test_headers_after_the_first_keep_only_what_the_volume_uses():
    slices = axial_series([0.0, 1.0])
    for ds in slices:
        ds.PatientComments = "kept only in the first header"

    volume = read_series(slices)[0]

    assert "PatientComments" in volume.datasets[0]
    assert "PatientComments" not in volume.datasets[1]
    assert volume.datasets[1].ImagePositionPatient == [-10.0, -20.0, 1.0]


def test_fewer_than_one_worker_raises():
    with pytest.raises(ValueError, match="workers must be at least 1"):
        read_series(axial_series([0.0, 1.0]), workers=0)
