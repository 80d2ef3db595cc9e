"""VOI LUT stage: modality values to display values by window or VOI LUT."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from viewerlib.pipeline.modality import apply_modality_lut

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)


class VOILUTFunction(enum.Enum):
    """(0028,1056) *VOI LUT Function*, PS3.3 C.11.2.1.3."""

    LINEAR = "LINEAR"
    LINEAR_EXACT = "LINEAR_EXACT"
    SIGMOID = "SIGMOID"


@dataclass(frozen=True)
class WindowPreset:
    """One window the file (or the data range) proposes.

    Attributes
    ----------
    center : float
        (0028,1050) *Window Center*, in modality units.
    width : float
        (0028,1051) *Window Width*, in modality units.
    explanation : str
        (0028,1055) *Window Center & Width Explanation*, or "" when absent.
    function : VOILUTFunction
        (0028,1056) *VOI LUT Function*; LINEAR when absent.
    """

    center: float
    width: float
    explanation: str = ""
    function: VOILUTFunction = VOILUTFunction.LINEAR


@dataclass(frozen=True)
class VOILUTPreset:
    """One item of (0028,3010) *VOI LUT Sequence*, offered beside the windows.

    Attributes
    ----------
    lut_index : int
        Index of the item in the sequence, starting at 0.
    explanation : str
        (0028,3003) *LUT Explanation*, or "VOI LUT <n>" (n from 1) when absent.
    """

    lut_index: int
    explanation: str = ""


VOIPreset = WindowPreset | VOILUTPreset


def _as_function(function: VOILUTFunction | str) -> VOILUTFunction:
    """Return `function` as a VOILUTFunction, with a helpful error."""
    try:
        return VOILUTFunction(function)
    except ValueError:
        names = ", ".join(f.value for f in VOILUTFunction)
        raise ValueError(
            f"(0028,1056) 'VOI LUT Function' {function!r} is not one of {names}"
        ) from None


def apply_windowing(
    values: np.ndarray,
    center: float,
    width: float,
    function: VOILUTFunction | str = VOILUTFunction.LINEAR,
    output_range: tuple[float, float] = (0.0, 255.0),
) -> np.ndarray:
    """Map modality values through a window, per PS3.3 C.11.2.1.2 and C.11.2.1.3.

    Parameters
    ----------
    values : numpy.ndarray
        Modality values (after the Modality LUT).
    center, width : float
        (0028,1050) *Window Center* and (0028,1051) *Window Width*.
    function : VOILUTFunction or str, optional
        (0028,1056) *VOI LUT Function*. Default LINEAR.
    output_range : tuple of float, optional
        (y_min, y_max) of the output. Default (0, 255).

    Returns
    -------
    numpy.ndarray
        float32 values in [y_min, y_max].

    Raises
    ------
    ValueError
        If `width` is below 1 for LINEAR or not above 0 for LINEAR_EXACT and
        SIGMOID (PS3.3 C.11.2.1.2.1 and C.11.2.1.3), or `function` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> apply_windowing(np.array([-0.5, 39.5, 79.5]), 40, 81).tolist()
    [0.0, 127.5, 255.0]
    """
    function = _as_function(function)
    y_min, y_max = (float(v) for v in output_range)
    span = y_max - y_min
    c, w = float(center), float(width)
    x = np.asarray(values, dtype=np.float64)

    if function is VOILUTFunction.LINEAR:
        # PS3.3 C.11.2.1.2.1: width >= 1; the ramp runs between
        # c - 0.5 - (w - 1) / 2 and c - 0.5 + (w - 1) / 2.
        if w < 1:
            raise ValueError(
                f"(0028,1051) 'Window Width' {width} is below 1, which LINEAR does "
                "not allow; use LINEAR_EXACT for narrower windows"
            )
        if w == 1:
            out = np.where(x <= c - 0.5, y_min, y_max)
        else:
            out = ((x - (c - 0.5)) / (w - 1) + 0.5) * span + y_min
            out = np.where(x <= c - 0.5 - (w - 1) / 2, y_min, out)
            out = np.where(x > c - 0.5 + (w - 1) / 2, y_max, out)
        return np.asarray(out, dtype=np.float32)

    if w <= 0:
        raise ValueError(
            f"(0028,1051) 'Window Width' {width} must be above 0 for {function.value}"
        )
    if function is VOILUTFunction.LINEAR_EXACT:
        # PS3.3 C.11.2.1.3.2: the ramp runs exactly from c - w/2 to c + w/2.
        out = ((x - c) / w + 0.5) * span + y_min
        out = np.where(x <= c - w / 2, y_min, out)
        out = np.where(x > c + w / 2, y_max, out)
        return np.asarray(out, dtype=np.float32)

    # PS3.3 C.11.2.1.3.1: SIGMOID, y = span / (1 + exp(-4 (x - c) / w)) + y_min.
    # Far from the centre the exponent would overflow float64 (a narrow window
    # over the 65,536 entries of a display table); beyond +-700 the result is
    # y_min or y_max to the last bit anyway.
    exponent = np.clip(-4.0 * (x - c) / w, -700.0, 700.0)
    out = span / (1.0 + np.exp(exponent)) + y_min
    return np.asarray(out, dtype=np.float32)


def _lut_entries(item: Any) -> tuple[np.ndarray, int, int]:
    """Return (entries, first mapped value, bits per entry) of a LUT item."""
    # PS3.3 C.11.2.1.1: LUT Descriptor = number of entries (0 means 65536),
    # first input value mapped, bits per entry (8 or 16).
    entries, first, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 65536
    data = item.LUTData
    if isinstance(data, bytes | bytearray):
        dtype = "<u1" if bits <= 8 and len(data) == entries else "<u2"
        table = np.frombuffer(data, dtype=dtype)
    else:
        table = np.asarray(_as_values(data), np.float64)
    table = table[:entries].astype(np.float64)
    if bits == 16 and table.size and table.max() < 256 and entries > 256:
        logger.debug("VOI LUT declares 16 bits per entry but holds 8-bit values")
    return table, first, bits


def apply_voi_lut(
    values: np.ndarray,
    ds: Dataset,
    lut_index: int = 0,
    output_range: tuple[float, float] = (0.0, 255.0),
) -> np.ndarray:
    """Map modality values through an item of the VOI LUT Sequence.

    Parameters
    ----------
    values : numpy.ndarray
        Modality values (after the Modality LUT).
    ds : pydicom.dataset.Dataset
        Uses (0028,3010) *VOI LUT Sequence* with (0028,3002) *LUT Descriptor* and
        (0028,3006) *LUT Data*.
    lut_index : int, optional
        Which item of the sequence to apply. Default the first.
    output_range : tuple of float, optional
        (y_min, y_max) of the output. Default (0, 255).

    Returns
    -------
    numpy.ndarray
        float32 values in [y_min, y_max].

    Raises
    ------
    ValueError
        If the dataset has no VOI LUT Sequence or no item `lut_index`.

    Notes
    -----
    PS3.3 C.11.2.1.1: input below the first mapped value takes the first entry,
    input above the last takes the last. Entries are scaled from
    [0, 2**bits - 1] to the output range.
    """
    sequence = ds.get("VOILUTSequence")
    if not sequence or lut_index >= len(sequence):
        count = len(sequence) if sequence else 0
        raise ValueError(
            f"The dataset has {count} item(s) in (0028,3010) 'VOI LUT Sequence', "
            f"so lut_index {lut_index} cannot be applied; use window_presets() "
            "for Window Center/Width instead"
        )
    table, first, bits = _lut_entries(sequence[lut_index])
    index = np.clip(np.floor(np.asarray(values, np.float64)) - first, 0, len(table) - 1)
    y_min, y_max = (float(v) for v in output_range)
    scale = (y_max - y_min) / float(2**bits - 1)
    return (table[index.astype(np.int64)] * scale + y_min).astype(np.float32)


def _multi(value: Any) -> list[Any]:
    """Return a possibly multi-valued element value as a list."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _presets_from(item: Any) -> list[WindowPreset]:
    """Return the window pairs of one dataset or functional group item."""
    centers = _multi(item.get("WindowCenter"))
    widths = _multi(item.get("WindowWidth"))
    if not centers or not widths:
        return []
    if len(centers) != len(widths):
        logger.warning(
            "(0028,1050) Window Center has %d values but (0028,1051) Window Width "
            "has %d; using the first %d pairs",
            len(centers),
            len(widths),
            min(len(centers), len(widths)),
        )
    explanations = _multi(item.get("WindowCenterWidthExplanation"))
    try:
        function = _as_function(str(item.get("VOILUTFunction", "LINEAR")).strip())
    except ValueError:
        logger.warning("Unknown (0028,1056) VOI LUT Function; using LINEAR")
        function = VOILUTFunction.LINEAR

    presets = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        explanation = str(explanations[i]) if i < len(explanations) else ""
        if float(w) <= 0 or (function is VOILUTFunction.LINEAR and float(w) < 1):
            logger.warning("Skipping window %d: (0028,1051) Window Width %s", i, w)
            continue
        presets.append(WindowPreset(float(c), float(w), explanation, function))
    return presets


def window_presets(ds: Dataset, frame_index: int = 0) -> list[WindowPreset]:
    """Return every Window Center/Width pair the file gives for a frame.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,1050) *Window Center*, (0028,1051) *Window Width*,
        (0028,1055) *Window Center & Width Explanation* and (0028,1056) *VOI LUT
        Function*, from the frame's Frame VOI LUT Sequence (Per-frame, then Shared
        Functional Groups) for enhanced multi-frame instances, else the top level.
    frame_index : int, optional
        Index of the frame, starting at 0.

    Returns
    -------
    list of WindowPreset
        In file order; empty when the file gives no window. Pairs whose width the
        function does not allow are left out (and logged).

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.WindowCenter, ds.WindowWidth = [40, 600], [400, 2000]
    >>> ds.WindowCenterWidthExplanation = ["SOFT TISSUE", "BONE"]
    >>> [(p.center, p.width, p.explanation) for p in window_presets(ds)]
    [(40.0, 400.0, 'SOFT TISSUE'), (600.0, 2000.0, 'BONE')]
    """
    for group in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        items = ds.get(group)
        if not items:
            continue
        item = items[frame_index if group.startswith("Per") else 0]
        if group.startswith("Per") and frame_index >= len(items):
            continue
        voi = item.get("FrameVOILUTSequence")
        if voi:
            presets = _presets_from(voi[0])
            if presets:
                return presets
    return _presets_from(ds)


def voi_lut_presets(ds: Dataset) -> list[VOILUTPreset]:
    """Return one preset per usable item of the VOI LUT Sequence.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,3010) *VOI LUT Sequence*: each item's (0028,3002) *LUT
        Descriptor*, (0028,3006) *LUT Data* and (0028,3003) *LUT Explanation*.

    Returns
    -------
    list of VOILUTPreset
        In sequence order; items without a descriptor or data are left out
        (and logged).

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> item = Dataset()
    >>> item.LUTDescriptor, item.LUTData = [2, 0, 8], [0, 255]
    >>> item.LUTExplanation = "NORMAL"
    >>> ds = Dataset()
    >>> ds.VOILUTSequence = [item]
    >>> voi_lut_presets(ds)
    [VOILUTPreset(lut_index=0, explanation='NORMAL')]
    """
    presets = []
    for index, item in enumerate(ds.get("VOILUTSequence") or []):
        if "LUTDescriptor" not in item or "LUTData" not in item:
            logger.warning("Skipping VOI LUT %d: no (0028,3002) LUT Descriptor or "
                           "(0028,3006) LUT Data", index)
            continue
        explanation = str(item.get("LUTExplanation", "") or "").strip()
        presets.append(VOILUTPreset(index, explanation or f"VOI LUT {index + 1}"))
    return presets


def voi_presets(ds: Dataset, frame_index: int = 0) -> list[VOIPreset]:
    """Return every VOI transformation the file offers for a frame.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses the elements of :func:`window_presets` and
        :func:`voi_lut_presets`.
    frame_index : int, optional
        Index of the frame, starting at 0.

    Returns
    -------
    list of WindowPreset or VOILUTPreset
        The windows first, then the VOI LUTs, each with its explanation.

    Notes
    -----
    PS3.3 C.11.2: a file may give both windows and VOI LUTs; either may be
    applied, never both at once. The first entry is the default display.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> item = Dataset()
    >>> item.LUTDescriptor, item.LUTData = [2, 0, 8], [0, 255]
    >>> ds = Dataset()
    >>> ds.WindowCenter, ds.WindowWidth = 40, 400
    >>> ds.VOILUTSequence = [item]
    >>> [type(p).__name__ for p in voi_presets(ds)]
    ['WindowPreset', 'VOILUTPreset']
    """
    presets: list[VOIPreset] = list(window_presets(ds, frame_index))
    presets.extend(voi_lut_presets(ds))
    return presets


def padding_values(ds: Dataset) -> tuple[int, int] | None:
    """Return the (lowest, highest) stored value that is padding, or None.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,0120) *Pixel Padding Value*, (0028,0121) *Pixel Padding
        Range Limit*, (0028,0103) *Pixel Representation* and (0028,0101)
        *Bits Stored*.

    Returns
    -------
    tuple of int or None
        Stored values; None when the dataset declares no padding.

    Notes
    -----
    PS3.3 C.7.5.1.1.2: the values are stored pixel values, with the VR (US
    or SS) that Pixel Representation gives the pixels. Files that write a
    signed padding value as US (-2000 as 63536) are read by their bit
    pattern within Bits Stored, as the pixels are (PS3.5 8.1.1).

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.PixelRepresentation, ds.BitsStored = 1, 16
    >>> ds.add_new(0x00280120, "US", 63536)  # -2000 written unsigned
    >>> padding_values(ds)
    (-2000, -2000)
    """
    pad = ds.get("PixelPaddingValue")
    if pad is None:
        return None
    limit = ds.get("PixelPaddingRangeLimit", pad)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    bits = int(ds.get("BitsStored", 0) or ds.get("BitsAllocated", 16) or 16)
    values = []
    for value in (int(pad), int(limit)):
        if signed and value >= 1 << (bits - 1):
            # Two's complement within Bits Stored: the pixels' own sign.
            value = (value & ((1 << bits) - 1)) - (1 << bits)
        values.append(value)
    low, high = sorted(values)
    return low, high


def padding_mask(stored: np.ndarray, ds: Dataset) -> np.ndarray | None:
    """Return True where stored values are padding, or None without padding.

    Parameters
    ----------
    stored : numpy.ndarray
        Stored values (before the Modality LUT).
    ds : pydicom.dataset.Dataset
        Uses (0028,0120) *Pixel Padding Value* and (0028,0121) *Pixel Padding
        Range Limit*.

    Returns
    -------
    numpy.ndarray of bool or None
        The padding mask; None when the dataset declares no padding.

    Notes
    -----
    PS3.3 C.7.5.1.1.2: both values are stored pixel values; with a range limit
    every value between the two (inclusive) is padding. See
    :func:`padding_values` for signed values.
    """
    padding = padding_values(ds)
    if padding is None:
        return None
    low, high = padding
    if low == high:
        return stored == low
    return (stored >= low) & (stored <= high)


def _padding_in_modality_units(ds: Dataset, frame_index: int) -> tuple[float, float]:
    """Return the padding range converted to modality values."""
    padding = padding_values(ds)
    assert padding is not None
    ends = apply_modality_lut(np.array(padding, np.int64), ds, frame_index)
    return float(ends.min()), float(ends.max())


def default_window(
    values: np.ndarray, ds: Dataset | None = None, frame_index: int = 0
) -> WindowPreset:
    """Return the window to show a frame with when the user has chosen none.

    Parameters
    ----------
    values : numpy.ndarray
        Modality values of the frame (or volume).
    ds : pydicom.dataset.Dataset, optional
        Uses the windows of :func:`window_presets` and, for the data range,
        (0028,0120) *Pixel Padding Value* and (0028,0121) *Pixel Padding Range
        Limit* (converted to modality units with the frame's rescale).
    frame_index : int, optional
        Index of the frame, starting at 0.

    Returns
    -------
    WindowPreset
        The first window of the file; else a LINEAR_EXACT window spanning the
        data range without padding, explained as "data range".

    Notes
    -----
    LINEAR_EXACT is used for the data range so that the smallest value maps to
    black and the largest to white, and so that ranges narrower than 1 (RT
    images, scaled PET) still give a valid window.

    Examples
    --------
    >>> import numpy as np
    >>> w = default_window(np.array([-2000.0, 0.0, 100.0]))
    >>> (w.center, w.width)
    (-950.0, 2100.0)
    """
    if ds is not None:
        presets = window_presets(ds, frame_index)
        if presets:
            return presets[0]

    data = np.asarray(values)
    if ds is not None and ds.get("PixelPaddingValue") is not None:
        low, high = _padding_in_modality_units(ds, frame_index)
        data = data[(data < low) | (data > high)]
    if data.size == 0:
        logger.warning("Every value is Pixel Padding; the default window is 0/1")
        return WindowPreset(0.0, 1.0, "data range", VOILUTFunction.LINEAR_EXACT)

    low_value, high_value = float(data.min()), float(data.max())
    width = high_value - low_value
    if width <= 0:
        width = 1.0
    center = (low_value + high_value) / 2
    return WindowPreset(center, width, "data range", VOILUTFunction.LINEAR_EXACT)


def _as_values(data: Any) -> list[Any]:
    """Return LUT Data read as US (a number or a MultiValue) as a list."""
    if hasattr(data, "__iter__") and not isinstance(data, str | bytes):
        return list(data)
    return [data]
