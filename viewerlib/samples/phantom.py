"""Teaching phantoms: a CT head current/prior pair with a known, measurable finding.

The phantoms are made by code, so the demo and the lessons need no downloaded images
and every learner can check an answer against the truth. The current study shows an
acute intraparenchymal haemorrhage in the right frontal lobe that the prior, taken
months earlier, does not show.
"""
from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

# Stored value = HU + 1024 in 12 bits, as most CT scanners write it.
_RESCALE_INTERCEPT = -1024
_UID_ROOT = "1.2.826.0.1.3680043.8.498."

PATIENT_NAME = "Test^Case"
PATIENT_ID = "LBX-0001"
ISSUER_OF_PATIENT_ID = "LIGHTBOX-DEMO"


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


def _uid(*parts: str) -> str:
    # Fixed inputs give fixed UIDs, so loading the demo twice stores each image once.
    return generate_uid(prefix=_UID_ROOT, entropy_srcs=["lightbox-phantom", *parts])


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
    study_uid = _uid(kind, "study")
    series_uid = _uid(kind, "series")
    frame_of_reference_uid = _uid(kind, "frame-of-reference")
    rng = np.random.default_rng(7 if with_finding else 11)

    # Pixel centres in patient coordinates; the head is centred in the field of view.
    y_mm, x_mm = np.mgrid[0:rows, 0:columns].astype(np.float64) * pixel_spacing_mm
    origin_x = -(columns - 1) * pixel_spacing_mm / 2.0
    origin_y = -(rows - 1) * pixel_spacing_mm / 2.0
    x_mm += origin_x
    y_mm += origin_y
    first_z = -(number_of_slices - 1) * slice_spacing_mm / 2.0 + 10.0

    datasets = []
    for index in range(number_of_slices):
        z_mm = first_z + index * slice_spacing_mm
        hu = _head_slice(z_mm, y_mm, x_mm, with_finding, rng)
        stored = np.clip(np.rint(hu) - _RESCALE_INTERCEPT, 0, 4095).astype(np.uint16)
        ds = _ct_dataset(kind, index, stored, study_uid, series_uid,
                         frame_of_reference_uid, date)
        ds.ImagePositionPatient = [round(origin_x, 4), round(origin_y, 4), round(z_mm, 4)]
        ds.SliceLocation = round(z_mm, 4)
        ds.PixelSpacing = [pixel_spacing_mm, pixel_spacing_mm]
        ds.SliceThickness = slice_spacing_mm
        datasets.append(ds)

    return PhantomStudy(
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        study_date=date.strftime("%Y%m%d"),
        study_description=datasets[0].StudyDescription,
        accession_number=datasets[0].AccessionNumber,
        datasets=datasets,
    )


def _ct_dataset(kind: str, index: int, stored: np.ndarray, study_uid: str,
                series_uid: str, frame_of_reference_uid: str,
                date: datetime.date) -> Dataset:
    sop_instance_uid = _uid(kind, "instance", str(index))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]

    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.IssuerOfPatientID = ISSUER_OF_PATIENT_ID
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"

    ds.StudyInstanceUID = study_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = date.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "081500"
    ds.StudyID = "1" if kind == "current" else "0"
    ds.AccessionNumber = "LBXACC01" if kind == "current" else "LBXACC00"
    ds.StudyDescription = "CT HEAD WITHOUT CONTRAST (teaching phantom)"
    ds.ReferringPhysicianName = ""
    ds.InstitutionName = "Lightbox Teaching Hospital"
    ds.Manufacturer = "Lightbox phantom generator"

    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 2
    ds.SeriesDescription = "Axial head 4 mm"
    ds.Modality = "CT"
    ds.BodyPartExamined = "HEAD"
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.InstanceNumber = index + 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.KVP = 120

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = _RESCALE_INTERCEPT
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = [40, 600]
    ds.WindowWidth = [80, 2800]
    ds.WindowCenterWidthExplanation = ["BRAIN", "BONE"]
    ds.PixelData = stored.tobytes()
    return ds


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
    paths = []
    for study in teaching_studies():
        study_folder = Path(folder) / study.study_instance_uid
        study_folder.mkdir(parents=True, exist_ok=True)
        for ds in study.datasets:
            path = study_folder / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths
