"""The stack viewer with the objects that annotate images drawn over them.

Segmentations and structure sets become coloured layers, each switched on and off in
a legend; a Key Object Selection marks its slices and lists them to jump to; a
presentation state sets the window or VOI LUT table of each image, its Presentation
LUT, rotation, flip, displayed area and shutters, and draws its graphics and texts.
The masks (the bounding box of each slice's) and the lookup tables travel as binary
messages, never as synced traits, so a saved notebook holds no image data; every
name and text is shown with ``textContent`` (``overlays.js``).

A presentation state's VOI LUT table or Presentation LUT table is applied in the
browser, as the viewer's own window is: the kernel evaluates each table with the
pipeline's stages (:func:`~viewerlib.pipeline.voi.apply_voi_lut`,
:func:`~viewerlib.pipeline.presentation.apply_presentation_lut`) into float32 grey
levels, one per table entry, and the page only looks values up in them and rounds
as the pipeline rounds. The frames on screen stay the modality values, so scrolling
keeps its two tiers and speed, a drag of the window still needs no round trip (it
leaves the table for a window), and the display is the pipeline's to the grey level
(:meth:`~viewerlib.objects.presentation_state.PresentationState.display_values`).

A viewer opened on a study (:func:`viewerlib.open`) also lists the study's SEG,
RTSTRUCT, presentation states and key object selections that refer to the series
shown (:meth:`AnnotatedStackViewer.find_study_objects`), each a toggle in the
viewer: switched on, the object is retrieved and drawn or applied; switched off, its
layers are hidden, the display it changed is put back, or its marks removed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from viewerlib.errors import ViewerlibError
from viewerlib.objects.key_objects import read_key_objects
from viewerlib.objects.presentation_state import read_presentation_state
from viewerlib.objects.references import SliceIndex, referenced_series_uids
from viewerlib.objects.segmentation import read_segmentation
from viewerlib.objects.sop import ObjectKind, object_kind
from viewerlib.objects.structure_set import read_structure_set
from viewerlib.widgets._frontend import esm_trait, front_end
from viewerlib.widgets.stack import StackViewer

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.model import Series
    from viewerlib.objects.layers import OverlayLayer
    from viewerlib.objects.presentation_state import PresentationState, SoftcopyVOI
    from viewerlib.sources.base import Source

logger = logging.getLogger(__name__)

# The add-on's functions, then the stack viewer that calls them (stackAddOn).
_ADD_ON = (Path(__file__).parent / "overlays.js").read_text(encoding="utf-8")
# (0008,0060) Modality of the objects listed for a study, and their names on screen.
_STUDY_OBJECT_NAMES = {"SEG": "Segmentation", "RTSTRUCT": "Structures",
                       "PR": "Presentation state", "KO": "Key images"}
# What a presentation state changes, put back when it is switched off.
_DISPLAY_TRAITS = ("window_center", "window_width", "window_function", "invert",
                   "flip_horizontal", "flip_vertical", "rotation", "zoom",
                   "displayed_area", "annotations", "shutters", "presentation_voi",
                   "presentation_lut")
# Errors of retrieving or reading an object, shown on its toggle.
_OBJECT_ERRORS = (ViewerlibError, LookupError, ValueError, OSError, AttributeError)


class AnnotatedStackViewer(StackViewer):
    """A :class:`~viewerlib.widgets.stack.StackViewer` that draws non-image objects.

    Parameters are those of :class:`~viewerlib.widgets.stack.StackViewer`; add the
    objects with :meth:`add_segmentation`, :meth:`add_structure_set`,
    :meth:`mark_key_images` and :meth:`apply_presentation_state`.
    """

    _esm = esm_trait(_ADD_ON + "\n" + front_end("stack.js"))
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
    #: Display shutters in PIXEL units (see PresentationState.shutters); a BITMAP
    #: one names its ``mask``, sent as a message.
    shutters = traitlets.List([]).tag(sync=True)
    #: The presentation state's VOI where it differs by image or is a table, one
    #: dict per Softcopy VOI LUT item: ``slices`` (None: every slice), ``kind``
    #: ('window' or 'lut'), ``center``, ``width``, ``function``, ``lut`` (the id
    #: of a table sent as a message) and ``explanation``. Empty when the viewer's
    #: own window applies; a drag of the window empties it.
    presentation_voi = traitlets.List([]).tag(sync=True)
    #: The presentation state's (2050,0010) Presentation LUT Sequence: ``lut``
    #: (a table id) and ``explanation``; empty for a LUT shape (see ``invert``).
    presentation_lut = traitlets.Dict({}).tag(sync=True)
    #: The study's objects that refer to the series shown, one dict each: ``id``,
    #: ``modality`` (SEG, RTSTRUCT, PR or KO), ``label``, ``shown`` and ``state``
    #: ('', 'loading' or 'failed', with a ``message``). Kept by the kernel: the
    #: page asks to show or hide one by a message.
    study_objects = traitlets.List([]).tag(sync=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._layer_masks: list[OverlayLayer] = []
        # Lookup tables and shutter masks the page may need, by id: resent to a
        # page that opens later.
        self._tables: dict[int, tuple[dict[str, Any], np.ndarray]] = {}
        self._table_ids: dict[bytes, int] = {}
        self._study_object_refs: list[dict[str, Any]] = []
        self._study_source: Source | None = None
        self._study_instance_uid = ""
        self._study_objects_lock = threading.RLock()
        self._study_objects_listed = threading.Event()
        super().__init__(*args, **kwargs)
        self.on_msg(self._handle_overlay_message)

    @traitlets.validate("layers")
    def _valid_layers(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        # The page may only switch layers on and off: every other field is the
        # kernel's own, rebuilt from the layer it names.
        rows = []
        for row in proposal["value"]:
            layer_id = row.get("id") if isinstance(row, dict) else None
            if not isinstance(layer_id, int) or not (
                    0 <= layer_id < len(self._layer_masks)):
                raise traitlets.TraitError(
                    f"layers holds {row!r}, which names no overlay layer; the "
                    f"viewer has {len(self._layer_masks)}")
            rows.append(self._layer_row(layer_id, bool(row.get("visible", True))))
        return rows

    def _layer_row(self, layer_id: int, visible: bool) -> dict[str, Any]:
        layer = self._layer_masks[layer_id]
        return {"id": layer_id, "name": layer.name, "number": layer.number,
                "color": [int(v) for v in layer.color], "style": layer.style,
                "visible": visible, "slices": sorted(int(s) for s in layer.masks)}

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
            for slice_index in layer.masks:
                mask_shape = layer.masks.shape
                if mask_shape != shape or not 0 <= slice_index < self.number_of_slices:
                    raise ValueError(
                        f"layer {layer.name!r} has a mask of shape {mask_shape} on "
                        f"slice {slice_index}; this viewer shows "
                        f"{self.number_of_slices} slices of {shape}"
                    )
        first = len(self._layer_masks)
        self._layer_masks += layers
        self.layers = [*self.layers, *(
            {"id": first + offset, "visible": True} for offset in range(len(layers)))]
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
        """Apply a GSPS: VOI, Presentation LUT, flip, rotation, shutters, graphics.

        A single window for every image becomes the viewer's window, which the
        reader may then drag as usual. Windows that differ by image, and VOI LUT
        tables, go to :attr:`presentation_voi` (the tables as messages) and are
        applied to the slices they name until the reader drags the window. A
        Presentation LUT table goes to :attr:`presentation_lut`; a LUT shape sets
        :attr:`invert`, whatever the images' Photometric Interpretation.

        Returns
        -------
        PresentationState
            What was read, with ``warnings`` for the parts not applied.
        """
        state = read_presentation_state(ds, self._index(), (self.rows, self.columns))
        voi = state.voi
        everywhere = set(range(self.number_of_slices))
        if len(voi) == 1 and voi[0].window is not None and (
                voi[0].slices is None or set(voi[0].slices) >= everywhere):
            self.presentation_voi = []
            self.window_function = voi[0].function
            self.window_center, self.window_width = voi[0].window
        elif voi:
            rows = [self._voi_row(item) for item in voi]
            self.presentation_voi = rows
            # The window a drag starts from: that of the slice shown, or the span
            # of its table.
            shown = state.voi_for(self.slice_index) or voi[0]
            if shown.window is not None:
                self.window_function = shown.function
                self.window_center, self.window_width = shown.window
            elif shown.lut is not None:
                self.window_function = "LINEAR"
                self.window_center = shown.lut_first + len(shown.lut) / 2.0
                self.window_width = float(len(shown.lut))
        else:
            self.presentation_voi = []
        if state.presentation_lut is not None:
            table_id = self._send_table("lut", {"first": 0}, state.presentation_lut)
            self.presentation_lut = {"lut": table_id,
                                     "explanation": state.presentation_lut_explanation}
        else:
            self.presentation_lut = {}
        self.invert = state.invert
        self.flip_horizontal, self.flip_vertical = state.flip_horizontal, False
        self.rotation = state.rotation
        self.displayed_area = (state.displayed_area.as_dict()
                               if state.displayed_area is not None else {})
        self.annotations = state.annotations
        shutters = [dict(shutter) for shutter in state.shutters]
        for shutter in shutters:
            if shutter["shape"] == "BITMAP" and state.shutter_mask is not None:
                shutter["mask"] = self._send_table(
                    "shutter_mask", {}, state.shutter_mask)
        self.shutters = shutters
        slices = sorted({s for a in state.annotations for s in (a["slices"] or [])})
        if slices:
            self.slice_index = slices[0]
        return state

    def _voi_row(self, voi: SoftcopyVOI) -> dict[str, Any]:
        """One :attr:`presentation_voi` row; a table is sent first."""
        row: dict[str, Any] = {"slices": voi.slices, "explanation": voi.explanation,
                               "kind": "window", "center": 0.0, "width": 1.0,
                               "function": voi.function, "lut": None}
        if voi.lut is not None:
            row["kind"] = "lut"
            row["lut"] = self._send_table("lut", {"first": int(voi.lut_first)},
                                          voi.lut)
        elif voi.window is not None:
            row["center"], row["width"] = (float(v) for v in voi.window)
        return row

    def _send_table(self, kind: str, fields: dict[str, Any], values: np.ndarray
                    ) -> int:
        """Send a lookup table or a shutter mask; it goes before the traits naming it.

        A table goes as little-endian float32 values, a mask as one bit per pixel
        (rows in order, the first pixel in the top bit). One already sent keeps
        its id, so showing a presentation state again adds nothing.
        """
        if kind == "lut":
            data = np.ascontiguousarray(values, dtype="<f4")
            content = {"type": kind, **fields, "entries": int(data.size)}
        else:
            data = np.packbits(np.asarray(values, dtype=bool).reshape(-1))
            content = {"type": kind, **fields, "rows": int(values.shape[0]),
                       "columns": int(values.shape[1])}
        digest = hashlib.sha256(repr(sorted(content.items())).encode()
                                + data.tobytes()).digest()
        if digest in self._table_ids:
            return self._table_ids[digest]
        table_id = len(self._tables)
        self._tables[table_id] = ({**content, "id": table_id}, data)
        self._table_ids[digest] = table_id
        self._send_stored_table(table_id)
        return table_id

    def _send_stored_table(self, table_id: int) -> None:
        content, data = self._tables[table_id]
        self.send(content, buffers=[memoryview(np.ascontiguousarray(data)).cast("B")])
        logger.debug("sent %s %d (%d bytes)", content["type"], table_id, data.nbytes)

    # -- the study's objects, switched on and off from the viewer ---------------------

    def find_study_objects(self, source: Source, study_instance_uid: str,
                           series_instance_uid: str) -> list[dict[str, Any]]:
        """List the study's SEG, RTSTRUCT, GSPS and KOS that refer to the series.

        Reads the headers (WADO-RS metadata, no pixel data) of the study's series
        whose (0008,0060) *Modality* is SEG, RTSTRUCT, PR or KO, and keeps each
        instance that names ``series_instance_uid`` (:func:`~viewerlib.objects.
        references.referenced_series_uids`), or, for an RTSTRUCT, whose ROIs lie
        in this series' (0020,0052) *Frame of Reference UID*. Nothing is drawn
        until :meth:`show_study_object` is called (or the toggle pressed).

        Parameters
        ----------
        source : Source
            Where the study is.
        study_instance_uid, series_instance_uid : str
            (0020,000D) and (0020,000E) of the series shown.

        Returns
        -------
        list of dict
            What :attr:`study_objects` now holds. An archive that cannot be
            searched is left out (logged), never an error: the images stay on
            screen. The archives of a federation are searched one by one, so
            that one that is down costs no warning in the middle of the reading.
        """
        found: list[dict[str, Any]] = []
        refs: list[dict[str, Any]] = []
        try:
            for series in _object_series(source, study_instance_uid):
                try:
                    headers = source.retrieve_series_metadata(
                        study_instance_uid, series.SeriesInstanceUID)
                except _OBJECT_ERRORS as err:
                    logger.warning("a %s series of the study could not be read: %s",
                                   series.Modality, type(err).__name__)
                    continue
                for header in headers:
                    if not self._refers_to_series(header, series_instance_uid):
                        continue
                    refs.append({"series": series.SeriesInstanceUID,
                                 "sop": str(header.get("SOPInstanceUID", "")),
                                 "dataset": None, "layers": [], "saved": None})
                    found.append({"id": len(found), "modality": series.Modality,
                                  "label": _object_label(series.Modality, header,
                                                         series.SeriesDescription),
                                  "shown": False, "state": "", "message": ""})
        except _OBJECT_ERRORS as err:
            logger.warning("the study's annotations could not be listed: %s",
                           type(err).__name__)
        with self._study_objects_lock:
            self._study_source = source
            self._study_instance_uid = study_instance_uid
            self._study_object_refs = refs
            self.study_objects = found
        self._study_objects_listed.set()
        logger.info("found %d annotation objects for the series", len(found))
        return found

    def wait_for_study_objects(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`find_study_objects` has run; True if it has."""
        return self._study_objects_listed.wait(timeout)

    def _refers_to_series(self, header: Dataset, series_instance_uid: str) -> bool:
        if series_instance_uid in referenced_series_uids(header):
            return True
        if object_kind(header) is not ObjectKind.RT_STRUCTURE_SET:
            return False
        # PS3.3 C.8.8.5: ROIs are placed in a Frame of Reference; the images may
        # be named only there, or not at all.
        frames = {str(item.get("FrameOfReferenceUID", "")) for item in
                  header.get("ReferencedFrameOfReferenceSequence") or []}
        frames |= {str(item.get("ReferencedFrameOfReferenceUID", "")) for item in
                   header.get("StructureSetROISequence") or []}
        return bool(self.frame_of_reference_uid) and (
            self.frame_of_reference_uid in frames)

    def show_study_object(self, object_id: int, shown: bool = True) -> None:
        """Show or hide one of :attr:`study_objects`.

        The first time an object is shown it is retrieved: a SEG or RTSTRUCT
        becomes layers (hidden again when switched off), a presentation state is
        applied (and the display it changed put back when switched off; only one
        is applied at a time), a key object selection marks its images (and
        unmarks them when switched off). Waits for the series to be whole.

        Parameters
        ----------
        object_id : int
            The ``id`` of an entry of :attr:`study_objects`.
        shown : bool
            Show (True) or hide (False).

        Raises
        ------
        KeyError
            If no listed object has that id.
        """
        with self._study_objects_lock:
            if not 0 <= object_id < len(self._study_object_refs):
                raise KeyError(
                    f"no study object {object_id}; the viewer lists "
                    f"{len(self._study_object_refs)} (see study_objects)")
            ref = self._study_object_refs[object_id]
            if shown == self.study_objects[object_id]["shown"]:
                return
            try:
                if shown:
                    self._set_object_row(object_id, state="loading", message="")
                    self._show_object(object_id, ref)
                else:
                    self._hide_object(ref)
            except _OBJECT_ERRORS as err:
                logger.warning("an annotation object could not be shown: %s",
                               type(err).__name__)
                if shown and ref["saved"] is not None:
                    # A presentation state that failed half-way is undone.
                    self._hide_object(ref)
                self._set_object_row(object_id, shown=False, state="failed",
                                     message=f"Could not be shown: {err}")
                return
            self._set_object_row(object_id, shown=shown, state="", message="")
            logger.info("%s an annotation object", "showed" if shown else "hid")

    def _set_object_row(self, object_id: int, **changes: Any) -> None:
        self.study_objects = [{**row, **changes} if row["id"] == object_id else row
                              for row in self.study_objects]

    def _show_object(self, object_id: int, ref: dict[str, Any]) -> None:
        ds = ref["dataset"]
        if ds is None:
            assert self._study_source is not None
            ds = self._study_source.retrieve_instance(
                self._study_instance_uid, ref["series"], ref["sop"])
            ref["dataset"] = ds
        kind = object_kind(ds)
        if kind in (ObjectKind.SEGMENTATION, ObjectKind.RT_STRUCTURE_SET):
            if not ref["layers"]:
                first = len(self._layer_masks)
                added = (self.add_segmentation(ds) if kind is ObjectKind.SEGMENTATION
                         else self.add_structure_set(ds))
                ref["layers"] = list(range(first, first + len(added)))
            else:
                self._set_layers_visible(ref["layers"], True)
        elif kind is ObjectKind.PRESENTATION_STATE:
            # One presentation state at a time: the one shown goes back first.
            for other, row in enumerate(self.study_objects):
                other_ref = self._study_object_refs[other]
                if row["shown"] and other_ref["saved"] is not None:
                    self._hide_object(other_ref)
                    self._set_object_row(other, shown=False)
            ref["saved"] = {name: getattr(self, name) for name in _DISPLAY_TRAITS}
            self.apply_presentation_state(ds)
        elif kind is ObjectKind.KEY_OBJECT_SELECTION:
            self.mark_key_images(ds)
        else:
            raise ValueError(f"a {kind.value} cannot be drawn over images")

    def _hide_object(self, ref: dict[str, Any]) -> None:
        if ref["layers"]:
            self._set_layers_visible(ref["layers"], False)
        elif ref["saved"] is not None:
            with self.hold_sync():
                for name, value in ref["saved"].items():
                    setattr(self, name, value)
            ref["saved"] = None
        elif ref["dataset"] is not None and object_kind(
                ref["dataset"]) is ObjectKind.KEY_OBJECT_SELECTION:
            self.key_images = []
            self.key_images_title = ""

    def _set_layers_visible(self, layer_ids: list[int], visible: bool) -> None:
        self.layers = [{**row, "visible": visible} if row["id"] in layer_ids else row
                       for row in self.layers]

    def _handle_overlay_message(
        self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]
    ) -> None:
        if content.get("type") == "ready":
            for table_id in self._tables:
                self._send_stored_table(table_id)
            for layer_id in range(len(self._layer_masks)):
                self._send_layer(layer_id)
        elif content.get("type") == "voi_released":
            # The reader dragged the window or chose a preset: the viewer's window
            # applies to every slice from now on.
            self.presentation_voi = []
        elif content.get("type") == "study_object":
            try:
                object_id, shown = int(content["id"]), bool(content["shown"])
            except (KeyError, TypeError, ValueError):
                logger.debug("malformed study_object message ignored")
                return
            # Retrieving may take a while, and drawing waits for the whole series:
            # the kernel keeps answering meanwhile.
            threading.Thread(target=self._toggle_quietly, args=(object_id, shown),
                             daemon=True, name="viewerlib-study-object").start()

    def _toggle_quietly(self, object_id: int, shown: bool) -> None:
        try:
            self.show_study_object(object_id, shown)
        except KeyError:
            logger.debug("toggle of an unknown study object ignored")

    def _send_layer(self, layer_id: int) -> None:
        layer = self._layer_masks[layer_id]
        slices = sorted(layer.masks)
        if not slices:
            return
        # The bounding box of each slice's mask: (top, left, rows, columns), and its
        # bits one per pixel, rows in order, the first pixel in the top bit, each
        # box from a byte of its own.
        boxes, parts = [], []
        for slice_index in slices:
            top, left, box = layer.masks.box(slice_index)
            boxes.append([top, left, int(box.shape[0]), int(box.shape[1])])
            parts.append(np.packbits(box.reshape(-1)))
        offsets = np.cumsum([0, *(part.size for part in parts)]).tolist()
        packed = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        self.send({"type": "layer", "id": layer_id, "slices": slices,
                   "boxes": boxes, "offsets": offsets[:-1]},
                  buffers=[memoryview(np.ascontiguousarray(packed)).cast("B")])
        logger.debug("sent overlay layer %d (%d slices, %d bytes)", layer_id,
                     len(slices), packed.nbytes)

    def __repr__(self) -> str:
        """Return the shape and the number of layers and key images (cheap)."""
        return (f"AnnotatedStackViewer({'x'.join(map(str, self.voxels.shape))}, "
                f"{len(self.layers)} layers, {len(self.key_images)} key images)")


def _object_series(source: Source, study_instance_uid: str) -> list[Series]:
    """The study's SEG, RTSTRUCT, PR and KO series, from every archive that answers."""
    members = getattr(source, "sources", None) or [source]
    found: dict[str, Series] = {}
    for member in members:
        try:
            listed = member.search_for_series(study_instance_uid=study_instance_uid)
        except _OBJECT_ERRORS as err:
            logger.info("an archive was not searched for annotations (%s)",
                        type(err).__name__)
            continue
        for series in listed:
            if series.Modality in _STUDY_OBJECT_NAMES:
                found.setdefault(series.SeriesInstanceUID, series)
    return list(found.values())


def _object_label(modality: str, header: Dataset, description: str) -> str:
    """What a study object's toggle says: its kind, then its own name."""
    name = (description or str(header.get("SeriesDescription", ""))
            or str(header.get("ContentLabel", ""))
            or str(header.get("StructureSetLabel", ""))
            or str(header.get("ContentDescription", "")))
    kind = _STUDY_OBJECT_NAMES[modality]
    return f"{kind}: {name}" if name else kind
