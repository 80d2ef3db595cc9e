"""The MPR viewer: three linked orthogonal planes with a crosshair, oblique and slabs.

The whole volume goes to the browser once, as lossless int16 (or float32) modality
values in binary messages of a few MiB, and the browser reslices it: the recipe of
``notes/web-recipe.md`` section 7 measured a 70 MiB volume usable in the page in about
1.3 s, and ``bench/widgets.py`` compares the browser's reslice time with
:func:`viewerlib.volume.mpr.oblique` in the kernel plus the round trip. The planes
follow the conventions of :mod:`viewerlib.volume.mpr` (same grid, same trilinear
sampling, NaN outside), so a plane in the browser equals the kernel's reformat. The
saved widget state holds the geometry, never the voxels.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from viewerlib.pipeline.presentation import should_invert
from viewerlib.volume.mpr import SlabMode
from viewerlib.volume.resample import _holes, on_uniform_grid
from viewerlib.volume.volume import GAP_SLICES, MISSING_SLICES, is_alert, volume_alerts
from viewerlib.widgets._frontend import FrontEndWidget, esm_trait, front_end
from viewerlib.widgets.stack import (
    CT_WINDOW_PRESETS,
    _percentile_preset,
    _transferable,
    overlay_texts,
)

if TYPE_CHECKING:
    from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

# Bytes per message while the volume streams to the browser.
_BYTES_PER_MESSAGE = 4 << 20


class MPRViewer(FrontEndWidget):
    """Axial, coronal and sagittal planes of one volume, linked by a crosshair.

    Parameters
    ----------
    volume : Volume
        Voxels in modality units with their affine; the planes are resampled in
        patient space, so their aspect ratio is true whatever the spacing.
    **kwargs
        Trait values, e.g. ``slab_thickness_mm=10, slab_mode="mip"``.

    Notes
    -----
    Click or drag in a plane to move the crosshair there; the wheel moves the plane
    along its normal; Shift-drag (or the right button) changes the window. The
    oblique angle turns the coronal and sagittal planes about the axial normal.

    The browser reslices through the affine, so a volume with uneven slice gaps
    is first resampled onto a uniform grid
    (:func:`~viewerlib.volume.resample.on_uniform_grid`; ``self.volume.warnings``
    says so). MONOCHROME1 (and an INVERSE Presentation LUT Shape) sets
    ``invert``: white is low, applied after the window (PS3.3 C.11.6).

    Slices that could not be decoded (``volume.missing_slices``) are blank in
    every plane: a warning line above the views names them, an orange dashed line
    marks where each one cuts a view, and a view lying in one says so. A hole in
    the series (slices that never arrived) is not interpolated across by the
    resampling: its slices are blank too, the warning line says so, and dashed
    lines mark both of its edges. The warning line also shows every other note a
    reader must not miss (a series that arrived in part, uneven spacing, a
    gantry tilt), as the stack viewer's alert line does.
    """

    _esm = esm_trait(front_end("mpr.js"))
    shape = traitlets.List(traitlets.Int(), [1, 1, 1]).tag(sync=True)
    #: 4x4 index (slice, row, column, 1) to LPS mm matrix, row-major, and its inverse.
    affine = traitlets.List(traitlets.Float(), []).tag(sync=True)
    inverse_affine = traitlets.List(traitlets.Float(), []).tag(sync=True)
    spacing_mm = traitlets.List(traitlets.Float(), [1.0, 1.0, 1.0]).tag(sync=True)
    #: Crosshair position, LPS mm.
    center_mm = traitlets.List(traitlets.Float(), [0.0, 0.0, 0.0]).tag(sync=True)
    window_center = traitlets.Float(40.0).tag(sync=True)
    window_width = traitlets.Float(400.0).tag(sync=True)
    window_function = traitlets.Unicode("LINEAR").tag(sync=True)
    invert = traitlets.Bool(False).tag(sync=True)
    presets = traitlets.List([]).tag(sync=True)
    slab_thickness_mm = traitlets.Float(0.0).tag(sync=True)
    slab_mode = traitlets.Unicode("mip").tag(sync=True)
    #: Turn of the coronal and sagittal planes about the axial normal, degrees.
    oblique_deg = traitlets.Float(0.0).tag(sync=True)
    show_crosshair = traitlets.Bool(True).tag(sync=True)
    overlay = traitlets.Dict({}).tag(sync=True)
    dtype = traitlets.Unicode("int16").tag(sync=True)
    #: Slices of the series that could not be decoded (from 0, in the series as
    #: read, before any resampling): blank in place.
    missing_slices = traitlets.List(traitlets.Int(), []).tag(sync=True)
    #: Where each of them lies (:func:`missing_planes`).
    missing_planes = traitlets.List([]).tag(sync=True)
    #: The lines shown above the views (slices missing, a partial series, ...);
    #: kept by the kernel, one per line.
    warning = traitlets.Unicode("").tag(sync=True)

    def __init__(self, volume: Volume, **kwargs: Any) -> None:
        # Before any resampling: the missing slices' numbers and places are those
        # of the series as read.
        kwargs.setdefault("missing_slices", sorted(set(volume.missing_slices)))
        read = volume
        # The line above the views tells the missing slices: not again by the
        # slices resampled from them.
        volume = on_uniform_grid(volume, warn=False)
        kwargs.setdefault("missing_planes",
                          missing_planes(read) + gap_planes(read, volume))
        kwargs.setdefault("warning", screen_warning(read, volume))
        self.volume = volume
        self._voxels = _transferable(volume.voxels)
        header = volume.datasets[0] if volume.datasets else None
        # PS3.3 C.7.6.3.1.2: MONOCHROME1 shows the lowest value white.
        kwargs.setdefault(
            "invert", should_invert(header) if header is not None else False
        )
        presets = [
            [p.explanation or "File", p.center, p.width, p.function.value]
            for p in volume.window_presets
        ]
        if volume.modality == "CT":
            named = {row[0].upper() for row in presets}
            presets += [
                [*p, "LINEAR"] for p in CT_WINDOW_PRESETS if p[0].upper() not in named
            ]
        else:
            presets.append(_percentile_preset(volume.voxels))
        corners = np.array(
            [
                [s, r, c, 1.0]
                for s in (0, volume.shape[0] - 1)
                for r in (0, volume.shape[1] - 1)
                for c in (0, volume.shape[2] - 1)
            ]
        )
        center = (volume.affine @ corners.T).T[:, :3].mean(axis=0)
        window = volume.default_window
        kwargs.setdefault("window_center", window.center)
        kwargs.setdefault("window_width", window.width)
        kwargs.setdefault("window_function", window.function.value)
        super().__init__(
            shape=list(volume.shape),
            affine=volume.affine.ravel().tolist(),
            inverse_affine=np.linalg.inv(volume.affine).ravel().tolist(),
            spacing_mm=[float(v) for v in volume.spacing_mm],
            center_mm=center.tolist(),
            presets=presets,
            overlay=overlay_texts(header) if header is not None else {},
            dtype=self._voxels.dtype.name,
            **kwargs,
        )
        self.on_msg(self._handle_message)

    @traitlets.validate("slab_mode")
    def _valid_mode(self, proposal: dict[str, Any]) -> str:
        return SlabMode(str(proposal["value"]).lower()).value

    @traitlets.validate("slab_thickness_mm")
    def _valid_thickness(self, proposal: dict[str, Any]) -> float:
        return float(min(max(0.0, proposal["value"]), 200.0))

    @traitlets.validate("window_width")
    def _valid_width(self, proposal: dict[str, Any]) -> float:
        return max(1e-3, float(proposal["value"]))

    def _handle_message(
        self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]
    ) -> None:
        if content.get("type") != "ready":
            return
        per_slice = self._voxels[0].nbytes
        step = max(1, _BYTES_PER_MESSAGE // per_slice)
        count = self._voxels.shape[0]
        for start in range(0, count, step):
            block = np.ascontiguousarray(self._voxels[start : start + step])
            self.send(
                {
                    "type": "slices",
                    "start": start,
                    "stop": start + len(block),
                    "dtype": block.dtype.name,
                },
                buffers=[memoryview(block).cast("B")],
            )
        logger.debug("sent a volume of %d slices", count)

    def __repr__(self) -> str:
        return f"MPRViewer({'x'.join(str(n) for n in self._voxels.shape)})"


def missing_planes(volume: Volume) -> list[dict[str, Any]]:
    """Where the slices of `volume` that could not be decoded lie, for the page.

    Returns
    -------
    list of dict
        One per index of ``volume.missing_slices``: ``image`` (its number, from
        1), ``label`` (as the stack viewer's overlay names it), ``point`` (its
        (0020,0032) *Image Position (Patient)*, LPS mm), ``normal`` (the unit
        slice normal) and ``half_mm`` (half the slice spacing: a plane within it
        passes through the blank slice).
    """
    step = np.asarray(volume.affine[:3, 0], dtype=float)
    length = float(np.linalg.norm(step)) or 1.0
    normal = (step / length).tolist()
    half = float(volume.spacing_mm[0]) / 2.0 or length / 2.0
    positions = np.asarray(volume.slice_positions_mm, dtype=float)
    return [
        {"image": index + 1, "label": f"Im {index + 1}/{len(positions)}",
         "point": positions[index].tolist(), "normal": normal, "half_mm": half}
        for index in sorted(set(volume.missing_slices))
        if 0 <= index < len(positions)
    ]


def mpr_shows(note: str) -> bool:
    """True for a note of ``Volume.warnings`` the MPR's warning line tells.

    The line (:func:`screen_warning`) names the slices that could not be
    decoded and shows every other note a reader must not miss, so those notes,
    before resampling and after, need no ``UserWarning`` besides.

    Examples
    --------
    >>> mpr_shows("Missing slice(s) 4 of 8 (counted from 1, ...)")
    True
    >>> mpr_shows("Gantry tilt: slices are stacked 18.50 deg off their normal")
    True
    >>> mpr_shows("Single slice: slice spacing 5.0 mm taken from the header")
    False
    """
    return note.startswith(MISSING_SLICES) or is_alert(note)


def screen_warning(read: Volume, shown: Volume) -> str:
    """The MPR's warning line, one problem a line, or "" when there is none.

    Parameters
    ----------
    read : Volume
        The volume as read: its slices not decoded are named by their number
        in the series (:func:`missing_warning`).
    shown : Volume
        The volume the planes are cut from (`read` resampled onto a uniform
        grid, or `read` itself): its other alerts, the holes of the series
        among them, follow, as :func:`~viewerlib.volume.volume.volume_alerts`
        words them.
    """
    # The slices not decoded have their own line, with their numbers as read.
    others = SimpleNamespace(
        missing_slices=shown.missing_slices, shape=shown.shape,
        warnings=[note for note in shown.warnings
                  if not note.startswith(MISSING_SLICES)])
    lines = [missing_warning(read)] + [
        alert.text for alert in volume_alerts(others)]  # type: ignore[arg-type]
    return "\n".join(line for line in lines if line)


def gap_planes(read: Volume, shown: Volume) -> list[dict[str, Any]]:
    """Where the holes of `read` lie that `shown` (its resampled copy) left blank.

    Returns
    -------
    list of dict
        As :func:`missing_planes`, one per hole, with ``point`` midway between
        the two original slices around it and ``half_mm`` half their distance,
        ``band`` True (the page draws both edges) and ``text``, what a view
        lying inside it says.
    """
    if shown is read or not any(note.startswith(GAP_SLICES) for note in shown.warnings):
        return []
    step = np.asarray(shown.affine[:3, 0], dtype=float)
    normal = step / (float(np.linalg.norm(step)) or 1.0)
    positions = np.asarray(read.slice_positions_mm, dtype=float)
    along = positions @ normal
    gaps = np.diff(along)
    count = len(positions)
    return [
        {"image": index + 1,
         "label": f"Gap of {gaps[index]:.1f} mm after Im {index + 1}/{count}",
         "point": ((positions[index] + positions[index + 1]) / 2).tolist(),
         "normal": normal.tolist(), "half_mm": float(gaps[index]) / 2, "band": True,
         "text": f"No image between Im {index + 1}/{count} and Im {index + 2}/{count}"
                 f" ({gaps[index]:.1f} mm): this plane is blank, not the patient's "
                 "image."}
        for index in _holes(gaps)
    ]


def missing_warning(volume: Volume) -> str:
    """The MPR's warning line for slices that could not be decoded, or "".

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> text = missing_warning(SimpleNamespace(missing_slices=[7], shape=(48, 8, 8)))
    >>> text.split(":")[0]
    'Im 8/48 could not be decoded'
    >>> missing_warning(SimpleNamespace(missing_slices=[], shape=(48, 8, 8)))
    ''
    """
    missing = sorted(set(volume.missing_slices))
    if not missing:
        return ""
    count = volume.shape[0]
    names = ", ".join(f"Im {index + 1}/{count}" for index in missing[:10])
    if len(missing) > 10:
        names += f" and {len(missing) - 10} more"
    one = len(missing) == 1
    return (
        f"{names} could not be decoded: {'it is' if one else 'they are'} blank in "
        "every plane (orange dashed lines). Do not read or measure across "
        f"{'it' if one else 'them'}; volume.warnings names the "
        f"{'file' if one else 'files'} and why."
    )
