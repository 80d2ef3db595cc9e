"""Presentation LUT stage: VOI output to P-values, inverting where called for."""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)


class PresentationLUTShape(enum.Enum):
    """(2050,0020) *Presentation LUT Shape*, PS3.3 C.11.6.1.2."""

    IDENTITY = "IDENTITY"
    INVERSE = "INVERSE"


def should_invert(ds: Dataset) -> bool:
    """Return True if the VOI output must be inverted for display.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,0004) *Photometric Interpretation* and (2050,0020)
        *Presentation LUT Shape*.

    Returns
    -------
    bool
        True for MONOCHROME1 (minimum value is white, PS3.3 C.7.6.3.1.2) and
        for a Presentation LUT Shape of INVERSE.

    Notes
    -----
    One inversion, never two: the DX and MG IODs require INVERSE together
    with MONOCHROME1 (PS3.3 C.8.11.7.1.1) to say what MONOCHROME1 already
    says, so MONOCHROME1 with INVERSE is inverted once. MONOCHROME2 with INVERSE
    is inverted. With a (2050,0010) *Presentation LUT Sequence* the table alone
    decides (PS3.4 N.2.1.4 Note 1: the Photometric Interpretation is then
    overridden), so this returns False.
    """
    if ds.get("PresentationLUTSequence"):
        return False
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    shape = str(ds.get("PresentationLUTShape", "")).strip()
    return photometric == "MONOCHROME1" or shape == PresentationLUTShape.INVERSE.value


def _presentation_lut_table(ds: Dataset) -> tuple[np.ndarray, int, int]:
    """Return (entries, first mapped value, bits) of the Presentation LUT."""
    item = ds.PresentationLUTSequence[0]
    if "LUTDescriptor" not in item or "LUTData" not in item:
        raise ValueError(
            "(2050,0010) 'Presentation LUT Sequence' item lacks (0028,3002) 'LUT "
            "Descriptor' or (0028,3006) 'LUT Data'; remove the sequence or fix it"
        )
    # PS3.3 C.11.6.1.1: entries (0 means 65536), first value mapped, bits (10-16).
    entries, first, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 65536
    data = item.LUTData
    if isinstance(data, bytes | bytearray):
        table = np.frombuffer(data, "<u2" if bits > 8 else "<u1")
    elif hasattr(data, "__iter__"):
        table = np.asarray(list(data), np.float64)
    else:
        table = np.asarray([data], np.float64)
    if table.size < entries:
        raise ValueError(
            f"(2050,0010) 'Presentation LUT Sequence' declares {entries} entries "
            f"but (0028,3006) 'LUT Data' holds {table.size}; the table is corrupt"
        )
    if not 1 <= bits <= 16:
        raise ValueError(
            f"(0028,3002) 'LUT Descriptor' of the Presentation LUT gives {bits} "
            "bits per entry; PS3.3 C.11.6.1.1 allows 10 to 16"
        )
    return table[:entries].astype(np.float64), first, bits


def apply_presentation_lut(
    values: np.ndarray,
    ds: Dataset,
    output_range: tuple[float, float] = (0.0, 255.0),
) -> np.ndarray:
    """Apply the Presentation LUT to VOI output; call it after the VOI LUT.

    Parameters
    ----------
    values : numpy.ndarray
        Output of :func:`~viewerlib.pipeline.voi.apply_windowing` or
        :func:`~viewerlib.pipeline.voi.apply_voi_lut`, in `output_range`.
    ds : pydicom.dataset.Dataset
        Uses (2050,0010) *Presentation LUT Sequence* (its (0028,3002) *LUT
        Descriptor* and (0028,3006) *LUT Data*) when present, else the elements
        listed in :func:`should_invert`.
    output_range : tuple of float, optional
        The range `values` lie in, and the range of the P-values returned.
        Default (0, 255).

    Returns
    -------
    numpy.ndarray
        float32 P-values in `output_range`.

    Raises
    ------
    ValueError
        If the Presentation LUT Sequence is incomplete or shorter than its
        descriptor says.

    Notes
    -----
    PS3.3 C.11.6: the Presentation LUT follows the VOI LUT. Inverting the
    stored values before the window would also invert which side of the window
    clips, so a window chosen for MONOCHROME2 (or read from the file) would show
    the wrong tissue; the inversion is therefore done here, on VOI output.

    With a Presentation LUT Sequence (PS3.3 C.11.6.1), the VOI output range is
    scaled linearly onto the table's input range (first value mapped to first
    value + entries - 1), each value takes the entry of its nearest input, and
    the entries, P-values in [0, 2**bits - 1], are scaled to `output_range`.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.PhotometricInterpretation = "MONOCHROME1"
    >>> apply_presentation_lut(np.array([0.0, 55.0, 255.0]), ds).tolist()
    [255.0, 200.0, 0.0]
    """
    y_min, y_max = (float(v) for v in output_range)
    out = np.asarray(values, dtype=np.float32)
    if ds.get("PresentationLUTSequence"):
        table, first, bits = _presentation_lut_table(ds)
        # PS3.3 C.11.6.1: implicit linear scaling of the VOI output range onto
        # the table's input range; the offset `first` cancels in the index.
        del first
        span = max(y_max - y_min, 1e-12)
        position = (out.astype(np.float64) - y_min) * ((table.size - 1) / span)
        index = np.clip(np.rint(position), 0, table.size - 1).astype(np.intp)
        scale = (y_max - y_min) / float(2**bits - 1)
        return (table[index] * scale + y_min).astype(np.float32)

    if should_invert(ds):
        return (y_max + y_min) - out
    return out
