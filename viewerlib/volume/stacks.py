"""The stacks of a series: where a misdescribed slice belongs, and what is set apart.

:func:`~viewerlib.volume.geometry.split_into_stacks` keeps frames apart by what
their headers say. Two things follow that a reader must be told, and that
``read_series`` and ``viewerlib.open`` tell alike: a slice whose header does
not describe its own pixel data (a wrong (0028,0010) *Rows*, say) belongs in its
series' stack, blank, not in a stack of its own; and whenever one stack is shown
out of several, which files the others hold and why they are apart.
Everything here runs once per stack, never per file of a plain series.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.dataset import Dataset

from viewerlib.pipeline.decode import (
    MISFIT,
    UNFIT,
    dataset_pixel_problem,
    header_misfit,
)
from viewerlib.pipeline.instance import read_dicom_file
from viewerlib.volume.files import FilePixels
from viewerlib.volume.geometry import (
    FrameGeometry,
    frame_geometry,
    gaps_are_even,
    stack_difference,
    stack_key,
)

if TYPE_CHECKING:
    from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

# stack_key's fields of the size: (0028,0010) Rows, (0028,0011) Columns.
_SIZE = slice(2, 4)
# Files named one by one in a message; the rest are counted.
_NAMED = 5
# Positions this close (mm) along the normal are one slice place.
_SAME_PLACE_MM = 1e-3

Frames = Sequence[tuple[Dataset, int, int]]

#: The call that gives every stack of a series from an archive, as a note says it.
RETRIEVED_STACKS = "viewerlib.read_series(source.retrieve_series(study, series))"


def input_misfit(header: Dataset, source: Any) -> str | None:
    """Say so when an input's header does not describe its own pixel data.

    Parameters
    ----------
    header : pydicom.dataset.Dataset
        The header read_series built the input's frames from.
    source : FilePixels, pydicom.dataset.Dataset or path
        The input: a file the tight reader read (its pixel data is whole and
        ends the file), a dataset, or a path (read again, whole, by pydicom).

    Returns
    -------
    str or None
        Why the pixel data does not fit the header (see
        :func:`~viewerlib.pipeline.decode.pixel_data_problem`: written so,
        or not known to be whole); None when it fits, when the file is cut
        short (its header is then right), when it is encapsulated, or when it
        cannot be read again.
    """
    if isinstance(source, FilePixels):
        return header_misfit(header, source.value_length)
    try:
        ds = source if isinstance(source, Dataset) else read_dicom_file(source)
    except Exception as err:  # noqa: BLE001 - unchecked, it stays in its own stack
        logger.debug("Not checked for a misfit header: %s", type(err).__name__)
        return None
    problem = dataset_pixel_problem(ds)
    # Cut short, a header is right; not fitting, it may describe another size.
    return problem if problem and problem.startswith((MISFIT, UNFIT)) else None


def _place(geometry: FrameGeometry | None, normal: np.ndarray) -> float | None:
    return None if geometry is None else float(np.dot(geometry.position, normal))


def rejoin_misfits(
    stacks: list[list[int]], frames: Frames, sources: Sequence[Any],
    keys: Sequence[tuple[Any, ...]], geometries: Sequence[FrameGeometry | None],
) -> tuple[list[list[int]], set[int]]:
    """Put the frames of misdescribed inputs back in the stack they belong to.

    A wrong (0028,0010) *Rows* or (0028,0011) *Columns* gives a slice a stack
    key of its own: it would form a stack of its own and leave a gap in its
    series. A smaller stack that differs from a larger one in size alone,
    whose inputs' headers do not describe their own pixel data
    (:func:`input_misfit`), joins the larger one at its place, where it is
    left blank and named like a slice that could not be decoded.

    Parameters
    ----------
    stacks : list of list of int
        :func:`~viewerlib.volume.geometry.split_into_stacks` of `frames`.
    frames : sequence of (header, frame_index, input_index)
        Every frame, as read_series lists them.
    sources : sequence
        The inputs, by input index.
    keys, geometries : sequence
        Stack key and geometry of each frame.

    Returns
    -------
    stacks : list of list of int
        The stacks, the emptied ones dropped.
    misfits : set of int
        The frames moved (indexes into `frames`): their headers describe no
        stack, and no volume takes its rows, columns or type from them.
    """
    misfits: set[int] = set()
    if len(stacks) < 2:
        return stacks, misfits

    def loose(key: tuple[Any, ...]) -> tuple[Any, ...]:
        return key[:_SIZE.start] + key[_SIZE.stop:]

    checked: dict[int, bool] = {}
    for stack in sorted(stacks, key=len):
        key = keys[stack[0]]
        homes = [other for other in stacks if len(other) > len(stack)
                 and loose(keys[other[0]]) == loose(key)
                 and keys[other[0]][_SIZE] != key[_SIZE]]
        if not homes:
            continue
        home = max(homes, key=len)
        geometry = geometries[home[0]]
        normal = None if geometry is None else geometry.normal
        taken = ({_place(geometries[i], normal) for i in home} if normal is not None
                 else set())
        for frame_id in list(stack):
            header, _, input_index = frames[frame_id]
            if input_index not in checked:
                problem = input_misfit(header, sources[input_index])
                checked[input_index] = problem is not None
            if not checked[input_index]:
                continue
            place = None if normal is None else _place(geometries[frame_id], normal)
            if place is not None and any(
                    other is not None and abs(other - place) < _SAME_PLACE_MM
                    for other in taken):
                continue  # its place is taken: it is no missing slice of `home`
            stack.remove(frame_id)
            home.append(frame_id)
            taken.add(place)
            misfits.add(frame_id)
    if misfits:
        logger.info("%d frame(s) whose header does not fit their pixel data kept "
                    "in their series' stack", len(misfits))
    return [stack for stack in stacks if stack], misfits


def others_in_gaps(
    stack: list[int], stacks: list[list[int]],
    keys: Sequence[tuple[Any, ...]], geometries: Sequence[FrameGeometry | None],
    name: Callable[[int], str],
) -> str:
    """Name the frames of other stacks of the series that lie in `stack`'s gaps.

    Parameters
    ----------
    stack, stacks : list
        One stack, and every stack (frame indexes).
    keys, geometries : sequence
        Stack key and geometry of each frame.
    name : callable
        The name of a frame's input, for a message.

    Returns
    -------
    str
        Empty when no frame of another stack of the same series and frame of
        reference lies between two of `stack`'s slices; else what lies there
        and why it is apart, to say why the gaps are uneven, and whether
        other wide gaps hold nothing (a file may be missing there).
    """
    first = geometries[stack[0]]
    if len(stacks) < 2 or len(stack) < 2 or first is None:
        return ""
    normal = first.normal
    places = sorted(p for i in stack if (p := _place(geometries[i], normal)) is not None)
    if len(places) < 2:
        return ""
    along = np.array(places)
    found: dict[str, list[str]] = {}
    inside: list[float] = []
    for other in stacks:
        if other is stack or keys[other[0]][:2] != keys[stack[0]][:2]:
            continue
        for frame_id in other:
            place = _place(geometries[frame_id], normal)
            if (place is None or not along[0] < place < along[-1]
                    or np.min(np.abs(along - place)) < _SAME_PLACE_MM):
                continue
            why = stack_difference(keys[stack[0]], first, keys[frame_id],
                                   geometries[frame_id])
            found.setdefault(why, []).append(name(frame_id))
            inside.append(place)
    if not found:
        return ""
    text = "; ".join(f"{_listed(dict.fromkeys(names))} of this series, set apart by "
                     f"{why}" for why, names in found.items())
    # A gap wider than the usual step with nothing set apart in it still has
    # the usual causes.
    gaps = np.diff(along)
    wide = set((np.flatnonzero(gaps > 1.5 * np.median(gaps)) + 1).tolist())
    if wide - set(np.searchsorted(along, inside).tolist()):
        text += ("; other wide gaps hold no file of this series (a file missing "
                 "from the series, or a variable pitch)")
    return text


def _listed(names: Sequence[str] | dict[str, None]) -> str:
    names = list(names)
    shown = ", ".join(names[:_NAMED])
    return shown + (f" and {len(names) - _NAMED} more" if len(names) > _NAMED else "")


def _describe(volume: Volume) -> tuple[tuple[Any, ...], FrameGeometry | None]:
    """Stack key and geometry of a slice of `volume` that was decoded."""
    blank = set(volume.missing_slices)
    slot = next((k for k in range(len(volume.datasets)) if k not in blank), 0)
    header, frame_index = volume.datasets[slot], volume.source_frames[slot][1]
    geometry = frame_geometry(header, frame_index)
    return stack_key(header, frame_index, geometry=geometry), geometry


def _files_of(volume: Volume, name: Callable[[int], str]) -> tuple[int, str]:
    inputs = list(dict.fromkeys(volume.source_order))
    return len(inputs), _listed([name(i) for i in inputs])


def set_apart_notes(volumes: Sequence[Volume], name: Callable[[int], str]) -> None:
    """Note in each volume but the largest why its stack is one of its own.

    Parameters
    ----------
    volumes : sequence of Volume
        Every volume read_series built from one set of inputs.
    name : callable
        The name of an input, by its index, for a message.
    """
    if len(volumes) < 2:
        return
    largest = max(volumes, key=lambda v: v.voxels.shape[0])
    key, geometry = _describe(largest)
    count, _ = _files_of(largest, name)
    for volume in volumes:
        if volume is largest:
            continue
        other_key, other_geometry = _describe(volume)
        files, names = _files_of(volume, name)
        note = (f"Set apart: this stack's {files} file(s) ({names}) are not in the "
                f"largest stack of these inputs ({count} file(s)), for "
                f"{stack_difference(key, geometry, other_key, other_geometry)}")
        logger.info("a stack of %d file(s) set apart", files)
        volume.warnings.append(note)


def uneven_where_left_out(shown: Volume, others: Sequence[Volume]
                          ) -> tuple[float, float] | None:
    """The uneven gaps of `shown` when slices of the stacks left out fill them.

    A slice of the series written with another orientation (or set apart for
    any other reason) leaves a gap where it lies in the stack shown. When the
    places of the slices left out, put back between the slices of `shown`,
    make its gaps even, the gap is theirs: it is told with them, once
    (:func:`left_out_note`), not as a spacing problem of its own.

    Parameters
    ----------
    shown : Volume
        The stack shown.
    others : sequence of Volume
        The stacks left out; those of another (0020,0052) *Frame of Reference
        UID* lie in another coordinate system and count for nothing.

    Returns
    -------
    tuple of float or None
        The smallest and largest gap (mm) of `shown`; None when its gaps are
        even, or when the slices left out do not make them even (a file may
        be missing as well, or the pitch varies).
    """
    _, geometry = _describe(shown)
    if geometry is None or shown.voxels.shape[0] < 2:
        return None
    normal = geometry.normal
    places = np.asarray(shown.slice_positions_mm, dtype=float) @ normal
    gaps = np.abs(np.diff(places))
    if gaps_are_even(gaps):
        return None
    low, high = float(np.min(places)), float(np.max(places))
    inside = [
        place for other in others
        if other.frame_of_reference_uid == shown.frame_of_reference_uid
        for place in (np.asarray(other.slice_positions_mm, dtype=float) @ normal
                      ).tolist()
        if low < place < high and np.min(np.abs(places - place)) >= _SAME_PLACE_MM]
    if not inside or not gaps_are_even(np.diff(np.sort([*places, *inside]))):
        return None
    return float(gaps.min()), float(gaps.max())


def add_left_out_note(shown: Volume, others: Sequence[Volume],
                      name: Callable[[int], str], how: str) -> None:
    """Add to `shown`'s warnings the note on the stacks left out, if any.

    Every route that shows one stack of a series (a folder, a file, a stream)
    tells the others so: :func:`left_out_note`, which also tells the uneven
    gaps the slices left out fill (:func:`uneven_where_left_out`), in place of
    the note on uneven spacing: one file, told once.
    """
    if not others:
        return
    from viewerlib.volume.volume import UNEVEN_SPACING  # volume imports this module

    gaps = uneven_where_left_out(shown, others)
    note = left_out_note(shown, others, name, how, gaps_mm=gaps)
    logger.warning("%d other stack(s) of the series not shown", len(others))
    if gaps is not None:
        shown.warnings = [w for w in shown.warnings if not w.startswith(UNEVEN_SPACING)]
    shown.warnings.append(note)


def left_out_note(shown: Volume, others: Sequence[Volume],
                  name: Callable[[int], str], how: str,
                  gaps_mm: tuple[float, float] | None = None) -> str:
    """What a reader is told of the stacks not shown, and how to see them.

    Parameters
    ----------
    shown : Volume
        The stack shown (the largest).
    others : sequence of Volume
        The stacks of the same inputs left out.
    name : callable
        The name of an input, by its index, for a message.
    how : str
        How to get every stack, e.g. ``viewerlib.read_series(folder)``.
    gaps_mm : tuple of float, optional
        :func:`uneven_where_left_out`: the smallest and largest gap of
        `shown`, whose uneven gaps the slices left out fill. The note then
        says so, and what it means for measurements.

    Returns
    -------
    str
        Starts "Not shown: N file(s) in M other stack(s)": the files of each
        stack (first few), why it is apart, where it leaves the stack shown
        uneven (with `gaps_mm`), and what to do.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset
    >>> def stack(first, count, rows):
    ...     ds = Dataset()
    ...     ds.Rows, ds.Columns = rows, 8
    ...     return SimpleNamespace(voxels=np.zeros((count, rows, 8)),
    ...                            missing_slices=[], datasets=[ds] * count,
    ...                            source_order=list(range(first, first + count)),
    ...                            source_frames=[(i, 0) for i in range(count)])
    >>> note = left_out_note(stack(0, 3, 8), [stack(3, 1, 4)], str,
    ...                      "read_series(folder)")
    >>> print(note.split(". Shown")[0])
    Not shown: 1 file(s) in 1 other stack(s) of this series
    """
    count, _ = _files_of(shown, name)
    key, geometry = _describe(shown)
    files = 0
    # Stacks apart for one reason (single slices of other orientations, say)
    # are named together, the reason once.
    by_reason: dict[str, list[str]] = {}
    for volume in others:
        other_key, other_geometry = _describe(volume)
        many, names = _files_of(volume, name)
        files += many
        by_reason.setdefault(
            stack_difference(key, geometry, other_key, other_geometry), []).append(names)
    parts = [f"{', '.join(names)} ({why})" for why, names in by_reason.items()]
    slices = shown.voxels.shape[0]
    alike = sum(volume.voxels.shape[0] == slices for volume in others)
    # max() keeps the first of stacks alike in size (two echoes, say): say so.
    shown_is = (f"the first of {alike + 1} stacks of {slices} slices, {count} file(s)"
                if alike else f"the largest stack, {count} file(s)")
    # The gap the files left out leave is told with them: one note, not two.
    gap = ("" if gaps_mm is None else
           f". Where {'it lies' if files == 1 else 'they lie'}, the stack shown has "
           f"uneven slice spacing ({gaps_mm[0]:.3f} to {gaps_mm[1]:.3f} mm): "
           "measurements and MPR use each slice's true position "
           "(slice_positions_mm), and the affine's mean step is only an "
           "approximation")
    return (
        f"Not shown: {files} file(s) in {len(others)} other stack(s) of this "
        f"series. Shown is {shown_is}; left out: "
        + "; ".join(parts) + gap
        + f". To see a stack left out, {how} returns each stack as a volume, and "
        "viewerlib.open(volume) shows one"
    )


def relative_name(path: str | os.PathLike[str], folder: str | os.PathLike[str]
                  ) -> str:
    """`path` relative to `folder` when it lies inside it, else as given.

    Examples
    --------
    >>> relative_name("/media/cd/DICOM/IM1", "/media/cd")
    'DICOM/IM1'
    """
    inside = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
    return os.fspath(path) if inside.startswith(os.pardir) else inside


__all__ = ["RETRIEVED_STACKS", "add_left_out_note", "input_misfit", "left_out_note",
           "others_in_gaps", "rejoin_misfits", "relative_name", "set_apart_notes",
           "uneven_where_left_out"]
