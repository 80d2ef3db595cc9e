"""A volume that fills in while its series streams from a source.

The first instance of the series stream
(:meth:`~viewerlib.sources.base.Source.iter_series`) lays the volume out: its size,
type, windows and place in the patient, and, with the series' instance count, the
number of slices. Archives send a stack in order along the slice normal almost
always, so each instance that follows is decoded straight into the slice its
position predicts, and listeners (the stack viewer) hear of every slice at once;
nothing but the stream stands between the archive and the first image. Each
arrival is checked against the prediction (same stack, position one step further):
the first one that does not fit makes the load ask for the series metadata (one
WADO-RS request, headers only) and lay the slices out from it instead.

When the stream ends, the volume is built by the same code as
:func:`~viewerlib.volume.volume.read_series`, from the headers that actually
arrived, reusing the slices already decoded: the result is what ``read_series`` of
the same instances gives, with no second decode. Nobody is handed a half-filled
array silently: :meth:`SeriesLoad.result` waits for the end of the stream and
raises :class:`~viewerlib.errors.PartialSeriesError`, naming what is missing, when
the series did not arrive whole.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from viewerlib.errors import DecodingError, PartialSeriesError, SourceError
from viewerlib.pipeline.decode import number_of_frames
from viewerlib.sources.base import partial_unlisted
from viewerlib.volume.geometry import (
    FrameGeometry,
    frame_geometry,
    split_into_stacks,
    stack_key,
)
from viewerlib.volume.reading import (
    FillProblems,
    decode_input,
    failure_reason,
    read_header,
)
from viewerlib.volume.stacks import RETRIEVED_STACKS, add_left_out_note, others_in_gaps
from viewerlib.volume.volume import Volume, _build_volume, input_name, is_alert

if TYPE_CHECKING:
    from viewerlib.sources.base import Source

logger = logging.getLogger(__name__)


class _QuietWhileLaying(logging.Filter):
    """Drop the volume module's notes about a layout that is only provisional.

    A layout from one slice always gets "Single slice ..." and the like; those
    notes belong to the final volume, which is built (and noted) again.
    """

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "laying", False)


_quiet = _QuietWhileLaying()
logging.getLogger("viewerlib.volume.volume").addFilter(_quiet)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# The stack code keeps only grayscale stacks (colour images are not volumes).
_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")


def _image_frames(
    headers: Sequence[Dataset | None], datasets: Sequence[Dataset] | None = None
) -> list[tuple[Dataset, int, int]]:
    """(header, frame_index, input_index) of every image frame, as read_series does."""
    frames = []
    for input_index, header in enumerate(headers):
        if header is None or "Rows" not in header or "Columns" not in header:
            continue
        if datasets is not None and not any(
            k in datasets[input_index] for k in _PIXEL_KEYWORDS
        ):
            continue
        for frame_index in range(number_of_frames(header)):
            frames.append((header, frame_index, input_index))
    return frames


def _largest_stack(frames: list[tuple[Dataset, int, int]]) -> list[int] | None:
    """The stack viewerlib.open shows: the first grayscale stack with most frames."""
    stacks = split_into_stacks([(ds, f) for ds, f, _ in frames])
    grayscale = [
        stack
        for stack in stacks
        if str(frames[stack[0]][0].get("PhotometricInterpretation", "")).strip()
        in _GRAYSCALE
    ]
    return max(grayscale, key=len) if grayscale else None


def _zeros(voxels: np.ndarray, *_: object, **__: object) -> tuple[np.ndarray, bool]:
    # The plan's voxels start black: nothing has arrived yet.
    voxels.fill(0)
    return voxels, False


def _metadata_header(ds: Dataset, compact: bool) -> Dataset:
    """A header from WADO-RS metadata, with the File Meta the stack code reads."""
    header = read_header(ds, compact)
    if "TransferSyntaxUID" not in getattr(header, "file_meta", {}):
        # PS3.18 F.2: metadata may carry (0002,0010) at the top level; the plan
        # decodes nothing, so an unknown syntax only needs to be a valid one.
        syntax = ds.get((0x0002, 0x0010))
        header.file_meta = FileMetaDataset()
        header.file_meta.TransferSyntaxUID = (
            str(syntax.value)
            if syntax is not None and syntax.value
            else ExplicitVRLittleEndian
        )
    return header


def _untouched(voxels: np.ndarray, *_: object, **__: object) -> tuple[np.ndarray, bool]:
    # Only the layout is wanted: zeros the system gives lazily take no memory
    # until written, where _zeros writes every page.
    return np.zeros(voxels.shape, voxels.dtype), False


def _provisional(
    stack: list[int], frames: list[tuple[Dataset, int, int]],
    geometry: FrameGeometry | None = None,
    fill: Callable[..., tuple[np.ndarray, bool]] = _zeros,
) -> Volume | None:
    _quiet.local.laying = True
    try:
        # A geometry known already is not worked out again (the first image waits).
        known = None if geometry is None else [geometry]
        return _build_volume(stack, frames, [], 1, fill=fill, frame_geometries=known)
    finally:
        _quiet.local.laying = False


def predicted_volume(first: Dataset, count: int) -> Volume | None:
    """Lay out a volume of `count` slices from the first instance of a stack.

    Parameters
    ----------
    first : pydicom.dataset.Dataset
        The first instance (or its header): single-frame, grayscale, with (0020,0032)
        *Image Position (Patient)* and (0020,0037) *Image Orientation (Patient)*.
    count : int
        Slices expected, e.g. (0020,1209) *Number of Series Related Instances*.

    Returns
    -------
    Volume or None
        Zeroed voxels, the first instance at slice 0, and the slices stacked along
        the normal by the header's (0018,0088) *Spacing Between Slices* or
        (0018,0050) *Slice Thickness* until a second slice gives the true step;
        None when `first` does not meet the conditions above.
    """
    predicted = _predicted(first, count)
    return None if predicted is None else predicted[0]


def _predicted(first: Dataset, count: int) -> tuple[Volume, FrameGeometry] | None:
    """:func:`predicted_volume`, and the geometry of `first` it found."""
    header = read_header(first, compact=False)
    if count < 1 or number_of_frames(header) != 1 or "Rows" not in header:
        return None
    geometry = frame_geometry(header)
    if geometry is None:
        return None
    if str(header.get("PhotometricInterpretation", "")).strip() not in _GRAYSCALE:
        return None
    single = _provisional([0], [(header, 0, 0)], geometry)
    if single is None:
        return None
    steps = np.arange(count, dtype=float)[:, np.newaxis]
    return dataclasses.replace(
        single,
        voxels=np.zeros((count, *single.voxels.shape[1:]), single.voxels.dtype),
        slice_positions_mm=single.affine[:3, 3] + steps * single.affine[:3, 0],
        source_order=list(range(count)),
        source_frames=[(k, 0) for k in range(count)],
        warnings=[],
    ), geometry


def plan_volume(metadata: Sequence[Dataset]) -> tuple[Volume, list[str]]:
    """Lay out the volume of a series from its metadata, before any pixel data.

    Parameters
    ----------
    metadata : sequence of pydicom.dataset.Dataset
        Headers of the instances of one series (WADO-RS metadata), in any order;
        the elements used are those of :func:`~viewerlib.volume.volume.read_series`.

    Returns
    -------
    volume : Volume
        The largest grayscale stack with its geometry, window presets and zeroed
        voxels of the type ``read_series`` would choose; ``source_frames`` index
        into `metadata`.
    sop_instance_uids : list of str
        (0008,0018) *SOP Instance UID* of each item of `metadata`.

    Raises
    ------
    LookupError
        If no item describes a grayscale image.
    """
    headers = [
        _metadata_header(ds, compact=index > 0) for index, ds in enumerate(metadata)
    ]
    frames = _image_frames(headers)
    stack = _largest_stack(frames) if frames else None
    volume = _provisional(stack, frames) if stack is not None else None
    if volume is None:
        raise LookupError(
            "the series metadata describes no grayscale image (only "
            + ", ".join(
                sorted({str(h.get("Modality", "?")) for h in headers}) or ["nothing"]
            )
            + "); open its instances with viewerlib.read_instance instead"
        )
    return volume, [str(h.get("SOPInstanceUID", "")) for h in headers]


#: ``listener(slice_index, modality_values)``, called from the loading thread.
SliceListener = Callable[[int, np.ndarray], None]
#: ``listener(layout, moved)`` when the layout changed; `moved`: slices changed place.
LayoutListener = Callable[[Volume, bool], None]
#: ``listener(volume_or_None, error_or_None)`` once, when the load has ended.
EndListener = Callable[["Volume | None", "BaseException | None"], None]

_workers_lock = threading.Lock()
_work: queue.SimpleQueue[tuple[Callable[[], None], str]] = queue.SimpleQueue()
_idle_workers = 0
# Seconds a thread waits for more work before it ends.
_WORKER_IDLE_S = 60.0


def _run_in_thread(task: Callable[[], None], name: str) -> None:
    """Run `task` in a daemon thread named `name`, without waiting for it to start.

    A thread that finished a task waits a while for the next one, so that a
    series load starts with one queue operation (microseconds), where
    :meth:`threading.Thread.start` waits until the new thread runs (up to
    several milliseconds on a busy machine). A new thread is started only when
    none is waiting. `task` must handle its own errors; anything it raises is
    logged.
    """
    global _idle_workers
    with _workers_lock:
        if _idle_workers:
            _idle_workers -= 1
            _work.put((task, name))
            return
    threading.Thread(target=_worker, args=(task, name), daemon=True,
                     name=name).start()


def _worker(task: Callable[[], None], name: str) -> None:
    global _idle_workers
    while True:
        threading.current_thread().name = name
        try:
            task()
        except Exception:  # a task's failure must not end the thread
            logger.exception("a background task of the series load failed")
        threading.current_thread().name = "viewerlib-idle-worker"
        with _workers_lock:
            _idle_workers += 1
        while True:
            try:
                # _run_in_thread counted this thread as busy again before it put.
                task, name = _work.get(timeout=_WORKER_IDLE_S)
                break
            except queue.Empty:
                with _workers_lock:
                    if _work.empty():
                        _idle_workers -= 1
                        return


# Longest pause of the stream while the first image is put on screen.
_ATTACH_WAIT_S = 2.0
# How far (in slice steps) an arrival may lie from its predicted place.
_PREDICTION_TOLERANCE = 0.25


class SeriesLoad:
    """Stream one series into a volume in a background thread.

    Parameters
    ----------
    source : Source
        Where the series is; its ``iter_series``, ``retrieve_series_metadata``,
        ``search_for_instances`` and ``name`` are used.
    study_instance_uid, series_instance_uid : str
        (0020,000D) and (0020,000E) of the series.

    Notes
    -----
    Call :meth:`start` (the stream opens at once), then :meth:`expect` with the
    series' instance count, then :meth:`wait_for_layout`. Listeners are called
    from the loading thread, with the load's lock held. The whole instances are
    kept until the load has ended, so that a :class:`PartialSeriesError` can hand
    them on as the sources do; after a complete load only the volume remains.
    """

    def __init__(
        self, source: Source, study_instance_uid: str, series_instance_uid: str
    ) -> None:
        self.source = source
        self.study_instance_uid = study_instance_uid
        self.series_instance_uid = series_instance_uid
        #: The current layout: the volume being filled (None before the first).
        self.plan: Volume | None = None
        #: perf_counter() when the load started and when its first slice was placed.
        self.started_at = time.perf_counter()
        self.first_slice_at: float | None = None
        self._lock = threading.RLock()
        self._laid_out = threading.Condition(self._lock)
        self._ended = threading.Event()
        self._cancelled = threading.Event()
        self._count: int | None = None
        self._datasets: list[Dataset] = []
        self._waiting: list[Dataset] = []
        # "predict" (one step per arrival), "plan" (metadata) or "end" (wait).
        self._mode = "predict"
        self._counted = threading.Event()
        self._attached = threading.Event()
        self._metadata_pending = False
        self._metadata_done = threading.Event()
        self._prediction: dict[str, Any] = {}
        self._expected: list[str] | None = None
        self._slot_of: dict[tuple[str, int], int] = {}
        self._filled: np.ndarray = np.zeros(0, dtype=bool)
        #: Instances that arrived but could not be decoded, and why: they cost only
        #: their own slices, which the final volume blanks and flags.
        self._failed: dict[str, str] = {}
        self._widened = False
        self._slice_listeners: list[SliceListener] = []
        self._layout_listeners: list[LayoutListener] = []
        self._end_listeners: list[EndListener] = []
        self._volume: Volume | None = None
        self._error: BaseException | None = None
        self._alerted = False
        self._helpers: list[Callable[[], None]] = []
        self._helpers_started = False
        self._finished = False
        self._stream_iterator: Iterator[Dataset] | None = None
        self._first_failure: BaseException | None = None
        self._reading_on = False

    # -- set-up --------------------------------------------------------------------

    def start(self, first_here: bool = False) -> SeriesLoad:
        """Open the stream; the rest arrives in the background. Return self.

        Parameters
        ----------
        first_here : bool
            Read and lay out the first instance in the calling thread before the
            background thread takes over: on a busy machine, handing the first
            image from one thread to another costs as much as decoding it.
            Errors are kept for the loading thread to report, as usual. When
            the first instance is laid out, the thread starts only at
            :meth:`attached`, :meth:`cancel`, :meth:`result` or a wait that
            must wait: waking it sooner took the processor from the viewer
            being made (milliseconds on a busy 2-core machine).
        """
        self.started_at = time.perf_counter()
        if first_here:
            try:
                self._stream_iterator = iter(
                    self.source.iter_series(
                        self.study_instance_uid, self.series_instance_uid
                    )
                )
                first = next(self._stream_iterator, None)
                if first is not None:
                    self._arrive(first)
            except Exception as err:  # reported by the loading thread
                self._first_failure = err
            if self.plan is not None and self._first_failure is None:
                return self  # the first image is ready: the rest reads on later
        self._read_on()
        return self

    def _read_on(self) -> None:
        """Start the loading thread, once."""
        with self._lock:
            if self._reading_on:
                return
            self._reading_on = True
        # Handed to a waiting thread: starting a new one waits until it runs,
        # which on a busy machine delays the first image by milliseconds.
        _run_in_thread(self._stream, "viewerlib-series-load")

    def expect(self, count: int | None) -> None:
        """Say how many instances the series has (None: unknown, ask for metadata)."""
        with self._lock:
            self._count = count
            if not count:
                self._ask_for_metadata("the instance count is unknown")
            elif (
                self._mode == "predict"
                and self.plan is not None
                and self.plan.voxels.shape[0] != count
            ):
                # The first image was laid out alone; now the stack has its size.
                first = self._datasets[0]
                layout = predicted_volume(first, count)
                assert layout is not None
                layout.slice_positions_mm[0] = self.plan.slice_positions_mm[0]
                uid = str(first.get("SOPInstanceUID", ""))
                self._lay_out(layout, {(uid, 0): 0}, announce=True)
            self._take_waiting()
        self._counted.set()

    def wait_for_first(self, timeout: float | None = None) -> Dataset:
        """Wait for the first instance of the stream and return it.

        Raises
        ------
        TimeoutError
            If nothing arrived within `timeout` seconds.
        Exception
            The load's error, if the stream ended before any instance.
        """
        if not self._datasets:
            self._read_on()
        with self._laid_out:
            arrived = self._laid_out.wait_for(
                lambda: bool(self._datasets) or self._ended.is_set(), timeout
            )
            if self._datasets:
                return self._datasets[0]
        if not arrived:
            raise TimeoutError(
                f"no instance of the series arrived from '{self.source.name}' within "
                f"{timeout} s; the archive may be overloaded: try again"
            )
        self.result()  # raises the load's error
        raise RuntimeError("the series ended empty")  # pragma: no cover

    def wait_for_layout(self, timeout: float | None = None) -> Volume:
        """Wait for the first layout (normally: the first slice placed) and return it.

        Raises
        ------
        TimeoutError
            If nothing arrived within `timeout` seconds.
        Exception
            The load's error, if it ended before any slice could be laid out.
        """
        if self.plan is None:
            self._read_on()
        with self._laid_out:
            arrived = self._laid_out.wait_for(
                lambda: self.plan is not None or self._ended.is_set(), timeout
            )
            if self.plan is not None:
                return self.plan
        if not arrived:
            raise TimeoutError(
                f"no image of the series arrived from '{self.source.name}' within "
                f"{timeout} s; the archive may be overloaded: try again"
            )
        self.result()  # raises the load's error
        raise RuntimeError("the series ended without a layout")  # pragma: no cover

    def after_first_image(self, helper: Callable[[], None]) -> None:
        """Run `helper` in its own thread once the first image is on screen.

        For look-ups the first image need not wait for, such as the instance
        count; the loading thread starts it, so the caller pays nothing.
        """
        with self._lock:
            self._helpers.append(helper)
            started = self._helpers_started
        if started:
            self._start_helpers()

    def _start_helpers(self) -> None:
        with self._lock:
            helpers, self._helpers = self._helpers, []
            self._helpers_started = True
        for helper in helpers:
            _run_in_thread(helper, "viewerlib-series-helper")

    def attached(self) -> None:
        """Say that the first layout is on screen; the stream reads on at full speed."""
        self._attached.set()
        self._read_on()

    def cancel(self) -> None:
        """Stop at the next instance; the load ends without a volume."""
        self._cancelled.set()
        self._attached.set()
        self._read_on()  # the loading thread closes the stream and ends the load
        with self._lock:
            self._count = self._count or 0
            self._mode = "end"
        self._counted.set()

    @property
    def lock(self) -> threading.RLock:
        """Held while listeners run; hold it to read the layout and subscribe."""
        return self._lock

    def add_slice_listener(self, listener: SliceListener) -> None:
        """Call ``listener(slice_index, values)`` per slice placed (past ones too)."""
        with self._lock:
            if self.plan is not None:
                for slot in np.flatnonzero(self._filled):
                    listener(int(slot), self.plan.voxels[slot])
            self._slice_listeners.append(listener)

    def add_layout_listener(self, listener: LayoutListener) -> None:
        """Call ``listener(layout, moved)`` whenever the layout changes."""
        with self._lock:
            self._layout_listeners.append(listener)

    def add_end_listener(self, listener: EndListener) -> None:
        """Call ``listener(volume, error)`` once the load has ended (now if it has)."""
        with self._lock:
            if not self._finished:
                self._end_listeners.append(listener)
                return
        listener(self._volume, self._error)

    # -- state -----------------------------------------------------------------------

    def filled_slots(self) -> list[int]:
        """Slices of the current layout that hold their decoded values."""
        return [int(slot) for slot in np.flatnonzero(self._filled)]

    @property
    def received(self) -> int:
        """Slices placed so far."""
        return int(self._filled.sum())

    @property
    def total(self) -> int:
        """Slices of the current layout (0 before the first)."""
        return int(self._filled.size)

    @property
    def done(self) -> bool:
        """True once the stream has ended, whole or not."""
        return self._ended.is_set()

    @property
    def error(self) -> BaseException | None:
        """Why the load failed, once it has ended; None while it runs or if whole."""
        return self._error

    def result(self, timeout: float | None = None, *, warn: bool = True) -> Volume:
        """Wait for the whole volume and return it.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; forever when None.
        warn : bool, optional
            Whether to warn about the volume's notes (below); a viewer that
            shows them on its alert line passes False, as ``read_series``
            takes ``warn=False``.

        Returns
        -------
        Volume
            Equal to what :func:`~viewerlib.volume.volume.read_series` builds from
            the instances that arrived (voxels, geometry, windows, warnings), for
            the largest stack of the series; when there are others (a localizer,
            say), a note in its warnings names them, as
            :func:`viewerlib.viewer.open_volume` does.

        Raises
        ------
        TimeoutError
            If the series is still arriving after `timeout`.
        viewerlib.errors.PartialSeriesError
            If some instances did not arrive; ``.missing_sop_instance_uids`` names
            them and ``.datasets`` holds those that did.
        viewerlib.errors.SourceError
            If the archive failed before sending any instance of the series.

        Warns
        -----
        UserWarning
            Once, for the geometry work-arounds ``read_series`` warns about,
            unless `warn` is False.
        """
        # Whoever waits for the whole volume wants it at full speed.
        self._attached.set()
        self._read_on()
        if not self._ended.wait(timeout):
            raise TimeoutError(
                f"{self.received} of {self.total} slices have arrived after "
                f"{timeout} s; wait longer, or check the archive '{self.source.name}'"
            )
        if self._error is not None:
            raise self._error
        assert self._volume is not None
        if warn and not self._alerted:
            self._alerted = True
            for message in self._volume.warnings:
                if is_alert(message):
                    warnings.warn(message, UserWarning, stacklevel=3)
        return self._volume

    # -- the loading thread ------------------------------------------------------------

    def _stream(self) -> None:
        failure: BaseException | None = None
        try:
            if self._first_failure is not None:
                raise self._first_failure
            stream = self._stream_iterator or iter(
                self.source.iter_series(
                    self.study_instance_uid, self.series_instance_uid
                )
            )
            try:
                while not self._cancelled.is_set():
                    if self.plan is not None and not self._attached.is_set():
                        # The first image goes on screen before more is read:
                        # parsing on now would only slow making the viewer.
                        self._attached.wait(_ATTACH_WAIT_S)
                    self._start_helpers()
                    dataset = next(stream, None)
                    if dataset is None:
                        break
                    self._arrive(dataset)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        except (SourceError, DecodingError, ValueError, OSError) as err:
            failure = err
        except Exception as err:  # the thread must always end the load
            logger.exception("loading the series failed unexpectedly")
            failure = err
        self._end(failure)

    def _arrive(self, dataset: Dataset) -> None:
        with self._lock:
            self._datasets.append(dataset)
            self._waiting.append(dataset)
            self._take_waiting()
            self._laid_out.notify_all()

    def _take_waiting(self) -> None:
        """Place the instances that wait, as far as the layout allows."""
        while self._waiting:
            if (
                self._mode == "predict"
                and self._count is None
                and self._prediction.get("uids")
            ):
                return  # the first image is laid out alone; the count comes soon
            if self._mode == "plan" and self._metadata_pending:
                return  # the metadata is on its way
            if self._mode == "end":
                self._waiting.clear()
                return
            dataset = self._waiting[0]
            if self._mode == "predict" and not self._predict(dataset):
                continue  # the mode changed; look again
            self._waiting.pop(0)
            self._place(dataset)

    def _predict(self, dataset: Dataset) -> bool:
        """Give `dataset` its slot by prediction; False when the prediction fails."""
        uid = str(dataset.get("SOPInstanceUID", ""))
        prediction = self._prediction
        arrival = len(prediction.get("uids", []))
        if arrival == 0:
            predicted = _predicted(dataset, self._count or 1)
            if predicted is None:
                self._ask_for_metadata("the first instance is not a plain slice")
                return False
            layout, geometry = predicted
            # The stack key waits for the second arrival: the first image does not.
            prediction.update(
                uids=[],
                key=None,
                geometry=geometry,
                origin=geometry.position,
                normal=geometry.normal,
                step=None,
                ascending=True,
            )
            self._lay_out(layout, {(uid, 0): 0}, announce=None)
            prediction["uids"].append(uid)
            return True
        assert self._count is not None
        geometry = frame_geometry(dataset)
        if prediction["key"] is None:
            # The layout's header: its elements are converted already.
            assert self.plan is not None
            prediction["key"] = stack_key(self.plan.datasets[0],
                                          geometry=prediction["geometry"])
        problem = ""
        if arrival >= self._count:
            problem = "more instances than the series lists"
        elif (
            geometry is None
            or number_of_frames(dataset) != 1
            or stack_key(dataset, geometry=geometry) != prediction["key"]
        ):
            problem = "an instance of another stack"
        if not problem:
            assert geometry is not None
            offset = geometry.position - prediction["origin"]
            along = float(offset @ prediction["normal"])
            if prediction["step"] is None:
                if abs(along) < 1e-3:
                    problem = "two instances at one position"
                else:
                    self._first_step(offset, along > 0)
            else:
                step_along = float(prediction["step"] @ prediction["normal"])
                if abs(along / step_along - arrival) > _PREDICTION_TOLERANCE:
                    problem = "an instance out of order"
        if problem:
            self._ask_for_metadata(problem)
            return False
        slot = arrival if prediction["ascending"] else self._count - 1 - arrival
        self._slot_of[(uid, 0)] = slot
        prediction["uids"].append(uid)
        assert self.plan is not None and geometry is not None
        self.plan.slice_positions_mm[slot] = geometry.position
        return True

    def _first_step(self, step: np.ndarray, ascending: bool) -> None:
        """The second arrival gives the step; lay out again if the stack descends."""
        assert self.plan is not None and self._count is not None
        prediction = self._prediction
        prediction.update(step=step, ascending=ascending)
        count = self._count
        origin = prediction["origin"]
        slots = np.arange(count, dtype=float)[:, np.newaxis]
        if ascending:
            positions = origin + slots * step
        else:
            positions = origin + (count - 1 - slots) * step
        layout = dataclasses.replace(
            self.plan, affine=self.plan.affine.copy(), slice_positions_mm=positions
        )
        layout.affine[:3, 0] = step if ascending else -step
        layout.affine[:3, 3] = positions[0]
        layout.spacing_mm = (float(np.linalg.norm(step)), *self.plan.spacing_mm[1:])
        first_uid = prediction["uids"][0]
        moved = {(first_uid, 0): 0 if ascending else count - 1}
        self._lay_out(layout, moved, announce=not ascending)

    def _ask_for_metadata(self, reason: str) -> None:
        """Leave prediction; lay the slices out from the series metadata."""
        if self._mode != "predict":
            return
        logger.info(
            "%s: %s; laying the series out from its metadata", self.source.name, reason
        )
        self._mode = "plan"
        self._metadata_pending = True
        self._prediction = {}
        _run_in_thread(self._fetch_plan, "viewerlib-series-metadata")

    def _fetch_plan(self) -> None:
        try:
            self._plan_from_metadata()
        finally:
            self._metadata_done.set()

    def _plan_from_metadata(self) -> None:
        try:
            metadata = self.source.retrieve_series_metadata(
                self.study_instance_uid, self.series_instance_uid
            )
            layout, uids = plan_volume(metadata)
        except (SourceError, LookupError, NotImplementedError, ValueError) as err:
            # Without metadata the slices are laid out when the series is whole.
            logger.info(
                "%s: no series layout from metadata (%s); waiting for the whole series",
                self.source.name,
                type(err).__name__,
            )
            with self._lock:
                self._mode = "end"
                self._metadata_pending = False
                self._waiting.clear()
            return
        slot_of = {
            (uids[input_index], frame_index): slot
            for slot, (input_index, frame_index) in enumerate(layout.source_frames)
        }
        with self._lock:
            if self._mode != "plan":
                return  # cancelled, or the series ended meanwhile
            self._expected = uids
            self._metadata_pending = False
            waiting = {id(d) for d in self._waiting}
            placed = [d for d in self._datasets if id(d) not in waiting]
            self._lay_out(layout, slot_of, announce=True, keep=placed)
            self._take_waiting()

    def _lay_out(
        self,
        layout: Volume,
        slot_of: dict[tuple[str, int], int],
        announce: bool | None,
        keep: Sequence[Dataset] = (),
    ) -> None:
        """Adopt `layout`, moving the slices already decoded to their new slots.

        `announce`: None tells no listener; False says the slices kept their
        places (only positions changed); True that they moved.
        """
        old, old_slot_of, old_filled = self.plan, self._slot_of, self._filled
        filled = np.zeros(layout.voxels.shape[0], dtype=bool)
        if old is not None:
            moves = [
                (old_slot_of[key], slot)
                for key, slot in slot_of.items()
                if key in old_slot_of and old_filled[old_slot_of[key]]
            ]
            same_grid = old.voxels.shape[1:] == layout.voxels.shape[1:]
            if old.voxels.shape == layout.voxels.shape and all(
                a == b for a, b in moves
            ):
                layout.voxels = old.voxels
                filled[[b for _, b in moves]] = True
            else:
                if layout.voxels.dtype != old.voxels.dtype:
                    layout.voxels = layout.voxels.astype(old.voxels.dtype)
                for before, after in moves:
                    if same_grid:
                        layout.voxels[after] = old.voxels[before]
                        filled[after] = True
        merged = dict(
            old_slot_of if old is not None and layout.voxels is old.voxels else {}
        )
        merged.update(slot_of)
        self.plan, self._slot_of, self._filled = layout, merged, filled
        for dataset in keep:
            uid = str(dataset.get("SOPInstanceUID", ""))
            frames = range(number_of_frames(dataset))
            if any((uid, f) in merged and not filled[merged[(uid, f)]] for f in frames):
                self._place(dataset)
        if announce is not None:
            for listener in list(self._layout_listeners):
                listener(layout, announce)
        self._laid_out.notify_all()

    def _place(self, dataset: Dataset) -> None:
        """Decode the frames of `dataset` that belong to the layout into its voxels."""
        assert self.plan is not None
        uid = str(dataset.get("SOPInstanceUID", ""))
        wanted = [
            (self._slot_of[(uid, f)], f)
            for f in range(number_of_frames(dataset))
            if (uid, f) in self._slot_of
        ]
        if not wanted:
            return
        voxels = self.plan.voxels
        try:
            values = decode_input(dataset, [f for _, f in wanted], voxels.dtype.str)
        except Exception as err:  # noqa: BLE001 - any decode failure costs one input
            self._failed[uid] = failure_reason(err)
            logger.warning("an instance of the series could not be decoded; its "
                           "slices will be blank and flagged")
            return
        for (slot, _), frame in zip(wanted, values, strict=True):
            if frame.shape != voxels.shape[1:]:
                raise ValueError(
                    f"instance {uid} has frames of {frame.shape}, not "
                    f"{voxels.shape[1:]} like the rest of its stack; the archive's "
                    "metadata and files disagree: report it to its administrator"
                )
            if frame.dtype != voxels.dtype:
                # Values beyond the planned type: widen once, as read_series does.
                voxels = self.plan.voxels = voxels.astype(np.int32)
                self._widened = True
            voxels[slot] = frame
            self._filled[slot] = True
            if self.first_slice_at is None:
                self.first_slice_at = time.perf_counter()
            for listener in list(self._slice_listeners):
                listener(slot, voxels[slot])

    def _end(self, failure: BaseException | None) -> None:
        error: BaseException | None = None
        volume: Volume | None = None
        # A whole stream is checked against the instance count, and what arrived
        # is placed by a layout from metadata already asked for: wait for both
        # (bounded). A failed stream waits for the count on its way too: with it,
        # the error says how many are missing when they cannot be named.
        if failure is None and not self._cancelled.is_set():
            self._counted.wait(60.0)
        elif self._datasets and not self._cancelled.is_set():
            self._counted.wait(getattr(self.source, "timeout", None) or 20.0)
        if self._metadata_pending:
            self._metadata_done.wait(getattr(self.source, "timeout", 20.0))
        with self._lock:
            # A layout from metadata that comes now would only be replaced again.
            self._mode = "end"
            self._metadata_pending = False
        try:
            if self._cancelled.is_set():
                error = failure or RuntimeError("the series load was cancelled")
            else:
                error = self._problem(failure)
            if error is None:
                with self._lock:
                    volume = self._finish()
        except Exception as err:
            logger.exception("building the streamed volume failed")
            error = err
        with self._lock:
            self._error, self._volume = error, volume
            if volume is not None:
                self._datasets, self._waiting = [], []
            self._finished = True
            listeners, self._end_listeners = self._end_listeners, []
        if error is not None:
            logger.warning(
                "%s: series load ended with %d of %d slices: %s",
                self.source.name,
                self.received,
                self.total,
                type(error).__name__,
            )
        # The listeners (the viewer) hear first: whoever waits on result() then
        # finds the viewer in its final state.
        for listener in listeners:
            listener(volume, error)
        with self._lock:
            self._ended.set()
            self._laid_out.notify_all()

    def _problem(self, failure: BaseException | None) -> BaseException | None:
        """None when the series is whole; else the error that says what is missing."""
        datasets = list(self._datasets)
        if (
            failure is None
            and self._expected is None
            and self._count is not None
            and len(datasets) >= self._count
        ):
            return None
        if not datasets and failure is not None:
            return failure
        expected = self._expected
        if expected is None:
            # Name what is missing from the instance listing, as the sources do.
            try:
                expected = [
                    str(i.SOPInstanceUID)
                    for i in self.source.search_for_instances(
                        self.study_instance_uid, self.series_instance_uid
                    )
                ]
            except SourceError as err:
                # Counted before the archive stopped, perhaps: say how many.
                logger.info("no instance listing to name the missing: %s", err)
                error = partial_unlisted(self.source.name, datasets, failure,
                                         self._count, err)
                error.__cause__ = failure or err
                return error
        arrived = {str(d.get("SOPInstanceUID", "")) for d in datasets}
        missing = [uid for uid in expected if uid not in arrived]
        if not missing and failure is None:
            return None
        reason = f" ({failure})" if failure else ""
        error = PartialSeriesError(
            self.source.name,
            f"only {len(datasets)} of {max(len(expected), len(datasets))} instances "
            f"of the series arrived{reason}; the {len(missing)} missing are listed in "
            "'.missing_sop_instance_uids'. The slices that arrived are shown; open "
            "the series again to retry.",
            datasets,
            missing,
        )
        error.__cause__ = failure
        return error

    def _finish(self) -> Volume:
        """Build the volume from the headers that arrived, as read_series would.

        The volume is the largest grayscale stack; the other stacks of the series
        (a localizer, another orientation) are named in a note of its warnings,
        in the words :func:`viewerlib.open` uses for a series read whole.
        """
        datasets = self._datasets
        headers = [
            read_header(ds, compact=index > 0) for index, ds in enumerate(datasets)
        ]
        frames = _image_frames(headers, datasets)
        # Worked out once: to split the series, sort its stack and name the others.
        geometries = [frame_geometry(ds, f) for ds, f, _ in frames]
        keys = [stack_key(ds, f, geometry=geometry)
                for (ds, f, _), geometry in zip(frames, geometries, strict=True)]
        stacks = split_into_stacks([(ds, f) for ds, f, _ in frames], geometries, keys)
        grayscale = [stack for stack in stacks if str(
            frames[stack[0]][0].get("PhotometricInterpretation", "")).strip()
            in _GRAYSCALE]

        def frame_name(frame_id: int) -> str:
            return input_name(datasets[frames[frame_id][2]])

        stack = max(grayscale, key=len) if grayscale else []
        volume = _build_volume(
            stack, frames, datasets, 1, fill=self._fill, frame_geometries=geometries,
            gap_cause=lambda: others_in_gaps(stack, stacks, keys, geometries,
                                             frame_name)) if stack else None
        if volume is None:
            raise ValueError(
                "none of the instances that arrived has grayscale pixel data; "
                "open them with viewerlib.read_instance instead"
            )

        # The stacks left out are laid out, not decoded: the note needs no pixels.
        others = [other for other in (_provisional(s, frames, fill=_untouched)
                                      for s in grayscale if s is not stack)
                  if other is not None]
        add_left_out_note(volume, others, lambda index: input_name(datasets[index]),
                          RETRIEVED_STACKS)
        return volume

    def _fill(
        self,
        voxels: np.ndarray,
        slots: dict[int, list[tuple[int, int]]],
        sources: Sequence[Dataset],
        workers: int,
        encapsulated: bool,
        transfer_syntax: str = "",
        problems: FillProblems | None = None,
    ) -> tuple[np.ndarray, bool]:
        """fill_voxels from the slices already decoded (a decode only if not placed).

        An input that could not be decoded is reported in `problems` (its slices
        stay as they are, for the volume to blank and flag) or, without it, raises.
        """
        decoded = self.plan.voxels if self.plan is not None else None
        moves = []
        failed: dict[int, str] = {}
        for input_index, wanted in slots.items():
            uid = str(sources[input_index].get("SOPInstanceUID", ""))
            if uid in self._failed:
                failed[input_index] = self._failed[uid]
            for slot, frame_index in wanted:
                planned = self._slot_of.get((uid, frame_index))
                if (planned is not None and not self._filled[planned]
                        and uid not in self._failed):
                    planned = None
                moves.append((slot, planned, input_index, frame_index))
        if (
            decoded is not None
            and decoded.shape == voxels.shape
            and decoded.dtype in (voxels.dtype, np.dtype(np.int32))
            and all(slot == planned for slot, planned, _, _ in moves)
        ):
            # The usual case: the prediction held, the array is the volume. An
            # instance that could not be decoded holds its own slot too (the
            # volume blanks it): it is no reason to lay everything out again.
            if failed and problems is None:
                raise DecodingError(next(iter(failed.values())))
            if problems is not None:
                problems.failed.update(failed)
            return decoded, self._widened
        logger.info("the streamed slices are laid out again for the whole series")
        widened = False
        if (
            decoded is not None
            and decoded.dtype != voxels.dtype
            and voxels.dtype.kind in "iu"
        ):
            voxels, widened = voxels.astype(np.int32), True
        for slot, planned, input_index, frame_index in moves:
            if (
                input_index not in failed
                and planned is not None
                and decoded is not None
                and decoded.shape[1:] == voxels.shape[1:]
            ):
                voxels[slot] = decoded[planned]
                continue
            uid = str(sources[input_index].get("SOPInstanceUID", ""))
            try:
                if uid in self._failed:
                    raise DecodingError(self._failed[uid])
                (frame,) = decode_input(
                    sources[input_index], [frame_index], voxels.dtype.str
                )
            except Exception as err:  # noqa: BLE001 - reported per input below
                if problems is None:
                    raise
                problems.failed[input_index] = failure_reason(err)
                continue
            if frame.dtype != voxels.dtype:
                voxels, widened = voxels.astype(np.int32), True
            voxels[slot] = frame
        return voxels, widened
