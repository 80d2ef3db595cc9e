"""The stack viewer: scroll a series slice by slice, window/level by dragging.

The kernel owns the pixels. Modality values (HU for CT) travel to the browser as binary
widget buffers, never base64 inside JSON, and the browser windows them with the linear
function of PS3.3 C.11.2.1.2.1, so dragging the window needs no round trip. Nothing is
written to browser storage, and the notebook's saved widget state holds no image data
(the frames are sent as messages, not as synced traits).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

if TYPE_CHECKING:
    from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

_FRONT_END = Path(__file__).with_name("stack.js")
# Slices per message while the rest of the series streams in after the first one.
_SLICES_PER_MESSAGE = 8

# Presets a radiologist expects on a CT (center, width) in HU, with their names.
CT_WINDOW_PRESETS: tuple[tuple[str, float, float], ...] = (
    ("Brain", 40.0, 80.0),
    ("Stroke", 32.0, 8.0),
    ("Subdural", 75.0, 215.0),
    ("Bone", 600.0, 2800.0),
    ("Lung", -600.0, 1500.0),
    ("Abdomen", 50.0, 400.0),
    ("Liver", 60.0, 160.0),
)


def orientation_labels(affine: np.ndarray) -> dict[str, str]:
    """Patient-direction letters at the four edges of a slice drawn rows down.

    Parameters
    ----------
    affine : numpy.ndarray
        4x4 matrix from (slice, row, column, 1) indexes to patient LPS millimetres.

    Returns
    -------
    dict
        Letters for the ``left``, ``right``, ``top`` and ``bottom`` edges, e.g. ``'R'``
        on the left edge of an axial slice seen from the feet.

    Examples
    --------
    >>> axial = np.eye(4)
    >>> axial[:3, :3] = [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    >>> orientation_labels(axial)
    {'left': 'R', 'right': 'L', 'top': 'A', 'bottom': 'P'}
    """
    column_direction = affine[:3, 2]
    row_direction = affine[:3, 1]
    return {
        "left": _direction_letters(-column_direction),
        "right": _direction_letters(column_direction),
        "top": _direction_letters(-row_direction),
        "bottom": _direction_letters(row_direction),
    }


def _direction_letters(vector: np.ndarray) -> str:
    # PS3.3 C.7.6.1.1.1: +x is patient left, +y posterior, +z head.
    letters = (("R", "L"), ("A", "P"), ("F", "H"))
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        return ""
    unit = vector / norm
    order = np.argsort(-np.abs(unit))
    text = ""
    for axis in order:
        if abs(unit[axis]) < 0.25:
            break
        text += letters[axis][1 if unit[axis] > 0 else 0]
    return text


class StackViewer(anywidget.AnyWidget):
    """Scroll through the slices of one volume, with window/level and overlays.

    Parameters
    ----------
    voxels : numpy.ndarray
        Modality values (slices, rows, columns), for example Hounsfield units.
    spacing_mm : sequence of float
        (slice, row, column) spacing in millimetres; row and column set the aspect ratio.
    affine : numpy.ndarray, optional
        4x4 index-to-patient (LPS) matrix for the orientation markers.
    overlay : dict of str, optional
        Texts for the corners: ``patient``, ``study``, ``series`` and so on. They are
        shown as text, never as HTML.
    window : (float, float), optional
        (center, width) to start with; the file's first preset otherwise.
    presets : sequence of (str, float, float), optional
        Named (center, width) pairs offered as buttons.
    invert : bool
        Show white as black, as (0028,0004) *Photometric Interpretation* MONOCHROME1
        asks, applied after the window.
    slice_positions_mm : sequence of float, optional
        Position of each slice along the slice normal, for the overlay.
    """

    _esm = _FRONT_END
    #: The volume shown, when opened from one: voxels as numpy with their geometry.
    volume: Volume | None = None
    slice_index = traitlets.Int(0).tag(sync=True)
    number_of_slices = traitlets.Int(1).tag(sync=True)
    rows = traitlets.Int(1).tag(sync=True)
    columns = traitlets.Int(1).tag(sync=True)
    pixel_spacing_mm = traitlets.List(traitlets.Float(), [1.0, 1.0]).tag(sync=True)
    slice_thickness_mm = traitlets.Float(0.0).tag(sync=True)
    slice_positions_mm = traitlets.List(traitlets.Float(), []).tag(sync=True)
    window_center = traitlets.Float(40.0).tag(sync=True)
    window_width = traitlets.Float(400.0).tag(sync=True)
    invert = traitlets.Bool(False).tag(sync=True)
    presets = traitlets.List([]).tag(sync=True)
    overlay = traitlets.Dict({}).tag(sync=True)
    orientation = traitlets.Dict({}).tag(sync=True)
    value_unit = traitlets.Unicode("").tag(sync=True)
    zoom = traitlets.Float(0.0).tag(sync=True)  # 0 = fit to the panel
    slices_loaded = traitlets.Int(0).tag(sync=True)

    def __init__(self, voxels: np.ndarray, spacing_mm: Sequence[float],
                 affine: np.ndarray | None = None, overlay: dict[str, str] | None = None,
                 window: tuple[float, float] | None = None,
                 presets: Sequence[tuple[str, float, float]] = (),
                 invert: bool = False, slice_positions_mm: Sequence[float] = (),
                 value_unit: str = "", **kwargs: Any) -> None:
        voxels = np.asarray(voxels)
        if voxels.ndim == 2:
            voxels = voxels[np.newaxis]
        if voxels.ndim != 3:
            raise ValueError(
                f"voxels must have shape (slices, rows, columns), not {voxels.shape}")
        self._voxels = _transferable(voxels)
        presets = [[str(name), float(c), float(w)] for name, c, w in presets]
        if window is None:
            window = (presets[0][1], presets[0][2]) if presets else _data_window(voxels)
        super().__init__(
            number_of_slices=voxels.shape[0], rows=voxels.shape[1],
            columns=voxels.shape[2],
            pixel_spacing_mm=[float(spacing_mm[1]), float(spacing_mm[2])],
            slice_thickness_mm=float(spacing_mm[0]),
            slice_positions_mm=[float(p) for p in slice_positions_mm],
            window_center=float(window[0]), window_width=float(window[1]),
            presets=presets, invert=invert, overlay=dict(overlay or {}),
            orientation=orientation_labels(affine) if affine is not None else {},
            value_unit=value_unit, slice_index=voxels.shape[0] // 2, **kwargs)
        self.on_msg(self._handle_message)

    @classmethod
    def from_volume(cls, volume: Volume, **kwargs: Any) -> StackViewer:
        """Open a :class:`viewerlib.volume.volume.Volume` in the stack viewer.

        The file's own windows come first as presets (with their (0028,1055) *Window
        Center & Width Explanation*), then, for CT, the usual clinical ones.
        """
        from viewerlib.pipeline.presentation import should_invert

        header = volume.datasets[0] if volume.datasets else None
        presets = [(preset.explanation or f"File {number}", preset.center, preset.width)
                   for number, preset in enumerate(volume.window_presets, start=1)]
        if volume.modality == "CT":
            named = {name.upper() for name, _, _ in presets}
            presets += [p for p in CT_WINDOW_PRESETS if p[0].upper() not in named]
        kwargs.setdefault("overlay", overlay_texts(header) if header is not None else {})
        # MONOCHROME1 and an INVERSE Presentation LUT Shape: white is low.
        kwargs.setdefault("invert", should_invert(header) if header is not None else False)
        kwargs.setdefault("value_unit", "HU" if volume.modality == "CT" else "")
        kwargs.setdefault("window", (volume.default_window.center,
                                     volume.default_window.width))
        # Position of each slice along its normal, as scanners print Slice Location.
        normal = volume.affine[:3, 0] / np.linalg.norm(volume.affine[:3, 0])
        positions = np.asarray(volume.slice_positions_mm, dtype=float) @ normal
        viewer = cls(volume.voxels, volume.spacing_mm, affine=volume.affine,
                     presets=presets, slice_positions_mm=positions.tolist(), **kwargs)
        viewer.volume = volume
        return viewer

    @traitlets.validate("window_width")
    def _valid_width(self, proposal: dict[str, Any]) -> float:
        # PS3.3 C.11.2.1.2: Window Width shall be >= 1.
        return max(1.0, float(proposal["value"]))

    @traitlets.validate("slice_index")
    def _valid_slice(self, proposal: dict[str, Any]) -> int:
        return int(min(max(0, proposal["value"]), self.number_of_slices - 1))

    @property
    def voxels(self) -> np.ndarray:
        """The modality values shown, (slices, rows, columns)."""
        return self._voxels

    def _handle_message(self, _widget: Any, content: dict[str, Any],
                        _buffers: list[bytes]) -> None:
        if content.get("type") == "ready":
            self._send_series(int(content.get("first", self.slice_index)))
        elif content.get("type") == "need":
            self._send_slices(int(content["start"]), int(content["stop"]))

    def _send_series(self, first: int) -> None:
        # The slice on screen goes first, alone, so the first image paints at once;
        # the rest follows in chunks that fan out from it.
        self._send_slices(first, first + 1)
        for start, stop in _chunks_around(first, self.number_of_slices,
                                          _SLICES_PER_MESSAGE):
            self._send_slices(start, stop)

    def _send_slices(self, start: int, stop: int) -> None:
        start = max(0, start)
        stop = min(self.number_of_slices, stop)
        if start >= stop:
            return
        block = np.ascontiguousarray(self._voxels[start:stop])
        self.send({"type": "slices", "start": start, "stop": stop,
                   "dtype": block.dtype.name}, buffers=[memoryview(block).cast("B")])
        logger.debug("sent slices %d-%d (%d bytes)", start, stop, block.nbytes)

    def __repr__(self) -> str:
        shape = "x".join(str(n) for n in self._voxels.shape)
        return f"StackViewer({shape}, slice {self.slice_index})"


def _transferable(voxels: np.ndarray) -> np.ndarray:
    """Little-endian int16 or float32, the two types the front end reads."""
    if np.issubdtype(voxels.dtype, np.integer):
        low, high = (int(voxels.min()), int(voxels.max())) if voxels.size else (0, 0)
        if low >= -32768 and high <= 32767:
            return np.ascontiguousarray(voxels, dtype="<i2")
    return np.ascontiguousarray(voxels, dtype="<f4")


def _data_window(voxels: np.ndarray) -> tuple[float, float]:
    low, high = float(np.min(voxels)), float(np.max(voxels))
    return (low + high) / 2.0, max(1.0, high - low)


def _chunks_around(first: int, count: int, size: int) -> list[tuple[int, int]]:
    above = [(s, min(s + size, count)) for s in range(first + 1, count, size)]
    below = [(max(0, s - size), s) for s in range(first, 0, -size)]
    chunks = []
    for index in range(max(len(above), len(below))):
        chunks.extend(part[index] for part in (above, below) if index < len(part))
    return chunks


def overlay_texts(header: Any) -> dict[str, str]:
    """Overlay texts from a dataset: patient, study and series identity.

    Values are plain strings; the front end shows them as text, never as HTML.
    """
    def text(keyword: str) -> str:
        value = header.get(keyword, "") if header is not None else ""
        return str(value) if value is not None else ""

    name = text("PatientName").replace("^", " ").strip()
    return {
        "patient": f"{name}  {text('PatientID')}".strip(),
        "study": " ".join(filter(None, (_format_date(text("StudyDate")),
                                        text("StudyDescription")))),
        "series": " ".join(filter(None, (text("Modality"),
                                         f"Se {text('SeriesNumber')}"
                                         if text("SeriesNumber") else "",
                                         text("SeriesDescription")))),
        "institution": text("InstitutionName"),
    }


def _format_date(value: str) -> str:
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value
