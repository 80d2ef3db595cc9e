"""One bad file costs only its own slices: the rest form the volume, the bad one is named."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import RLELossless

import viewerlib
from viewerlib.samples.phantom import ct_head_phantom

SLICES = 48
SPACING_MM = 4.0
BAD = 7  # an inner slice: a gap, not a shorter stack


def _modality_values(ds: pydicom.Dataset) -> np.ndarray:
    # PS3.3 C.11.1.1.2: modality value = slope * stored value + intercept.
    stored = np.frombuffer(ds.PixelData, "<i2" if ds.PixelRepresentation else "<u2")
    return (float(ds.RescaleSlope) * stored.reshape(ds.Rows, ds.Columns)
            + float(ds.RescaleIntercept))


def _write_phantom(folder: Path, compress: bool) -> list[np.ndarray]:
    """Write the phantom's slices (foot to head); return each slice's true values."""
    folder.mkdir()
    expected = []
    for ds in ct_head_phantom("current", rows=32, columns=32,
                              number_of_slices=SLICES,
                              slice_spacing_mm=SPACING_MM).datasets:
        expected.append(_modality_values(ds))
        if compress:
            ds.compress(RLELossless)
        ds.save_as(folder / f"{ds.InstanceNumber:03d}.dcm", enforce_file_format=True)
    return expected


def _read(source, workers):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volumes = viewerlib.read_series(source, workers=workers)
    return volumes, [str(w.message) for w in caught]


def _check_gap_kept_in_place(volume, expected, bad_name: str, says: str,
                             alerts: list[str]) -> None:
    assert volume.shape[0] == SLICES and volume.missing_slices == [BAD]
    for k in range(SLICES):
        if k != BAD:
            np.testing.assert_array_equal(volume.voxels[k], expected[k])
    # The blank slice holds the lowest value of the others, never made-up data.
    low = min(float(e.min()) for k, e in enumerate(expected) if k != BAD)
    assert (volume.voxels[BAD] == low).all()
    # Geometry stays true: uniform spacing, one step per slice, no warning of gaps.
    assert volume.spacing_mm[0] == pytest.approx(SPACING_MM)
    assert np.linalg.norm(volume.affine[:3, 0]) == pytest.approx(SPACING_MM)
    gaps = np.diff(volume.slice_positions_mm[:, 2])
    np.testing.assert_allclose(gaps, SPACING_MM)
    note = next(w for w in volume.warnings if w.startswith("Missing slice"))
    # A file of a folder read whole is named by its path in the folder.
    assert bad_name in note and says in note
    # What to do, once: in the reason of a file cut short, else after the reasons.
    assert ("copy it again from its source" in note) != ("Copy the file(s) again" in note)
    assert note in alerts  # issued as a UserWarning too, not only stored
    assert not any(w.startswith("Non-uniform") for w in volume.warnings)


# 2032 leaves 16 bytes of pixel data: the file is shorter than its pixel data
# alone, and still keeps its slice in place.
@pytest.mark.parametrize("cut", [1, 100, 2032])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_cut_inside_its_pixel_data_costs_only_its_slice(tmp_path, cut,
                                                               workers):
    expected = _write_phantom(tmp_path / "series", compress=False)
    bad = sorted((tmp_path / "series").iterdir())[BAD]
    bad.write_bytes(bad.read_bytes()[:-cut])
    needed = 32 * 32 * 2  # Rows * Columns * Bits Allocated / 8
    if cut == 2032:
        assert bad.stat().st_size < needed
    volumes, alerts = _read(tmp_path / "series", workers)
    _check_gap_kept_in_place(volumes[0], expected, f"'{bad.name}'",
                             f"needs {needed} bytes and {needed - cut} are there",
                             alerts)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_corrupt_compressed_slice_costs_only_its_slice(tmp_path, workers):
    expected = _write_phantom(tmp_path / "series", compress=True)
    bad = sorted((tmp_path / "series").iterdir())[BAD]
    ds = pydicom.dcmread(bad)
    fragment = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([fragment[: len(fragment) // 3]])
    ds.save_as(bad)
    volumes, alerts = _read(tmp_path / "series", workers)
    _check_gap_kept_in_place(volumes[0], expected, f"'{bad.name}'", "RLE Lossless",
                             alerts)


def test_a_corrupt_slice_goes_through_worker_processes_too(tmp_path, monkeypatch):
    # Without imagecodecs RLE goes to worker processes; a failed job there must
    # cost only its own input as well.
    from viewerlib.pipeline import codecs

    expected = _write_phantom(tmp_path / "series", compress=True)
    bad = sorted((tmp_path / "series").iterdir())[BAD]
    ds = pydicom.dcmread(bad)
    fragment = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([fragment[: len(fragment) // 3]])
    ds.save_as(bad)
    monkeypatch.setattr(codecs, "imagecodecs", None)
    volumes, alerts = _read(tmp_path / "series", 2)
    _check_gap_kept_in_place(volumes[0], expected, f"'{bad.name}'", "RLE Lossless",
                             alerts)


def test_a_corrupt_dataset_is_named_by_instance_number_and_uid(tmp_path):
    datasets = ct_head_phantom("current", rows=32, columns=32,
                               number_of_slices=SLICES).datasets
    expected = [_modality_values(ds) for ds in datasets]
    for ds in datasets:
        ds.compress(RLELossless)
    victim = datasets[BAD]
    fragment = next(generate_frames(victim.PixelData, number_of_frames=1))
    victim.PixelData = encapsulate([fragment[: len(fragment) // 3]])
    volumes, alerts = _read(datasets, 2)
    name = (f"instance {victim.InstanceNumber} "
            f"(SOP Instance UID {victim.SOPInstanceUID})")
    _check_gap_kept_in_place(volumes[0], expected, name, "RLE Lossless", alerts)


def test_when_every_slice_fails_the_error_names_each_file(tmp_path):
    _write_phantom(tmp_path / "series", compress=False)
    files = sorted((tmp_path / "series").iterdir())[:3]
    for path in files:
        path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="No volume could be built") as caught:
        viewerlib.read_series(files, workers=1)
    for path in files:
        assert str(path) in str(caught.value)
    assert "cut short" in str(caught.value)


def test_an_empty_folder_says_so(tmp_path):
    with pytest.raises(ValueError, match="is empty"):
        viewerlib.read_series(tmp_path)


def test_a_missing_folder_says_it_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        viewerlib.read_series(tmp_path / "no-such-folder")


def test_no_inputs_says_so():
    with pytest.raises(ValueError, match="given no inputs"):
        viewerlib.read_series([])
