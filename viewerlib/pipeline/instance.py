"""One instance through the whole pipeline: decode, modality, VOI, presentation."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from viewerlib.errors import DecodingError, ViewerlibError
from viewerlib.pipeline.color import to_display_rgb
from viewerlib.pipeline.decode import (
    DecodedFrame,
    dataset_pixel_problem,
    decode_frame,
    number_of_frames,
)
from viewerlib.pipeline.display import (
    apply_display_lut,
    apply_voi,
    grayscale_display_lut,
    supports_display_lut,
)
from viewerlib.pipeline.modality import apply_modality_lut, rescale_parameters
from viewerlib.pipeline.presentation import apply_presentation_lut
from viewerlib.pipeline.voi import (
    VOILUTPreset,
    VOIPreset,
    WindowPreset,
    default_window,
    voi_presets,
    window_presets,
)

logger = logging.getLogger(__name__)

_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

Window = tuple[float, float] | WindowPreset | VOILUTPreset
# Display tables kept per instance (one per window and rescale, 64 KB each).
_MAX_CACHED_TABLES = 8


class NotAnImageError(ViewerlibError, ValueError):
    """The input holds no image to display; the message says what it is.

    Raised for files that are not DICOM (the message names the format found:
    JPEG, PNG, PDF, ZIP, empty) and for DICOM objects without pixel data (the
    message names the SOP class: SR, RT Plan, waveform, ...). A ValueError, so
    code that caught ValueError still does.
    """


def _positive_pair(value: Any) -> tuple[float, float] | None:
    """Return the first two values of a spacing element if both are > 0."""
    if value is None:
        return None
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(values) < 2 or values[0] <= 0 or values[1] <= 0:
        return None
    return values[0], values[1]


def pixel_spacing_of(
    ds: Dataset, frame_index: int = 0
) -> tuple[tuple[float, float] | None, str, list[str]]:
    """Return the (row, column) pixel spacing of a frame and where it came from.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses, in this order: (0028,0030) *Pixel Spacing* of the frame's Pixel
        Measures Sequence (Per-frame, then Shared Functional Groups), then top
        level (0028,0030) *Pixel Spacing*, (0018,1164) *Imager Pixel Spacing*
        and (0028,0034) *Pixel Aspect Ratio*.
    frame_index : int, optional
        Index of the frame, starting at 0.

    Returns
    -------
    spacing : tuple of float or None
        (row spacing, column spacing): the distance between the centres of
        adjacent rows, then of adjacent columns (PS3.3 10.7.1.3). In mm, except
        for a Pixel Aspect Ratio, which gives a unitless ratio normalised to a
        column spacing of 1. None when the dataset gives nothing.
    source : str
        The keyword the value came from, or "" for none.
    problems : list of str
        Values found but not usable (e.g. a zero spacing), for the caller to
        report.

    Notes
    -----
    Imager Pixel Spacing is measured at the detector: objects in front of it
    look larger by the geometric magnification, which is not corrected here.
    """
    problems: list[str] = []
    candidates: list[tuple[str, Any]] = []
    for group in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        items = ds.get(group)
        index = frame_index if group.startswith("Per") else 0
        if items and index < len(items) and items[index].get("PixelMeasuresSequence"):
            measures = items[index].PixelMeasuresSequence[0]
            candidates.append(("PixelSpacing", measures.get("PixelSpacing")))
    candidates.append(("PixelSpacing", ds.get("PixelSpacing")))
    candidates.append(("ImagerPixelSpacing", ds.get("ImagerPixelSpacing")))

    for keyword, value in candidates:
        if value is None:
            continue
        pair = _positive_pair(value)
        if pair is not None:
            if len(list(value)) != 2:
                problems.append(
                    f"({keyword}) has {len(list(value))} values, not 2; using the "
                    "first two"
                )
            return pair, keyword, problems
        problems.append(f"({keyword}) value {list(value)} is not two positive numbers")

    ratio = ds.get("PixelAspectRatio")
    pair = _positive_pair(ratio)
    if pair is not None:
        # PS3.3 C.7.6.3.1.7: Pixel Aspect Ratio = row (vertical) \ column size.
        return (pair[0] / pair[1], 1.0), "PixelAspectRatio", problems
    return None, "", problems


@dataclass
class Instance:
    """An instance ready for display, one frame at a time.

    Build it with :func:`read_instance`.

    Attributes
    ----------
    dataset : pydicom.dataset.Dataset
        The instance, with its pixel data.
    warnings : list of str
        Data problems found and worked around (also logged as warnings), and
        signs of damaged pixel data found while decoding a frame (also issued
        once as a UserWarning).
    """

    dataset: Dataset
    warnings: list[str] = field(default_factory=list)
    _display_tables: dict[Any, np.ndarray] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def number_of_frames(self) -> int:
        """Number of frames, from (0028,0008) *Number of Frames* (1 if absent)."""
        return number_of_frames(self.dataset)

    @property
    def photometric_interpretation(self) -> str:
        """(0028,0004) *Photometric Interpretation* of the stored pixels."""
        return str(self.dataset.get("PhotometricInterpretation", "")).strip()

    @property
    def is_grayscale(self) -> bool:
        """True for MONOCHROME1 and MONOCHROME2 (and float pixel data)."""
        return self.photometric_interpretation in _GRAYSCALE or (
            "PixelData" not in self.dataset
        )

    @property
    def pixel_spacing_mm(self) -> tuple[float, float] | None:
        """(row, column) spacing of frame 0, see :func:`pixel_spacing_of`.

        From (0028,0030) *Pixel Spacing* (per-frame or shared functional groups
        first), else (0018,1164) *Imager Pixel Spacing* (at the detector, not
        corrected for magnification), else the ratio of (0028,0034) *Pixel Aspect
        Ratio* normalised to a column spacing of 1 (then not mm). None if the
        file gives none of them; :attr:`pixel_spacing_source` says which.
        """
        return pixel_spacing_of(self.dataset)[0]

    @property
    def pixel_spacing_source(self) -> str:
        """Keyword :attr:`pixel_spacing_mm` came from, or "" when there is none."""
        return pixel_spacing_of(self.dataset)[1]

    @property
    def windows(self) -> list[tuple[float, float, str]]:
        """Every (center, width, explanation) window the file gives for frame 0."""
        return [(p.center, p.width, p.explanation) for p in self.window_presets()]

    def window_presets(self, frame_index: int = 0) -> list[WindowPreset]:
        """Return the file's windows of a frame, see :func:`window_presets`."""
        return window_presets(self.dataset, frame_index)

    def voi_presets(self, frame_index: int = 0) -> list[VOIPreset]:
        """Return the file's windows, then its VOI LUTs, for a frame.

        Each entry has an ``explanation``; pass one to :meth:`display_frame`
        as `window`. See :func:`~viewerlib.pipeline.voi.voi_presets`.
        """
        if not self.is_grayscale:
            return []
        return voi_presets(self.dataset, frame_index)

    def modality_frame(self, frame_index: int = 0) -> np.ndarray:
        """Return one frame in modality units (HU, ...) as float32.

        Parameters
        ----------
        frame_index : int, optional
            Index of the frame, starting at 0.

        Returns
        -------
        numpy.ndarray
            (rows, columns) float32 (float64 for 32-bit integer data, see
            :func:`~viewerlib.pipeline.modality.apply_modality_lut`).

        Raises
        ------
        ValueError
            If the instance is a colour image (the Modality LUT is grayscale only).
        """
        if not self.is_grayscale:
            raise ValueError(
                f"(0028,0004) 'Photometric Interpretation' is "
                f"{self.photometric_interpretation}; modality values exist only for "
                "MONOCHROME1/2 images. Use display_frame() for colour images"
            )
        frame = self._decode(frame_index)
        return apply_modality_lut(frame.pixels, self.dataset, frame_index)

    def _decode(self, frame_index: int) -> DecodedFrame:
        """Decode a frame, recording (once) any sign that its data is damaged."""
        frame = decode_frame(self.dataset, frame_index)
        for problem in frame.warnings:
            if problem not in self.warnings:
                self.warnings.append(problem)
                logger.warning("Damaged pixel data: %s", problem)
                warnings.warn(f"{self._where()}: {problem}", UserWarning,
                              stacklevel=3)
        return frame

    def _where(self) -> str:
        """Name the instance for a message: its file, else its identity."""
        filename = getattr(self.dataset, "filename", None)
        if isinstance(filename, (str, os.PathLike)):
            return repr(os.fspath(filename))
        return (f"instance {self.dataset.get('InstanceNumber', '(no number)')} "
                f"(SOP Instance UID {self.dataset.get('SOPInstanceUID', 'absent')})")

    def display_frame(
        self, frame_index: int = 0, window: Window | None = None
    ) -> np.ndarray:
        """Return one frame as the standard says it should be shown.

        Parameters
        ----------
        frame_index : int, optional
            Index of the frame, starting at 0.
        window : tuple of float, WindowPreset or VOILUTPreset, optional
            (center, width) in modality units, applied with the LINEAR function;
            a :class:`~viewerlib.pipeline.voi.WindowPreset` also gives the
            function; a :class:`~viewerlib.pipeline.voi.VOILUTPreset` applies
            that item of (0028,3010) *VOI LUT Sequence* (see
            :meth:`voi_presets`). Ignored for colour images. Default: the
            file's first window, else its first VOI LUT, else the data range
            without padding.

        Returns
        -------
        numpy.ndarray
            uint8 (rows, columns) for grayscale, (rows, columns, 3) RGB for colour.

        Raises
        ------
        DecodingError
            If the frame cannot be decoded.
        IndexError
            If `frame_index` is outside the frames.
        ValueError
            If `window` is not a valid window.
        NotImplementedError
            For a photometric interpretation not supported.

        Notes
        -----
        Grayscale order, PS3.3 C.11 (Figure C.11-1): Modality LUT, VOI LUT
        (window), then Presentation LUT; MONOCHROME1 is inverted in that last
        step, after the window.
        """
        frame = self._decode(frame_index)
        if not self.is_grayscale:
            if window is not None:
                logger.debug("window ignored for a colour image")
            return to_display_rgb(frame.pixels, frame.photometric_interpretation,
                                  self.dataset)
        return self.display_stored_frame(frame.pixels, frame_index, window)

    def display_stored_frame(
        self, stored: np.ndarray, frame_index: int = 0, window: Window | None = None
    ) -> np.ndarray:
        """Return already decoded grayscale stored values as display values.

        Parameters
        ----------
        stored : numpy.ndarray
            Stored values of frame `frame_index` (from
            :func:`~viewerlib.pipeline.decode.decode_frame`).
        frame_index : int, optional
            Index of the frame, starting at 0.
        window : tuple of float, WindowPreset or VOILUTPreset, optional
            As for :meth:`display_frame`.

        Returns
        -------
        numpy.ndarray
            uint8 (rows, columns).

        Raises
        ------
        ValueError
            If `window` is not a valid window.

        Notes
        -----
        8- and 16-bit stored values go through one cached lookup table that
        holds the whole chain (see
        :func:`~viewerlib.pipeline.display.grayscale_display_lut`), so moving
        the window costs one table build (65,536 values) and then one indexed
        read per pixel. Other data runs the stages one after the other.
        """
        preset = self._window_for(stored, frame_index, window)
        if supports_display_lut(stored):
            key = (rescale_parameters(self.dataset, frame_index), preset,
                   stored.dtype.str)
            table = self._display_tables.get(key)
            if table is None:
                if len(self._display_tables) >= _MAX_CACHED_TABLES:
                    self._display_tables.pop(next(iter(self._display_tables)))
                table = grayscale_display_lut(self.dataset, frame_index, preset,
                                              stored.dtype)
                self._display_tables[key] = table
            return apply_display_lut(stored, table)

        values = apply_modality_lut(stored, self.dataset, frame_index)
        shown = apply_voi(values, self.dataset, preset)
        shown = apply_presentation_lut(shown, self.dataset)
        return np.clip(np.rint(shown), 0, 255).astype(np.uint8)

    def _window_for(
        self, stored: np.ndarray, frame_index: int, window: Window | None
    ) -> VOIPreset:
        """Return the window or VOI LUT item to apply."""
        if window is not None:
            if isinstance(window, WindowPreset):
                return window
            if isinstance(window, VOILUTPreset):
                count = len(self.dataset.get("VOILUTSequence") or [])
                if not 0 <= window.lut_index < count:
                    raise ValueError(
                        f"VOI LUT lut_index {window.lut_index} is not an item of "
                        f"(0028,3010) 'VOI LUT Sequence', which has {count}; use "
                        "one of voi_presets()"
                    )
                return window
            try:
                pair = [float(v) for v in window]
                center, width = pair
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"window must be (center, width) or a WindowPreset, got "
                    f"{window!r}"
                ) from err
            return WindowPreset(center, width)
        presets = self.voi_presets(frame_index)
        if presets:
            return presets[0]
        values = apply_modality_lut(stored, self.dataset, frame_index)
        return default_window(values, self.dataset, frame_index)


# First bytes of files that are often mistaken for DICOM, and what to do with them.
_OTHER_FORMATS = (
    (b"\xff\xd8\xff", "a JPEG image", "add its folder as a folder source, which "
     "shows photos beside the DICOM studies"),
    (b"\x89PNG", "a PNG image", "add its folder as a folder source, which shows "
     "photos beside the DICOM studies"),
    (b"%PDF", "a PDF document", "open it as a document, not as an image"),
    (b"PK\x03\x04", "a ZIP archive", "unpack it first"),
)


def not_dicom_reason(path: str | os.PathLike[str]) -> str | None:
    """Why the file at `path` is no DICOM file at all, when its first bytes say.

    Empty, or another format (JPEG, PNG, PDF, ZIP); None when they do not say.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            start = handle.read(8)
    except OSError as err:
        return f"it cannot be read ({err.strerror})"
    if size == 0:
        return "the file is empty (0 bytes): copy it again from its source"
    for magic, kind, advice in _OTHER_FORMATS:
        if start.startswith(magic):
            return f"it is {kind}, not DICOM: {advice}"
    return None


def missing_file_error(path: str | os.PathLike[str], kind: str = "file",
                       advice: str = "") -> FileNotFoundError:
    """The error for a path where nothing is: a typo as often as a lost file.

    `kind` names what was expected there; `advice` follows "check the path".

    Examples
    --------
    >>> str(missing_file_error("no-such.dcm")).startswith("no file 'no-such.dcm'")
    True
    """
    return FileNotFoundError(
        f"no {kind} {os.fspath(path)!r} (relative paths start at {os.getcwd()}): "
        f"check the path{advice}")


def read_dicom_file(path: str | os.PathLike[str]) -> Dataset:
    """Read a DICOM file, accepting files without preamble and File Meta.

    Raises
    ------
    FileNotFoundError
        If nothing is at `path` (the message says to check it).
    NotAnImageError
        If the file is empty, of another format (JPEG, PDF, ZIP, ...), or not
        DICOM: the message names the file, what it is and what to do.
    """
    if not os.path.lexists(path):
        raise missing_file_error(path)
    reason = not_dicom_reason(path)
    if reason:
        raise NotAnImageError(f"{os.fspath(path)!r} is not a DICOM file: {reason}")
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        logger.debug("No DICOM preamble; reading again with force=True")
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as err:
        raise NotAnImageError(
            f"{os.fspath(path)!r} is not a readable DICOM file: {err}"
        ) from err
    if "SOPClassUID" not in ds and not any(k in ds for k in _PIXEL_KEYWORDS):
        raise NotAnImageError(
            f"{os.fspath(path)!r} is not a DICOM file: it has no preamble, no File "
            "Meta and neither (0008,0016) 'SOP Class UID' nor pixel data; if it "
            "should be DICOM it is damaged: copy it again from its source"
        )
    return ds


_read_path = read_dicom_file


def _syntax_label(ds: Dataset) -> str:
    """Name the transfer syntax of `ds` for a message: its name and UID."""
    meta = getattr(ds, "file_meta", None)
    tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not tsyntax:
        return "transfer syntax unknown: no (0002,0010) Transfer Syntax UID"
    return f"transfer syntax '{tsyntax.name}' ({tsyntax})"


def read_instance(path_or_dataset: str | os.PathLike[str] | Dataset) -> Instance:
    """Return an :class:`Instance` for a file path or a dataset.

    Parameters
    ----------
    path_or_dataset : str, os.PathLike or pydicom.dataset.Dataset
        A DICOM file (files without preamble/File Meta are read with
        ``force=True``) or a dataset with pixel data.

    Returns
    -------
    Instance
        The instance; nothing is decoded until a frame is asked for.

    Raises
    ------
    TypeError
        If `path_or_dataset` is neither a path nor a dataset.
    NotAnImageError
        If the file is not DICOM (the message names what it is), or the
        instance has no pixel data (SR, RT Structure Set, waveform, ...; the
        message names the SOP class). A subclass of ValueError.
    DecodingError
        If the pixel data is cut short; the message names the transfer syntax.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset, FileMetaDataset
    >>> from pydicom.uid import ExplicitVRLittleEndian
    >>> ds = Dataset()
    >>> ds.file_meta = FileMetaDataset()
    >>> ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    >>> ds.Rows, ds.Columns, ds.SamplesPerPixel = 1, 3, 1
    >>> ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    >>> ds.PixelRepresentation = 0
    >>> ds.PhotometricInterpretation = "MONOCHROME1"
    >>> ds.PixelData = bytes([0, 100, 200])
    >>> read_instance(ds).display_frame().tolist()  # data range, then inverted
    [[255, 128, 0]]
    """
    if isinstance(path_or_dataset, Dataset):
        ds = path_or_dataset
    elif isinstance(path_or_dataset, (str, os.PathLike)):
        ds = read_dicom_file(path_or_dataset)
    else:
        raise TypeError(
            "read_instance() takes the path of a DICOM file (str or os.PathLike) "
            f"or a pydicom Dataset, not {type(path_or_dataset).__name__}"
            + (" (None: check the variable holding the path)"
               if path_or_dataset is None else "")
        )

    where = ("the dataset" if isinstance(path_or_dataset, Dataset)
             else repr(os.fspath(path_or_dataset)))
    if not any(k in ds for k in _PIXEL_KEYWORDS) and ("Rows" in ds
                                                      or "SOPClassUID" not in ds):
        raise DecodingError(
            f"{where} ({_syntax_label(ds)}) holds no (7FE0,0010) Pixel Data "
            "although "
            + ("it describes an image ((0028,0010) Rows)" if "Rows" in ds else
               "it ends before even its (0008,0016) SOP Class UID")
            + ": the file is probably cut short; copy it again from its source")
    # Cut short, or a header that asks for more than the whole value holds:
    # the length the file declares tells which.
    problem = dataset_pixel_problem(ds)
    if problem:
        raise DecodingError(f"{where} ({_syntax_label(ds)}): {problem}")
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        sop_class = ds.get("SOPClassUID")
        name = getattr(sop_class, "name", sop_class) or "unknown SOP class"
        raise NotAnImageError(
            f"The instance ({name}) has no (7FE0,0010) 'Pixel Data', so it cannot "
            "be displayed as an image; open it with a viewer for its kind of object"
        )

    instance = Instance(ds)
    problems = pixel_spacing_of(ds)[2]
    for problem in problems:
        logger.warning("Pixel spacing: %s", problem)
    instance.warnings.extend(problems)
    return instance

