"""The teaching phantoms carry their findings, and save as a folder that opens."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pydicom
import pytest

import viewerlib
from viewerlib.samples.fracture import fracture_phantom
from viewerlib.samples.phantom import HAEMORRHAGE, ct_head_phantom
from viewerlib.samples.stroke import stroke_phantom
from viewerlib.volume.volume import read_series


def _hounsfield(ds) -> np.ndarray:
    return ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _value_at(study, point_lps) -> float:
    x, y, z = point_lps
    ds = min(study.datasets, key=lambda d: abs(float(d.ImagePositionPatient[2]) - z))
    origin = [float(v) for v in ds.ImagePositionPatient]
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    row = round((y - origin[1]) / row_spacing)
    column = round((x - origin[0]) / column_spacing)
    patch = _hounsfield(ds)[row - 1:row + 2, column - 1:column + 2]
    return float(patch.mean())


def test_current_study_shows_the_haemorrhage_and_the_prior_does_not() -> None:
    current, prior = ct_head_phantom("current"), ct_head_phantom("prior")
    center = HAEMORRHAGE.center_lps_mm
    assert abs(_value_at(current, center) - HAEMORRHAGE.hounsfield_units) < 6
    assert abs(_value_at(prior, center) - 32) < 6  # white matter


def test_haemorrhage_has_its_stated_diameter() -> None:
    study = ct_head_phantom("current")
    x, y, z = HAEMORRHAGE.center_lps_mm
    ds = min(study.datasets, key=lambda d: abs(float(d.ImagePositionPatient[2]) - z))
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    origin = [float(v) for v in ds.ImagePositionPatient]
    row = round((y - origin[1]) / row_spacing)
    hounsfield = _hounsfield(ds)[row]
    lesion = np.abs(hounsfield - HAEMORRHAGE.hounsfield_units) < 15
    width_mm = lesion.sum() * column_spacing
    assert abs(width_mm - HAEMORRHAGE.diameter_mm) <= 2 * column_spacing


def test_phantom_uids_are_stable_so_reloading_stores_nothing_twice() -> None:
    first, again = ct_head_phantom("current"), ct_head_phantom("current")
    assert first.study_instance_uid == again.study_instance_uid
    assert [d.SOPInstanceUID for d in first.datasets] == [
        d.SOPInstanceUID for d in again.datasets]
    assert first.study_instance_uid != ct_head_phantom("prior").study_instance_uid


def test_patient_is_obviously_fake() -> None:
    ds = ct_head_phantom("prior", rows=8, columns=8, number_of_slices=2).datasets[0]
    assert str(ds.PatientName) == "Test^Case"


# A trainee's path: generate a phantom, write it to a folder, open the folder.
# Small sizes keep the files a few kilobytes; the finding does not matter here.
SMALL = {
    "ct head": lambda: ct_head_phantom("current", rows=16, columns=16,
                                       number_of_slices=5),
    "stroke": lambda: stroke_phantom(rows=16, columns=16, plain_slices=3,
                                     angiogram_slices=5),
    "fracture": lambda: fracture_phantom("prior", rows=16, columns=16,
                                         number_of_slices=5),
}


@pytest.mark.parametrize("make", SMALL.values(), ids=SMALL)
def test_a_phantom_study_is_a_sequence_of_its_datasets(make) -> None:
    study = make()
    assert len(study) == len(study.datasets)
    assert list(study) == study.datasets
    assert study[0] is study.datasets[0] and study[-2:] == study.datasets[-2:]
    assert len(read_series(study)) == len({ds.SeriesInstanceUID for ds in study})


@pytest.mark.parametrize("make", SMALL.values(), ids=SMALL)
def test_a_saved_phantom_opens_as_a_folder(tmp_path, make) -> None:
    study = make()
    folder = tmp_path / "lesson" / "study"

    paths = study.save(folder)

    assert [path.parent for path in paths] == [folder] * len(study)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)
    for ds, path in zip(study, paths, strict=True):
        assert path.name == (f"CT-{int(ds.SeriesNumber):03d}-"
                             f"{int(ds.InstanceNumber):04d}.dcm")
        assert path.read_bytes()[128:132] == b"DICM"  # PS3.10 7.1
        assert pydicom.dcmread(path).SOPInstanceUID == ds.SOPInstanceUID
    by_series = Counter(ds.SeriesInstanceUID for ds in study)
    volumes = read_series(folder)
    assert sorted(v.voxels.shape[0] for v in volumes) == sorted(by_series.values())
    # Each series whole; the stroke study's smaller series is named as apart.
    for volume in volumes:
        assert all(note.startswith("Set apart") and "for another series" in note
                   for note in volume.warnings), volume.warnings
    viewer = viewerlib.open(folder)
    assert viewer.volume.voxels.shape[0] == max(by_series.values())
    assert viewer.alerts == []


def test_saving_the_same_study_again_replaces_its_files(tmp_path) -> None:
    first = ct_head_phantom("prior", rows=8, columns=8, number_of_slices=3).save(
        tmp_path)
    # The same study at another size: the same UIDs and names, new pixels.
    again = ct_head_phantom("prior", rows=16, columns=16, number_of_slices=3).save(
        tmp_path)

    assert again == first
    assert pydicom.dcmread(again[0]).Rows == 16


SOMETHING_ELSE = {
    "another study": lambda folder: ct_head_phantom(
        "prior", rows=8, columns=8, number_of_slices=3).save(folder),
    "another file": lambda folder: (folder / "notes.txt").write_text("Test^Case"),
    "a file of the same name": lambda folder: (folder / "CT-002-0001.dcm")
    .write_bytes(b"not DICOM"),
}


@pytest.mark.parametrize("put_there", SOMETHING_ELSE.values(), ids=SOMETHING_ELSE)
def test_saving_into_a_folder_of_something_else_raises(tmp_path, put_there) -> None:
    put_there(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    study = ct_head_phantom("current", rows=8, columns=8, number_of_slices=3)

    with pytest.raises(FileExistsError, match=r"already holds \d+ file\(s\) that are "
                       r"not an earlier save of this study .*nothing was written"):
        study.save(tmp_path)

    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_saving_fewer_slices_over_an_earlier_save_raises(tmp_path) -> None:
    ct_head_phantom("current", rows=8, columns=8, number_of_slices=12).save(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    study = ct_head_phantom("current", rows=8, columns=8, number_of_slices=6)

    # The files left over are of this study: the message says so, and what to do.
    with pytest.raises(FileExistsError) as raised:
        study.save(tmp_path)

    message = str(raised.value)
    assert "holds an earlier save of this study with more slices" in message
    assert "6 of its files (CT-002-0007.dcm" in message
    assert "nothing was written. Delete those files" in message
    assert "not an earlier save" not in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_saving_onto_a_file_raises(tmp_path) -> None:
    (tmp_path / "study").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file: give a folder"):
        ct_head_phantom(rows=8, columns=8, number_of_slices=1).save(tmp_path / "study")


# A trainee's shorter path: the generated study straight into a viewer, no folder.
OPENERS = {"open": viewerlib.open, "open_mpr": viewerlib.open_mpr,
           "open_3d": viewerlib.open_3d}


@pytest.mark.parametrize("opener", OPENERS.values(), ids=OPENERS)
@pytest.mark.parametrize("make", SMALL.values(), ids=SMALL)
def test_a_phantom_study_opens_as_its_folder_would(monkeypatch, tmp_path, make,
                                                   opener) -> None:
    # No archives configured: the datasets must never be looked up in one.
    monkeypatch.setenv("LIGHTBOX_ARCHIVES", str(tmp_path / "no-archives.toml"))
    study = make()
    largest = max(Counter(ds.SeriesInstanceUID for ds in study).values())

    viewer = opener(study)  # warnings fail here

    assert viewer.volume.voxels.shape[0] == largest
    if opener is viewerlib.open:
        assert viewer.alerts == []
    assert opener(list(study.datasets)).volume.voxels.shape[0] == largest


def test_a_phantom_study_with_a_stray_slice_notes_it_on_the_alert_line(
        monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LIGHTBOX_ARCHIVES", str(tmp_path / "no-archives.toml"))
    study = ct_head_phantom("current", rows=16, columns=16, number_of_slices=6)
    study[2].ImageOrientationPatient = [0, 1, 0, 0, 0, -1]

    viewer = viewerlib.open(study)

    assert viewer.volume.voxels.shape[0] == 5
    (note,) = [w for w in viewer.volume.warnings if w.startswith("Not shown")]
    assert "viewerlib.read_series(study) returns each stack" in note, note
    assert any(note[:40] in str(row) for row in viewer.alerts), viewer.alerts


@pytest.mark.parametrize(("given", "error", "match"), [
    ([], ValueError, "holds no datasets"),
    (["CT-002-0001.dcm"], TypeError, "must hold pydicom Datasets only; it holds a str"),
], ids=["empty", "paths"])
def test_opening_a_sequence_of_other_things_raises(monkeypatch, tmp_path, given,
                                                   error, match) -> None:
    monkeypatch.setenv("LIGHTBOX_ARCHIVES", str(tmp_path / "no-archives.toml"))
    with pytest.raises(error, match=match):
        viewerlib.open(given)
