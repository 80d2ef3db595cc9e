"""Stroke teaching phantom: a CT head and a CT angiogram with a right M1 occlusion.

The study of the fictitious patient *Test^Stroke* has two series taken minutes apart:

- a non-contrast CT (4 mm) with a hyperdense right middle cerebral artery (a thrombus
  in M1, :data:`HYPERDENSE_MCA`) and early ischaemic change in the right lentiform
  nucleus and insula (:data:`EARLY_ISCHAEMIA`, 8 HU below the other side);
- a CT angiogram (1 mm) whose contrast fills both internal carotids and the left
  middle cerebral artery, and stops in the right M1 at :data:`MCA_OCCLUSION`.

A single thin CTA slice shows only a piece of each middle cerebral artery, because M2
climbs as it runs out to the Sylvian fissure; a slab MIP shows the whole vessel, and
the missing right one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from viewerlib.samples._dataset import SeriesIdentity, ct_slice, pixel_grid
from viewerlib.samples.phantom import Finding, PhantomStudy, _head_slice

PATIENT_NAME = "Test^Stroke"
PATIENT_ID = "LBX-0002"
STUDY_DATE = "20261103"

# Height (LPS z, mm) of the circle of Willis and the M1 segments.
_M1_Z_MM = 2.0
_VESSEL_RADIUS_MM = 1.6
_CONTRAST_HU = 350.0
# Where contrast stops in the right M1 (x, mm; the right is negative x in LPS).
_CUTOFF_X_MM = -22.0


@dataclass(frozen=True)
class Occlusion:
    """Ground truth of a vessel occlusion: which artery, which side, where it stops."""

    description: str
    side: str
    vessel: str
    cutoff_lps_mm: tuple[float, float, float]


HYPERDENSE_MCA = Finding(
    description="hyperdense right middle cerebral artery (thrombus in M1)",
    center_lps_mm=(-31.0, 2.0, _M1_Z_MM),
    diameter_mm=18.0,  # length of the thrombus along the vessel
    hounsfield_units=70.0,
)
EARLY_ISCHAEMIA = Finding(
    description="early ischaemic change, right lentiform nucleus and insula",
    center_lps_mm=(-30.0, 2.0, 10.0),
    diameter_mm=24.0,
    hounsfield_units=24.0,
)
MCA_OCCLUSION = Occlusion(
    description="occlusion of the right middle cerebral artery, M1 segment",
    side="right",
    vessel="M1",
    cutoff_lps_mm=(_CUTOFF_X_MM, 1.2, _M1_Z_MM),
)

# Centre lines (LPS mm) of the arteries drawn, one (start, end) per segment; the
# right side is the mirror image of the left (x -> -x).
_LEFT_SEGMENTS: tuple[tuple[tuple[float, float, float], tuple[float, float, float]],
                      ...] = (
    ((14.0, 0.0, -60.0), (14.0, 0.0, _M1_Z_MM)),     # internal carotid
    ((14.0, 0.0, _M1_Z_MM), (40.0, 4.0, _M1_Z_MM)),  # M1
    ((40.0, 4.0, _M1_Z_MM), (62.0, 10.0, 16.0)),     # M2, climbing
    ((14.0, 0.0, _M1_Z_MM), (4.0, -30.0, 14.0)),     # anterior cerebral
)


def _mirror(point: tuple[float, float, float]) -> tuple[float, float, float]:
    return (-point[0], point[1], point[2])


def _near_segment(x: np.ndarray, y: np.ndarray, z: float,
                  start: tuple[float, float, float],
                  end: tuple[float, float, float], radius: float) -> np.ndarray:
    """Pixels within ``radius`` mm of the segment from ``start`` to ``end``."""
    a, b = np.asarray(start), np.asarray(end)
    direction = b - a
    points = np.stack([x - a[0], y - a[1], np.full_like(x, z - a[2])], axis=-1)
    t = np.clip(points @ direction / float(direction @ direction), 0.0, 1.0)
    closest = t[..., None] * direction
    return np.linalg.norm(points - closest, axis=-1) < radius


def _filled_segments() -> list[tuple[tuple[float, float, float],
                                     tuple[float, float, float]]]:
    """The arterial segments contrast reaches: all on the left, not beyond the clot."""
    carotid, m1, _m2, anterior = _LEFT_SEGMENTS
    start, end = _mirror(m1[0]), _mirror(m1[1])
    # Right M1 up to the cut-off only; right M2 gets no contrast at all.
    fraction = (start[0] - _CUTOFF_X_MM) / (start[0] - end[0])
    cutoff = (_CUTOFF_X_MM, start[1] + fraction * (end[1] - start[1]), start[2])
    right = [(_mirror(carotid[0]), _mirror(carotid[1])), (start, cutoff),
             (_mirror(anterior[0]), _mirror(anterior[1]))]
    return [*_LEFT_SEGMENTS, *right]


def _stroke_slice(z_mm: float, y_mm: np.ndarray, x_mm: np.ndarray, angiogram: bool,
                  rng: np.random.Generator) -> np.ndarray:
    hu = _head_slice(z_mm, y_mm, x_mm, False, rng)
    brain = (hu > 15) & (hu < 60)

    if angiogram:
        # Parenchyma enhances a little; the arteries a lot.
        hu[brain] += 5.0
        for start, end in _filled_segments():
            vessel = _near_segment(x_mm, y_mm, z_mm, start, end, _VESSEL_RADIUS_MM)
            hu[vessel] = _CONTRAST_HU + rng.normal(0.0, 10.0, int(vessel.sum()))
        return hu

    # Early ischaemic change: oedema lowers the attenuation of grey and white matter.
    cx, cy, cz = EARLY_ISCHAEMIA.center_lps_mm
    radii = (10.0, 16.0, 12.0)
    ischaemic = (((x_mm - cx) / radii[0]) ** 2 + ((y_mm - cy) / radii[1]) ** 2
                 + ((z_mm - cz) / radii[2]) ** 2) < 1.0
    hu[ischaemic & brain] -= 8.0

    # The clot in the right M1 is denser than flowing blood (hyperdense vessel sign).
    half = HYPERDENSE_MCA.diameter_mm / 2.0
    hx, hy, hz = HYPERDENSE_MCA.center_lps_mm
    thrombus = _near_segment(x_mm, y_mm, z_mm, (hx + half, hy - 1.0, hz),
                             (hx - half, hy + 1.0, hz), _VESSEL_RADIUS_MM)
    hu[thrombus] = HYPERDENSE_MCA.hounsfield_units + rng.normal(
        0.0, 3.0, int(thrombus.sum()))
    return hu


def stroke_phantom(rows: int = 224, columns: int = 224, pixel_spacing_mm: float = 0.9,
                   plain_slices: int = 40, angiogram_slices: int = 64) -> PhantomStudy:
    """Build the telestroke study: non-contrast CT and CT angiogram in one study.

    Parameters
    ----------
    rows, columns : int
        (0028,0010) *Rows* and (0028,0011) *Columns* of every slice.
    pixel_spacing_mm : float
        (0028,0030) *Pixel Spacing*.
    plain_slices, angiogram_slices : int
        Slices of the non-contrast series (4 mm apart, from z = -66 mm) and of the
        angiogram (1 mm apart, from z = -30 mm).

    Returns
    -------
    PhantomStudy
        ``series_instance_uid`` is the non-contrast series; ``datasets`` holds both
        series, the non-contrast one first. ``study.save(folder)`` writes both
        into one folder, which :func:`viewerlib.open` opens on the angiogram
        (the series with the most instances).

    Examples
    --------
    >>> study = stroke_phantom(rows=32, columns=32, plain_slices=2, angiogram_slices=2)
    >>> sorted({ds.SeriesDescription for ds in study})
    ['Axial head 4 mm', 'CT angiogram head 1 mm']
    >>> study.file_names()
    ['CT-002-0001.dcm', 'CT-002-0002.dcm', 'CT-003-0001.dcm', 'CT-003-0002.dcm']
    """
    y_mm, x_mm, origin_x, origin_y = pixel_grid(rows, columns, pixel_spacing_mm)
    rng = np.random.default_rng(23)
    common = dict(patient_name=PATIENT_NAME, patient_id=PATIENT_ID,
                  study_key="stroke", study_date=STUDY_DATE,
                  study_description="CT STROKE PROTOCOL (teaching phantom)",
                  accession_number="LBXACC02", body_part="HEAD")
    plain = SeriesIdentity(series_key="plain", series_number=2,
                           series_description="Axial head 4 mm",
                           windows=((40.0, 80.0, "BRAIN"), (32.0, 8.0, "STROKE")),
                           **common)
    angio = SeriesIdentity(series_key="angiogram", series_number=3,
                           series_description="CT angiogram head 1 mm",
                           windows=((200.0, 700.0, "ANGIO"), (40.0, 80.0, "BRAIN")),
                           **common)

    datasets: list[Dataset] = []
    for identity, count, first_z, step in ((plain, plain_slices, -66.0, 4.0),
                                           (angio, angiogram_slices, -30.0, 1.0)):
        for index in range(count):
            z_mm = first_z + index * step
            hu = _stroke_slice(z_mm, y_mm, x_mm, identity is angio, rng)
            datasets.append(ct_slice(identity, index, hu, (origin_x, origin_y, z_mm),
                                     pixel_spacing_mm, step))
    return PhantomStudy(
        study_instance_uid=plain.study_instance_uid,
        series_instance_uid=plain.series_instance_uid,
        study_date=STUDY_DATE,
        study_description=plain.study_description,
        accession_number=plain.accession_number,
        datasets=datasets,
    )
