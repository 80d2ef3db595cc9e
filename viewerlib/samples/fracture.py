"""Fracture teaching phantom: a tibial shaft fracture at injury and six weeks later.

The fictitious patient *Test^Fracture* has two CT studies of the lower leg, 1 mm
slices. The distal fragment is tilted in the coronal plane (valgus angulation: its
far end points away from the midline, for a right leg towards the patient's right)
and the fragments stand apart along the shaft. The truth of each study is in
:data:`FRACTURE_PRIOR` (the day of injury) and :data:`FRACTURE_CURRENT` (after six
weeks in a cast: smaller gap, less angulation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from viewerlib.samples._dataset import SeriesIdentity, ct_slice, pixel_grid
from viewerlib.samples.phantom import PhantomStudy

PATIENT_NAME = "Test^Fracture"
PATIENT_ID = "LBX-0003"

_LEG_RADIUS_MM = 45.0
_CORTEX_OUTER_MM = 12.0
_CORTEX_INNER_MM = 8.0
_CORTEX_HU = 1400.0
_MARROW_HU = 20.0
_MUSCLE_HU = 45.0
_FAT_HU = -90.0


@dataclass(frozen=True)
class Fracture:
    """Ground truth of the tibial fracture of one study.

    ``level_lps_mm`` is the centre of the gap on the shaft axis; the gap is measured
    along the axis of the proximal fragment between the two fracture surfaces, and
    the angulation is the angle between the shaft axes of the two fragments.
    """

    description: str
    study_date: str
    level_lps_mm: tuple[float, float, float]
    gap_mm: float
    angulation_deg: float


FRACTURE_PRIOR = Fracture(
    description="transverse fracture of the right tibial shaft, day of injury",
    study_date="20260915",
    level_lps_mm=(0.0, 0.0, 0.0),
    gap_mm=8.0,
    angulation_deg=16.0,
)
FRACTURE_CURRENT = Fracture(
    description="the same fracture six weeks later, in a cast",
    study_date="20261027",
    level_lps_mm=(0.0, 0.0, 0.0),
    gap_mm=3.0,
    angulation_deg=6.0,
)
FRACTURES = {"prior": FRACTURE_PRIOR, "current": FRACTURE_CURRENT}


def _bone(radial_mm: np.ndarray) -> np.ndarray:
    """HU of a tubular bone at distance ``radial_mm`` from its axis (NaN outside)."""
    hu = np.full(radial_mm.shape, np.nan)
    hu[radial_mm < _CORTEX_OUTER_MM] = _CORTEX_HU
    hu[radial_mm < _CORTEX_INNER_MM] = _MARROW_HU
    return hu


def _leg_slice(z_mm: float, y_mm: np.ndarray, x_mm: np.ndarray, fracture: Fracture,
               rng: np.random.Generator) -> np.ndarray:
    hu = np.full(x_mm.shape, -1000.0)
    radius = np.hypot(x_mm, y_mm)
    hu[radius < _LEG_RADIUS_MM] = _FAT_HU
    hu[radius < _LEG_RADIUS_MM - 4.0] = _MUSCLE_HU

    half_gap = fracture.gap_mm / 2.0
    level_z = fracture.level_lps_mm[2]
    bone = np.full(x_mm.shape, np.nan)
    if z_mm >= level_z + half_gap:
        bone = _bone(radius)

    # The distal fragment, tilted about the y axis at its fracture surface.
    angle = np.radians(fracture.angulation_deg)
    dx, dz = x_mm, z_mm - (level_z - half_gap)
    along = -np.sin(angle) * dx + np.cos(angle) * dz  # along the fragment's axis
    across = np.cos(angle) * dx + np.sin(angle) * dz
    distal = along <= 0.0
    distal_bone = _bone(np.hypot(across, y_mm))
    use = distal & ~np.isnan(distal_bone)
    bone[use] = distal_bone[use]

    inside = ~np.isnan(bone)
    hu[inside] = bone[inside]
    tissue = hu > -500
    hu[tissue] += rng.normal(0.0, 4.0, int(tissue.sum()))
    return hu


def fracture_phantom(kind: str = "current", rows: int = 128, columns: int = 128,
                     number_of_slices: int = 100, pixel_spacing_mm: float = 1.0,
                     slice_spacing_mm: float = 1.0) -> PhantomStudy:
    """Build the lower-leg CT of the fracture phantom.

    Parameters
    ----------
    kind : {'current', 'prior'}
        ``'prior'`` is the day of injury (:data:`FRACTURE_PRIOR`), ``'current'`` six
        weeks later (:data:`FRACTURE_CURRENT`).
    rows, columns : int
        (0028,0010) *Rows* and (0028,0011) *Columns*.
    number_of_slices : int
        Axial slices, centred on the fracture.
    pixel_spacing_mm, slice_spacing_mm : float
        In-plane (0028,0030) *Pixel Spacing* and the distance between slices.

    Returns
    -------
    PhantomStudy
        One series, ordered foot to head; ``study.save(folder)`` writes it as
        files for :func:`viewerlib.open`.

    Raises
    ------
    ValueError
        If ``kind`` is neither ``'current'`` nor ``'prior'``.

    Examples
    --------
    >>> study = fracture_phantom("prior", rows=32, columns=32, number_of_slices=3)
    >>> study[0].BodyPartExamined, len(study)
    ('LEG', 3)
    """
    if kind not in FRACTURES:
        raise ValueError(f"kind must be 'current' or 'prior', not {kind!r}")
    fracture = FRACTURES[kind]
    identity = SeriesIdentity(
        patient_name=PATIENT_NAME, patient_id=PATIENT_ID,
        study_key=f"fracture-{kind}", study_date=fracture.study_date,
        study_description="CT RIGHT TIBIA AND FIBULA (teaching phantom)",
        accession_number="LBXACC04" if kind == "current" else "LBXACC03",
        series_key="axial", series_number=2, series_description="Axial bone 1 mm",
        body_part="LEG",
        windows=((600.0, 2800.0, "BONE"), (50.0, 400.0, "SOFT TISSUE")))
    rng = np.random.default_rng(31 if kind == "current" else 37)
    y_mm, x_mm, origin_x, origin_y = pixel_grid(rows, columns, pixel_spacing_mm)
    first_z = -(number_of_slices - 1) * slice_spacing_mm / 2.0

    datasets: list[Dataset] = []
    for index in range(number_of_slices):
        z_mm = first_z + index * slice_spacing_mm
        hu = _leg_slice(z_mm, y_mm, x_mm, fracture, rng)
        datasets.append(ct_slice(identity, index, hu, (origin_x, origin_y, z_mm),
                                 pixel_spacing_mm, slice_spacing_mm))
    return PhantomStudy(
        study_instance_uid=identity.study_instance_uid,
        series_instance_uid=identity.series_instance_uid,
        study_date=fracture.study_date,
        study_description=identity.study_description,
        accession_number=identity.accession_number,
        datasets=datasets,
    )
