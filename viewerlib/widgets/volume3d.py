"""The 3D viewer: volume rendering by a small WebGL2 raycaster, with presets.

The kernel downsamples the volume (block means, at most ``max_side`` voxels a side),
maps its modality values to 8 bits over ``value_range`` and sends it once as a binary
message; the browser uploads it as a 3D texture and casts rays through it, compositing
with a transfer function (CT bone, CT angiography) or taking the maximum (MIP).
ipyvolume was not used: its JupyterLab 4 dependencies are broken (see
``notes/web-recipe.md`` section 7 and the README's "3D viewer" section).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets
from skimage.measure import block_reduce

from viewerlib.volume.resample import on_uniform_grid
from viewerlib.volume.volume import GAP_SLICES
from viewerlib.widgets._frontend import FrontEndWidget, esm_trait, front_end
from viewerlib.widgets.stack import overlay_texts

if TYPE_CHECKING:
    from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

#: Names of the rendering presets, in menu order.
PRESETS = ("CT bone", "CT angiography", "MIP")
# CT numbers span about -1024 to 3071 HU in 12 bits; 8 bits give 16 HU steps.
_CT_RANGE = (-1024.0, 3071.0)


def downsample(voxels: np.ndarray, max_side: int) -> np.ndarray:
    """Block means so that no axis exceeds `max_side` voxels.

    Examples
    --------
    >>> downsample(np.ones((10, 300, 300)), 128).shape
    (10, 100, 100)
    """
    factors = tuple(max(1, math.ceil(n / max_side)) for n in voxels.shape)
    if factors == (1, 1, 1):
        return np.asarray(voxels, dtype=np.float32)
    reduced = block_reduce(
        np.asarray(voxels, dtype=np.float32),
        factors,
        np.mean,
        cval=float(np.min(voxels)),
    )
    return reduced.astype(np.float32)


class VolumeViewer(FrontEndWidget):
    """Volume rendering of one volume; drag to turn it, pick a preset.

    Parameters
    ----------
    volume : Volume
        Voxels in modality units; the rendering keeps their physical extent, so
        the aspect ratio is true.
    preset : str
        One of :data:`PRESETS`.
    max_side : int
        Largest texture side after downsampling (memory and speed in the browser).

    Notes
    -----
    The axes are those of the voxel indexes (column, row, slice), which for an
    axial acquisition are patient left, posterior and head; the first view looks
    from the front, head up. Oblique acquisitions are drawn in index space. The
    box is shape x spacing, so a gantry tilt (a sheared affine) or uneven slice
    gaps are first resampled onto an orthogonal, uniform grid
    (:func:`~viewerlib.volume.resample.on_uniform_grid`; ``self.volume.warnings``
    says so). A hole in the series (slices that never arrived) is left blank by
    the resampling, not interpolated across; with no alert line of its own, the
    viewer warns of it (``UserWarning``) once.
    """

    _esm = esm_trait(front_end("volume3d.js"))
    texture_shape = traitlets.List(traitlets.Int(), [1, 1, 1]).tag(sync=True)
    extent_mm = traitlets.List(traitlets.Float(), [1.0, 1.0, 1.0]).tag(sync=True)
    #: Modality values mapped to texture levels 0 and 255.
    value_range = traitlets.List(traitlets.Float(), [0.0, 1.0]).tag(sync=True)
    preset = traitlets.Unicode("CT bone").tag(sync=True)
    yaw_deg = traitlets.Float(0.0).tag(sync=True)
    pitch_deg = traitlets.Float(0.0).tag(sync=True)
    overlay = traitlets.Dict({}).tag(sync=True)

    def __init__(
        self,
        volume: Volume,
        preset: str = "CT bone",
        max_side: int = 128,
        **kwargs: Any,
    ) -> None:
        # Missing slices were told when the volume was read: not again by the
        # slices resampled from them (volume.warnings keeps the note).
        read = volume
        volume = on_uniform_grid(volume, orthogonal=True, warn=False)
        # The viewer has no line of its own: a hole of the series, left blank by
        # the resampling, is warned here, once (its note is new in the copy).
        for note in volume.warnings:
            if note.startswith(GAP_SLICES) and note not in read.warnings:
                warnings.warn(note, UserWarning, stacklevel=2)
        self.volume = volume
        reduced = downsample(volume.voxels, max_side)
        if volume.modality == "CT":
            low, high = _CT_RANGE
        else:
            low, high = (float(v) for v in np.percentile(reduced, [0.5, 99.5]))
            high = max(high, low + 1.0)
        scaled = np.clip((reduced - low) / (high - low) * 255.0 + 0.5, 0, 255)
        self._texture = np.ascontiguousarray(scaled.astype(np.uint8))
        extent = [float(n * s) for n, s in zip(volume.shape, volume.spacing_mm)]
        header = volume.datasets[0] if volume.datasets else None
        super().__init__(
            texture_shape=list(self._texture.shape),
            extent_mm=extent,
            value_range=[low, high],
            preset=preset,
            overlay=overlay_texts(header) if header is not None else {},
            **kwargs,
        )
        self.on_msg(self._handle_message)

    @traitlets.validate("preset")
    def _valid_preset(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in PRESETS:
            raise traitlets.TraitError(
                f"preset {proposal['value']!r} is not one of {', '.join(PRESETS)}"
            )
        return str(proposal["value"])

    def _handle_message(
        self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]
    ) -> None:
        if content.get("type") == "ready":
            self.send({"type": "volume"}, buffers=[memoryview(self._texture).cast("B")])
            logger.debug("sent a %s texture", self._texture.shape)

    def __repr__(self) -> str:
        return f"VolumeViewer({'x'.join(str(n) for n in self._texture.shape)}, {self.preset})"
