"""Builders of small synthetic series for the volume tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SERIES_UID = generate_uid()
FRAME_OF_REFERENCE_UID = generate_uid()


def build_slice(
    stored: np.ndarray,
    position: Sequence[float],
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    spacing: Sequence[float] = (0.5, 0.8),
    **elements: object,
) -> Dataset:
    """Return one signed 16-bit CT slice at `position` (LPS mm)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = SERIES_UID
    ds.FrameOfReferenceUID = FRAME_OF_REFERENCE_UID
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in spacing]
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.PixelData = stored.astype("<i2").tobytes()
    return ds


def axial_series(z_positions: Sequence[float], rows: int = 4, columns: int = 5):
    """Return slices whose every voxel holds 100 * slice z + column (stored)."""
    out = []
    for z in z_positions:
        stored = np.tile(np.arange(columns), (rows, 1)) + int(100 * z)
        out.append(build_slice(stored, (-10.0, -20.0, z)))
    return out
