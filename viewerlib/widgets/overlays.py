"""The stack viewer with the objects that annotate images drawn over them.

Segmentations and structure sets become coloured layers, each switched on and off in
a legend; a Key Object Selection marks its slices and lists them to jump to; a
presentation state sets the window, rotation, flip and displayed area and draws its
graphics and texts. The masks travel as bit-packed binary messages, never as synced
traits, so a saved notebook holds no image data; every name and text is shown with
``textContent`` (``overlays.js``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from viewerlib.objects.key_objects import read_key_objects
from viewerlib.objects.presentation_state import read_presentation_state
from viewerlib.objects.references import SliceIndex
from viewerlib.objects.segmentation import read_segmentation
from viewerlib.objects.structure_set import read_structure_set
from viewerlib.widgets._frontend import front_end
from viewerlib.widgets.stack import StackViewer

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.objects.layers import OverlayLayer
    from viewerlib.objects.presentation_state import PresentationState

logger = logging.getLogger(__name__)

# The add-on's functions, then the stack viewer that calls them (stackAddOn).
_ADD_ON = (Path(__file__).parent / "overlays.js").read_text(encoding="utf-8")


class AnnotatedStackViewer(StackViewer):
    """A :class:`~viewerlib.widgets.stack.StackViewer` that draws non-image objects.

    Parameters are those of :class:`~viewerlib.widgets.stack.StackViewer`; add the
    objects with :meth:`add_segmentation`, :meth:`add_structure_set`,
    :meth:`mark_key_images` and :meth:`apply_presentation_state`.
    """

    _esm = _ADD_ON + "\n" + front_end("stack.js")
    #: One dict per layer: ``id``, ``name``, ``color`` [r, g, b], ``style``
    #: (fill or outline), ``visible`` and ``slices`` (the slice indexes it is on).
    layers = traitlets.List([]).tag(sync=True)
    #: One dict per key image: ``slice_index`` and ``label``.
    key_images = traitlets.List([]).tag(sync=True)
    key_images_title = traitlets.Unicode("").tag(sync=True)
    #: Graphic and text annotations in PIXEL units (see PresentationState).
    annotations = traitlets.List([]).tag(sync=True)
    #: The presentation state's displayed area, applied once when first drawn.
    displayed_area = traitlets.Dict({}).tag(sync=True)
    #: Display shutters in PIXEL units (see PresentationState.shutters).
    shutters = traitlets.List([]).tag(sync=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._layer_masks: list[OverlayLayer] = []
        super().__init__(*args, **kwargs)
        self.on_msg(self._handle_overlay_message)

    @property
    def overlay_layers(self) -> list[OverlayLayer]:
        """The layers drawn, with their masks on the volume's grid."""
        return list(self._layer_masks)

    def _index(self) -> SliceIndex:
        return SliceIndex(self.measured_volume)

    def add_layers(self, layers: list[OverlayLayer]) -> None:
        """Draw overlay layers (masks on this viewer's grid) over the images."""
        shape = tuple(self.voxels.shape[1:])
        for layer in layers:
            for slice_index, mask in layer.masks.items():
                if mask.shape != shape or not 0 <= slice_index < self.number_of_slices:
                    raise ValueError(
                        f"layer {layer.name!r} has a mask of shape {mask.shape} on "
                        f"slice {slice_index}; this viewer shows "
                        f"{self.number_of_slices} slices of {shape}"
                    )
        first = len(self._layer_masks)
        self._layer_masks += layers
        self.layers = [*self.layers, *(
            {"id": first + offset, "name": layer.name, "number": layer.number,
             "color": list(layer.color), "style": layer.style, "visible": True,
             "slices": sorted(layer.masks)}
            for offset, layer in enumerate(layers))]
        for offset in range(len(layers)):
            self._send_layer(first + offset)

    def add_segmentation(self, ds: Dataset) -> list[OverlayLayer]:
        """Draw every segment of a SEG (:func:`.segmentation.read_segmentation`)."""
        layers = read_segmentation(ds, self.measured_volume)
        self.add_layers(layers)
        return layers

    def add_structure_set(self, ds: Dataset) -> list[OverlayLayer]:
        """Draw every ROI of an RTSTRUCT (:func:`.structure_set.read_structure_set`)."""
        layers = read_structure_set(ds, self.measured_volume)
        self.add_layers(layers)
        return layers

    def set_layer_visible(self, layer: int | str, visible: bool) -> None:
        """Show or hide a layer, by its position in :attr:`layers` or its name.

        Raises
        ------
        KeyError
            If no layer has that position or name.
        """
        rows = [dict(row) for row in self.layers]
        matches = [row for row in rows
                   if row["id"] == layer or (isinstance(layer, str)
                                             and row["name"] == layer)]
        if not matches:
            names = ", ".join(repr(row["name"]) for row in rows) or "none"
            raise KeyError(f"no overlay layer {layer!r}; the layers are {names}")
        for row in matches:
            row["visible"] = bool(visible)
        self.layers = rows

    def mark_key_images(self, ds: Dataset) -> list[int]:
        """Mark the slices a Key Object Selection names, and list them to jump to.

        Returns
        -------
        list of int
            The ``slice_index`` of each key image shown; the viewer moves to the
            first.

        Raises
        ------
        ValueError
            If none of the key images is among the slices shown.
        """
        selection = read_key_objects(ds)
        slices = selection.slices(self._index())
        if not slices:
            raise ValueError(
                f"none of the {len(selection.images)} key images is in this series; "
                "open the series of the key images (viewerlib.open(kos_dataset, "
                "source=...) finds it)"
            )
        title = selection.title or "Key images"
        self.key_images_title = title
        self.key_images = [{"slice_index": s, "label": f"Im {s + 1}"} for s in slices]
        self.slice_index = slices[0]
        return slices

    def apply_presentation_state(self, ds: Dataset) -> PresentationState:
        """Apply a GSPS: window, inversion, flip, rotation, area, shutters, graphics.

        Returns
        -------
        PresentationState
            What was read, with ``warnings`` for the parts not applied.
        """
        state = read_presentation_state(ds, self._index(), (self.rows, self.columns))
        if state.window is not None:
            self.window_function = state.voi_lut_function
            self.window_center, self.window_width = state.window
        if state.invert:
            self.invert = not self.invert
        self.flip_horizontal, self.flip_vertical = state.flip_horizontal, False
        self.rotation = state.rotation
        self.displayed_area = (state.displayed_area.as_dict()
                               if state.displayed_area is not None else {})
        self.annotations = state.annotations
        self.shutters = state.shutters
        slices = sorted({s for a in state.annotations for s in (a["slices"] or [])})
        if slices:
            self.slice_index = slices[0]
        return state

    def _handle_overlay_message(
        self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]
    ) -> None:
        if content.get("type") == "ready":
            for layer_id in range(len(self._layer_masks)):
                self._send_layer(layer_id)

    def _send_layer(self, layer_id: int) -> None:
        layer = self._layer_masks[layer_id]
        slices = sorted(layer.masks)
        if not slices:
            return
        # One bit per pixel, rows in order, the first pixel in the top bit.
        packed = np.packbits(np.stack([layer.masks[s] for s in slices]).reshape(
            len(slices), -1), axis=1)
        self.send({"type": "layer", "id": layer_id, "slices": slices,
                   "bytes_per_slice": int(packed.shape[1])},
                  buffers=[memoryview(np.ascontiguousarray(packed)).cast("B")])
        logger.debug("sent overlay layer %d (%d slices)", layer_id, len(slices))

    def __repr__(self) -> str:
        """Return the shape and the number of layers and key images (cheap)."""
        return (f"AnnotatedStackViewer({'x'.join(map(str, self.voxels.shape))}, "
                f"{len(self.layers)} layers, {len(self.key_images)} key images)")
