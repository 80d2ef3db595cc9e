"""Reading the voxels of a stack: compact headers and decoding in parallel."""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from viewerlib.errors import DecodingError
from viewerlib.pipeline import codecs
from viewerlib.pipeline.decode import dataset_pixel_problem, decode_frame
from viewerlib.pipeline.instance import _read_path
from viewerlib.pipeline.modality import (
    apply_modality_lut,
    clean_stored_values,
    rescale_parameters,
    stored_value_range,
)
from viewerlib.volume.diagnosis import file_damage
from viewerlib.volume.files import FilePixels, tags_of

logger = logging.getLogger(__name__)

Source = str | os.PathLike[str] | Dataset

# (7FE0,0010) Pixel Data, (7FE0,0008) Float and (7FE0,0009) Double Float Pixel Data.
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
# What the volume code reads from a header besides the first: stack keys,
# geometry, pixel description, rescale, windows, padding and identity. Keeping
# only these (about 2 KB instead of 20 to 60 KB per header in pydicom objects)
# keeps an open series close to its raw pixel bytes (issue #4, 1.1x).
_HEADER_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
    "Modality", "ImageType", "InstanceNumber", "AcquisitionNumber",
    "TemporalPositionIdentifier", "EchoNumbers", "Rows", "Columns",
    "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "PlanarConfiguration", "NumberOfFrames",
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "ImagerPixelSpacing", "PixelAspectRatio", "SliceThickness",
    "SpacingBetweenSlices", "SliceLocation", "RescaleSlope", "RescaleIntercept",
    "RescaleType", "ModalityLUTSequence", "WindowCenter", "WindowWidth",
    "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence",
    "PresentationLUTShape", "PresentationLUTSequence", "PixelPaddingValue",
    "PixelPaddingRangeLimit", "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
)
# Below this many file inputs the start-up of worker processes costs more than
# it saves (about 0.3 s per worker, paid once per session).
_MIN_INPUTS_FOR_WORKERS = 8

_pool_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_workers = 0


_HEADER_TAGS: list[int] | None = None


def header_tags() -> list[int]:
    """Return the tags of ``_HEADER_KEYWORDS`` (looked up once)."""
    global _HEADER_TAGS
    if _HEADER_TAGS is None:
        _HEADER_TAGS = [
            int(pydicom.datadict.tag_for_keyword(k))  # type: ignore[arg-type]
            for k in _HEADER_KEYWORDS]
    return _HEADER_TAGS


def compact_header(ds: Dataset) -> Dataset:
    """Return a header holding only the elements a volume needs.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A full header; the elements kept are those of ``_HEADER_KEYWORDS``
        (geometry, pixel description, rescale, windows, padding, identity).

    Returns
    -------
    pydicom.dataset.Dataset
        A new dataset sharing those elements, ``file_meta`` and the original
        encoding; no pixel data.
    """
    # By tag, and as read: a keyword look-up or parsing an element no one reads
    # costs more than keeping the element itself.
    return _header_from(ds, {element.tag: element for tag in header_tags()
                             if (element := ds.get_item(tag)) is not None})


def header_without_pixels(ds: Dataset) -> Dataset:
    """Return a copy of `ds` without its pixel data (elements are shared).

    Elements that pydicom has not parsed yet are taken as read
    (:meth:`pydicom.dataset.Dataset.elements`), with the original encoding, and
    parsed when first used: parsing every element of a full header, private
    groups included, costs several times the decoding of a CT slice and would
    stand between the archive and the first image.
    """
    # keys(): iterating a Dataset gives its elements, parsed.
    return _header_from(ds, {tag: ds.get_item(tag)
                             for tag in ds.keys()  # noqa: SIM118
                             if tag not in _PIXEL_TAGS})


def _header_from(ds: Dataset, elements: dict[Any, Any]) -> Dataset:
    """A dataset of `elements` of `ds`, read the way `ds` was, with its File Meta."""
    header = Dataset(elements)
    implicit, little_endian = ds.original_encoding
    if implicit is not None:
        # A raw element is parsed with the encoding and character set of the
        # dataset that holds it: the one it was read with.
        header.set_original_encoding(implicit, little_endian,
                                     ds.original_character_set)
    if hasattr(ds, "file_meta"):
        header.file_meta = ds.file_meta
    return header


def read_header(source: Source, compact: bool) -> Dataset:
    """Return the header of a path or dataset, never reading the pixel data.

    Parameters
    ----------
    source : path or pydicom.dataset.Dataset
        The instance.
    compact : bool
        If True keep only the elements of :func:`compact_header`.

    Returns
    -------
    pydicom.dataset.Dataset
        The header.
    """
    if isinstance(source, Dataset):
        # A compact header never holds pixel data: no full copy first.
        return compact_header(source) if compact else header_without_pixels(source)
    full: Dataset
    try:
        full = pydicom.dcmread(source, stop_before_pixels=True)
    except pydicom.errors.InvalidDicomError:
        full = header_without_pixels(_read_path(source))
    return compact_header(full) if compact else full


# Every element integer_rescale reads (rescale_parameters, stored_value_range).
RESCALE_TAGS = tags_of((
    "RescaleSlope", "RescaleIntercept", "RescaleType", "BitsStored", "BitsAllocated",
    "PixelRepresentation", "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence"))


def integer_rescale(ds: Dataset, frame_index: int) -> tuple[int, int, int, int]:
    """Return slope, intercept (as integers) and the stored value range of a frame.

    What :func:`modality_into` needs to write a frame into an integer volume,
    whose type :func:`~viewerlib.volume.volume.read_series` chose only when the
    slope and intercept are integers.
    """
    params = rescale_parameters(ds, frame_index)
    return (int(params.slope), int(params.intercept), *stored_value_range(ds))


def modality_into(
    stored: np.ndarray, ds: Dataset, frame_index: int, out: np.ndarray, *,
    rescale: tuple[int, int, int, int] | None = None,
) -> bool:
    """Write the modality values of one frame into `out`, without a wide copy.

    Parameters
    ----------
    stored : numpy.ndarray
        Stored values of the frame.
    ds : pydicom.dataset.Dataset
        Uses the elements of
        :func:`~viewerlib.pipeline.modality.apply_modality_lut`.
    frame_index : int
        Index of the frame, starting at 0.
    out : numpy.ndarray
        (rows, columns) destination, integer or float32.
    rescale : tuple of int, optional
        :func:`integer_rescale` of the frame, when the caller has it.

    Returns
    -------
    bool
        False (and `out` untouched) when `out` is an integer type that cannot
        hold the frame's values; the caller widens and calls again.

    Notes
    -----
    PS3.3 C.11.1.1.2, m * SV + b. For integer slope and intercept the result is
    worked out in `out`'s own type after checking, from the frame's smallest
    and largest stored value, that no value can overflow: exact, and no int64
    temporary of the whole frame.
    """
    if out.dtype.kind == "f":
        out[...] = apply_modality_lut(stored, ds, frame_index)
        return True

    slope, intercept, lowest, highest = (
        integer_rescale(ds, frame_index) if rescale is None else rescale)
    if not stored.size:
        return True
    # The smallest and largest value answer both whether bits above Bits Stored
    # need clearing (PS3.5 8.1.1) and whether `out` holds every result. For
    # unsigned values 0 bounds them from below as well as their minimum does
    # (the rescale is linear): one pass over the frame fewer.
    high = int(stored.max())
    low = 0 if stored.dtype.kind == "u" and lowest == 0 else int(stored.min())
    values = stored
    if low < lowest or high > highest:
        values = clean_stored_values(stored, ds)
        low, high = int(values.min()), int(values.max())
    info = np.iinfo(out.dtype)
    ends = (slope * low + intercept, slope * high + intercept)
    if (min(ends) < info.min or max(ends) > info.max) and low == 0:
        # 0 bounded the values from below, and too widely: the true minimum.
        low = int(values.min())
        ends = (slope * low + intercept, slope * high + intercept)
    if min(ends) < info.min or max(ends) > info.max:
        return False
    if not (_same_bytes(values, out) and info.min <= low and high <= info.max):
        np.copyto(out, values, casting="unsafe")
    # Else `out` already holds the values: read into its own bytes, and each
    # one the same number in either type.
    # A factor beyond `out`'s type (an intercept of -40000 for int16 values)
    # works in int64 and wraps back: the results fit, so they come out exact.
    if slope != 1:
        np.multiply(out, _operand(slope, info), out=out, casting="unsafe")
    if intercept != 0:
        np.add(out, _operand(intercept, info), out=out, casting="unsafe")
    return True


def _operand(value: int, info: np.iinfo) -> int | np.int64:
    """`value` as it can meet an array of `info`'s type in numpy's arithmetic."""
    return value if info.min <= value <= info.max else np.int64(value)


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """True when `a` and `b` are the same bytes, item for item, in native order."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides
            and a.dtype.isnative and b.dtype.isnative)


def decode_input(
    source: Source, frame_indexes: Sequence[int], dtype: str
) -> list[np.ndarray]:
    """Decode frames of one input into modality values (runs in a worker).

    Parameters
    ----------
    source : path or pydicom.dataset.Dataset
        The instance.
    frame_indexes : sequence of int
        Frames to decode, starting at 0.
    dtype : str
        Voxel dtype wanted; a frame that does not fit comes back as int32.

    Returns
    -------
    list of numpy.ndarray
        One (rows, columns) array per frame index.
    """
    return decode_input_checked(source, frame_indexes, dtype)[0]


@dataclass
class FillProblems:
    """What went wrong while filling a volume, by input index.

    Attributes
    ----------
    failed : dict of int to str
        Inputs that could not be read or decoded, and why; their slices are
        left as they were (the caller blanks and flags them).
    doubtful : dict of int to str
        Inputs that decoded, but whose codestream looks damaged (see
        :func:`~viewerlib.pipeline.codecs.codestream_problem`).
    """

    failed: dict[int, str] = field(default_factory=dict)
    doubtful: dict[int, str] = field(default_factory=dict)


def failure_reason(err: Exception) -> str:
    """Return what an input's read or decode failure says, for a warning."""
    if isinstance(err, (DecodingError, ValueError, OSError)):
        return str(err)
    return f"{type(err).__name__}: {err}"


def read_for_decoding(source: Source) -> Dataset:
    """Return the dataset of an input, refusing native pixel data it cannot hold.

    Raises
    ------
    DecodingError
        If the (7FE0,0010) Pixel Data is shorter than the header promises
        because the file is cut short (pydicom reads a file cut inside its
        pixel data without complaint), or if the whole value is not the size
        the header gives (the file was written so; see
        :func:`~viewerlib.pipeline.decode.pixel_data_problem`), or if a file
        is cut short or garbled in its compressed pixel data
        (:func:`~viewerlib.volume.diagnosis.file_damage`).
    ValueError
        If a path is not a readable DICOM file.
    """
    ds = source if isinstance(source, Dataset) else _read_path(source)
    if "PixelData" not in ds and not isinstance(source, Dataset):
        # pydicom reads a file cut inside its compressed pixel data as no data
        # set at all (with a warning of its own): the bytes say what happened.
        damage = file_damage(source)
        if damage:
            raise DecodingError(damage)
    problem = dataset_pixel_problem(ds)
    if problem:
        raise DecodingError(problem)
    return ds


def decode_input_checked(
    source: Source, frame_indexes: Sequence[int], dtype: str
) -> tuple[list[np.ndarray], list[str]]:
    """Like :func:`decode_input`, also returning the decoders' warnings."""
    ds = read_for_decoding(source)
    frames = []
    notes: list[str] = []
    for frame_index in frame_indexes:
        decoded = decode_frame(ds, frame_index)
        notes.extend(decoded.warnings)
        stored = decoded.pixels
        out = np.empty(stored.shape[:2], dtype=dtype)
        if not modality_into(stored, ds, frame_index, out):
            out = np.empty(stored.shape[:2], dtype=np.int32)
            modality_into(stored, ds, frame_index, out)
        frames.append(out)
    return frames, notes


def default_workers() -> int:
    """Return the number of decoding processes used when none is asked for."""
    return max(1, min(os.cpu_count() or 1, 4))


def _shutdown_pool() -> None:
    """Stop the worker processes (at interpreter exit)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """Return the shared pool of `workers` decoding processes, starting it once."""
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=True)
            # spawn: safe in threaded programs (Jupyter kernels); the workers
            # import only viewerlib, not the caller's __main__ state.
            context = multiprocessing.get_context("spawn")
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
            _pool_workers = workers
            logger.debug("Started %d decoding processes", workers)
        return _pool


atexit.register(_shutdown_pool)


def _bounded(
    submit: Callable[[int], Future[tuple[list[np.ndarray], list[str]]]],
    count: int, in_flight: int,
) -> Iterator[tuple[int, tuple[list[np.ndarray], list[str]] | Exception]]:
    """Yield (job, result or its exception) in job order, at most `in_flight` pending.

    Bounding the queue bounds memory: results wait in the parent only while
    the jobs before them finish, never for the whole series. A job's failure
    is handed back, not raised, so it costs only that job.
    """
    pending: dict[int, Future[tuple[list[np.ndarray], list[str]]]] = {}
    next_job = 0
    for job in range(count):
        while next_job < count and len(pending) < in_flight:
            pending[next_job] = submit(next_job)
            next_job += 1
        try:
            yield job, pending.pop(job).result()
        except MemoryError:
            raise
        except Exception as err:  # noqa: BLE001 - reported per input by the caller
            yield job, err


def parallel_route(transfer_syntax: str, workers: int, file_inputs: int) -> str:
    """Return how a stack's frames are decoded: "threads", "processes" or "here".

    Parameters
    ----------
    transfer_syntax : str
        The stack's transfer syntax UID ("" if unknown).
    workers : int
        Parallel decoders asked for.
    file_inputs : int
        Inputs that are paths (datasets in memory never go to processes).

    Returns
    -------
    str
        "threads" when imagecodecs decodes the syntax (it releases the GIL, so
        threads decode in parallel and write straight into the volume);
        "processes" for other compressed syntaxes (pydicom's plugins hold the
        GIL); "here" for one worker, native data (reading it is a copy, which
        parallel workers would only repeat) or too few files.
    """
    if workers <= 1 or not transfer_syntax:
        return "here"
    if transfer_syntax in (pydicom.uid.ImplicitVRLittleEndian,
                           pydicom.uid.ExplicitVRLittleEndian,
                           pydicom.uid.ExplicitVRBigEndian,
                           pydicom.uid.DeflatedExplicitVRLittleEndian):
        return "here"
    if codecs.handles(transfer_syntax):
        return "threads"
    return "processes" if file_inputs >= _MIN_INPUTS_FOR_WORKERS else "here"


def fill_voxels(
    voxels: np.ndarray,
    slots: dict[int, list[tuple[int, int]]],
    sources: Sequence[Source],
    workers: int,
    encapsulated: bool = True,
    transfer_syntax: str = "",
    problems: FillProblems | None = None,
) -> tuple[np.ndarray, bool]:
    """Decode every frame into its slice of `voxels`, in parallel if asked.

    Parameters
    ----------
    voxels : numpy.ndarray
        (slices, rows, columns) destination.
    slots : dict of int to list of (int, int)
        For each input index, the (slice, frame_index) pairs it fills.
    sources : sequence of path or pydicom.dataset.Dataset
        The inputs.
    workers : int
        Parallel decoders (threads or processes, see :func:`parallel_route`);
        1 decodes in this thread.
    encapsulated : bool, optional
        Whether the stack's transfer syntax is compressed (used when
        `transfer_syntax` is not given). Native pixel data is always read
        here: copying a slice out of a worker costs as much as reading it.
    transfer_syntax : str, optional
        The stack's transfer syntax UID; picks the parallel route.
    problems : FillProblems, optional
        When given, an input that cannot be read or decoded is recorded in
        ``problems.failed`` (its slices are left untouched) instead of
        raising, and decoder warnings go to ``problems.doubtful``: one bad
        file costs only its own slices.

    Returns
    -------
    voxels : numpy.ndarray
        `voxels`, or an int32 copy if some values did not fit its type.
    widened : bool
        True when the copy was made.

    Raises
    ------
    ValueError, DecodingError
        Without `problems`: if an input cannot be read or decoded, or a
        frame's shape differs from the stack's.

    Notes
    -----
    Threads write each frame straight into its slice, so nothing beyond the
    volume is held but the frames being decoded. A process returns finished
    slices of the voxel type (pickled), so the parent holds at most
    ``2 * workers`` slices beyond the volume.
    """
    shape = voxels.shape[1:]
    widened = False
    inputs = list(slots.items())
    file_inputs = [i for i, (index, _) in enumerate(inputs)
                   if not isinstance(sources[index], Dataset)]
    if not transfer_syntax and encapsulated:
        transfer_syntax = "encapsulated"  # unknown compressed syntax: processes
    route = parallel_route(transfer_syntax, workers, len(file_inputs))

    def check_shape(index: int, frame_index: int, frame: np.ndarray) -> None:
        if frame.shape[:2] != shape or frame.ndim != 2:
            raise ValueError(
                f"frame_index {frame_index} has shape {frame.shape}, not {shape} "
                "like the rest of its stack; open it on its own with read_instance()"
            )

    def failed(index: int, err: Exception) -> None:
        if problems is None or isinstance(err, MemoryError):
            raise err
        logger.debug("Input %d failed: %s", index, err)
        problems.failed[index] = failure_reason(err)

    def doubtful(index: int, notes: list[str]) -> None:
        if notes and problems is not None:
            problems.doubtful[index] = "; ".join(dict.fromkeys(notes))

    if route == "threads":
        return _fill_with_threads(voxels, inputs, sources, workers, check_shape,
                                  failed, doubtful)

    def store(input_index: int, slot: int, frame_index: int,
              frame: np.ndarray) -> None:
        nonlocal voxels, widened
        check_shape(input_index, frame_index, frame)
        if frame.dtype != voxels.dtype and voxels.dtype.kind in "iu":
            logger.debug("Widening voxels from %s to int32", voxels.dtype)
            voxels = voxels.astype(np.int32)
            widened = True
        voxels[slot] = frame

    if route == "processes":
        pool = _worker_pool(workers)
        dtype = voxels.dtype.str

        def submit(job: int) -> Future[tuple[list[np.ndarray], list[str]]]:
            index, wanted = inputs[file_inputs[job]]
            path = os.fspath(sources[index])  # type: ignore[arg-type]
            return pool.submit(decode_input_checked, path, [f for _, f in wanted],
                               dtype)

        for job, result in _bounded(submit, len(file_inputs), 2 * workers):
            index, wanted = inputs[file_inputs[job]]
            if isinstance(result, Exception):
                failed(index, result)
                continue
            frames, notes = result
            try:
                for frame_index, frame in zip((f for _, f in wanted), frames,
                                              strict=True):
                    check_shape(index, frame_index, frame)
            except ValueError as err:
                failed(index, err)
                continue
            for (slot, frame_index), frame in zip(wanted, frames, strict=True):
                store(index, slot, frame_index, frame)
            doubtful(index, notes)
            del frames, result
        done = set(file_inputs)
    else:
        done = set()

    buffers: dict[str, np.ndarray] = {}
    for position, (index, wanted) in enumerate(inputs):
        if position in done:
            continue
        notes: list[str] = []
        try:
            source = sources[index]
            if isinstance(source, FilePixels) and source.frame_shape == shape:
                # Read by the tight reader, in a plain layout.
                filled = _fill_from_file(source, wanted, voxels, buffers)
                if filled is not None:
                    widened = widened or filled is not voxels
                    voxels = filled
                    continue
            # Frame by frame, straight into the volume: a multi-frame input is
            # never held decoded. The slices of a failed input are blanked by
            # the caller, so a frame written before the failure does no harm.
            ds = read_for_decoding(source)
            for slot, frame_index in wanted:
                frame = decode_frame(ds, frame_index)
                check_shape(index, frame_index, frame.pixels)
                notes.extend(frame.warnings)
                if not modality_into(frame.pixels, ds, frame_index, voxels[slot]):
                    logger.debug("Widening voxels from %s to int32", voxels.dtype)
                    voxels = voxels.astype(np.int32)
                    widened = True
                    modality_into(frame.pixels, ds, frame_index, voxels[slot])
        except Exception as err:  # noqa: BLE001 - one bad input costs only itself
            failed(index, err)
            continue
        doubtful(index, notes)
        del ds
    return voxels, widened


def _fill_from_file(source: FilePixels, wanted: list[tuple[int, int]],
                    voxels: np.ndarray, buffers: dict[str, np.ndarray]
                    ) -> np.ndarray | None:
    """Read a file's frames straight into their slices, and rescale them there.

    Each frame's stored values are read (:meth:`FilePixels.read_frame`) into
    its own slice of `voxels` when the widths agree, else into a buffer (kept
    in `buffers` for the next file), and :func:`modality_into` turns them
    into modality values in place: the pixel data is read once, and never
    held beside the volume.

    Returns
    -------
    numpy.ndarray or None
        `voxels`, or an int32 copy when some values did not fit its type; None
        when the file changed since its header was read (the caller reads it
        the usual way, which reads and checks what it holds now).

    Notes
    -----
    Reading is memory-bound: on two cores, two threads reading files into
    the volume gained nothing reliable over one (see bench/README.md).
    """
    dtype = source.stored_dtype()
    if dtype is None:
        return None
    for slot, frame_index in wanted:
        rescale = None if voxels.dtype.kind == "f" else source.shared_fact(
            "integer rescale", RESCALE_TAGS,
            lambda header, f=frame_index: integer_rescale(header, f), frame_index)
        into = voxels[slot]
        if into.dtype.itemsize != dtype.itemsize:
            buffer = buffers.get(dtype.str)
            if buffer is None or buffer.shape != into.shape:
                buffer = buffers[dtype.str] = np.empty(into.shape, dtype)
            into = buffer
        stored = source.read_frame(frame_index, into)
        if stored is None:
            return None
        if not modality_into(stored, source.header, frame_index, voxels[slot],
                             rescale=rescale):
            logger.debug("Widening voxels from %s to int32", voxels.dtype)
            voxels = voxels.astype(np.int32)
            modality_into(stored, source.header, frame_index, voxels[slot],
                          rescale=rescale)
    return voxels


def _fill_with_threads(
    voxels: np.ndarray,
    inputs: list[tuple[int, list[tuple[int, int]]]],
    sources: Sequence[Source],
    workers: int,
    check_shape: Callable[[int, int, np.ndarray], None],
    failed: Callable[[int, Exception], None],
    doubtful: Callable[[int, list[str]], None],
) -> tuple[np.ndarray, bool]:
    """Decode inputs on `workers` threads, each writing into its own slices.

    A frame whose values do not fit the voxel type is kept aside (with its
    dataset) and written once every thread is done, after widening the whole
    volume once: no thread ever writes into an array being replaced. An input
    that fails is reported through `failed` once the threads are done (the
    caller blanks its slices).
    """
    Misfit = tuple[int, int, np.ndarray, Dataset]

    def read_one(item: tuple[int, list[tuple[int, int]]]
                 ) -> tuple[list[Misfit], list[str], Exception | None]:
        index, wanted = item
        notes: list[str] = []
        misfits: list[Misfit] = []
        try:
            ds = read_for_decoding(sources[index])
            for slot, frame_index in wanted:
                frame = decode_frame(ds, frame_index)
                check_shape(index, frame_index, frame.pixels)
                notes.extend(frame.warnings)
                if not modality_into(frame.pixels, ds, frame_index, voxels[slot]):
                    misfits.append((slot, frame_index, frame.pixels, ds))
        except MemoryError:
            raise
        except Exception as err:  # noqa: BLE001 - one bad input costs only itself
            return [], notes, err
        return misfits, notes, None

    misfits: list[Misfit] = []
    with ThreadPoolExecutor(max_workers=workers,
                            thread_name_prefix="lightbox-decode") as pool:
        for (index, _), (found, notes, error) in zip(
                inputs, pool.map(read_one, inputs), strict=True):
            if error is not None:
                failed(index, error)
                continue
            misfits.extend(found)
            doubtful(index, notes)
    if not misfits:
        return voxels, False
    logger.debug("Widening voxels from %s to int32", voxels.dtype)
    voxels = voxels.astype(np.int32)
    for slot, frame_index, stored, ds in misfits:
        modality_into(stored, ds, frame_index, voxels[slot])
    return voxels, True
