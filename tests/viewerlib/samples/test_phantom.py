"""The teaching phantom carries the finding its ground truth says it does."""
from __future__ import annotations

import numpy as np

from viewerlib.samples.phantom import HAEMORRHAGE, ct_head_phantom


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
