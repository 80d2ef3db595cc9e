"""The stroke and fracture phantoms carry the findings their ground truth states."""
from __future__ import annotations

import numpy as np
import pytest

from viewerlib.samples.fracture import FRACTURES, fracture_phantom
from viewerlib.samples.phantom import teaching_studies
from viewerlib.samples.stroke import (EARLY_ISCHAEMIA, HYPERDENSE_MCA, MCA_OCCLUSION,
                                      stroke_phantom)
from viewerlib.volume import mpr
from viewerlib.volume.volume import read_series


@pytest.fixture(scope="module")
def stroke():
    plain, angiogram = read_series(stroke_phantom().datasets)
    return plain, angiogram


def _at(volume, point_lps, radius: int = 1) -> float:
    s, r, c = np.rint(np.linalg.solve(volume.affine, [*point_lps, 1])[:3]).astype(int)
    return float(volume.voxels[s, r - radius:r + radius + 1,
                               c - radius:c + radius + 1].mean())


def test_plain_ct_shows_a_hyperdense_right_mca_and_not_the_left(stroke) -> None:
    plain, _ = stroke
    x, y, z = HYPERDENSE_MCA.center_lps_mm
    assert abs(_at(plain, (x, y, z)) - HYPERDENSE_MCA.hounsfield_units) < 8
    assert _at(plain, (-x, y, z)) < 50


def test_early_ischaemia_is_darker_than_the_mirror_side(stroke) -> None:
    plain, _ = stroke
    x, y, z = EARLY_ISCHAEMIA.center_lps_mm
    assert _at(plain, (-x, y, z), 4) - _at(plain, (x, y, z), 4) > 5


def test_angiogram_mip_stops_at_the_cutoff_on_the_right_only(stroke) -> None:
    _, angiogram = stroke
    mip = mpr.axial(angiogram, 9.0, slab_thickness_mm=20, slab_mode="mip")
    rows, columns = np.nonzero((mip.pixels > 200) & (mip.pixels < 600))
    x = mip.affine[0, 0] * rows + mip.affine[0, 1] * columns + mip.affine[0, 3]
    y = mip.affine[1, 0] * rows + mip.affine[1, 1] * columns + mip.affine[1, 3]
    inside = (np.abs(x) < 50) & (np.abs(y) < 12)
    assert abs(-x[inside & (x < 0)].min() - abs(MCA_OCCLUSION.cutoff_lps_mm[0])) < 3
    assert x[inside & (x > 0)].max() > 45  # the left MCA is filled to the periphery


@pytest.mark.parametrize("kind", ["prior", "current"])
def test_fracture_gap_is_where_and_as_wide_as_stated(kind: str) -> None:
    volume = read_series(fracture_phantom(kind).datasets)[0]
    truth = FRACTURES[kind]
    z = volume.affine[2, 0] * np.arange(volume.shape[0]) + volume.affine[2, 3]
    bone = (volume.voxels > 700).sum(axis=(1, 2))
    assert abs(z[np.argmin(bone)] - truth.level_lps_mm[2]) <= truth.gap_mm / 2 + 1
    coronal = mpr.coronal(volume, 0.0)
    zc = coronal.affine[2, 0] * np.arange(coronal.pixels.shape[0]) + coronal.affine[2, 3]
    gaps = []
    for x_mm in (-10.0, 10.0):
        # The tilted surface is nearer on one cortex and further on the other.
        column = int(round((x_mm - coronal.affine[0, 3]) / coronal.affine[0, 1]))
        gap = coronal.pixels[:, column] < 700
        run = {int(np.argmin(np.abs(zc)))}
        for step in (-1, 1):
            at = min(run) if step < 0 else max(run)
            while 0 <= at + step < len(gap) and gap[at + step]:
                at += step
                run.add(at)
        gaps.append(len(run) * coronal.spacing_mm[0])
    assert abs(np.mean(gaps) - truth.gap_mm) < 1.5


@pytest.mark.parametrize("kind", ["prior", "current"])
def test_fracture_angulation_is_as_stated(kind: str) -> None:
    volume = read_series(fracture_phantom(kind).datasets)[0]
    z = volume.affine[2, 0] * np.arange(volume.shape[0]) + volume.affine[2, 3]

    def axis_deg(low: float, high: float) -> float:
        heights, centres = [], []
        for index in np.flatnonzero((z >= low) & (z <= high)):
            columns = np.nonzero(volume.voxels[index] > 700)[1]
            heights.append(z[index])
            centres.append(volume.affine[0, 2] * columns.mean() + volume.affine[0, 3])
        return float(np.degrees(np.arctan(np.polyfit(heights, centres, 1)[0])))

    angle = abs(axis_deg(10, 45) - axis_deg(-45, -10))
    assert abs(angle - FRACTURES[kind].angulation_deg) < 1.5


def test_fracture_kind_is_checked_raises() -> None:
    with pytest.raises(ValueError, match="'current' or 'prior'"):
        fracture_phantom("tomorrow")


def test_teaching_set_has_every_phantom_with_distinct_fake_patients() -> None:
    studies = list(teaching_studies())
    assert len({s.study_instance_uid for s in studies}) == 5
    names = {str(s.datasets[0].PatientName) for s in studies}
    assert names == {"Test^Case", "Test^Stroke", "Test^Fracture"}
