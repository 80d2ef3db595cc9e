"""Volumes of modality values built from the instances (or frames) of a series."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pydicom.errors
from pydicom.dataset import Dataset

from viewerlib.pipeline.decode import (
    CUT_SHORT,
    MISFIT,
    number_of_frames,
    transfer_syntax_of,
)
from viewerlib.pipeline.instance import missing_file_error, pixel_spacing_of
from viewerlib.pipeline.modality import rescale_parameters, stored_value_range
from viewerlib.pipeline.voi import WindowPreset, default_window, window_presets
from viewerlib.volume.diagnosis import (
    NOT_DICOM,
    companion_note,
    file_damage,
    holds_no_dicom,
    is_companion_file,
)
from viewerlib.volume.files import FilePixels, FileReader, tags_of
from viewerlib.volume.geometry import (
    ORIENTATION_KEYWORDS,
    STACK_KEY_KEYWORDS,
    FrameGeometry,
    frame_geometry,
    plane_orientation,
    split_into_stacks,
    stack_key,
    stack_spacing,
)
from viewerlib.volume.reading import (
    RESCALE_TAGS,
    FillProblems,
    default_workers,
    fill_voxels,
    header_tags,
    read_header,
)
from viewerlib.volume.stacks import (
    others_in_gaps,
    rejoin_misfits,
    relative_name,
    set_apart_notes,
)

logger = logging.getLogger(__name__)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_INTEGER_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32)
# A slice more than this fraction of a gap (or 0.01 mm) away from where the
# affine puts it makes the affine inexact: the same tolerance as the uniform
# spacing check of viewerlib.volume.geometry.
_EXACT_RELATIVE_TOLERANCE = 0.01
_EXACT_ABSOLUTE_TOLERANCE_MM = 0.01
# Whether read_series reads plain explicit VR little endian files with the tight
# reader (viewerlib.volume.files.FileReader) rather than pydicom's; the results
# are the same (tests/viewerlib/volume/test_files.py compares the two).
_READ_FILES_FAST = True

Source = str | os.PathLike[str] | Dataset

_POSITION_TAG, *_ = tags_of(("ImagePositionPatient",))
_ORIENTATION_TAGS = tags_of(ORIENTATION_KEYWORDS)
_FUNCTIONAL_GROUP_TAGS = tags_of(("PerFrameFunctionalGroupsSequence",
                                  "SharedFunctionalGroupsSequence"))
_STACK_KEY_TAGS = tags_of(STACK_KEY_KEYWORDS) + _ORIENTATION_TAGS
# Every element _value_range reads.
_VALUE_RANGE_TAGS = tags_of(("ModalityLUTSequence",)) + RESCALE_TAGS


@dataclass
class Volume:
    """A stack of frames in modality units, with its place in the patient.

    Attributes
    ----------
    voxels : numpy.ndarray
        (slices, rows, columns) modality values (HU for CT). An integer dtype
        when every slope and intercept is a whole number, else float32.
    affine : numpy.ndarray
        4 x 4 float64 matrix mapping (slice, row, column, 1) indexes to patient
        LPS coordinates in mm (PS3.3 C.7.6.2.1.1). With a gantry tilt the slice
        column is the true step between slice positions, so the matrix shears.
        With uneven slice gaps it steps by the mean gap and places only the
        first and last slice exactly; :meth:`index_to_lps` and
        :meth:`lps_to_index` follow the true positions in every case.
    spacing_mm : tuple of float
        (slice, row, column) spacing in mm; the slice spacing is the median
        distance between slice planes along the normal, from positions.
    source_order : list of int
        For each slice, the index of the input it came from.
    source_frames : list of tuple of int
        For each slice, (input index, frame_index).
    datasets : list of pydicom.dataset.Dataset
        Headers (without pixel data) of the slices, in slice order. The header
        of the first input is complete; the others keep only the elements the
        volume is built from (geometry, pixel description, rescale, windows,
        padding and identity), so that an open series costs about its pixel
        bytes. Read a file again with pydicom for its other elements.
    modality : str
        (0008,0060) *Modality*.
    window_presets : list of WindowPreset
        The windows of the first slice's header.
    default_window : WindowPreset
        The file's first window, else the data range without padding.
    frame_of_reference_uid : str
        (0020,0052) *Frame of Reference UID* ("" when absent).
    slice_positions_mm : numpy.ndarray
        (slices, 3) Image Position (Patient) of every slice; exact even when
        the spacing is not uniform and the affine is only an approximation
        (see :attr:`affine_is_exact`).
    warnings : list of str
        Problems found and worked around (also logged).
    missing_slices : list of int
        Slices whose input could not be read or decoded. They keep their
        place (so positions, spacing and the affine stay true) and hold the
        volume's lowest value; ``warnings`` names their files and why. On a
        resampled volume (:mod:`viewerlib.volume.resample`): every slice
        interpolated from one of them.
    """

    voxels: np.ndarray
    affine: np.ndarray
    spacing_mm: tuple[float, float, float]
    source_order: list[int]
    source_frames: list[tuple[int, int]]
    datasets: list[Dataset]
    modality: str
    window_presets: list[WindowPreset]
    default_window: WindowPreset
    frame_of_reference_uid: str
    slice_positions_mm: np.ndarray
    warnings: list[str] = field(default_factory=list)
    missing_slices: list[int] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        return tuple(self.voxels.shape)  # type: ignore[return-value]

    @property
    def affine_is_exact(self) -> bool:
        """True when the affine puts every slice at its true position.

        False when the gaps between slices are uneven (a file missing from the
        series, a variable-pitch acquisition): the affine then steps by the
        mean gap, and only :attr:`slice_positions_mm` (which
        :meth:`index_to_lps` and :meth:`lps_to_index` use) is true. A gantry
        tilt alone keeps the affine exact: it shears. The positions are
        compared with the affine in the affine's own index units, relative to
        the first slice, so an affine moved afterwards (a registration) still
        moves the whole volume.
        """
        return _true_planes(self) is None

    def index_to_lps(self, index: npt.ArrayLike) -> np.ndarray:
        """Return the LPS positions in mm of (slice, row, column) indexes.

        Parameters
        ----------
        index : array_like
            (..., 3) indexes; fractions are allowed.

        Returns
        -------
        numpy.ndarray
            (..., 3) float64 positions. A fractional slice index lies on the
            straight line between the true positions of its two neighbours
            (PS3.3 C.7.6.2.1.1 places each slice by its own Image Position).

        Raises
        ------
        ValueError
            If the last axis of `index` does not have 3 values.
        """
        values = _last_axis_3(index, "(slice, row, column)")
        planes = _true_planes(self)
        if planes is not None:
            # Between two slices, on the straight line joining their origins.
            slices = np.arange(len(planes.slice_at), dtype=np.float64)
            at = _piecewise_linear(values[..., 0], slices, planes.slice_at)
            shift = _piecewise_linear(values[..., 0], slices, planes.shifts)
            values = np.concatenate([at[..., np.newaxis], values[..., 1:] + shift],
                                    -1)
        return values @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, points: npt.ArrayLike) -> np.ndarray:
        """Return the (slice, row, column) indexes of LPS positions in mm.

        Parameters
        ----------
        points : array_like
            (..., 3) patient positions.

        Returns
        -------
        numpy.ndarray
            (..., 3) float64 indexes, the inverse of :meth:`index_to_lps`.
            Positions beyond the first or last slice give indexes below 0 or
            above ``slices - 1`` (outside the volume).

        Raises
        ------
        ValueError
            If the last axis of `points` does not have 3 values.
        """
        values = _last_axis_3(points, "(x, y, z)")
        inverse = np.linalg.inv(self.affine)
        index = values @ inverse[:3, :3].T + inverse[:3, 3]
        planes = _true_planes(self)
        if planes is None:
            return index
        slices = np.arange(len(planes.slice_at), dtype=np.float64)
        slice_index = _piecewise_linear(index[..., 0], planes.slice_at, slices)
        shift = _piecewise_linear(slice_index, slices, planes.shifts)
        return np.concatenate([slice_index[..., np.newaxis], index[..., 1:] - shift],
                              -1)

    def __repr__(self) -> str:
        """Return a short summary (cheap: no voxel statistics)."""
        return (
            f"Volume(modality={self.modality!r}, shape={self.shape}, "
            f"dtype={self.voxels.dtype}, spacing_mm={self.spacing_mm}, "
            f"warnings={len(self.warnings)})"
        )


@dataclass(frozen=True)
class _TruePlanes:
    """Where the slices of a volume really are, when its affine is not exact.

    Each slice origin in the affine's own index space: slice k lies at
    ``slice_at[k]`` along the affine's slice axis (k itself for even gaps),
    moved in its plane by ``shifts[k]`` (row, column) index units (zero unless
    the origins are not on one line).
    """

    slice_at: np.ndarray  # (slices,) increasing
    shifts: np.ndarray  # (slices, 2)


def _true_planes(volume: Volume) -> _TruePlanes | None:
    """Return the true slice planes, or None when the affine places them right.

    None too when the positions cannot place slices (no geometry, repeated
    positions, a single slice): the affine is then all there is. Memoised on
    the volume against its affine and positions (by identity).
    """
    affine, positions = volume.affine, volume.slice_positions_mm
    memo = volume.__dict__.get("_true_planes")
    if memo is not None and memo[0] is affine and memo[1] is positions:
        known: _TruePlanes | None = memo[2]
        return known
    planes = _work_out_true_planes(np.asarray(affine, np.float64),
                                   np.asarray(positions, np.float64),
                                   volume.voxels.shape[0])
    volume.__dict__["_true_planes"] = (affine, positions, planes)
    return planes


def _work_out_true_planes(
    affine: np.ndarray, positions: np.ndarray, slices: int
) -> _TruePlanes | None:
    if slices < 2 or positions.shape != (slices, 3):
        return None
    linear = affine[:3, :3]
    if abs(float(np.linalg.det(linear))) < 1e-12:
        return None
    # Each slice's origin (PS3.3 C.7.6.2.1.1 Image Position) in index units of
    # the affine, relative to the first slice: (k, 0, 0) when the gaps are even.
    placed = np.linalg.solve(linear, (positions - positions[0]).T).T
    slice_at = placed[:, 0]
    if np.any(np.diff(slice_at) <= 0):
        return None
    predicted = positions[0] + np.arange(slices)[:, np.newaxis] * affine[:3, 0]
    gaps = np.diff(slice_at) * float(np.linalg.norm(affine[:3, 0]))
    tolerance = max(_EXACT_RELATIVE_TOLERANCE * float(np.median(gaps)),
                    _EXACT_ABSOLUTE_TOLERANCE_MM)
    if float(np.abs(positions - predicted).max()) <= tolerance:
        return None
    return _TruePlanes(slice_at=slice_at, shifts=placed[:, 1:])


def _piecewise_linear(x: np.ndarray, known_x: np.ndarray,
                      known_y: np.ndarray) -> np.ndarray:
    """Interpolate (and extrapolate) straight between known points.

    `known_x` increases; `known_y` is (n,) or (n, m). Beyond either end the
    first or last segment is extended, so positions outside the volume keep
    indexes outside it.
    """
    lower = np.clip(np.searchsorted(known_x, x, side="right") - 1, 0,
                    len(known_x) - 2)
    fraction = (x - known_x[lower]) / (known_x[lower + 1] - known_x[lower])
    if known_y.ndim > 1:
        fraction = fraction[..., np.newaxis]
    step = known_y[lower + 1] - known_y[lower]
    return np.asarray(known_y[lower] + fraction * step)


def _last_axis_3(values: npt.ArrayLike, what: str) -> np.ndarray:
    """Return `values` as float64 with a last axis of 3, else raise."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] != 3:
        raise ValueError(f"A point is {what}, got an array of shape {array.shape}")
    return array


# Why a volume is float32, by precedence.
_FLOAT_REASONS = ("a Modality LUT Sequence is used", "32-bit stored values",
                  "the rescale slope/intercept is not integer")


_ValueRange = tuple[str, int, int] | ValueError


def _value_range(ds: Dataset, frame_index: int) -> _ValueRange:
    """The least and greatest modality value a frame can hold, if integer.

    Returns ``(why, low, high)``: `why` is one of ``_FLOAT_REASONS`` when the
    values need float32 (`low` and `high` then 0), else "". A rescale that is
    no number is returned, not raised: another frame may need float32 first.
    """
    if "ModalityLUTSequence" in ds:
        return _FLOAT_REASONS[0], 0, 0
    if int(ds.get("BitsAllocated", 16) or 16) > 16:
        return _FLOAT_REASONS[1], 0, 0
    try:
        params = rescale_parameters(ds, frame_index)
    except ValueError as err:
        return err  # raised by _choose_dtype unless a frame needs float32 first
    if not params.is_integer:
        return _FLOAT_REASONS[2], 0, 0
    ends = [int(params.slope) * v + int(params.intercept)
            for v in stored_value_range(ds)]
    return "", min(ends), max(ends)


def _choose_dtype(ranges: Sequence[_ValueRange]) -> tuple[np.dtype, str]:
    """Return the voxel dtype that holds every modality value exactly, if any.

    `ranges` has :func:`_value_range` of each frame.

    Raises
    ------
    ValueError
        The first frame's whose rescale is no number, unless a Modality LUT,
        32-bit values or a fractional rescale before it make the volume float32.
    """
    reasons = {found[0] for found in ranges if not isinstance(found, ValueError)}
    for why in _FLOAT_REASONS[:2]:
        if why in reasons:
            return np.dtype(np.float32), why
    for found in ranges:
        if isinstance(found, ValueError):
            raise found
        if found[0]:
            return np.dtype(np.float32), found[0]
    if not ranges:
        return np.dtype(np.float32), "the integer range does not fit in int32"
    low = min(found[1] for found in ranges)  # type: ignore[index]
    high = max(found[2] for found in ranges)  # type: ignore[index]
    for dtype in _INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype), ""
    return np.dtype(np.float32), "the integer range does not fit in int32"


def _file_of(header: Dataset, source: Any) -> FilePixels | None:
    """The file the tight reader read `header` from, if it did."""
    if isinstance(source, FilePixels) and source.header is header:
        return source
    return None


def _geometry_of(header: Dataset, frame_index: int, source: Any) -> FrameGeometry | None:
    """:func:`~viewerlib.volume.geometry.frame_geometry`, once per orientation.

    For a file the tight reader read, without functional groups, the orientation
    is worked out once for all files alike (:meth:`FilePixels.shared_fact`) and
    the position read straight from its bytes.
    """
    file = _file_of(header, source)
    if (file is None or frame_index != 0
            or any(file.has(tag) for tag in _FUNCTIONAL_GROUP_TAGS)):
        return frame_geometry(header, frame_index)
    position = file.decimals(_POSITION_TAG)
    if position is None or len(position) != 3:
        return frame_geometry(header, frame_index)
    same = file.shared_fact("orientation", _ORIENTATION_TAGS,
                            lambda ds: plane_orientation(ds, 0))
    if same is None:  # frame_geometry says why, as for any other file
        return frame_geometry(header, frame_index)
    return same.at(np.array(position))


def _stack_key_of(header: Dataset, frame_index: int, source: Any,
                  geometry: FrameGeometry | None) -> tuple[Any, ...]:
    """:func:`~viewerlib.volume.geometry.stack_key`, once for files alike."""
    file = _file_of(header, source)
    if file is None:
        return stack_key(header, frame_index, geometry=geometry)
    return file.shared_fact(
        "stack key", _STACK_KEY_TAGS,
        lambda ds: stack_key(ds, frame_index, geometry=geometry),
        frame_index, geometry is None)


def _value_range_of(header: Dataset, frame_index: int, source: Any) -> _ValueRange:
    """:func:`_value_range`, once for files alike."""
    file = _file_of(header, source)
    if file is None:
        return _value_range(header, frame_index)
    return file.shared_fact("value range", _VALUE_RANGE_TAGS,
                            lambda ds: _value_range(ds, frame_index), frame_index)


def _note(volume_warnings: list[str], message: str) -> None:
    """Record a data problem in the volume and the log.

    The log gets the text without folders and instance UIDs (they may name the
    patient; PS3.15 E.1), as the page does; the volume keeps the whole text.
    """
    logger.warning(_screen_text(message))
    volume_warnings.append(message)


# How the notes on uneven gaps between slices, and on slices not decoded, start.
UNEVEN_SPACING = "Non-uniform slice spacing"
MISSING_SLICES = "Missing slice(s)"
# How the note on resampled slices left blank in a hole of the series starts.
GAP_SLICES = "Gap(s) in the series"
# The notes a reader must not miss (voxels missing, blank or not where they seem),
# most serious first: a pattern that finds each in Volume.warnings, and the short
# line the viewers keep on screen for it. Fields: the pattern's named groups, and
# ``missing`` (total - arrived), ``blank`` (len(missing_slices)) and ``slices``.
# read_series and SeriesLoad.result warn about these notes and volume_alerts puts
# them on screen: one table, so that what is warned and what is shown agree.
_ALERTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), line) for pattern, line in (
        # A series that arrived in part (PartialSeriesError, added by the caller).
        (r"(?P<arrived>\d+) of (?:the )?(?P<total>\d+) instances (?:of the series )?"
         + r"arrived", "Incomplete series: {missing} of {total} images missing"),
        (r"(?P<arrived>\d+) instances of the series arrived before the transfer",
         "Incomplete series: only {arrived} images arrived"),
        (r"^left out (?P<count>\d+) unreadable input",
         "Incomplete series: {count} unreadable file(s) left out"),
        (r"^Missing slice", "{blank} of {slices} slices not decoded (blank)"),
        (r"^Gap\(s\) in the series: (?P<planes>\d+) resampled slice\(s\) of \d+ lie "
         + r"in (?P<gaps>\d+) gap\(s\) of the series up to (?P<widest>[\d.]+) mm",
         "No images in {gaps} gap(s) of up to {widest} mm: {planes} slices blank"),
        (r"^(?P<unread>\d+) file\(s\) of the folder could not be read",
         "{unread} file(s) of the folder unreadable"),
        (r"^A stack of (?P<lost>\d+) slice\(s\) was left out",
         "{lost} image(s) of another stack not decoded"),
        # One stack shown out of several (viewerlib.open, open_volume); the
        # uneven gaps the files left out leave in it are told with them.
        (r"^Not shown: (?P<files>\d+) file\(s\) in (?P<stacks>\d+) other stack.*"
         + r"has uneven slice spacing \((?P<low>[\d.]+) to (?P<high>[\d.]+) mm\)",
         "{files} file(s) of {other_stacks} not shown, where the spacing is uneven "
         "({low} to {high} mm)"),
        (r"^Not shown: (?P<files>\d+) file\(s\) in (?P<stacks>\d+) other stack",
         "{files} file(s) of {other_stacks} not shown"),
        (r"^Damaged pixel data", "Damaged pixel data"),
        (r"^Non-uniform slice spacing: gaps from (?P<low>[\d.]+) to (?P<high>[\d.]+)",
         "Uneven slice spacing ({low} to {high} mm)"),
        (r"^Gantry tilt: slices are stacked (?P<degrees>[\d.]+) deg",
         "Gantry tilt {degrees}°"),
        (r"^Some frames have no", "Slice positions unknown"),
        (r"^Slices share", "Slices share one position"),
    )
)
# What the page may show of a note: file names without their folders, and no
# instance UIDs; the notebook's volume.warnings keeps the whole text.
# A quoted name as repr() writes it: in single quotes, or in double quotes when
# it holds a single quote (O'Brien), with backslash escapes.
_QUOTED = re.compile(r"""(?<![^\s(])('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""")
_SEPARATORS = re.compile(r"(?:\\\\|/|\\)+")
_BARE_PATH = re.compile(r"(?<![\w.'\"])(?:[A-Za-z]:)?(?:[/\\][^\s/\\;:'\"()]+)+"
                        r"[/\\]([^\s/\\;:'\"()]+)")
_INSTANCE_UID = re.compile(r" ?\(SOP Instance UID [^)]*\)")


def is_alert(note: str) -> bool:
    """True when a note of ``Volume.warnings`` is one a reader must not miss.

    Examples
    --------
    >>> is_alert("Gantry tilt: slices are stacked 18.50 deg off their normal")
    True
    >>> is_alert("Single slice: slice spacing 5.0 mm taken from the header")
    False
    """
    return any(pattern.search(note) for pattern, _ in _ALERTS)


@dataclass(frozen=True)
class VolumeAlert:
    """A note of ``Volume.warnings`` as the viewers keep it on screen.

    Attributes
    ----------
    text : str
        A few words, e.g. "Incomplete series: 1 of 4 images missing".
    detail : str
        The notes behind it, one per line, without folders or instance UIDs.
    """

    text: str
    detail: str


def volume_alerts(volume: Volume) -> list[VolumeAlert]:
    """Return what a reader must not miss about `volume`, most serious first.

    Parameters
    ----------
    volume : Volume
        Its ``warnings`` are read, with ``missing_slices`` and its slice count.

    Returns
    -------
    list of VolumeAlert
        One per kind of problem (a partial series, blank slices, damaged pixel
        data, uneven spacing, a gantry tilt, no or shared positions), from the
        notes that describe it; empty for a volume without such notes.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> volume = SimpleNamespace(missing_slices=[], shape=(3, 8, 8), warnings=[
    ...     "Non-uniform slice spacing: gaps from 4.000 to 8.000 mm (...)"])
    >>> [alert.text for alert in volume_alerts(volume)]
    ['Uneven slice spacing (4.000 to 8.000 mm)']
    """
    found: dict[int, tuple[str, list[str]]] = {}
    for note in volume.warnings:
        for row, (pattern, line) in enumerate(_ALERTS):
            match = pattern.search(note)
            if match is None:
                continue
            if row not in found:
                fields = {key: value for key, value in match.groupdict().items()
                          if value is not None}
                if "stacks" in fields:
                    stacks = int(fields["stacks"])
                    fields["other_stacks"] = ("another stack" if stacks == 1
                                              else f"{stacks} other stacks")
                if "arrived" in fields and "total" in fields:
                    fields["missing"] = str(int(fields["total"])
                                            - int(fields["arrived"]))
                text = line.format(blank=len(volume.missing_slices) or "Some",
                                   slices=volume.shape[0], **fields)
                found[row] = (text, [])
            found[row][1].append(_screen_text(note))
            break
    return [VolumeAlert(text, "\n".join(notes))
            for _, (text, notes) in sorted(found.items())]


def _screen_text(note: str) -> str:
    """`note` without folders and instance UIDs, for the page and the log."""
    note = _INSTANCE_UID.sub("", note)
    note = _QUOTED.sub(_last_part, note)
    return _BARE_PATH.sub(r"\1", note)


def _last_part(quoted: re.Match[str]) -> str:
    """A quoted path as its last part, in its quotes; other quoted text as is."""
    text = quoted.group(1)
    parts = _SEPARATORS.split(text[1:-1])
    return text if len(parts) < 2 else text[0] + (parts[-1] or parts[-2]) + text[0]


@functools.lru_cache(maxsize=64)
def _function_takes_problems(function: Callable[..., Any]) -> bool:
    try:
        return "problems" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _takes_problems(fill: Callable[..., tuple[np.ndarray, bool]]) -> bool:
    """True when `fill` reports bad inputs instead of raising (``problems=``)."""
    # Asked once per function: reading a signature costs as much as laying out
    # a slice, and a bound method is a new object at every call.
    function = getattr(fill, "__func__", fill)
    try:
        return _function_takes_problems(function)
    except TypeError:  # not hashable
        return _function_takes_problems.__wrapped__(function)


def _blank_missing(voxels: np.ndarray, missing: list[int]) -> float:
    """Fill the `missing` slices with the lowest value of the others; return it.

    The lowest value shows black under any window and keeps statistics, the
    default window and MPR interpolation within the data's own range, where a
    type minimum (-32768) or NaN would spread into neighbouring voxels.
    """
    lost = set(missing)
    present = [k for k in range(voxels.shape[0]) if k not in lost]
    low = min((voxels[k].min() for k in present), default=0)
    for k in missing:
        voxels[k] = low
    return float(low)


def _build_volume(
    stack: list[int],
    frames: list[tuple[Dataset, int, int]],
    sources: Sequence[Source],
    workers: int,
    fill: Callable[..., tuple[np.ndarray, bool]] = fill_voxels,
    lost: list[str] | None = None,
    frame_geometries: Sequence[FrameGeometry | None] | None = None,
    label: Callable[[Any], str] | None = None,
    gap_cause: Callable[[], str] | None = None,
) -> Volume | None:
    """Sort one stack, work out its geometry, and read its voxels.

    ``fill`` has the signature of :func:`~viewerlib.volume.reading.fill_voxels`;
    :mod:`viewerlib.volume.progressive` passes one that places slices already
    decoded while the series streamed, so both routes share this one geometry.
    When `fill` takes ``problems`` an input that cannot be decoded costs only
    its own slices (blanked and flagged); a stack none of whose inputs decodes
    gives None, with the reasons appended to `lost`. `frame_geometries`, by
    index into `frames`, saves working the geometry out again. `label` names
    an input in messages (default :func:`input_name`); `gap_cause`, asked only
    when the gaps between slices are uneven, says why when it can (inputs of
    the series set apart in other stacks lie in them), else "".
    """
    label = label or input_name
    notes: list[str] = []
    first_header = frames[stack[0]][0]
    photometric = str(first_header.get("PhotometricInterpretation", "")).strip()
    is_float = any(k in first_header for k in _PIXEL_KEYWORDS[1:])
    if photometric not in ("MONOCHROME1", "MONOCHROME2") and not is_float:
        message = (
            f"A stack of {len(stack)} {photometric or 'unknown'} frame(s) was left "
            "out: volumes hold grayscale modality values only; use read_instance() "
            "to display colour images"
        )
        logger.warning(message)
        return None

    geometries = ([frame_geometries[i] for i in stack] if frame_geometries is not None
                  else [frame_geometry(frames[i][0], frames[i][1]) for i in stack])
    order = list(range(len(stack)))
    has_geometry = all(g is not None for g in geometries)
    if has_geometry:
        known = [g for g in geometries if g is not None]
        normal = known[0].normal
        along = [float(np.dot(g.position, normal)) for g in known]
        order = sorted(order, key=lambda k: (along[k], k))
        if order != sorted(order):
            logger.debug("Slices re-ordered by position along the normal")
    else:
        _note(notes, (
            "Some frames have no (0020,0032) Image Position (Patient) or (0020,0037) "
            "Image Orientation (Patient); slices keep the input order and the affine "
            "is a plain scaling, not a position in the patient"
        ))
        order = sorted(order, key=lambda k: (
            int(frames[stack[k]][0].get("InstanceNumber", 0) or 0), k))

    sorted_ids = [stack[k] for k in order]
    sorted_geometries = [geometries[k] for k in order]
    rows = int(first_header.Rows)
    columns = int(first_header.Columns)
    in_plane = None
    if has_geometry and sorted_geometries[0] is not None:
        in_plane = sorted_geometries[0].pixel_spacing
    if in_plane is None and not has_geometry:
        in_plane = pixel_spacing_of(first_header, frames[stack[0]][1])[0]
    if in_plane is None:
        _note(notes, "No (0028,0030) Pixel Spacing: 1 mm pixels are assumed")
        in_plane = (1.0, 1.0)

    affine = np.eye(4)
    positions = np.zeros((len(order), 3))
    slice_spacing = float(first_header.get("SpacingBetweenSlices", 0) or 0) or float(
        first_header.get("SliceThickness", 0) or 0
    ) or 1.0
    if has_geometry:
        g0 = sorted_geometries[0]
        assert g0 is not None
        positions = np.array(
            [g.position for g in sorted_geometries]  # type: ignore[union-attr]
        )
        step = g0.normal * slice_spacing
        if len(order) > 1:
            spacing = stack_spacing(
                sorted_geometries, g0.normal  # type: ignore[arg-type]
            )
            slice_spacing = spacing.spacing_mm
            step = spacing.step_mm
            if slice_spacing <= 0:
                _note(notes, "Slices share one position; spacing set to 1 mm")
                slice_spacing, step = 1.0, g0.normal
            if not spacing.is_uniform:
                cause = gap_cause() if gap_cause is not None else ""
                _note(notes, (
                    f"{UNEVEN_SPACING}: gaps from {spacing.gaps_mm.min():.3f}"
                    f" to {spacing.gaps_mm.max():.3f} mm ("
                    + (f"in a gap lies {cause}" if cause else
                       "a file missing from the series, or a variable pitch")
                    + "). Measurements and MPR use each "
                    "slice's true position (slice_positions_mm); the MPR and 3-D "
                    "viewers resample onto a uniform grid (resample_uniform); the "
                    "affine's mean step is only an approximation"
                ))
            if spacing.is_tilted:
                _note(notes, (
                    f"Gantry tilt: slices are stacked {spacing.tilt_deg:.2f} deg off "
                    "their normal; the affine shears to follow the true positions"
                ))
        else:
            _note(notes, (
                f"Single slice: slice spacing {slice_spacing} mm taken from the "
                "header (Spacing Between Slices or Slice Thickness), not positions"
            ))
        # PS3.3 C.7.6.2.1.1: the row index moves along the column cosines by the
        # row spacing; the column index along the row cosines by the column spacing.
        affine[:3, 0] = step
        affine[:3, 1] = g0.column_cosines * in_plane[0]
        affine[:3, 2] = g0.row_cosines * in_plane[1]
        affine[:3, 3] = g0.position
    else:
        affine[:3, :3] = np.diag([slice_spacing, in_plane[0], in_plane[1]])

    dtype, reason = _choose_dtype([
        _value_range_of(frames[i][0], frames[i][1],
                        sources[frames[i][2]] if frames[i][2] < len(sources) else None)
        for i in sorted_ids])
    bits_allocated = int(first_header.get("BitsAllocated", 16) or 16)
    if dtype == np.int32 and bits_allocated <= 16:
        # The header allows values beyond int16 (e.g. 16-bit signed stored values
        # with an intercept), but real data rarely uses them: start with int16
        # and widen once, only if a slice does not fit.
        dtype = np.dtype(np.int16)
    voxels = np.empty((len(sorted_ids), rows, columns), dtype=dtype)

    # Read each input once, filling every slice that comes from it.
    slots: dict[int, list[tuple[int, int]]] = {}
    for slot, frame_id in enumerate(sorted_ids):
        _, frame_index, input_index = frames[frame_id]
        slots.setdefault(input_index, []).append((slot, frame_index))
    tsyntax = transfer_syntax_of(first_header)
    problems = FillProblems()
    report = {"problems": problems} if _takes_problems(fill) else {}
    voxels, widened = fill(voxels, slots, sources, workers, tsyntax.is_encapsulated,
                           transfer_syntax=str(tsyntax), **report)
    if widened:
        reason = "the rescaled values exceed int16"
    missing = sorted(slot for index in problems.failed for slot, _ in slots[index])
    failed = "; ".join(f"{label(sources[index])}: {why}"
                       for index, why in sorted(problems.failed.items()))
    if missing and len(missing) == voxels.shape[0]:
        message = (f"A stack of {len(missing)} slice(s) was left out: none of its "
                   f"inputs could be decoded ({failed})")
        logger.warning(_screen_text(message))
        if lost is not None:
            lost.append(message)
        return None
    if missing:
        low = _blank_missing(voxels, missing)
        # A lost slice keeps its place: dropping it would make the spacing
        # non-uniform and the affine's mean step wrong for every other slice.
        _note(notes, (
            f"{MISSING_SLICES} {_slice_list(missing)} of {voxels.shape[0]} (counted "
            "from 1, as the viewer's Im counter): their "
            f"input(s) could not be decoded, so they are left blank (value {low:g}) "
            "at their true positions and the other slices keep their true spacing; "
            f"do not measure across them. {failed}{_what_helps(problems)}"
        ))
    for index, why in sorted(problems.doubtful.items()):
        _note(notes, f"Damaged pixel data in {label(sources[index])} (slice(s) "
                     f"{_slice_list(sorted(s for s, _ in slots[index]))}): {why}")

    if voxels.dtype.itemsize * 8 > bits_allocated * 1.1 and bits_allocated > 1:
        _note(notes, (
            f"Voxels are {voxels.dtype.name} ({voxels.dtype.itemsize * 8} bits) for "
            f"{bits_allocated}-bit stored values: {reason or 'the rescaled range'}"
        ))

    # The header of a slice that decoded: a lost one may describe its data wrongly.
    blank = set(missing)
    first_good = next(k for k in range(len(sorted_ids)) if k not in blank)
    header0, frame0 = frames[sorted_ids[first_good]][:2]
    presets = window_presets(header0, frame0)
    window = presets[0] if presets else default_window(voxels, header0)
    return Volume(
        voxels=voxels,
        affine=affine,
        spacing_mm=(float(slice_spacing), float(in_plane[0]), float(in_plane[1])),
        source_order=[frames[i][2] for i in sorted_ids],
        source_frames=[(frames[i][2], frames[i][1]) for i in sorted_ids],
        datasets=[frames[i][0] for i in sorted_ids],
        modality=str(header0.get("Modality", "")),
        window_presets=presets,
        default_window=window,
        frame_of_reference_uid=str(header0.get("FrameOfReferenceUID", "")),
        slice_positions_mm=positions,
        warnings=notes,
        missing_slices=missing,
    )


def _what_helps(problems: FillProblems) -> str:
    """The sentence that ends a note of inputs not decoded: what to do, or "".

    The reason of a file cut short says to copy it again, that of a file
    written with a header that does not match its pixel data to ask the
    sender (every copy is the same); other reasons (a codec's) say neither.
    """
    told = [why.startswith((MISFIT, CUT_SHORT)) for why in problems.failed.values()]
    if all(told):
        return ""
    return (". Copy the " + ("other " if any(told) else "") + "file(s) again from "
            "their source and open the series again")


def _slice_list(slots: list[int]) -> str:
    """Return slices for a message, counted from 1, the first ten then a count.

    Counted as the viewers' "Im n/N" counter is, so a reader finds the slice a
    message names (``Volume.missing_slices`` keeps the indexes from 0).

    Examples
    --------
    >>> _slice_list([0, 19])
    '1, 20'
    """
    shown = ", ".join(str(k + 1) for k in slots[:10])
    return shown + (f" and {len(slots) - 10} more" if len(slots) > 10 else "")


def _is_dicomdir(source: Any) -> bool:
    """Whether `source` is a DICOMDIR: a CD's index of its files, not an image.

    PS3.10 8.6 names the file ``DICOMDIR``; a dataset read from one holds the
    (0004,1220) *Directory Record Sequence*.
    """
    if isinstance(source, Dataset):
        return "DirectoryRecordSequence" in source
    return (isinstance(source, (str, os.PathLike))
            and Path(source).name.upper() == "DICOMDIR" and Path(source).is_file())


def _folder_root(paths_or_datasets: Any) -> Path | None:
    """The folder a folder, or a DICOMDIR file, stands for; else None."""
    if not isinstance(paths_or_datasets, (str, os.PathLike)):
        return None
    path = Path(paths_or_datasets)
    if path.is_dir():
        return path
    return path.parent if _is_dicomdir(path) else None


def _files_listed(dicomdir: Path) -> list[Path] | None:
    """The files `dicomdir` references, or None (warned) when it cannot be read."""
    # Imported here: viewerlib.sources imports this module.
    from viewerlib.sources.local import dicomdir_files

    try:
        return dicomdir_files(dicomdir)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError, KeyError,
            AttributeError) as err:
        message = (f"the DICOMDIR {dicomdir.name!r} could not be read ({err}); every "
                   "file in its folder and sub-folders is read instead")
        logger.warning("a DICOMDIR could not be read (%s); reading every file of "
                       "its folder instead", type(err).__name__)
        warnings.warn(message, UserWarning, stacklevel=5)
        return None


def _files_of_folder(path: Path) -> list[Path]:
    """The files a folder, or a DICOMDIR file, stands for.

    With a DICOMDIR, those it references (a file it names that is missing is
    kept, to be named as missing); without one, every file in the folder and
    its sub-folders but hidden ones, as
    :class:`~viewerlib.sources.local.FolderSource` indexes them.
    """
    dicomdir = path if not path.is_dir() else path / "DICOMDIR"
    if _is_dicomdir(dicomdir):
        listed = _files_listed(dicomdir)
        if listed:
            return listed
        path = dicomdir.parent
    files = []
    for root, directories, names in os.walk(path):
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        files += [Path(root) / name for name in sorted(names)
                  if not name.startswith(".")]
    # An unreadable (or empty) DICOMDIR indexes no image: it is no input.
    files = [file for file in files if not _is_dicomdir(file)]
    if not files:
        raise ValueError(
            f"The folder {os.fspath(path)!r} is empty (it holds no files, nor do "
            "its sub-folders); pass the folder that holds the series' DICOM files")
    return files


def _as_inputs(paths_or_datasets: Any) -> list[Any]:
    """A list of inputs: a folder stands for the files in it (see
    :func:`_files_of_folder`), a path for itself, a DICOMDIR for the files it
    references. A DICOMDIR among other inputs is left out: it holds no image."""
    if isinstance(paths_or_datasets, (str, os.PathLike)):
        path = Path(paths_or_datasets)
        if path.is_dir() or _is_dicomdir(path):
            return _files_of_folder(path)
        if not path.exists():
            raise FileNotFoundError(
                f"{os.fspath(path)!r} does not exist; check the path (pass a "
                "folder of DICOM files, a file, or a list of them)"
            )
        return [path]
    if isinstance(paths_or_datasets, Dataset):
        return [paths_or_datasets]
    if paths_or_datasets is None:
        raise TypeError("read_series() takes a folder, a file, or a list of paths "
                        "or pydicom Datasets, not None")
    inputs = list(paths_or_datasets)
    if not inputs:
        raise ValueError("read_series() was given no inputs: pass a folder, a "
                         "file, or a non-empty list of paths or pydicom Datasets")
    directories = [source for source in inputs if _is_dicomdir(source)]
    if directories and len(directories) == len(inputs) and not any(
            isinstance(source, Dataset) for source in directories):
        # Only CD indexes: each stands for the files it references.
        return [file for dicomdir in directories
                for file in _files_of_folder(Path(dicomdir))]
    if directories:
        # Beside the images it references, a CD's index is no input.
        logger.info("%d DICOMDIR(s) among the inputs left out: a CD's index holds "
                    "no image", len(directories))
        inputs = [source for source in inputs if not _is_dicomdir(source)]
    return inputs


def input_name(source: Any, folder: str | os.PathLike[str] | None = None) -> str:
    """Name an input of :func:`read_series` for a message.

    Parameters
    ----------
    source : path or pydicom.dataset.Dataset
        The input.
    folder : str or os.PathLike, optional
        The folder the inputs came from.

    Returns
    -------
    str
        Quoted: a path as given, or relative to `folder` when one is given; a
        dataset read from a file (``filename``) in `folder` by that file; any
        other dataset by its Instance Number and SOP Instance UID.

    Examples
    --------
    >>> input_name("/media/cd/DICOM/IM1", "/media/cd")
    "'DICOM/IM1'"
    """
    if isinstance(source, Dataset):
        filename = getattr(source, "filename", None)
        if folder is not None and isinstance(filename, str) and filename:
            return repr(relative_name(filename, folder))
        return (f"instance {source.get('InstanceNumber', '(no number)')} (SOP "
                f"Instance UID {source.get('SOPInstanceUID', 'absent')})")
    if folder is not None:
        return repr(relative_name(source, folder))
    return repr(os.fspath(source))


def _truncation_problem(header: Dataset, source: Any) -> str | None:
    """Say why an input is left out before decoding, or None to decode it.

    Only an input that ends before its header does, or whose header is
    garbled, is left out (:func:`~viewerlib.volume.diagnosis.file_damage`
    tells which). One whose pixel data is cut short, however much of it is
    gone, is decoded like any other: the decode fails
    (:func:`~viewerlib.volume.reading.read_for_decoding` names the shortfall)
    and its slices stay in place, blank and named in
    ``Volume.missing_slices``. Leaving it out here would drop the slice and
    leave a gap.
    """
    if "Rows" in header:
        return None  # every image: one look-up
    is_path = isinstance(source, (str, os.PathLike))
    if "SOPClassUID" not in header:
        return (file_damage(source) if is_path else None) or (
            "it ends before even its (0008,0016) SOP Class UID: the file is "
            "probably cut short; copy it again from its source")
    image = "Image Storage" in pydicom.uid.UID(str(header.SOPClassUID)).name
    if is_path:
        # No image, or an image cut or garbled inside its header: only the bytes
        # tell. A walk that finds odd bytes in a non-image pydicom read is no
        # proof (private sequences of odd encodings): only an image's counts.
        damage = file_damage(source)
        if damage and (image or damage.startswith(CUT_SHORT)):
            return damage
    if image:
        return ("it holds no (0028,0010) Rows, though its (0008,0016) SOP Class "
                f"is {pydicom.uid.UID(str(header.SOPClassUID)).name}: it was cut "
                "short or written without its image; copy it again from its source, "
                "and if the copy is the same, ask the sender for the original")
    return None


def _raise_if_all_absent(inputs: list[Any]) -> None:
    """Raise FileNotFoundError when no input is there at all: a wrong path, more
    often than lost files."""
    absent = [source for source in inputs
              if isinstance(source, (str, os.PathLike)) and not os.path.lexists(source)]
    if len(absent) == 1 == len(inputs):
        raise missing_file_error(absent[0])
    if absent and len(absent) == len(inputs):
        raise FileNotFoundError(
            f"none of the {len(absent)} files is there (the first: "
            f"{os.fspath(absent[0])!r}; relative paths start at {os.getcwd()}): "
            "check the paths")


def _without_name(message: str, source: Any) -> str:
    """`message` without the path it begins with: the caller names the input."""
    if isinstance(source, (str, os.PathLike)):
        named = f"{os.fspath(source)!r} "
        if message.startswith(named):
            rest = message[len(named):]
            return rest[3:] if rest.startswith("is ") else rest
    return message


def _read_headers(
    inputs: list[Any], label: Callable[[Any], str] = input_name,
) -> tuple[list[Dataset | None], list[Any], list[str], list[str]]:
    """Read the header of every input; an unreadable one is left out and named.

    pydicom's warnings about a file left out (such as "Expected explicit VR,
    but found implicit VR" for a garbled data set) are folded into the reason
    given for it; those about a file read are passed on as pydicom gave them.

    Returns
    -------
    headers : list of pydicom.dataset.Dataset or None
        None for an input left out. Every header but the first is compacted as
        soon as it is read (:func:`~viewerlib.volume.reading.compact_header`),
        so the headers of a long series never cost more than a fraction of its
        pixels.
    sources : list
        The inputs, with a :class:`~viewerlib.volume.files.FilePixels` in place
        of each file the tight reader read (`headers` has its working header):
        its pixel data is then read once, straight into the volume.
    unreadable : list of str
        For each input left out, its name (see `label`) and why.
    not_dicom : list of str
        The names of the files left out as no DICOM and not meant to be (a
        CD's README, say: :func:`~viewerlib.volume.diagnosis.is_companion_file`):
        nothing is missing for them, so they are not `unreadable`.
    """
    headers: list[Dataset | None] = []
    sources = list(inputs)
    unreadable: list[str] = []
    not_dicom: list[str] = []
    reader = FileReader(header_tags()) if _READ_FILES_FAST else None
    compact = False
    for index, source in enumerate(inputs):
        caught: list[warnings.WarningMessage] = []
        is_path = isinstance(source, (str, os.PathLike))
        try:
            fast = reader.read(source) if reader is not None and is_path else None
            if fast is None:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    header = read_header(source, compact=compact)
            else:
                sources[index], header = fast, fast.header
                if not compact:
                    # The whole header of the first input, as pydicom reads it.
                    fast.whole_header = read_header(source, compact=False)
            problem = _truncation_problem(header, source)
        except FileNotFoundError:
            header, problem = None, ("no such file: check the path, or copy it "
                                     "again if it was there")
        except (pydicom.errors.InvalidDicomError, ValueError, OSError, KeyError,
                AttributeError, TypeError) as err:
            header = None
            if is_path and holds_no_dicom(source):
                # Named as DICOM, it should be one; a README beside the images
                # need not.
                problem = None if is_companion_file(source) else NOT_DICOM
                if problem is None:
                    not_dicom.append(label(source))
            else:
                problem = (file_damage(source) if is_path else None) or _without_name(
                    str(err), source)
        if problem:
            header = None
            unreadable.append(f"{label(source)}: {problem}")
        else:
            for found in caught:
                warnings.warn_explicit(found.message, found.category, found.filename,
                                       found.lineno)
        compact = compact or header is not None
        headers.append(header)
    logger.debug("%d of %d input(s) read by the tight reader",
                 sum(isinstance(source, FilePixels) for source in sources), len(inputs))
    if not_dicom:
        logger.info(companion_note(len(not_dicom)))
    return headers, sources, unreadable, not_dicom


def read_series(
    paths_or_datasets: Sequence[Source], *, workers: int | None = None,
    names_relative_to: str | os.PathLike[str] | None = None, warn: bool = True,
) -> list[Volume]:
    """Build volumes from the instances of a series.

    Parameters
    ----------
    paths_or_datasets : folder, path, or sequence of path or pydicom.dataset.Dataset
        Instances of one series (or several; they are kept apart), in any order.
        Enhanced multi-frame instances contribute every frame, placed by the
        Plane Position Sequence of their functional groups. A folder stands
        for the files it holds, in its sub-folders too (hidden ones aside), as
        :func:`viewerlib.open` reads it; a folder with a ``DICOMDIR``, or the
        ``DICOMDIR`` itself, for the files the DICOMDIR references. A
        DICOMDIR among other files is left out (it holds no image); a list of
        DICOMDIRs only stands for the files they reference.
    workers : int, optional
        Threads or processes that decode compressed inputs in parallel; default
        the number of CPUs (at most 4). 1 decodes in the calling thread. Native
        data is always read in the calling thread; processes are not used for
        fewer than 8 files or for datasets already in memory.
    names_relative_to : str or os.PathLike, optional
        The folder the inputs came from: messages name a file in it (a path,
        or a dataset read from it) by its path relative to the folder, as
        :func:`viewerlib.open` does for a folder. By default the folder given
        as `paths_or_datasets` (or the DICOMDIR's); for a list, a path is named
        as given and a dataset by its Instance Number and SOP Instance UID.
    warn : bool, optional
        Whether to issue a ``UserWarning`` for each problem a reader must not
        miss (default). A caller that shows ``Volume.warnings`` itself, as the
        viewers of :func:`viewerlib.open` do on their alert line, passes False,
        so that each problem reaches the reader once; the problems are still
        logged and noted in ``Volume.warnings`` either way.

    Returns
    -------
    list of Volume
        One volume per stack (see
        :func:`~viewerlib.volume.geometry.split_into_stacks`): frames are split
        by orientation, size, Image Type (LOCALIZER apart), Echo Numbers and
        repeated positions, then sorted along the slice normal. Each volume
        but the largest notes why its stack is apart ("Set apart: ..."). A
        slice whose header does not describe its own pixel data (a wrong
        (0028,0010) *Rows*, say) stays in its series' stack, blank, as a slice
        that could not be decoded does.

    Raises
    ------
    ValueError
        If no input has grayscale pixel data, every input failed to read or
        decode (the message names each file and why), a folder is empty, no
        inputs are given, or `workers` is below 1.
    FileNotFoundError
        If a path given does not exist.

    Warns
    -----
    UserWarning
        Unless `warn` is False, once for each problem a reader must not miss
        (:func:`is_alert`): a volume's geometry needed a work-around (gantry
        tilt, non-uniform spacing, missing or repeated positions), a slice
        could not be decoded (left blank in place, see
        ``Volume.missing_slices``) or its codestream looks damaged, an input
        was left out. The same text, and notes on single slices, stacks set
        apart and voxel dtype, are in ``Volume.warnings``; the log has it
        without folders and instance UIDs.

    Notes
    -----
    An input that cannot be read or decoded costs only its own slices: an
    unreadable header leaves it out, a failed decode leaves its slices blank
    in place; either way the warning names the file (or the instance number
    and SOP Instance UID of a dataset), what is wrong and what to do.

    Each file's bytes are read once where the file is plain explicit VR little
    endian (elements of defined length up to native pixel data that ends the
    file): its header first, by a tight reader that keeps only what the volume
    needs (:class:`~viewerlib.volume.files.FileReader`), then its pixel data,
    straight into the volume. Other paths are read by pydicom twice: headers
    first (without pixel data), then each file while its frames are copied
    into the volume. Either way the raw bytes of the whole series are never
    held at once; with workers, at most ``2 * workers`` decoded slices wait
    beside the volume. Where imagecodecs decodes the transfer
    syntax the workers are threads (it releases the GIL) writing straight into
    the volume; for other compressed syntaxes they are processes (started once
    per session), since pydicom's plugins hold the GIL. Colour stacks are left
    out (logged).
    """
    if workers is None:
        workers = default_workers()
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    workers = int(workers)
    if names_relative_to is None:
        # A folder's files are named by their path in it, as viewerlib.open names
        # them: never the folders above it, which may name the patient.
        names_relative_to = _folder_root(paths_or_datasets)
    paths_or_datasets = _as_inputs(paths_or_datasets)

    def label(source: Any) -> str:
        return input_name(source, names_relative_to)

    def tell(message: str) -> None:
        if warn:
            warnings.warn(message, UserWarning, stacklevel=3)

    headers, sources, unreadable, not_dicom = _read_headers(paths_or_datasets, label)
    if all(header is None for header in headers):
        _raise_if_all_absent(paths_or_datasets)
    frames: list[tuple[Dataset, int, int]] = []
    for input_index, header in enumerate(headers):
        if header is None:
            continue
        source = paths_or_datasets[input_index]
        has_pixels = any(k in source for k in _PIXEL_KEYWORDS) if isinstance(
            source, Dataset) else True
        if not has_pixels:
            logger.info("Input %d has no pixel data; skipped", input_index)
            continue
        if "Rows" not in header or "Columns" not in header:
            logger.info("Input %d is not an image; skipped", input_index)
            continue
        for frame_index in range(number_of_frames(header)):
            frames.append((header, frame_index, input_index))

    if unreadable:
        message = (f"left out {len(unreadable)} unreadable input(s): "
                   + "; ".join(unreadable))
        tell(message)
        logger.warning("left out %d unreadable input(s)", len(unreadable))
    # Worked out once, for splitting and then sorting each stack.
    geometries = [_geometry_of(ds, f, sources[i]) for ds, f, i in frames]
    keys = [_stack_key_of(ds, f, sources[i], geometry)
            for (ds, f, i), geometry in zip(frames, geometries, strict=True)]
    stacks = split_into_stacks([(ds, f) for ds, f, _ in frames], geometries, keys)
    # Once per stack: a slice misdescribed by its header goes back to its place.
    stacks, _ = rejoin_misfits(stacks, frames, sources, keys, geometries)

    def frame_name(frame_id: int) -> str:
        return label(sources[frames[frame_id][2]])

    volumes = []
    lost: list[str] = []
    for stack in stacks:
        # Why gaps are uneven is looked for only where they are: it compares
        # the stack with every other (many stacks for a perfusion series).
        volume = _build_volume(
            stack, frames, sources, workers, lost=lost, frame_geometries=geometries,
            label=label, gap_cause=functools.partial(
                others_in_gaps, stack, stacks, keys, geometries, frame_name))
        if volume is None:
            continue
        # The headers of files read fast were built from stay inside: the
        # volume keeps headers of their own (see FilePixels.volume_header).
        volume.datasets = [
            source.volume_header() if isinstance(source := sources[index], FilePixels)
            else header
            for index, header in zip(volume.source_order, volume.datasets, strict=True)]
        for note in volume.warnings:
            if is_alert(note):
                tell(note)
        if unreadable:
            # Warned once above; noted in every volume, for the viewers.
            volume.warnings.append(message)
        volumes.append(volume)
    if volumes:
        # A stack none of whose inputs decoded is named where the others are
        # shown, not only in the log.
        for reason in lost:
            tell(reason)
            for volume in volumes:
                volume.warnings.append(reason)
        set_apart_notes(volumes, lambda index: label(sources[index]))
    if not volumes and len(not_dicom) == len(paths_or_datasets):
        raise ValueError(
            f"None of the {len(not_dicom)} file(s) is DICOM (no 'DICM' marker, no "
            f"DICOM element: {', '.join(not_dicom[:5])}"
            + (" and more" if len(not_dicom) > 5 else "")
            + "): pass the folder or files that hold the series' DICOM images")
    if not volumes:
        reasons = ([message] if unreadable else []) + lost
        if not_dicom:
            reasons.append(f"{len(not_dicom)} file(s) not DICOM: "
                           + ", ".join(not_dicom[:5])
                           + (" and more" if len(not_dicom) > 5 else ""))
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        if lost or (unreadable and not frames):
            helps = ("Copying the files again will not help: ask the sender for the "
                     "original images" if all(MISFIT in reason for reason in reasons)
                     else "Copy the files again from their source")
            raise ValueError(
                "No volume could be built: every input with pixel data failed to "
                f"read or decode{detail}. {helps}"
            )
        raise ValueError(
            "None of the inputs has grayscale pixel data to build a volume from; "
            "check that the paths are image instances (not SR, RT structures or "
            f"colour ultrasound){detail}"
        )
    logger.info("Built %d volume(s) from %d input(s)", len(volumes), len(headers))
    return volumes
