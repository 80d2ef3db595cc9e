"""Teaching phantoms: a CT head current/prior pair with a known, measurable finding.

The phantoms are made by code, so the demo and the lessons need no downloaded images
and every learner can check an answer against the truth. The current study shows an
acute intraparenchymal haemorrhage in the right frontal lobe that the prior, taken
months earlier, does not show.
"""
from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from viewerlib.samples._dataset import ISSUER_OF_PATIENT_ID as ISSUER_OF_PATIENT_ID
from viewerlib.samples._dataset import SeriesIdentity, ct_slice, pixel_grid

PATIENT_NAME = "Test^Case"
PATIENT_ID = "LBX-0001"


@dataclass(frozen=True)
class Finding:
    """Ground truth of the phantom's lesion, for self-checks in the lessons.

    ``center_lps_mm`` is in patient coordinates (LPS: +x left, +y posterior, +z head).
    """

    description: str
    center_lps_mm: tuple[float, float, float]
    diameter_mm: float
    hounsfield_units: float


HAEMORRHAGE = Finding(
    description="acute intraparenchymal haemorrhage, right frontal lobe",
    center_lps_mm=(-32.0, -38.0, 24.0),
    diameter_mm=22.0,
    hounsfield_units=70.0,
)


@dataclass(frozen=True)
class PhantomStudy:
    """One generated study: its identity and the slices' datasets."""

    study_instance_uid: str
    series_instance_uid: str
    study_date: str
    study_description: str
    accession_number: str
    datasets: list[Dataset]


def _head_slice(z_mm: float, y_mm: np.ndarray, x_mm: np.ndarray, with_finding: bool,
                rng: np.random.Generator) -> np.ndarray:
    """Hounsfield units of one axial slice of the head at height ``z_mm``."""
    hu = np.full(x_mm.shape, -1000.0)

    # An ellipsoid head centred at z = 0: scalp, skull, then brain inside.
    scale = max(0.0, 1.0 - (z_mm / 95.0) ** 2)
    if scale == 0.0:
        return hu
    radius = np.sqrt((x_mm / (75.0 * np.sqrt(scale))) ** 2
                     + (y_mm / (92.0 * np.sqrt(scale))) ** 2)
    hu[radius < 1.0] = 40.0
    hu[radius < 0.96] = 1100.0
    hu[radius < 0.88] = 32.0

    # Grey matter rim, and the lateral ventricles (CSF) near the middle of the head.
    hu[(radius > 0.80) & (radius < 0.88)] = 40.0
    if abs(z_mm - 10.0) < 18.0:
        for side in (-1.0, 1.0):
            ventricle = (((x_mm - side * 11.0) / 6.0) ** 2
                         + ((y_mm + 5.0) / 24.0) ** 2) < 1.0 - ((z_mm - 10.0) / 18.0) ** 2
            hu[ventricle] = 6.0

    if with_finding:
        cx, cy, cz = HAEMORRHAGE.center_lps_mm
        radius_mm = HAEMORRHAGE.diameter_mm / 2.0
        lesion = ((x_mm - cx) ** 2 + (y_mm - cy) ** 2 + (z_mm - cz) ** 2) < radius_mm**2
        hu[lesion] = HAEMORRHAGE.hounsfield_units

    # Quantum noise of a real scanner, a few HU, only inside the head.
    inside = hu > -500
    hu[inside] += rng.normal(0.0, 3.0, int(inside.sum()))
    return hu


def ct_head_phantom(kind: str = "current", rows: int = 256, columns: int = 256,
                    number_of_slices: int = 48, pixel_spacing_mm: float = 0.9,
                    slice_spacing_mm: float = 4.0) -> PhantomStudy:
    """Build the CT head teaching phantom.

    Parameters
    ----------
    kind : {'current', 'prior'}
        ``'current'`` shows the haemorrhage (:data:`HAEMORRHAGE`); ``'prior'``, dated
        six months earlier, does not.
    rows, columns : int
        (0028,0010) *Rows* and (0028,0011) *Columns* of each slice.
    number_of_slices : int
        Number of axial slices, stored one instance each.
    pixel_spacing_mm, slice_spacing_mm : float
        In-plane (0028,0030) *Pixel Spacing* and the distance between slices.

    Returns
    -------
    PhantomStudy
        The study's UIDs and its CT Image Storage datasets, ordered foot to head.

    Examples
    --------
    >>> study = ct_head_phantom("prior", rows=32, columns=32, number_of_slices=4)
    >>> len(study.datasets), study.datasets[0].Modality
    (4, 'CT')
    """
    if kind not in ("current", "prior"):
        raise ValueError(f"kind must be 'current' or 'prior', not {kind!r}")
    with_finding = kind == "current"
    date = datetime.date(2026, 11, 2) if with_finding else datetime.date(2026, 5, 4)
    identity = SeriesIdentity(
        patient_name=PATIENT_NAME, patient_id=PATIENT_ID, study_key=kind,
        study_date=date.strftime("%Y%m%d"),
        study_description="CT HEAD WITHOUT CONTRAST (teaching phantom)",
        accession_number="LBXACC01" if with_finding else "LBXACC00",
        series_key="axial", series_number=2, series_description="Axial head 4 mm",
        body_part="HEAD", windows=((40.0, 80.0, "BRAIN"), (600.0, 2800.0, "BONE")),
        study_time="081500", study_id="1" if with_finding else "0")
    rng = np.random.default_rng(7 if with_finding else 11)

    # Pixel centres in patient coordinates; the head is centred in the field of view.
    y_mm, x_mm, origin_x, origin_y = pixel_grid(rows, columns, pixel_spacing_mm)
    first_z = -(number_of_slices - 1) * slice_spacing_mm / 2.0 + 10.0
    datasets = []
    for index in range(number_of_slices):
        z_mm = first_z + index * slice_spacing_mm
        hu = _head_slice(z_mm, y_mm, x_mm, with_finding, rng)
        datasets.append(ct_slice(identity, index, hu, (origin_x, origin_y, z_mm),
                                 pixel_spacing_mm, slice_spacing_mm))

    return PhantomStudy(
        study_instance_uid=identity.study_instance_uid,
        series_instance_uid=identity.series_instance_uid,
        study_date=identity.study_date,
        study_description=identity.study_description,
        accession_number=identity.accession_number,
        datasets=datasets,
    )


def teaching_studies() -> Iterator[PhantomStudy]:
    """Every teaching phantom the demo archive and the lessons use.

    The CT head current and prior (:data:`HAEMORRHAGE`), the telestroke study
    (:mod:`viewerlib.samples.stroke`) and the tibial fracture at injury and six weeks
    later (:mod:`viewerlib.samples.fracture`).
    """
    # Imported here: those modules build on this one.
    from viewerlib.samples.fracture import fracture_phantom
    from viewerlib.samples.stroke import stroke_phantom

    yield ct_head_phantom("current")
    yield ct_head_phantom("prior")
    yield stroke_phantom()
    yield fracture_phantom("prior")
    yield fracture_phantom("current")


def write_teaching_set(folder: Path) -> list[Path]:
    """Write every teaching phantom as DICOM files under ``folder``; return the paths."""
    return write_studies(teaching_studies(), folder)


def write_studies(studies: Iterable[PhantomStudy], folder: Path) -> list[Path]:
    """Write ``studies`` under ``folder``, a sub-folder per study; return the paths."""
    paths = []
    for study in studies:
        study_folder = Path(folder) / study.study_instance_uid
        study_folder.mkdir(parents=True, exist_ok=True)
        for ds in study.datasets:
            path = study_folder / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths
