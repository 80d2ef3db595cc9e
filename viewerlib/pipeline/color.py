"""Colour stage: YBR, RGB and PALETTE COLOR frames to 8-bit RGB for display."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

# PS3.3 C.7.6.3.1.2, YBR_FULL: Y = .2990R + .5870G + .1140B,
# CB = -.1687R - .3313G + .5000B + 128, CR = .5000R - .4187G - .0813B + 128.
_YBR_FULL_FORWARD = np.array(
    [[0.2990, 0.5870, 0.1140], [-0.1687, -0.3313, 0.5000], [0.5000, -0.4187, -0.0813]]
)
# PS3.3 C.7.6.3.1.2, YBR_PARTIAL_422/420: Y = .2568R + .5041G + .0979B + 16,
# CB = -.1482R - .2910G + .4392B + 128, CR = .4392R - .3678G - .0714B + 128.
_YBR_PARTIAL_FORWARD = np.array(
    [[0.2568, 0.5041, 0.0979], [-0.1482, -0.2910, 0.4392], [0.4392, -0.3678, -0.0714]]
)
_YBR_FULL_NAMES = ("YBR_FULL", "YBR_FULL_422")
_YBR_PARTIAL_NAMES = ("YBR_PARTIAL_422", "YBR_PARTIAL_420")
_PALETTE_COLOURS = ("Red", "Green", "Blue")


def _full_scale(bits: int) -> float:
    """Return the largest value of an unsigned `bits`-bit sample."""
    return float(2**bits - 1)


def ybr_to_rgb(
    arr: np.ndarray, photometric_interpretation: str, bits_stored: int = 8
) -> np.ndarray:
    """Convert YCbCr samples to RGB samples of the same bit depth.

    Parameters
    ----------
    arr : numpy.ndarray
        (..., 3) colour-by-pixel samples.
    photometric_interpretation : str
        YBR_FULL, YBR_FULL_422 (already upsampled), YBR_PARTIAL_422 or
        YBR_PARTIAL_420.
    bits_stored : int, optional
        Bits per sample; the chroma offset is half the full scale (128 for 8).

    Returns
    -------
    numpy.ndarray
        float64 RGB samples clipped to [0, 2**bits_stored - 1].

    Raises
    ------
    ValueError
        For any other photometric interpretation.

    Notes
    -----
    PS3.3 C.7.6.3.1.2 gives the RGB to YCbCr equations; the inverse matrix is
    computed from them rather than copied with rounded coefficients.

    YBR_RCT and YBR_ICT (JPEG 2000 component transforms) are normally inverted
    by the decoder, which then returns RGB. When samples arrive untransformed,
    they carry the DC level shift of 2**(bits_stored - 1) that the decoder
    adds back to every component, so chroma is offset by half the full scale:
    ICT then inverts like YBR_FULL (same coefficients), and RCT is inverted
    exactly with integers (see :func:`_rct_to_rgb`).
    """
    if photometric_interpretation == "YBR_RCT":
        return _rct_to_rgb(arr, bits_stored).astype(np.float64)
    if photometric_interpretation in _YBR_FULL_NAMES + ("YBR_ICT",):
        forward, luma_offset = _YBR_FULL_FORWARD, 0.0
    elif photometric_interpretation in _YBR_PARTIAL_NAMES:
        forward, luma_offset = _YBR_PARTIAL_FORWARD, 16.0
    else:
        raise ValueError(
            f"(0028,0004) 'Photometric Interpretation' {photometric_interpretation!r}"
            " is not a YCbCr colour space"
        )

    full = _full_scale(bits_stored)
    scale = full / 255.0
    offset = np.array([luma_offset, 128.0, 128.0]) * scale
    inverse = np.linalg.inv(forward)
    rgb = (np.asarray(arr, np.float64) - offset) @ inverse.T
    return np.clip(rgb, 0.0, full)


def _rct_to_rgb(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    """Invert the reversible colour transform, PS3.3 C.7.6.3.1.2 (YBR_RCT).

    Forward: Y = floor((R + 2G + B) / 4), Cb = B - G, Cr = R - G, with Cb and Cr
    offset by 2**(bits_stored - 1). Inverse: G = Y - floor((Cb + Cr) / 4),
    R = Cr + G, B = Cb + G; exact in integers.
    """
    samples = np.asarray(arr, dtype=np.int64)
    half = 1 << (bits_stored - 1)
    y = samples[..., 0]
    cb = samples[..., 1] - half
    cr = samples[..., 2] - half
    green = y - np.floor_divide(cb + cr, 4)
    rgb = np.stack([cr + green, green, cb + green], axis=-1)
    return np.clip(rgb, 0, (1 << bits_stored) - 1)


def _lut_words(data: Any) -> np.ndarray:
    """Return palette LUT data as an array of 16-bit words."""
    if isinstance(data, bytes | bytearray):
        return np.frombuffer(data, dtype="<u2")
    values = list(data) if hasattr(data, "__iter__") else [data]
    return np.asarray(values, dtype=np.uint16)


def _segment_starts(words: np.ndarray) -> list[int]:
    """Return the word index where each top-level segment starts."""
    starts, i = [], 0
    while i + 1 < len(words):
        starts.append(i)
        opcode, length = int(words[i]), int(words[i + 1])
        # PS3.3 C.7.9.2: discrete = 2 + length words, linear 3, indirect 4.
        size = {0: 2 + length, 1: 3, 2: 4}.get(opcode)
        if size is None:
            raise ValueError(
                f"Segmented palette LUT has unknown opcode {opcode} at word {i} "
                "(PS3.3 C.7.9.2 defines 0, 1 and 2); the LUT is corrupt"
            )
        i += size
    return starts


def _indirect_target(offset: int, starts: list[int], here: int) -> int:
    """Return the word index an indirect segment's offset points at."""
    # PS3.3 C.7.9.2.3: a byte offset from the start of the segmented data.
    # Some writers store a word offset instead; accept it only when the byte
    # reading does not land on a segment start and the word reading does.
    if offset % 2 == 0 and offset // 2 in starts and offset // 2 < here:
        return offset // 2
    if offset in starts and offset < here:
        logger.debug("Indirect palette segment offset %d read as words", offset)
        return offset
    raise ValueError(
        f"Segmented palette LUT has an indirect segment at word {here} whose "
        f"offset {offset} is not the byte offset of an earlier segment "
        "(PS3.3 C.7.9.2.3); the LUT is corrupt"
    )


def _run_segments(
    words: np.ndarray,
    start: int,
    count: int | None,
    out: list[float],
    starts: list[int],
    depth: int = 0,
) -> None:
    """Append the values of `count` segments (all if None) from word `start`."""
    if depth > 8:
        raise ValueError(
            "Segmented palette LUT nests indirect segments more than 8 deep; the "
            "LUT is corrupt (PS3.3 C.7.9.2.3)"
        )
    index = starts.index(start)
    for i in starts[index:] if count is None else starts[index:index + count]:
        opcode, length = int(words[i]), int(words[i + 1])
        if opcode == 0:
            # C.7.9.2.1 Discrete segment: `length` values follow.
            out.extend(float(v) for v in words[i + 2 : i + 2 + length])
        elif opcode == 1:
            # C.7.9.2.2 Linear segment: a straight line from the previous
            # segment's last value to the given one, over `length` entries.
            if not out:
                raise ValueError(
                    "Segmented palette LUT starts with a linear segment, which "
                    "needs a previous value (PS3.3 C.7.9.2.2); the LUT is corrupt"
                )
            begin, end = out[-1], float(words[i + 2])
            ramp = begin + (end - begin) * np.arange(1, length + 1) / length
            out.extend(ramp.tolist())
        else:
            # C.7.9.2.3 Indirect segment: replay `length` earlier segments. The
            # 32-bit offset is stored least significant word first.
            offset = int(words[i + 2]) | (int(words[i + 3]) << 16)
            target = _indirect_target(offset, starts, i)
            _run_segments(words, target, length, out, starts, depth + 1)


def _expand_segmented(words: np.ndarray, entries: int) -> np.ndarray:
    """Expand a segmented palette LUT, PS3.3 C.7.9.2."""
    out: list[float] = []
    _run_segments(words, 0, None, out, _segment_starts(words))
    if len(out) != entries:
        logger.debug("Segmented LUT expands to %d entries, not %d", len(out), entries)
    return np.asarray(out[:entries], dtype=np.float64)


def palette_tables(ds: Dataset) -> tuple[np.ndarray, int, int]:
    """Return the three palette LUTs of a PALETTE COLOR dataset.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,1101-1103) *Red/Green/Blue Palette Color Lookup Table
        Descriptor* and (0028,1201-1203) *... Palette Color Lookup Table Data*
        or (0028,1221-1223) *Segmented ... Palette Color Lookup Table Data*.

    Returns
    -------
    tables : numpy.ndarray
        float64 array of shape (entries, 3).
    first : int
        The first stored value mapped.
    bits : int
        Bits per LUT entry (8 or 16).

    Raises
    ------
    ValueError
        If a descriptor or its data is missing.
    """
    columns = []
    first = bits = 0
    for colour in _PALETTE_COLOURS:
        descriptor = ds.get(f"{colour}PaletteColorLookupTableDescriptor")
        if descriptor is None:
            raise ValueError(
                f"PALETTE COLOR image without the {colour} Palette Color Lookup "
                "Table Descriptor (0028,110x); the palette cannot be applied"
            )
        entries, first, bits = (int(v) for v in descriptor)
        # PS3.3 C.7.6.3.1.5: 0 entries means 65536.
        entries = entries or 65536
        data = ds.get(f"{colour}PaletteColorLookupTableData")
        segmented = ds.get(f"Segmented{colour}PaletteColorLookupTableData")
        if data is not None:
            raw = data if isinstance(data, bytes | bytearray) else None
            if bits == 8 and raw is not None and len(raw) in (entries, entries + 1):
                # 8-bit entries written one per byte (the data is padded to even).
                table = np.frombuffer(raw, np.uint8)[:entries].astype(np.float64)
            else:
                table = _lut_words(data)[:entries].astype(np.float64)
        elif segmented is not None:
            table = _expand_segmented(_lut_words(segmented), entries)
        else:
            raise ValueError(
                f"PALETTE COLOR image has no {colour} Palette Color Lookup Table "
                "Data (0028,120x) nor segmented data (0028,122x)"
            )
        if bits == 8 and table.size and table.max() > 255:
            # Some writers put 8-bit entries in the high byte of each word.
            table = np.floor(table / 256.0)
        columns.append(table)
    size = max(len(c) for c in columns)
    columns = [np.pad(c, (0, size - len(c)), mode="edge") for c in columns]
    return np.stack(columns, axis=-1), first, bits


def apply_palette_color_lut(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Map PALETTE COLOR indexes to 8-bit RGB.

    Parameters
    ----------
    arr : numpy.ndarray
        (rows, columns) stored indexes.
    ds : pydicom.dataset.Dataset
        The palette elements listed in :func:`palette_tables`.

    Returns
    -------
    numpy.ndarray
        uint8 (rows, columns, 3).

    Notes
    -----
    PS3.3 C.7.6.3.1.5: indexes below the first mapped value take the first entry
    and indexes beyond the table the last one. Entries are scaled from
    [0, 2**bits - 1] to [0, 255].
    """
    tables, first, bits = palette_tables(ds)
    index = np.clip(arr.astype(np.int64) - first, 0, len(tables) - 1)
    rgb = tables[index] * (255.0 / _full_scale(bits))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def to_display_rgb(
    arr: np.ndarray, photometric_interpretation: str, ds: Dataset
) -> np.ndarray:
    """Return a decoded colour frame as 8-bit RGB, as the user should see it.

    Parameters
    ----------
    arr : numpy.ndarray
        Decoded samples, colour-by-pixel: (rows, columns, 3), or (rows, columns)
        for PALETTE COLOR.
    photometric_interpretation : str
        The colour space `arr` is really in (from
        :class:`~viewerlib.pipeline.decode.DecodedFrame`, which can differ from
        the dataset's value).
    ds : pydicom.dataset.Dataset
        Uses (0028,0101) *Bits Stored* and, for PALETTE COLOR, the palette.

    Returns
    -------
    numpy.ndarray
        uint8 (rows, columns, 3).

    Raises
    ------
    NotImplementedError
        For colour spaces not handled.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.BitsStored = 8
    >>> ybr = np.array([[[76, 85, 255]]], np.uint8)  # pure red in YBR_FULL
    >>> to_display_rgb(ybr, "YBR_FULL", ds).tolist()
    [[[254, 0, 0]]]
    """
    bits = int(ds.get("BitsStored") or 8)
    if photometric_interpretation == "PALETTE COLOR":
        return apply_palette_color_lut(arr, ds)

    if photometric_interpretation == "RGB":
        rgb = np.asarray(arr, np.float64)
    elif photometric_interpretation.startswith("YBR"):
        rgb = ybr_to_rgb(arr, photometric_interpretation, bits)
    else:
        raise NotImplementedError(
            f"(0028,0004) 'Photometric Interpretation' {photometric_interpretation!r}"
            " is not supported for colour display"
        )

    if bits == 8:
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return np.clip(np.rint(rgb * (255.0 / _full_scale(bits))), 0, 255).astype(np.uint8)
