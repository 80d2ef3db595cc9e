"""Builders of small synthetic instances for the pipeline tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)


def build_image(
    stored: np.ndarray,
    *,
    bits_allocated: int = 16,
    bits_stored: int | None = None,
    signed: bool = False,
    photometric: str = "MONOCHROME2",
    planar_configuration: int | None = None,
    raw_bytes: bytes | None = None,
    **elements: Any,
) -> Dataset:
    """Return an Explicit VR Little Endian instance holding `stored`.

    `stored` is (rows, columns), (frames, rows, columns) for grayscale, or
    (rows, columns, 3) colour-by-pixel for colour; `raw_bytes` replaces the
    pixel bytes (for garbage bits and planar configuration 1).
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")
    if colour:
        rows, columns = stored.shape[:2]
        ds.SamplesPerPixel = 3
        ds.PlanarConfiguration = planar_configuration or 0
    else:
        rows, columns = stored.shape[-2:]
        ds.SamplesPerPixel = 1
        if stored.ndim == 3:
            ds.NumberOfFrames = stored.shape[0]
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored or bits_allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PhotometricInterpretation = photometric
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    dtype = f"<{'i' if signed else 'u'}{bits_allocated // 8}"
    if raw_bytes is None:
        raw_bytes = stored.astype(dtype).tobytes()
    ds.PixelData = raw_bytes
    return ds
