"""Reading the voxels of a stack: compact headers and decoding in parallel."""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from viewerlib.pipeline.decode import decode_frame
from viewerlib.pipeline.instance import _read_path
from viewerlib.pipeline.modality import (
    apply_modality_lut,
    clean_stored_values,
    rescale_parameters,
)

logger = logging.getLogger(__name__)

Source = str | os.PathLike[str] | Dataset

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
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
        A new dataset sharing those elements and ``file_meta``; no pixel data.
    """
    header = Dataset()
    for keyword in _HEADER_KEYWORDS:
        if keyword in ds:
            header.add(ds[keyword])
    if hasattr(ds, "file_meta"):
        header.file_meta = ds.file_meta
    return header


def header_without_pixels(ds: Dataset) -> Dataset:
    """Return a copy of `ds` without its pixel data (elements are shared)."""
    header = Dataset()
    for element in ds:
        if element.keyword not in _PIXEL_KEYWORDS:
            header.add(element)
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
        full = header_without_pixels(source)
    else:
        try:
            full = pydicom.dcmread(source, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            full = header_without_pixels(_read_path(source))
    return compact_header(full) if compact else full


def modality_into(
    stored: np.ndarray, ds: Dataset, frame_index: int, out: np.ndarray
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

    values = clean_stored_values(stored, ds)
    params = rescale_parameters(ds, frame_index)
    slope, intercept = int(params.slope), int(params.intercept)
    info = np.iinfo(out.dtype)
    if values.size:
        ends = [slope * int(values.min()) + intercept,
                slope * int(values.max()) + intercept]
        if min(ends) < info.min or max(ends) > info.max:
            return False
    np.copyto(out, values, casting="unsafe")
    if slope != 1:
        np.multiply(out, slope, out=out)
    if intercept != 0:
        np.add(out, intercept, out=out)
    return True


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
    ds = source if isinstance(source, Dataset) else _read_path(source)
    frames = []
    for frame_index in frame_indexes:
        stored = decode_frame(ds, frame_index).pixels
        out = np.empty(stored.shape[:2], dtype=dtype)
        if not modality_into(stored, ds, frame_index, out):
            out = np.empty(stored.shape[:2], dtype=np.int32)
            modality_into(stored, ds, frame_index, out)
        frames.append(out)
    return frames


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
    submit: Callable[[int], Future[list[np.ndarray]]], count: int, in_flight: int
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Yield (job, result) in job order with at most `in_flight` jobs pending.

    Bounding the queue bounds memory: results wait in the parent only while
    the jobs before them finish, never for the whole series.
    """
    pending: dict[int, Future[list[np.ndarray]]] = {}
    next_job = 0
    for job in range(count):
        while next_job < count and len(pending) < in_flight:
            pending[next_job] = submit(next_job)
            next_job += 1
        yield job, pending.pop(job).result()


def fill_voxels(
    voxels: np.ndarray,
    slots: dict[int, list[tuple[int, int]]],
    sources: Sequence[Source],
    workers: int,
    encapsulated: bool = True,
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
        Decoding processes for file inputs; 1 decodes in this process.
    encapsulated : bool, optional
        Whether the stack's transfer syntax is compressed. Native pixel data is
        always read here: copying a slice out of a worker costs as much as
        reading it, so processes would only add work.

    Returns
    -------
    voxels : numpy.ndarray
        `voxels`, or an int32 copy if some values did not fit its type.
    widened : bool
        True when the copy was made.

    Raises
    ------
    ValueError
        If a frame's shape differs from the stack's.

    Notes
    -----
    pylibjpeg's codecs (libjpeg, OpenJPEG, the RLE decoder) hold the GIL while
    decoding, so threads do not decode in parallel; separate processes do. A
    process returns finished slices of the voxel type (pickled), so the parent
    holds at most ``2 * workers`` slices beyond the volume.
    """
    shape = voxels.shape[1:]
    widened = False
    inputs = list(slots.items())
    file_inputs = [i for i, (index, _) in enumerate(inputs)
                   if not isinstance(sources[index], Dataset)]

    def store(input_index: int, slot: int, frame_index: int,
              frame: np.ndarray) -> None:
        nonlocal voxels, widened
        if frame.shape != shape:
            raise ValueError(
                f"Input {input_index} frame_index {frame_index} has shape "
                f"{frame.shape}, not {shape} like the stack"
            )
        if frame.dtype != voxels.dtype and voxels.dtype.kind in "iu":
            logger.debug("Widening voxels from %s to int32", voxels.dtype)
            voxels = voxels.astype(np.int32)
            widened = True
        voxels[slot] = frame

    use_pool = (encapsulated and workers > 1
                and len(file_inputs) >= _MIN_INPUTS_FOR_WORKERS)
    if use_pool:
        pool = _worker_pool(workers)
        dtype = voxels.dtype.str

        def submit(job: int) -> Future[list[np.ndarray]]:
            index, wanted = inputs[file_inputs[job]]
            path = os.fspath(sources[index])  # type: ignore[arg-type]
            return pool.submit(decode_input, path, [f for _, f in wanted], dtype)

        for job, frames in _bounded(submit, len(file_inputs), 2 * workers):
            index, wanted = inputs[file_inputs[job]]
            for (slot, frame_index), frame in zip(wanted, frames, strict=True):
                store(index, slot, frame_index, frame)
            del frames
        done = set(file_inputs)
    else:
        done = set()

    for position, (index, wanted) in enumerate(inputs):
        if position in done:
            continue
        source = sources[index]
        ds = source if isinstance(source, Dataset) else _read_path(source)
        for slot, frame_index in wanted:
            stored = decode_frame(ds, frame_index).pixels
            if stored.shape[:2] != shape or stored.ndim != 2:
                raise ValueError(
                    f"Input {index} frame_index {frame_index} has shape "
                    f"{stored.shape}, not {shape} like the stack"
                )
            if not modality_into(stored, ds, frame_index, voxels[slot]):
                logger.debug("Widening voxels from %s to int32", voxels.dtype)
                voxels = voxels.astype(np.int32)
                widened = True
                modality_into(stored, ds, frame_index, voxels[slot])
        del ds
    return voxels, widened
