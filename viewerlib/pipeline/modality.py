"""Modality LUT stage: stored pixel values to modality values (HU, SUV, ...)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

# float32 holds every integer of magnitude up to 2**24 exactly.
_FLOAT32_EXACT_LIMIT = 2**24


@dataclass(frozen=True)
class RescaleParameters:
    """The linear Modality LUT of one frame.

    Attributes
    ----------
    slope : decimal.Decimal
        (0028,1053) *Rescale Slope*, exactly as written in the file.
    intercept : decimal.Decimal
        (0028,1052) *Rescale Intercept*, exactly as written in the file.
    rescale_type : str
        (0028,1054) *Rescale Type* ("HU", "US" for unspecified, ...), or "".
    source : str
        Where the values came from: "per-frame", "shared", "image" or "default".
    """

    slope: Decimal
    intercept: Decimal
    rescale_type: str
    source: str

    @property
    def is_integer(self) -> bool:
        """True if slope and intercept are whole numbers (results stay integers)."""
        return self.slope == self.slope.to_integral_value() and (
            self.intercept == self.intercept.to_integral_value()
        )

    @property
    def is_identity(self) -> bool:
        """True if the rescale leaves stored values unchanged."""
        return self.slope == 1 and self.intercept == 0


def _as_decimal(value: Any, keyword: str) -> Decimal:
    """Return a DS value as a Decimal of the text in the file."""
    text = getattr(value, "original_string", None) or str(value)
    try:
        return Decimal(text.strip())
    except InvalidOperation as err:
        raise ValueError(
            f"The ({keyword}) value {text!r} is not a decimal number; fix the "
            "header or override it before display"
        ) from err


def _frame_item(ds: Dataset, frame_index: int, sequence: str) -> tuple[Any, str]:
    """Return the functional group item for one frame and whether it is per-frame.

    PS3.3 C.7.6.16: a functional group is in the Per-frame Functional Groups
    Sequence item of the frame, or else in the Shared Functional Groups Sequence.
    """
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame_index < len(per_frame):
        group = per_frame[frame_index].get(sequence)
        if group:
            return group[0], "per-frame"
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        group = shared[0].get(sequence)
        if group:
            return group[0], "shared"
    return None, ""


def rescale_parameters(ds: Dataset, frame_index: int = 0) -> RescaleParameters:
    """Return the Rescale Slope and Intercept that apply to one frame.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,1053) *Rescale Slope*, (0028,1052) *Rescale Intercept* and
        (0028,1054) *Rescale Type*, from the frame's Pixel Value Transformation
        Sequence (Per-frame, then Shared Functional Groups) for enhanced
        multi-frame instances, else from the top level of `ds`.
    frame_index : int, optional
        Index of the frame, starting at 0.

    Returns
    -------
    RescaleParameters
        Slope 1 and intercept 0 (source "default") when the dataset has none.

    Raises
    ------
    ValueError
        If a value is present but is not a decimal number.
    """
    item, source = _frame_item(ds, frame_index, "PixelValueTransformationSequence")
    if item is None or "RescaleSlope" not in item:
        item, source = ds, "image"
    if item.get("RescaleSlope") is None or item.get("RescaleIntercept") is None:
        return RescaleParameters(Decimal(1), Decimal(0), "", "default")

    slope = _as_decimal(item.RescaleSlope, "0028,1053 Rescale Slope")
    intercept = _as_decimal(item.RescaleIntercept, "0028,1052 Rescale Intercept")
    return RescaleParameters(slope, intercept, str(item.get("RescaleType", "")), source)


def stored_value_range(ds: Dataset) -> tuple[int, int]:
    """Return the smallest and largest stored value Bits Stored allows.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,0101) *Bits Stored* and (0028,0103) *Pixel Representation*.

    Returns
    -------
    tuple of int
        (minimum, maximum) representable stored value.
    """
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def clean_stored_values(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Clear bits above Bits Stored and sign-extend signed values, only if needed.

    Parameters
    ----------
    arr : numpy.ndarray
        Integer stored values.
    ds : pydicom.dataset.Dataset
        Uses (0028,0101) *Bits Stored* and (0028,0103) *Pixel Representation*.

    Returns
    -------
    numpy.ndarray
        `arr` itself when every value already lies in the range Bits Stored
        allows (pydicom's decoder has done this step), else a corrected copy.

    Notes
    -----
    PS3.5 8.1.1: the bits above Bits Stored carry no meaning (overlays or junk
    may live there). The step is idempotent, so data pydicom has already
    corrected passes through untouched and is not copied.
    """
    if arr.dtype.kind not in "iu" or arr.size == 0:
        return arr
    low, high = stored_value_range(ds)
    if arr.min() >= low and arr.max() <= high:
        return arr

    bits = int(ds.get("BitsStored") or arr.dtype.itemsize * 8)
    shift = arr.dtype.itemsize * 8 - bits
    logger.debug("Clearing %d bit(s) above Bits Stored", shift)
    signed = np.dtype(f"i{arr.dtype.itemsize}")
    work = arr.astype(signed if low < 0 else arr.dtype, copy=True)
    # Shift left then right: the arithmetic shift of a signed type sign-extends.
    np.left_shift(work, shift, out=work)
    np.right_shift(work, shift, out=work)
    return work


def _modality_lut_table(item: Any, ds: Dataset) -> tuple[np.ndarray, int]:
    """Return the LUT entries and first mapped value of a Modality LUT item."""
    # PS3.3 C.11.1.1.1: LUT Descriptor = entries (0 means 65536), first stored
    # value mapped, bits per entry.
    entries, first, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 65536
    data = item.LUTData
    if isinstance(data, bytes | bytearray):
        dtype = "<u1" if bits <= 8 and len(data) == entries else "<u2"
        table = np.frombuffer(data, dtype=dtype).astype(np.float64)
    else:
        table = np.asarray(_as_values(data), np.float64)
    if first > 32767 and int(ds.get("PixelRepresentation", 0) or 0) == 1:
        # The first value is US or SS by Pixel Representation; pydicom reads US.
        first -= 65536
    return table[:entries], first


def apply_modality_lut(
    arr: np.ndarray, ds: Dataset, frame_index: int = 0
) -> np.ndarray:
    """Return modality values of stored values, per PS3.3 C.11.1.

    Parameters
    ----------
    arr : numpy.ndarray
        Stored values of one frame (see
        :func:`~viewerlib.pipeline.decode.decode_frame`).
    ds : pydicom.dataset.Dataset
        Uses (0028,0101) *Bits Stored*, (0028,0103) *Pixel Representation*,
        (0028,3000) *Modality LUT Sequence* if present, else (0028,1053)
        *Rescale Slope* and (0028,1052) *Rescale Intercept* (per frame for
        enhanced multi-frame instances, see :func:`rescale_parameters`).
    frame_index : int, optional
        Index of the frame `arr` came from, starting at 0.

    Returns
    -------
    numpy.ndarray
        float32 modality values; float64 only when integer results exceed the
        2**24 that float32 holds exactly (32-bit stored values).

    Raises
    ------
    ValueError
        If the rescale values are not numbers.

    Notes
    -----
    Bits above Bits Stored are cleared first, but only when a value lies outside
    the stored range, so data pydicom has already cleaned is not touched twice.
    Float Pixel Data is returned as float32 without a rescale.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.BitsStored, ds.PixelRepresentation = 12, 0
    >>> ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    >>> apply_modality_lut(np.array([0, 1024, 2048], np.uint16), ds).tolist()
    [-1024.0, 0.0, 1024.0]
    """
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)

    stored = clean_stored_values(arr, ds)

    # PS3.3 C.11.1: a Modality LUT Sequence replaces the linear rescale.
    lut_sequence = ds.get("ModalityLUTSequence")
    if lut_sequence:
        table, first = _modality_lut_table(lut_sequence[0], ds)
        index = np.clip(stored.astype(np.int64) - first, 0, len(table) - 1)
        return table[index].astype(np.float32)

    params = rescale_parameters(ds, frame_index)
    low, high = stored_value_range(ds)
    out_dtype = np.float32
    if params.is_integer:
        bound = max(abs(low), abs(high)) * abs(params.slope) + abs(params.intercept)
        if bound > _FLOAT32_EXACT_LIMIT:
            out_dtype = np.float64
    if params.is_identity:
        return stored.astype(out_dtype)

    # PS3.3 C.11.1.1.2: output = m * SV + b. Computed in float64, then narrowed.
    values = stored.astype(np.float64)
    values *= float(params.slope)
    values += float(params.intercept)
    return values.astype(out_dtype, copy=False)


def _as_values(data: Any) -> list[Any]:
    """Return LUT Data read as US (a number or a MultiValue) as a list."""
    if hasattr(data, "__iter__") and not isinstance(data, str | bytes):
        return list(data)
    return [data]
