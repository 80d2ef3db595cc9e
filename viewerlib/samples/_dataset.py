"""One CT slice as a DICOM dataset, shared by the stroke and fracture phantoms."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

# Stored value = HU + 1024 in 12 bits, as most CT scanners write it.
RESCALE_INTERCEPT = -1024
_UID_ROOT = "1.2.826.0.1.3680043.8.498."
# Every phantom patient ID is issued by the same (fictional) assigning authority.
ISSUER_OF_PATIENT_ID = "LIGHTBOX-DEMO"


def stable_uid(*parts: str) -> str:
    """A UID derived from ``parts``: loading a phantom twice stores each image once."""
    return generate_uid(prefix=_UID_ROOT, entropy_srcs=["lightbox-phantom", *parts])


@dataclass(frozen=True)
class SeriesIdentity:
    """Who and what one generated series is: patient, study and series elements."""

    patient_name: str
    patient_id: str
    study_key: str
    study_date: str
    study_description: str
    accession_number: str
    series_key: str
    series_number: int
    series_description: str
    body_part: str
    windows: tuple[tuple[float, float, str], ...]
    study_time: str = "093000"
    study_id: str = "1"

    @property
    def study_instance_uid(self) -> str:
        return stable_uid(self.study_key, "study")

    @property
    def series_instance_uid(self) -> str:
        return stable_uid(self.study_key, self.series_key, "series")


def hounsfield_to_stored(hu: np.ndarray) -> np.ndarray:
    """Round HU to the 12-bit stored values of (0028,1052) *Rescale Intercept* -1024."""
    return np.clip(np.rint(hu) - RESCALE_INTERCEPT, 0, 4095).astype(np.uint16)


def ct_slice(identity: SeriesIdentity, index: int, hu: np.ndarray,
             origin_lps_mm: tuple[float, float, float],
             pixel_spacing_mm: float, slice_thickness_mm: float) -> Dataset:
    """Build one axial CT Image Storage instance from a (rows, columns) HU array.

    Parameters
    ----------
    identity : SeriesIdentity
        Patient, study and series of the slice.
    index : int
        Position in the series, starting at 0; (0020,0013) *Instance Number* is
        ``index + 1``.
    hu : numpy.ndarray
        Hounsfield units, (rows, columns).
    origin_lps_mm : tuple of float
        (0020,0032) *Image Position (Patient)* of the first pixel.
    pixel_spacing_mm, slice_thickness_mm : float
        (0028,0030) *Pixel Spacing* (square pixels) and (0018,0050) *Slice
        Thickness*.

    Returns
    -------
    pydicom.dataset.Dataset
        With file meta, ready for ``save_as`` or STOW-RS.
    """
    sop_instance_uid = stable_uid(identity.study_key, identity.series_key,
                                  "instance", str(index))
    stored = hounsfield_to_stored(hu)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]

    ds.PatientName = identity.patient_name
    ds.PatientID = identity.patient_id
    ds.IssuerOfPatientID = ISSUER_OF_PATIENT_ID
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"

    ds.StudyInstanceUID = identity.study_instance_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = identity.study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = identity.study_time
    ds.StudyID = identity.study_id
    ds.AccessionNumber = identity.accession_number
    ds.StudyDescription = identity.study_description
    ds.ReferringPhysicianName = ""
    ds.InstitutionName = "Lightbox Teaching Hospital"
    ds.Manufacturer = "Lightbox phantom generator"

    ds.SeriesInstanceUID = identity.series_instance_uid
    ds.SeriesNumber = identity.series_number
    ds.SeriesDescription = identity.series_description
    ds.Modality = "CT"
    ds.BodyPartExamined = identity.body_part
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = stable_uid(identity.study_key, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [round(float(v), 4) for v in origin_lps_mm]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = round(float(origin_lps_mm[2]), 4)
    ds.PixelSpacing = [pixel_spacing_mm, pixel_spacing_mm]
    ds.SliceThickness = slice_thickness_mm
    ds.KVP = 120

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = RESCALE_INTERCEPT
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = [w[0] for w in identity.windows]
    ds.WindowWidth = [w[1] for w in identity.windows]
    ds.WindowCenterWidthExplanation = [w[2] for w in identity.windows]
    ds.PixelData = stored.tobytes()
    return ds


def pixel_grid(rows: int, columns: int, pixel_spacing_mm: float
               ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """LPS (y, x) of every pixel centre of a slice centred on the z axis.

    Returns the two (rows, columns) arrays and the x and y of the first pixel.
    """
    y_mm, x_mm = np.mgrid[0:rows, 0:columns].astype(np.float64) * pixel_spacing_mm
    origin_x = -(columns - 1) * pixel_spacing_mm / 2.0
    origin_y = -(rows - 1) * pixel_spacing_mm / 2.0
    return y_mm + origin_y, x_mm + origin_x, origin_x, origin_y
