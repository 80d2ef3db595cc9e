"""The stack viewer: scroll a series slice by slice, window/level by dragging.

The kernel owns the pixels. Modality values (HU for CT) travel to the browser as binary
widget buffers, never base64 inside JSON, and the browser windows them with the VOI
functions of PS3.3 C.11.2.1.2 and C.11.2.1.3 (LINEAR, LINEAR_EXACT, SIGMOID), so
dragging the window needs no round trip.

Two tiers of frames reach the browser. Right after the slice on screen, a reduced
preview of every slice (the mean of each ``preview_reduction`` square of pixels,
still modality values, about 1/16 of the bytes) arrives, so scrolling anywhere in
the series shows something at once; then the lossless slices stream out from the one
on screen, up to ``lossless_slices`` of them (a memory budget for long series). While
the user scrolls past slices whose lossless frame is not in the browser, the preview
is painted and marked as such on screen; once the user has been still for
``lossless_after_ms``, the browser asks for the lossless slices around the one shown
and repaints with the true pixel grid. Measurements come back as events and are
computed in the kernel on the true voxels (:mod:`viewerlib.volume.measure`). Nothing
is written to browser storage, and the notebook's saved widget state holds no image
data (the frames are sent as messages, not as synced traits).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from viewerlib.pipeline.voi import VOILUTFunction, WindowPreset
from viewerlib.volume import measure
from viewerlib.volume.volume import Volume, volume_alerts
from viewerlib.widgets._frontend import FrontEndWidget, esm_trait, front_end

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

_FRONT_END = front_end("stack.js")
# Slices per message while the rest of the series streams in after the first one.
_SLICES_PER_MESSAGE = 8
# Preview slices per message: they are small, so more of them go together.
_PREVIEWS_PER_MESSAGE = 32
# Lossless bytes the browser may hold by default; longer series keep a window of
# slices around the one shown and fall back to previews beyond it.
_LOSSLESS_BUDGET_BYTES = 512 << 20
# Cine rate of a series whose header gives none.
_DEFAULT_CINE_FPS = 10.0

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


class StackViewer(FrontEndWidget):
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

    _esm = esm_trait(_FRONT_END)
    slice_index = traitlets.Int(0).tag(sync=True)
    number_of_slices = traitlets.Int(1).tag(sync=True)
    rows = traitlets.Int(1).tag(sync=True)
    columns = traitlets.Int(1).tag(sync=True)
    pixel_spacing_mm = traitlets.List(traitlets.Float(), [1.0, 1.0]).tag(sync=True)
    #: (0018,0050) *Slice Thickness*, the nominal thickness of each slice; 0 when
    #: the header gives none.
    slice_thickness_mm = traitlets.Float(0.0).tag(sync=True)
    #: Distance between the centres of neighbouring slices, from their positions.
    slice_spacing_mm = traitlets.Float(0.0).tag(sync=True)
    #: The overlay's thickness line, and the spacing where it differs
    #: (:func:`thickness_text`); kept by the kernel.
    thickness_text = traitlets.Unicode("").tag(sync=True)
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
    #: Side of the pixel square averaged into one preview pixel (2 to 16).
    preview_reduction = traitlets.Int(4).tag(sync=True)
    #: Most lossless slices the browser holds at once, centred on the one shown.
    lossless_slices = traitlets.Int(0).tag(sync=True)
    #: Stillness (ms) after which the browser fetches the lossless slices it lacks.
    lossless_after_ms = traitlets.Float(200.0).tag(sync=True)
    #: Slices that could not be decoded (:attr:`Volume.missing_slices`), from 0:
    #: blank in place. The page says so over the image whenever one is shown,
    #: marks them beside the slider, and measuring on them is refused.
    missing_slices = traitlets.List(traitlets.Int(), []).tag(sync=True)
    #: What a reader must not miss about the series, one ``{"text", "detail"}``
    #: per kind (:func:`~viewerlib.volume.volume.volume_alerts`): a partial
    #: series, blank slices, uneven spacing, a gantry tilt. The page keeps the
    #: texts in one line above the image and shows the details on a click.
    alerts = traitlets.List(traitlets.Dict(), []).tag(sync=True)
    #: Keep the room of the alert line and of the missing-slice marks even
    #: without them: a comparison sets it when the other pane has them, so that
    #: both images are drawn at one scale.
    keep_warning_room = traitlets.Bool(False).tag(sync=True)

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
        slice_bytes = max(1, self._voxels[0].nbytes)
        kwargs.setdefault(
            "lossless_slices",
            min(voxels.shape[0], max(3, _LOSSLESS_BUDGET_BYTES // slice_bytes)),
        )
        self._previews: np.ndarray | None = None
        # Validated against number_of_slices, so set once that is known.
        missing_slices = kwargs.pop("missing_slices", ())
        super().__init__(
            number_of_slices=voxels.shape[0],
            rows=voxels.shape[1],
            columns=voxels.shape[2],
            pixel_spacing_mm=[float(spacing_mm[1]), float(spacing_mm[2])],
            slice_spacing_mm=float(spacing_mm[0]),
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
        self.missing_slices = list(missing_slices)
        self.on_msg(self._handle_message)
        self._update_orientation()
        self._update_thickness_text()

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
        if "overlay" not in kwargs:  # setdefault would work the texts out anyway
            kwargs["overlay"] = overlay_texts(header) if header is not None else {}
        # MONOCHROME1 and an INVERSE Presentation LUT Shape: white is low.
        kwargs.setdefault(
            "invert", should_invert(header) if header is not None else False
        )
        kwargs.setdefault("value_unit", "HU" if volume.modality == "CT" else "")
        kwargs.setdefault("window", (default.center, default.width))
        kwargs.setdefault("window_function", default.function.value)
        kwargs.setdefault("frame_of_reference_uid", volume.frame_of_reference_uid)
        kwargs.setdefault("missing_slices", volume.missing_slices)
        kwargs.setdefault("alerts", alert_rows(volume))
        if header is not None:
            kwargs.setdefault("cine_fps", cine_rate(header) or _DEFAULT_CINE_FPS)
            kwargs.setdefault("slice_thickness_mm", slice_thickness_of(header))
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

    @traitlets.validate("slice_thickness_mm", "slice_spacing_mm")
    def _valid_length(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        return value if np.isfinite(value) and value > 0.0 else 0.0

    @traitlets.observe("slice_thickness_mm", "slice_spacing_mm", "number_of_slices")
    def _update_thickness_text(self, _change: Any = None) -> None:
        self.thickness_text = thickness_text(
            self.slice_thickness_mm, self.slice_spacing_mm, self.number_of_slices)

    @traitlets.observe("rotation", "flip_horizontal", "flip_vertical")
    def _update_orientation(self, _change: Any = None) -> None:
        if self._stored_orientation:
            self.orientation = transformed_labels(
                self._stored_orientation,
                self.rotation,
                self.flip_horizontal,
                self.flip_vertical,
            )

    @traitlets.validate("preview_reduction")
    def _valid_reduction(self, proposal: dict[str, Any]) -> int:
        return int(min(max(2, proposal["value"]), 16))

    @traitlets.validate("lossless_slices")
    def _valid_lossless_slices(self, proposal: dict[str, Any]) -> int:
        return int(min(max(1, proposal["value"]), self.number_of_slices))

    @traitlets.validate("lossless_after_ms")
    def _valid_lossless_after(self, proposal: dict[str, Any]) -> float:
        return float(min(max(50.0, proposal["value"]), 5000.0))

    @traitlets.validate("slice_index")
    def _valid_slice(self, proposal: dict[str, Any]) -> int:
        return int(min(max(0, proposal["value"]), self.number_of_slices - 1))

    @traitlets.validate("missing_slices")
    def _valid_missing(self, proposal: dict[str, Any]) -> list[int]:
        return sorted({int(i) for i in proposal["value"]
                       if 0 <= int(i) < self.number_of_slices})

    @traitlets.validate("alerts")
    def _valid_alerts(self, proposal: dict[str, Any]) -> list[dict[str, str]]:
        # Plain strings only: the page sets them as text, and a line without
        # text would be an empty alert.
        rows = [{key: str(row.get(key, "")) for key in ("text", "detail")}
                for row in proposal["value"]]
        return [row for row in rows if row["text"]]

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
            If the tool is unknown or the points do not fit it, or if the slice
            could not be decoded (:attr:`missing_slices`): a blank slice has no
            true values to measure.
        """
        if int(slice_index) in self.missing_slices:
            raise ValueError(
                f"not measured: Im {int(slice_index) + 1}/{self.number_of_slices} "
                "could not be decoded and is blank (see volume.warnings for the "
                "file and why); measure on a slice that was decoded"
            )
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
        if self._loading_handles(content):
            return
        kind = content.get("type")
        if kind == "ready":
            self._send_series(int(content.get("first", self.slice_index)))
        elif kind == "need":
            self._send_slices(int(content["start"]), int(content["stop"]))
        elif kind == "measure":
            try:
                slice_index = int(content["slice_index"])
                self.measure(str(content["tool"]), slice_index, content["points"])
            except (ValueError, KeyError, TypeError) as err:
                # A degenerate drawing (zero-length ray, empty region) is not an error
                # of the viewer; the overlay just gets no result. A slice that could
                # not be decoded is, and the page says why nothing was measured.
                logger.debug("measurement refused: %s", err)
                if content.get("slice_index") in self.missing_slices:
                    self.send({"type": "refused", "text": str(err)})
        elif kind == "clear_measurements":
            self.measurements = []

    def _send_series(self, first: int) -> None:
        # The slice on screen goes first, alone, so the first image paints at once;
        # then every slice's preview; then the lossless slices within the budget, in
        # chunks that fan out from the first.
        first = min(max(0, first), self.number_of_slices - 1)
        self._send_slices(first, first + 1)
        for start in range(0, self.number_of_slices, _PREVIEWS_PER_MESSAGE):
            self._send_previews(start, start + _PREVIEWS_PER_MESSAGE)
        low, high = lossless_window(first, self.number_of_slices, self.lossless_slices)
        for start, stop in _chunks_around(first - low, high - low, _SLICES_PER_MESSAGE):
            self._send_slices(start + low, stop + low)

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

    @property
    def previews(self) -> np.ndarray:
        """Reduced slices the browser shows while lossless ones are missing.

        Each pixel is the mean of a ``preview_reduction`` square of modality values
        (edge pixels repeated where the image does not divide evenly), rounded back
        to the voxels' type, shape (slices, ceil(rows / f), ceil(columns / f)).
        """
        if self._previews is None:
            self._previews = reduce_slices(self._voxels, self.preview_reduction)
        return self._previews

    def _send_previews(self, start: int, stop: int) -> None:
        stop = min(self.number_of_slices, stop)
        if start >= stop:
            return
        block = np.ascontiguousarray(self.previews[start:stop])
        self.send(
            {
                "type": "previews",
                "start": start,
                "stop": stop,
                "dtype": block.dtype.name,
                "rows": block.shape[1],
                "columns": block.shape[2],
                "reduction": self.preview_reduction,
            },
            buffers=[memoryview(block).cast("B")],
        )
        logger.debug("sent previews %d-%d (%d bytes)", start, stop, block.nbytes)

    @traitlets.observe("preview_reduction")
    def _forget_previews(self, _change: Any) -> None:
        self._previews = None

    # -- Slices shown as they arrive (viewerlib.open streams the series) ------------
    # A viewer made before its series has arrived: the browser gets each slice the
    # moment the kernel has decoded it, and never a slice that has not arrived.

    #: While the series streams in: ``state`` ('loading', 'complete' or 'failed'),
    #: ``received`` and ``total`` slices, and on failure a ``message`` saying what
    #: happened and what to do. Empty for a volume that was whole when shown.
    loading = traitlets.Dict({}).tag(sync=True)
    #: Bumped when the slices are laid out anew (see :meth:`relayout`); the page
    #: then draws the viewer afresh from the other traits.
    layout_generation = traitlets.Int(0).tag(sync=True)

    @property
    def volume(self) -> Volume | None:
        """The volume shown: voxels as numpy with their geometry.

        While the series is still arriving this waits until it is whole, and
        raises the load's error (for example
        :class:`~viewerlib.errors.PartialSeriesError`, naming the missing
        instances) if it did not arrive whole; never a half-filled array.
        """
        wait = self.__dict__.get("_volume_wait")
        if wait is not None:
            return wait()
        return self.__dict__.get("_volume")

    @volume.setter
    def volume(self, value: Volume | None) -> None:
        self.__dict__["_volume"] = value

    def add_note(self, note: str) -> None:
        """Add a note about the series to the volume's ``warnings`` and, when it
        is one a reader must not miss, to :attr:`alerts`.

        For what the caller knows and the volume cannot: files of a folder
        that could not be read, say. While the series is still arriving the
        note waits and joins the whole volume's warnings.
        """
        notes = self.__dict__.setdefault("_notes", [])
        if note in notes:
            return
        notes.append(note)
        volume = self.__dict__.get("_volume")
        if volume is not None and "_volume_wait" not in self.__dict__:
            if note not in volume.warnings:
                volume.warnings.append(note)
            self.alerts = alert_rows(volume)
            return
        # Until then, the note's own alert joins those shown.
        shown = {row["text"] for row in self.alerts}
        self.alerts = self.alerts + [
            row for row in alert_rows(SimpleNamespace(  # type: ignore[arg-type]
                warnings=[note], missing_slices=[], shape=(self.number_of_slices,)))
            if row["text"] not in shown]

    def begin_loading(self, wait: Any, window_from_data: bool = False) -> None:
        """Show only the slices that have arrived, until :meth:`end_loading`.

        Parameters
        ----------
        wait : callable
            Returns the whole volume (waiting for it) or raises; backs
            :attr:`volume` while loading.
        window_from_data : bool
            Set the window from the first slice that arrives (the file has none).
        """
        self._arrival_lock = threading.RLock()
        self._arrived: np.ndarray | None = np.zeros(self.number_of_slices, bool)
        self._browser_ready = False
        self._window_from_data = window_from_data
        self._slices_arrived = threading.Condition(self._arrival_lock)
        self.__dict__["_volume_wait"] = wait
        self.loading = {"state": "loading", "received": 0,
                        "total": self.number_of_slices, "message": ""}

    def receive_slice(self, index: int, values: np.ndarray) -> None:
        """Take slice `index` (modality values) and send it on if a page shows us.

        Safe to call from a loading thread; the first slice to arrive is put on
        screen when the one shown has not arrived yet.
        """
        with self._arrival_lock:
            arrived = self._arrived
            if arrived is None:
                return
            target = self._voxels[index]
            if not np.shares_memory(target, values):
                if np.issubdtype(self._voxels.dtype, np.integer) and values.size and (
                        values.min() < -32768 or values.max() > 32767):
                    # Beyond int16: the browser reads float32 just as well.
                    self._voxels = self._voxels.astype("<f4")
                    target = self._voxels[index]
                target[...] = values
            first = not arrived.any()
            arrived[index] = True
            received = int(arrived.sum())
            if first and self._window_from_data:
                # Once: a window the reader sets meanwhile is theirs to keep.
                self._window_from_data = False
                _, center, width, _ = _percentile_preset(self._voxels[index])
                self.window_center, self.window_width = center, width
            if first and not arrived[self.slice_index]:
                self.slice_index = index
            if self._browser_ready:
                self._send_slices(index, index + 1)
            self.loading = {**self.loading, "received": received}
            self._slices_arrived.notify_all()

    def end_loading(self, volume: Volume | None, message: str = "",
                    moved: bool = False) -> None:
        """Finish a load: show the whole `volume`, or say why it stopped.

        Parameters
        ----------
        volume : Volume or None
            The whole volume; None when the load failed (the slices that arrived
            stay on screen, and :attr:`volume` keeps raising the load's error).
        message : str
            For a failed load: what happened and what to do, shown in the viewer.
        moved : bool
            True when `volume` is laid out otherwise than the slices shown so far
            (another count or order): the page then draws it afresh.
        """
        with self._arrival_lock:
            if self._arrived is None:
                return
            received = int(self._arrived.sum())
            if volume is None:
                self.loading = {**self.loading, "state": "failed",
                                "received": received, "message": message}
                self._slices_arrived.notify_all()
                return
            self.__dict__.pop("_volume_wait", None)
            self.volume = volume
            # Notes the caller added while the series arrived (add_note).
            volume.warnings.extend(note for note in self.__dict__.get("_notes", [])
                                   if note not in volume.warnings)
            self.relayout(volume, moved=moved)
            # Known only now: the slices whose instances could not be decoded,
            # and what the whole series' geometry says.
            self.missing_slices = list(volume.missing_slices)
            self.alerts = alert_rows(volume)
            if not np.shares_memory(self._voxels, volume.voxels):
                self._voxels = _transferable(volume.voxels)
            self._arrived = None
            self._previews = None
            if self._browser_ready and not moved:
                for start in range(0, self.number_of_slices, _PREVIEWS_PER_MESSAGE):
                    self._send_previews(start, start + _PREVIEWS_PER_MESSAGE)
            self.loading = {**self.loading, "state": "complete",
                            "received": self.number_of_slices,
                            "total": self.number_of_slices}
            self._slices_arrived.notify_all()

    def relayout(self, layout: Volume, moved: bool = True) -> None:
        """Adopt another layout of the series being loaded.

        Parameters
        ----------
        layout : Volume
            Its geometry (affine, spacing, slice positions) and voxels, shown from
            now on; while loading, only slices given to :meth:`receive_slice`
            afterwards count as arrived.
        moved : bool
            False when only the geometry was refined (the slices keep their
            places); True when slices changed place or number, so the page draws
            the viewer afresh.
        """
        with self._arrival_lock:
            self._affine = np.asarray(layout.affine, dtype=float)
            self._spacing_mm = tuple(float(v) for v in layout.spacing_mm)
            self._stored_orientation = orientation_labels(self._affine)
            normal = self._affine[:3, 0] / (np.linalg.norm(self._affine[:3, 0]) or 1.0)
            positions = (np.asarray(layout.slice_positions_mm, float) @ normal).tolist()
            thickness = (slice_thickness_of(layout.datasets[0]) if layout.datasets
                         else 0.0) or self.slice_thickness_mm
            if not moved:
                with self.hold_sync():
                    self.slice_positions_mm = positions
                    self.slice_spacing_mm = self._spacing_mm[0]
                    self.slice_thickness_mm = thickness
                self._update_orientation()
                return
            count, rows, columns = layout.voxels.shape
            self._voxels = _transferable(layout.voxels)
            if self._arrived is not None:
                self._arrived = np.zeros(count, bool)
            self._previews = None
            self._browser_ready = False  # the page says "ready" once drawn afresh
            slice_bytes = max(1, self._voxels[0].nbytes)
            with self.hold_sync():
                self.number_of_slices = count
                self.rows, self.columns = rows, columns
                self.pixel_spacing_mm = [self._spacing_mm[1], self._spacing_mm[2]]
                self.slice_spacing_mm = self._spacing_mm[0]
                self.slice_thickness_mm = thickness
                self.slice_positions_mm = positions
                self.lossless_slices = min(
                    count, max(3, _LOSSLESS_BUDGET_BYTES // slice_bytes))
                self.frame_of_reference_uid = layout.frame_of_reference_uid
                self.slice_index = min(self.slice_index, count - 1)
                if self.loading:
                    self.loading = {**self.loading, "received": 0, "total": count}
                self.layout_generation += 1
            self._update_orientation()

    def wait_for_slices(self, count: int = 1, timeout: float | None = None) -> bool:
        """Wait for `count` slices to arrive (or the load to end); True if they did."""
        lock = self.__dict__.get("_arrival_lock")
        if lock is None:
            return True
        with self._slices_arrived:
            return self._slices_arrived.wait_for(
                lambda: self._arrived is None or int(self._arrived.sum()) >= count
                or self.loading.get("state") == "failed", timeout)

    def _loading_handles(self, content: dict[str, Any]) -> bool:
        """Answer ``ready`` and ``need`` with arrived slices only, while loading."""
        lock = self.__dict__.get("_arrival_lock")
        if lock is None or content.get("type") not in ("ready", "need"):
            return False
        with lock:
            arrived = self._arrived
            if arrived is None:
                return False
            if content["type"] == "ready":
                self._browser_ready = True
                first = int(content.get("first", self.slice_index))
                start, stop = 0, self.number_of_slices
                if 0 <= first < stop and arrived[first]:
                    self._send_slices(first, first + 1)
            else:
                first = -1
                start = max(0, int(content["start"]))
                stop = min(self.number_of_slices, int(content["stop"]))
            # Contiguous runs of arrived slices, each one message.
            index = start
            while index < stop:
                if not arrived[index] or index == first:
                    index += 1
                    continue
                end = index
                while end < stop and arrived[end] and end != first \
                        and end - index < _SLICES_PER_MESSAGE:
                    end += 1
                self._send_slices(index, end)
                index = end
        return True

    def __repr__(self) -> str:
        shape = "x".join(str(n) for n in self._voxels.shape)
        return f"StackViewer({shape}, slice {self.slice_index})"


_TOOLS = ("auto", "window", "pan", "zoom", "distance", "angle", "region")


def alert_rows(volume: Volume) -> list[dict[str, str]]:
    """The :attr:`StackViewer.alerts` of `volume`: text and detail of each alert.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> volume = SimpleNamespace(missing_slices=[], shape=(3, 8, 8), warnings=[
    ...     "Gantry tilt: slices are stacked 18.50 deg off their normal"])
    >>> alert_rows(volume)[0]["text"]
    'Gantry tilt 18.50°'
    """
    return [{"text": alert.text, "detail": alert.detail}
            for alert in volume_alerts(volume)]


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


def cine_rate(header: Dataset) -> float | None:
    """Frames per second a cine loop is meant to play at, or None if not given.

    From (0018,0040) *Cine Rate*, else (0018,1063) *Frame Time* (milliseconds
    between frames), else (0008,2144) *Recommended Display Frame Rate*.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.FrameTime = 33.333
    >>> round(cine_rate(ds), 1)
    30.0
    >>> cine_rate(Dataset()) is None
    True
    """
    try:
        if header.get("CineRate"):
            return float(header.CineRate)
        if header.get("FrameTime"):
            return 1000.0 / float(header.FrameTime)
        if header.get("RecommendedDisplayFrameRate"):
            return float(header.RecommendedDisplayFrameRate)
    except (TypeError, ValueError, ZeroDivisionError):
        logger.debug("unreadable cine rate")
    return None


def slice_thickness_of(header: Dataset) -> float:
    """(0018,0050) *Slice Thickness* in mm, top level or per frame; 0 if absent.

    An enhanced multi-frame instance keeps it in the (0028,9110) *Pixel Measures
    Sequence* of its (5200,9229) *Shared Functional Groups Sequence*.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.SliceThickness = "5.0"
    >>> slice_thickness_of(ds)
    5.0
    """
    value = header.get("SliceThickness")
    if not value:
        for group in header.get("SharedFunctionalGroupsSequence") or []:
            for measures in group.get("PixelMeasuresSequence") or []:
                value = value or measures.get("SliceThickness")
    try:
        thickness = float(value) if value else 0.0
    except (TypeError, ValueError):
        logger.debug("unreadable (0018,0050) Slice Thickness")
        return 0.0
    return thickness if np.isfinite(thickness) and thickness > 0 else 0.0


def thickness_text(thickness_mm: float, spacing_mm: float, number_of_slices: int
                   ) -> str:
    """The overlay's slice thickness line, and the slice spacing where it differs.

    (0018,0050) *Slice Thickness* is how thick each slice is; the spacing is how
    far apart their centres lie. They differ for overlapping (spacing below the
    thickness) or gapped slices, and a reader must not take one for the other.

    Parameters
    ----------
    thickness_mm : float
        Slice thickness; 0 when unknown (then only the spacing is shown).
    spacing_mm : float
        Distance between neighbouring slices.
    number_of_slices : int
        A single slice has no spacing to show.

    Examples
    --------
    >>> print(thickness_text(5.0, 4.0, 10))
    Thick 5.00 mm
    Spacing 4.00 mm
    >>> thickness_text(4.0, 4.0, 10)
    'Thick 4.00 mm'
    >>> thickness_text(0.0, 2.5, 10)
    'Spacing 2.50 mm'
    """
    lines = []
    if thickness_mm > 0:
        lines.append(f"Thick {thickness_mm:.2f} mm")
    if number_of_slices > 1 and spacing_mm > 0 and (
            f"{spacing_mm:.2f}" != f"{thickness_mm:.2f}"):
        lines.append(f"Spacing {spacing_mm:.2f} mm")
    return "\n".join(lines)


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
    if voxels.dtype == np.dtype("<i2") and voxels.flags.c_contiguous:
        return voxels  # already so: no pass over the values needed
    if np.issubdtype(voxels.dtype, np.integer):
        low, high = (int(voxels.min()), int(voxels.max())) if voxels.size else (0, 0)
        if low >= -32768 and high <= 32767:
            return np.ascontiguousarray(voxels, dtype="<i2")
    return np.ascontiguousarray(voxels, dtype="<f4")


def _data_window(voxels: np.ndarray) -> tuple[float, float]:
    low, high = float(np.min(voxels)), float(np.max(voxels))
    return (low + high) / 2.0, max(1.0, high - low)


def lossless_window(index: int, count: int, size: int) -> tuple[int, int]:
    """[start, stop) of the `size` slices centred on `index` within `count` slices.

    The browser keeps the same window, so the kernel and the front end agree on
    which lossless slices belong in the page.

    Examples
    --------
    >>> lossless_window(5, 48, 3)
    (4, 7)
    >>> lossless_window(0, 48, 4)
    (0, 4)
    >>> lossless_window(47, 48, 100)
    (0, 48)
    """
    size = min(max(1, size), count)
    start = min(max(0, index - (size - 1) // 2), count - size)
    return start, start + size


def reduce_slices(voxels: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each `factor` x `factor` square of every slice, in the voxels' type.

    Parameters
    ----------
    voxels : numpy.ndarray
        (slices, rows, columns) modality values, int16 or float32.
    factor : int
        Side of the square; rows and columns that do not divide evenly are padded
        by repeating the last one.

    Returns
    -------
    numpy.ndarray
        (slices, ceil(rows / factor), ceil(columns / factor)), rounded to the
        nearest integer for integer voxels.

    Examples
    --------
    >>> block = np.array([[[0, 2, 10], [4, 6, 10]]], np.int16)
    >>> reduce_slices(block, 2).tolist()
    [[[3, 10]]]
    """
    slices, rows, columns = voxels.shape
    pad_rows, pad_columns = -rows % factor, -columns % factor
    padded = np.pad(voxels, ((0, 0), (0, pad_rows), (0, pad_columns)), mode="edge")
    blocks = padded.reshape(
        slices, padded.shape[1] // factor, factor, padded.shape[2] // factor, factor
    )
    mean = blocks.mean(axis=(2, 4), dtype=np.float64)
    if np.issubdtype(voxels.dtype, np.integer):
        return np.rint(mean).astype(voxels.dtype)
    return mean.astype(voxels.dtype)


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

    name = display_person_name(text("PatientName"))
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


def display_person_name(value: str) -> str:
    """A Person Name as "Family, Given Middle", so the parts cannot be confused.

    PS3.5 6.2: ``family^given^middle^prefix^suffix``. A value with several component
    groups (``=``: ideographic, phonetic) is shown whole, every group kept.

    Examples
    --------
    >>> display_person_name("Test^Case^Q^Dr")
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
