"""The stack viewer: scroll a series slice by slice, window/level by dragging.

The kernel owns the pixels. Modality values (HU for CT) travel to the browser as binary
widget buffers, never base64 inside JSON, and the browser windows them with the VOI
functions of PS3.3 C.11.2.1.2 and C.11.2.1.3 (LINEAR, LINEAR_EXACT, SIGMOID), so
dragging the window needs no round trip. The frames stay lossless at every moment:
``bench/widgets.py`` measures that painting them in the browser keeps up with 60 wheel
events a second, so a lossy preview while moving would buy nothing. Measurements come
back as events and are computed in the kernel on the true voxels
(:mod:`viewerlib.volume.measure`). Nothing is written to browser storage, and the
notebook's saved widget state holds no image data (the frames are sent as messages,
not as synced traits).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from viewerlib.pipeline.voi import VOILUTFunction, WindowPreset
from viewerlib.volume import measure
from viewerlib.volume.volume import Volume
from viewerlib.widgets._frontend import front_end

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

_FRONT_END = front_end("stack.js")
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


def transformed_labels(
    labels: dict[str, str],
    rotation: int,
    flip_horizontal: bool = False,
    flip_vertical: bool = False,
) -> dict[str, str]:
    """Edge letters after the display flips the image and then turns it clockwise.

    Parameters
    ----------
    labels : dict of str
        Letters at the ``left``, ``right``, ``top`` and ``bottom`` edges as stored.
    rotation : int
        Clockwise turn in degrees, a multiple of 90.
    flip_horizontal, flip_vertical : bool
        Mirror left-right or top-bottom, applied before the turn.

    Returns
    -------
    dict
        The letters now at each edge.

    Examples
    --------
    >>> stored = {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    >>> transformed_labels(stored, 90)
    {'left': 'P', 'right': 'A', 'top': 'R', 'bottom': 'L'}
    >>> transformed_labels(stored, 0, flip_horizontal=True)["left"]
    'L'
    """
    edges = dict(labels)
    if flip_horizontal:
        edges["left"], edges["right"] = edges.get("right", ""), edges.get("left", "")
    if flip_vertical:
        edges["top"], edges["bottom"] = edges.get("bottom", ""), edges.get("top", "")
    for _ in range((rotation // 90) % 4):
        # A clockwise quarter turn carries the left edge to the top, and so on.
        edges = {
            "top": edges.get("left", ""),
            "right": edges.get("top", ""),
            "bottom": edges.get("right", ""),
            "left": edges.get("bottom", ""),
        }
    return {edge: edges.get(edge, "") for edge in ("left", "right", "top", "bottom")}


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
    #: (0028,1056) *VOI LUT Function*: LINEAR, LINEAR_EXACT or SIGMOID.
    window_function = traitlets.Unicode("LINEAR").tag(sync=True)
    invert = traitlets.Bool(False).tag(sync=True)
    #: [name, center, width, function] rows offered in the preset menu.
    presets = traitlets.List([]).tag(sync=True)
    overlay = traitlets.Dict({}).tag(sync=True)
    #: Edge letters as displayed (after rotation and flips); kept by the kernel.
    orientation = traitlets.Dict({}).tag(sync=True)
    value_unit = traitlets.Unicode("").tag(sync=True)
    zoom = traitlets.Float(0.0).tag(sync=True)  # 0 = fit to the panel
    #: Clockwise display rotation in degrees: 0, 90, 180 or 270.
    rotation = traitlets.Int(0).tag(sync=True)
    flip_horizontal = traitlets.Bool(False).tag(sync=True)
    flip_vertical = traitlets.Bool(False).tag(sync=True)
    #: What a left drag does: auto, window, pan, zoom, distance, angle or region.
    tool = traitlets.Unicode("auto").tag(sync=True)
    cine_fps = traitlets.Float(10.0).tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    #: One dict per measurement: tool, slice_index, points [(row, column)], text,
    #: value (mm, degrees or mean) and unit; computed in the kernel.
    measurements = traitlets.List([]).tag(sync=True)
    #: Viewers with the same non-empty group scroll and window together.
    sync_group = traitlets.Unicode("").tag(sync=True)
    frame_of_reference_uid = traitlets.Unicode("").tag(sync=True)
    #: Offset to the group, in mm when matched by position, else in slices.
    sync_offset_mm = traitlets.Float(0.0).tag(sync=True)
    sync_offset_slices = traitlets.Float(0.0).tag(sync=True)

    def __init__(
        self,
        voxels: np.ndarray,
        spacing_mm: Sequence[float],
        affine: np.ndarray | None = None,
        overlay: dict[str, str] | None = None,
        window: tuple[float, float] | None = None,
        presets: Sequence[Sequence[Any]] = (),
        invert: bool = False,
        slice_positions_mm: Sequence[float] = (),
        value_unit: str = "",
        **kwargs: Any,
    ) -> None:
        voxels = np.asarray(voxels)
        if voxels.ndim == 2:
            voxels = voxels[np.newaxis]
        if voxels.ndim != 3:
            raise ValueError(
                f"voxels must have shape (slices, rows, columns), not {voxels.shape}"
            )
        self._voxels = _transferable(voxels)
        self._spacing_mm = tuple(float(v) for v in spacing_mm)
        self._affine = (
            np.asarray(affine, dtype=float)
            if affine is not None
            else np.diag([*self._spacing_mm, 1.0])
        )
        self._stored_orientation = (
            orientation_labels(affine) if affine is not None else {}
        )
        rows = [_preset_row(preset) for preset in presets]
        if window is None:
            window = (rows[0][1], rows[0][2]) if rows else _data_window(voxels)
        presets = rows
        kwargs.setdefault(
            "window_function",
            rows[0][3] if rows and window == (rows[0][1], rows[0][2]) else "LINEAR",
        )
        super().__init__(
            number_of_slices=voxels.shape[0],
            rows=voxels.shape[1],
            columns=voxels.shape[2],
            pixel_spacing_mm=[float(spacing_mm[1]), float(spacing_mm[2])],
            slice_thickness_mm=float(spacing_mm[0]),
            slice_positions_mm=[float(p) for p in slice_positions_mm],
            window_center=float(window[0]),
            window_width=float(window[1]),
            presets=presets,
            invert=invert,
            overlay=dict(overlay or {}),
            orientation=dict(self._stored_orientation),
            value_unit=value_unit,
            slice_index=voxels.shape[0] // 2,
            **kwargs,
        )
        self.on_msg(self._handle_message)
        self._update_orientation()

    @classmethod
    def from_volume(cls, volume: Volume, **kwargs: Any) -> StackViewer:
        """Open a :class:`viewerlib.volume.volume.Volume` in the stack viewer.

        The file's own windows come first as presets (with their (0028,1055) *Window
        Center & Width Explanation*), then, for CT, the usual clinical ones.
        """
        from viewerlib.pipeline.presentation import should_invert

        header = volume.datasets[0] if volume.datasets else None
        presets: list[list[Any]] = [
            [
                preset.explanation or f"File {number}",
                preset.center,
                preset.width,
                preset.function.value,
            ]
            for number, preset in enumerate(volume.window_presets, start=1)
        ]
        if volume.modality == "CT":
            named = {row[0].upper() for row in presets}
            presets += [
                [*p, "LINEAR"] for p in CT_WINDOW_PRESETS if p[0].upper() not in named
            ]
        else:
            # MR and the rest: windows from the data itself.
            presets += [_percentile_preset(volume.voxels)]
        default = volume.default_window
        kwargs.setdefault(
            "overlay", overlay_texts(header) if header is not None else {}
        )
        # MONOCHROME1 and an INVERSE Presentation LUT Shape: white is low.
        kwargs.setdefault(
            "invert", should_invert(header) if header is not None else False
        )
        kwargs.setdefault("value_unit", "HU" if volume.modality == "CT" else "")
        kwargs.setdefault("window", (default.center, default.width))
        kwargs.setdefault("window_function", default.function.value)
        kwargs.setdefault("frame_of_reference_uid", volume.frame_of_reference_uid)
        if header is not None:
            kwargs.setdefault("cine_fps", _cine_rate(header))
        # Position of each slice along its normal, as scanners print Slice Location.
        normal = volume.affine[:3, 0] / np.linalg.norm(volume.affine[:3, 0])
        positions = np.asarray(volume.slice_positions_mm, dtype=float) @ normal
        viewer = cls(
            volume.voxels,
            volume.spacing_mm,
            affine=volume.affine,
            presets=presets,
            slice_positions_mm=positions.tolist(),
            **kwargs,
        )
        viewer.volume = volume
        return viewer

    @traitlets.validate("window_width")
    def _valid_width(self, proposal: dict[str, Any]) -> float:
        # PS3.3 C.11.2.1.2: Window Width shall be >= 1.
        return max(1.0, float(proposal["value"]))

    @traitlets.validate("window_function")
    def _valid_function(self, proposal: dict[str, Any]) -> str:
        try:
            return VOILUTFunction(str(proposal["value"]).upper()).value
        except ValueError:
            names = ", ".join(f.value for f in VOILUTFunction)
            raise traitlets.TraitError(
                f"(0028,1056) VOI LUT Function {proposal['value']!r} is not one of "
                f"{names}"
            ) from None

    @traitlets.validate("rotation")
    def _valid_rotation(self, proposal: dict[str, Any]) -> int:
        return round(proposal["value"] / 90.0) % 4 * 90

    @traitlets.validate("tool")
    def _valid_tool(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in _TOOLS:
            raise traitlets.TraitError(
                f"tool {proposal['value']!r} is not one of {', '.join(_TOOLS)}"
            )
        return str(proposal["value"])

    @traitlets.validate("cine_fps")
    def _valid_fps(self, proposal: dict[str, Any]) -> float:
        return float(min(max(1.0, proposal["value"]), 120.0))

    @traitlets.observe("rotation", "flip_horizontal", "flip_vertical")
    def _update_orientation(self, _change: Any = None) -> None:
        if self._stored_orientation:
            self.orientation = transformed_labels(
                self._stored_orientation,
                self.rotation,
                self.flip_horizontal,
                self.flip_vertical,
            )

    @traitlets.validate("slice_index")
    def _valid_slice(self, proposal: dict[str, Any]) -> int:
        return int(min(max(0, proposal["value"]), self.number_of_slices - 1))

    @property
    def voxels(self) -> np.ndarray:
        """The modality values shown, (slices, rows, columns)."""
        return self._voxels

    @property
    def measured_volume(self) -> Volume:
        """The volume measurements are made on: the opened one, or the voxels given."""
        if self.volume is None:
            self.volume = _volume_of(self._voxels, self._spacing_mm, self._affine)
        return self.volume

    def measure(
        self, tool: str, slice_index: int, points: Sequence[Sequence[float]]
    ) -> dict[str, Any]:
        """Measure on slice `slice_index` and add the result to :attr:`measurements`.

        Parameters
        ----------
        tool : {'distance', 'angle', 'region'}
            A length between two points, the angle at the second of three points,
            or the statistics inside the ellipse that two corners bound.
        slice_index : int
            Slice the points lie on, starting at 0.
        points : sequence of (row, column)
            Image coordinates, fractions allowed.

        Returns
        -------
        dict
            The measurement as added: ``tool``, ``slice_index``, ``points``, ``value``,
            ``unit`` and the overlay ``text``.

        Raises
        ------
        ValueError
            If the tool is unknown or the points do not fit it.
        """
        volume = self.measured_volume
        points = [[float(r), float(c)] for r, c in points]
        needed = {"distance": 2, "angle": 3, "region": 2}.get(tool)
        if needed is None or len(points) != needed:
            raise ValueError(
                f"tool {tool!r} needs distance (2 points), angle (3 points) "
                f"or region (2 corners); got {len(points)} points"
            )
        at = [(float(slice_index), r, c) for r, c in points]
        result: dict[str, Any] = {
            "tool": tool,
            "slice_index": int(slice_index),
            "points": points,
        }
        if tool == "distance":
            value = measure.distance_mm(volume, *at)
            result.update(value=value, unit="mm", text=f"{value:.1f} mm")
        elif tool == "angle":
            value = measure.angle_deg(volume, at[1], at[0], at[2])
            result.update(value=value, unit="deg", text=f"{value:.1f}°")
        else:
            (r0, c0), (r1, c1) = points
            mask = measure.ellipse_mask(
                volume.voxels.shape[1:],
                ((r0 + r1) / 2, (c0 + c1) / 2),
                (max(abs(r1 - r0) / 2, 0.5), max(abs(c1 - c0) / 2, 0.5)),
            )
            stats = measure.region_statistics(volume, mask, int(slice_index))
            unit = self.value_unit
            result.update(
                value=stats.mean,
                unit=unit,
                sd=stats.sd,
                area_mm2=stats.area_mm2,
                text=(
                    f"mean {stats.mean:.1f} {unit} SD {stats.sd:.1f}\n"
                    f"min {stats.minimum:.0f} max {stats.maximum:.0f}\n"
                    f"area {stats.area_mm2:.1f} mm²"
                ).replace("  ", " "),
            )
        self.measurements = [*self.measurements, result]
        logger.info("measured a %s", tool)
        return result

    def _handle_message(
        self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]
    ) -> None:
        kind = content.get("type")
        if kind == "ready":
            self._send_series(int(content.get("first", self.slice_index)))
        elif kind == "need":
            self._send_slices(int(content["start"]), int(content["stop"]))
        elif kind == "measure":
            try:
                self.measure(
                    str(content["tool"]), int(content["slice_index"]), content["points"]
                )
            except (ValueError, KeyError, TypeError) as err:
                # A degenerate drawing (zero-length ray, empty region) is not an error
                # of the viewer; the overlay just gets no result.
                logger.debug("measurement refused: %s", err)
        elif kind == "clear_measurements":
            self.measurements = []

    def _send_series(self, first: int) -> None:
        # The slice on screen goes first, alone, so the first image paints at once;
        # the rest follows in chunks that fan out from it.
        self._send_slices(first, first + 1)
        for start, stop in _chunks_around(
            first, self.number_of_slices, _SLICES_PER_MESSAGE
        ):
            self._send_slices(start, stop)

    def _send_slices(self, start: int, stop: int) -> None:
        start = max(0, start)
        stop = min(self.number_of_slices, stop)
        if start >= stop:
            return
        block = np.ascontiguousarray(self._voxels[start:stop])
        self.send(
            {"type": "slices", "start": start, "stop": stop, "dtype": block.dtype.name},
            buffers=[memoryview(block).cast("B")],
        )
        logger.debug("sent slices %d-%d (%d bytes)", start, stop, block.nbytes)

    def __repr__(self) -> str:
        shape = "x".join(str(n) for n in self._voxels.shape)
        return f"StackViewer({shape}, slice {self.slice_index})"


_TOOLS = ("auto", "window", "pan", "zoom", "distance", "angle", "region")


def _preset_row(preset: Sequence[Any]) -> list[Any]:
    """[name, center, width, function] from a 3- or 4-item preset."""
    if isinstance(preset, WindowPreset):
        return [preset.explanation, preset.center, preset.width, preset.function.value]
    name, center, width, *rest = preset
    function = VOILUTFunction(str(rest[0]).upper() if rest else "LINEAR").value
    return [str(name), float(center), float(width), function]


def _percentile_preset(voxels: np.ndarray) -> list[Any]:
    # 1st to 99th percentile of a subsample: robust against a few bright voxels.
    sample = np.asarray(voxels).ravel()[:: max(1, voxels.size // 200_000)]
    low, high = (float(v) for v in np.percentile(sample, [1.0, 99.0]))
    return ["Auto 1-99%", (low + high) / 2.0, max(1.0, high - low), "LINEAR"]


def _cine_rate(header: Dataset) -> float:
    """Frames per second from (0018,0040) *Cine Rate* or (0018,1063) *Frame Time*."""
    try:
        if header.get("CineRate"):
            return float(header.CineRate)
        if header.get("FrameTime"):
            return 1000.0 / float(header.FrameTime)
    except (TypeError, ValueError, ZeroDivisionError):
        logger.debug("unreadable cine rate; using 10 frames/s")
    return 10.0


def _volume_of(
    voxels: np.ndarray, spacing_mm: Sequence[float], affine: np.ndarray
) -> Volume:
    """A :class:`Volume` around bare voxels, so the measurements apply to them."""
    window = WindowPreset(*_data_window(voxels), "data range")
    slices = voxels.shape[0]
    positions = np.array([(affine @ [s, 0.0, 0.0, 1.0])[:3] for s in range(slices)])
    return Volume(
        voxels=voxels,
        affine=affine,
        spacing_mm=tuple(spacing_mm),  # type: ignore[arg-type]
        source_order=list(range(slices)),
        source_frames=[(s, 0) for s in range(slices)],
        datasets=[],
        modality="",
        window_presets=[],
        default_window=window,
        frame_of_reference_uid="",
        slice_positions_mm=positions,
    )


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

    name = _display_name(text("PatientName"))
    return {
        "patient": "  ".join(filter(None, (name, text("PatientID"), text("PatientSex"),
                                           _format_date(text("PatientBirthDate"))))),
        "study": " ".join(
            filter(None, (_format_date(text("StudyDate")), text("StudyDescription")))
        ),
        "series": " ".join(
            filter(
                None,
                (
                    text("Modality"),
                    f"Se {text('SeriesNumber')}" if text("SeriesNumber") else "",
                    text("SeriesDescription"),
                ),
            )
        ),
        "institution": text("InstitutionName"),
    }


def _display_name(value: str) -> str:
    """A Person Name as "Family, Given Middle", so the parts cannot be confused.

    PS3.5 6.2: ``family^given^middle^prefix^suffix``. A value with several component
    groups (``=``: ideographic, phonetic) is shown whole, every group kept.

    Examples
    --------
    >>> _display_name("Test^Case^Q^Dr")
    'Test, Dr Case Q'
    """
    if "=" in value:
        return value.replace("^", " ").strip()
    family, given, middle, prefix, suffix = (value.split("^") + [""] * 5)[:5]
    rest = " ".join(filter(None, (prefix, given, middle, suffix)))
    return ", ".join(filter(None, (family.strip(), rest.strip())))


def _format_date(value: str) -> str:
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value
