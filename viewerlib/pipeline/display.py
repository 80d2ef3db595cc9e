"""Grayscale display as one lookup table from stored value to 8-bit P-value."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from viewerlib.pipeline.modality import apply_modality_lut, stored_value_range
from viewerlib.pipeline.presentation import apply_presentation_lut
from viewerlib.pipeline.voi import (
    VOILUTPreset,
    WindowPreset,
    apply_voi_lut,
    apply_windowing,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

# Stored values of at most this many bytes get a table over every bit pattern.
_MAX_TABLE_ITEMSIZE = 2


def supports_display_lut(stored: np.ndarray) -> bool:
    """Return True if `stored` can be shown through :func:`grayscale_display_lut`.

    Parameters
    ----------
    stored : numpy.ndarray
        Stored values of a frame.

    Returns
    -------
    bool
        True for 8- and 16-bit integer arrays.
    """
    return stored.dtype.kind in "iu" and stored.dtype.itemsize <= _MAX_TABLE_ITEMSIZE


def grayscale_display_lut(
    ds: Dataset,
    frame_index: int,
    window: WindowPreset | VOILUTPreset | None,
    dtype: np.dtype,
) -> np.ndarray:
    """Return the whole grayscale pipeline of a frame as one uint8 table.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses what :func:`~viewerlib.pipeline.modality.apply_modality_lut`,
        :func:`~viewerlib.pipeline.voi.apply_voi_lut` and
        :func:`~viewerlib.pipeline.presentation.apply_presentation_lut` use.
    frame_index : int
        Index of the frame, starting at 0 (its rescale may differ per frame).
    window : WindowPreset, VOILUTPreset or None
        The window, or the item of (0028,3010) *VOI LUT Sequence* to apply;
        None applies item 0.
    dtype : numpy.dtype
        dtype of the stored values, 8 or 16 bits.

    Returns
    -------
    numpy.ndarray
        uint8 table of 2**bits entries, indexed by the stored value's bit
        pattern read as unsigned (``stored.view(unsigned)``), so that signed
        values need no offset.

    Raises
    ------
    ValueError
        If `dtype` is not an 8- or 16-bit integer type.

    Notes
    -----
    PS3.4 N.2 describes each grayscale stage as a function of its input, so
    the chain stored value -> Modality LUT -> VOI LUT -> Presentation LUT is a
    function of the stored value alone. The table is that chain evaluated with
    the very functions of the slow path, once for every possible stored value:
    indexing it gives the same result as running the stages on the frame.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.BitsStored, ds.PixelRepresentation = 8, 0
    >>> ds.PhotometricInterpretation = "MONOCHROME2"
    >>> lut = grayscale_display_lut(ds, 0, WindowPreset(128, 256), np.dtype("u1"))
    >>> lut[[0, 128, 255]].tolist()
    [0, 128, 255]
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or dtype.itemsize > _MAX_TABLE_ITEMSIZE:
        raise ValueError(f"A display table needs 8- or 16-bit integers, not {dtype}")
    unsigned = np.dtype(f"u{dtype.itemsize}")
    width = 8 * dtype.itemsize
    bits = _bits_stored(ds, width)
    repeats = 1
    if bits < width:
        # Every stage maps each value on its own, and the first clears the bits
        # above Bits Stored (PS3.5 8.1.1, clean_stored_values): the table repeats
        # every 2**bits patterns. Work out one period (4,096 values for 12-bit
        # CT instead of 65,536) and repeat it.
        repeats = 2 ** (width - bits)
        shift = width - bits
        patterns = np.arange(2**bits, dtype=np.int64).astype(unsigned)
        if dtype.kind == "i":
            # Sign-extend from Bits Stored: the arithmetic shift of a signed type.
            stored = np.left_shift(patterns, shift).view(dtype) >> shift
        else:
            stored = patterns
    else:
        patterns = np.arange(2**width, dtype=np.int64).astype(unsigned)
        stored = patterns.view(dtype)

    values = apply_modality_lut(stored, ds, frame_index)
    shown = apply_voi(values, ds, window)
    shown = apply_presentation_lut(shown, ds)
    period = np.clip(np.rint(shown), 0, 255).astype(np.uint8)
    return np.tile(period, repeats) if repeats > 1 else period


def _bits_stored(ds: Dataset, width: int) -> int:
    """(0028,0101) *Bits Stored* as the Modality LUT stage clears above it.

    The full width unless the header's Bits Stored, Bits Allocated and Pixel
    Representation describe values narrower than the stored type, exactly as
    :func:`~viewerlib.pipeline.modality.stored_value_range` and
    :func:`~viewerlib.pipeline.modality.clean_stored_values` read them.
    """
    try:
        bits = int(ds.get("BitsStored") or 0)
        low, high = stored_value_range(ds)
    except (TypeError, ValueError):
        return width
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    if not 0 < bits < width:
        return width
    expected = ((-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed
                else (0, 2**bits - 1))
    return bits if (low, high) == expected else width


def apply_voi(
    values: np.ndarray, ds: Dataset, preset: WindowPreset | VOILUTPreset | None
) -> np.ndarray:
    """Apply a window or a VOI LUT item to modality values (PS3.3 C.11.2).

    Parameters
    ----------
    values : numpy.ndarray
        Modality values.
    ds : pydicom.dataset.Dataset
        Uses what :func:`~viewerlib.pipeline.voi.apply_voi_lut` uses.
    preset : WindowPreset, VOILUTPreset or None
        What to apply; None is item 0 of (0028,3010) *VOI LUT Sequence*.

    Returns
    -------
    numpy.ndarray
        float32 values in [0, 255], before the Presentation LUT.
    """
    if preset is None:
        return apply_voi_lut(values, ds)
    if isinstance(preset, VOILUTPreset):
        return apply_voi_lut(values, ds, preset.lut_index)
    return apply_windowing(values, preset.center, preset.width, preset.function)


def apply_display_lut(stored: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Return ``table[stored]`` for a table from :func:`grayscale_display_lut`.

    Parameters
    ----------
    stored : numpy.ndarray
        8- or 16-bit integer stored values, any shape.
    table : numpy.ndarray
        uint8 table of 2**bits entries.

    Returns
    -------
    numpy.ndarray
        uint8 array of the shape of `stored`.
    """
    unsigned = stored.view(np.dtype(f"u{stored.dtype.itemsize}"))
    return np.take(table, unsigned)
