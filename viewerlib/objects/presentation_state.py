"""Grayscale Softcopy Presentation States (GSPS, PS3.3 A.33.1) as plain settings.

A presentation state says how a set of images is to be shown: the window or VOI LUT
table of each image, the Presentation LUT, the rotation and flip, the part of the
image displayed, the shutters and the graphic and text annotations drawn over it.
This module turns one into numbers, tables and lists the stack viewer applies; the
tables are evaluated by the pipeline's own stages (:mod:`viewerlib.pipeline.voi`,
:mod:`viewerlib.pipeline.presentation`), and every text stays a plain string.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from viewerlib.objects.color import dicom_lab_to_rgb, grey_to_rgb
from viewerlib.objects.sop import ObjectKind, object_kind
from viewerlib.pipeline.presentation import apply_presentation_lut
from viewerlib.pipeline.voi import VOILUTFunction, apply_voi_lut, apply_windowing

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.objects.references import SliceIndex

logger = logging.getLogger(__name__)

_DEFAULT_ANNOTATION_COLOR = (255, 213, 74)
_GRAPHIC_TYPES = ("POINT", "POLYLINE", "INTERPOLATED", "CIRCLE", "ELLIPSE")
# The VOI output range of the pipeline (viewerlib.pipeline.voi), 8-bit grey.
_OUTPUT_RANGE = (0.0, 255.0)
# (0028,1056) VOI LUT Function, PS3.3 C.11.2.1.3.
_VOI_FUNCTIONS = tuple(function.value for function in VOILUTFunction)


@dataclass
class SoftcopyVOI:
    """One item of (0028,3110) *Softcopy VOI LUT Sequence*, on the slices it names.

    Attributes
    ----------
    slices : list of int or None
        The ``slice_index`` (from 0) of each image its (0008,1140) *Referenced
        Image Sequence* names; None when it names none, so it applies to every
        image of the presentation state (PS3.3 C.11.8).
    window : (float, float) or None
        (0028,1050) *Window Center* and (0028,1051) *Window Width* (the first
        pair); None when the item is a table.
    function : str
        (0028,1056) *VOI LUT Function*, LINEAR when absent.
    lut_first : int
        The first modality value the table maps (second value of (0028,3002)
        *LUT Descriptor*); 0 for a window.
    lut : numpy.ndarray or None
        The first item of the (0028,3010) *VOI LUT Sequence* as its VOI output:
        float32 grey levels in [0, 255], one per table entry, as
        :func:`~viewerlib.pipeline.voi.apply_voi_lut` gives them. None for a
        window.
    explanation : str
        (0028,3003) *LUT Explanation* or (0028,1055) *Window Center & Width
        Explanation*.
    item : pydicom.dataset.Dataset or None
        The Softcopy VOI LUT Sequence item itself, which :meth:`apply` runs
        through the pipeline.
    """

    slices: list[int] | None
    window: tuple[float, float] | None = None
    function: str = "LINEAR"
    lut_first: int = 0
    lut: np.ndarray | None = field(default=None, repr=False)
    explanation: str = ""
    item: Dataset | None = field(default=None, repr=False)

    def applies_to(self, slice_index: int) -> bool:
        """True if the item is the VOI of slice ``slice_index``."""
        return self.slices is None or slice_index in self.slices

    def apply(self, values: np.ndarray) -> np.ndarray:
        """VOI output (float32 in [0, 255]) of modality values, as the pipeline does.

        Raises
        ------
        ValueError
            If the item holds neither a table nor a window.
        """
        if self.lut is not None and self.item is not None:
            return apply_voi_lut(values, self.item, 0, _OUTPUT_RANGE)
        if self.window is None:
            raise ValueError("the Softcopy VOI LUT item holds neither a VOI LUT "
                             "Sequence nor a window")
        return apply_windowing(values, self.window[0], self.window[1], self.function,
                               _OUTPUT_RANGE)


@dataclass
class DisplayedArea:
    """(0070,005A) *Displayed Area Selection Sequence*, one item, in pixel numbers.

    Attributes
    ----------
    top_left, bottom_right : tuple of int
        (column, row) of the first and last pixel shown, from 1 (PS3.3 C.10.4).
    size_mode : str
        (0070,0100) *Presentation Size Mode*: SCALE TO FIT, TRUE SIZE or MAGNIFY.
    magnification : float
        (0070,0103) *Presentation Pixel Magnification Ratio* (MAGNIFY only).
    """

    top_left: tuple[int, int]
    bottom_right: tuple[int, int]
    size_mode: str = "SCALE TO FIT"
    magnification: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        """The form the viewer's ``displayed_area`` trait holds."""
        return {"top_left": list(self.top_left),
                "bottom_right": list(self.bottom_right),
                "size_mode": self.size_mode, "magnification": self.magnification}


@dataclass
class PresentationState:
    """What a GSPS asks of the display, ready for the stack viewer.

    Attributes
    ----------
    window : (float, float) or None
        (0028,1050) *Window Center* and (0028,1051) *Window Width* of the first
        item of the (0028,3110) *Softcopy VOI LUT Sequence*; None when that item
        is a table (see ``voi``).
    voi_lut_function : str
        (0028,1056) *VOI LUT Function* of that item, LINEAR when absent.
    voi : list of SoftcopyVOI
        Every item of the Softcopy VOI LUT Sequence that applies to images shown,
        windows and tables, each with its slices. A slice that none names keeps
        the images' own window.
    invert : bool
        (2050,0020) *Presentation LUT Shape* INVERSE. In a presentation state
        the shape replaces the images' (0028,0004) *Photometric
        Interpretation*: IDENTITY shows a MONOCHROME1 image with low values
        dark (PS3.3 C.11.6.1).
    presentation_lut : numpy.ndarray or None
        The (2050,0010) *Presentation LUT Sequence* table as float32 P-values in
        [0, 255], one per entry (the VOI output is scaled onto its entries,
        :func:`~viewerlib.pipeline.presentation.apply_presentation_lut`); None
        with a LUT shape.
    presentation_lut_explanation : str
        The table's (0028,3003) *LUT Explanation*.
    rotation : int
        (0070,0042) *Image Rotation*, clockwise degrees, applied after the flip.
    flip_horizontal : bool
        (0070,0041) *Image Horizontal Flip*.
    displayed_area : DisplayedArea or None
        The first item of the (0070,005A) *Displayed Area Selection Sequence*.
    annotations : list of dict
        One per graphic or text object, in PIXEL coordinates (column, row; 0 is
        the top left edge of the top left pixel, PS3.3 C.10.5.1.2): ``kind``
        (a graphic type or ``TEXT``), ``points``, ``filled``, ``color``, ``text``,
        ``box`` and ``anchor``, ``layer`` and ``slices`` (None: every image).
    shutters : list of dict
        The display shutters (PS3.3 C.7.6.11), each a ``shape`` (RECTANGULAR,
        CIRCULAR or POLYGONAL) with its outline in PIXEL coordinates (``points``,
        or ``center`` and ``radius``) and the ``color`` of what lies outside it;
        a BITMAP shutter (C.7.6.15) has its ``color`` only, its pixels are
        ``shutter_mask``.
    shutter_mask : numpy.ndarray or None
        The bitmap shutter on the images' pixel grid: bool (rows, columns), True
        where the shutter covers the image.
    label : str
        (0070,0080) *Content Label*.
    warnings : list of str
        Parts not applied.
    """

    window: tuple[float, float] | None = None
    voi_lut_function: str = "LINEAR"
    voi: list[SoftcopyVOI] = field(default_factory=list)
    invert: bool = False
    presentation_lut: np.ndarray | None = field(default=None, repr=False)
    presentation_lut_explanation: str = ""
    rotation: int = 0
    flip_horizontal: bool = False
    displayed_area: DisplayedArea | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    shutters: list[dict[str, Any]] = field(default_factory=list)
    shutter_mask: np.ndarray | None = field(default=None, repr=False)
    label: str = ""
    warnings: list[str] = field(default_factory=list)
    dataset: Dataset | None = field(default=None, repr=False)

    def voi_for(self, slice_index: int) -> SoftcopyVOI | None:
        """The Softcopy VOI item of a slice (the first that names it), or None."""
        return next((voi for voi in self.voi if voi.applies_to(slice_index)), None)

    def display_values(self, values: np.ndarray, slice_index: int) -> np.ndarray:
        """The grey levels the state shows for modality values of one slice.

        The VOI item of the slice, then the Presentation LUT (table or shape),
        rounded to 8 bits: the stages of PS3.4 N.2 as the pipeline runs them
        (:func:`~viewerlib.pipeline.voi.apply_voi_lut`,
        :func:`~viewerlib.pipeline.voi.apply_windowing`,
        :func:`~viewerlib.pipeline.presentation.apply_presentation_lut`).

        Parameters
        ----------
        values : numpy.ndarray
            Modality values (after the images' Modality LUT).
        slice_index : int
            The slice they belong to, from 0.

        Returns
        -------
        numpy.ndarray
            uint8 grey levels, the shape of ``values``.

        Raises
        ------
        ValueError
            If no Softcopy VOI item applies to the slice: the images' own
            window is then shown, which the state does not know.
        """
        voi = self.voi_for(slice_index)
        if voi is None:
            raise ValueError(
                f"no (0028,3110) Softcopy VOI LUT Sequence item names slice "
                f"{slice_index}; the images' own window applies there")
        shown = voi.apply(values)
        if self.presentation_lut is not None and self.dataset is not None:
            shown = apply_presentation_lut(shown, self.dataset, _OUTPUT_RANGE)
        elif self.invert:
            shown = np.float32(_OUTPUT_RANGE[1]) - shown
        return np.clip(np.rint(shown), 0, 255).astype(np.uint8)


def read_presentation_state(
    ds: Dataset,
    index: SliceIndex | None = None,
    image_size: tuple[int, int] | None = None,
) -> PresentationState:
    """Read a GSPS into the settings the stack viewer applies.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A Grayscale Softcopy Presentation State Storage instance. Uses the
        Softcopy VOI LUT, Presentation LUT, Spatial Transformation, Displayed Area,
        Display Shutter, Bitmap Display Shutter (with its Overlay Plane), Graphic
        Annotation and Graphic Layer modules (PS3.3 C.11.8, C.11.6, C.10.6,
        C.10.4, C.7.6.11, C.7.6.15, C.9.2, C.10.5, C.10.7).
    index : SliceIndex, optional
        The images shown, to find which slices each annotation and each VOI item
        belongs to; without it, those that name images are kept for every slice.
    image_size : (int, int), optional
        (rows, columns) of the images, for annotations in DISPLAY units when the
        state selects no displayed area, and for the grid of a bitmap shutter.

    Returns
    -------
    PresentationState

    Raises
    ------
    ValueError
        If ``ds`` is not a GSPS.

    Notes
    -----
    A slice that no Softcopy VOI LUT item names keeps the window on screen.
    PS3.4 N.2.1.3 would apply the identity there, which for CT shows the whole
    stored range; a state that names only some images of a series is read as
    saying nothing about the others. A (0028,0004) *Photometric Interpretation*
    is not used once a state is applied: its Presentation LUT decides (N.2.1.4).

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds, voi = Dataset(), Dataset()
    >>> ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.11.1"
    >>> voi.WindowCenter, voi.WindowWidth = 40, 80
    >>> ds.SoftcopyVOILUTSequence, ds.ImageRotation = [voi], 90
    >>> state = read_presentation_state(ds)
    >>> state.window, state.rotation
    ((40.0, 80.0), 90)
    """
    if object_kind(ds) is not ObjectKind.PRESENTATION_STATE:
        raise ValueError(
            f"(0008,0016) SOP Class UID {ds.get('SOPClassUID', '')} is not Grayscale "
            "Softcopy Presentation State Storage (1.2.840.10008.5.1.4.1.1.11.1)"
        )
    state = PresentationState(label=str(ds.get("ContentLabel", "")), dataset=ds)
    _read_voi(ds, index, state)
    _read_presentation_lut(ds, state)
    # PS3.3 C.10.6.1.1: the flip comes first, then the clockwise rotation.
    state.rotation = int(ds.get("ImageRotation", 0) or 0) % 360
    state.flip_horizontal = str(ds.get("ImageHorizontalFlip", "N")).upper() == "Y"
    areas = list(ds.get("DisplayedAreaSelectionSequence") or [])
    if areas:
        state.displayed_area = _displayed_area(areas[0])
        if len(areas) > 1:
            _note(state, "only the first of several displayed areas is applied")
    state.shutters = _shutters(ds, state, image_size)
    colors = _layer_colors(ds)
    area = state.displayed_area or (
        DisplayedArea((1, 1), (image_size[1], image_size[0])) if image_size else None)
    for annotation in ds.get("GraphicAnnotationSequence") or []:
        slices = _annotation_slices(annotation, index, state)
        if slices == []:
            continue
        layer = str(annotation.get("GraphicLayer", ""))
        color = colors.get(layer, _DEFAULT_ANNOTATION_COLOR)
        convert = _Units(area, state.rotation, state.flip_horizontal)
        for graphic in annotation.get("GraphicObjectSequence") or []:
            item = _graphic(graphic, convert, color, state)
            if item is not None:
                state.annotations.append({**item, "layer": layer, "slices": slices})
        for text in annotation.get("TextObjectSequence") or []:
            item = _text(text, convert, color, state)
            if item is not None:
                state.annotations.append({**item, "layer": layer, "slices": slices})
    logger.info("read a presentation state with %d annotations",
                len(state.annotations))
    return state


def _note(state: PresentationState, message: str) -> None:
    state.warnings.append(message)
    logger.warning(message)
    warnings.warn(message, UserWarning, stacklevel=3)


def _shutters(ds: Dataset, state: PresentationState,
              image_size: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Display shutters in PIXEL coordinates; what lies outside one is hidden.

    PS3.3 C.7.6.11.1: edges and vertices name pixels by (column or row) number
    from 1, and a pixel on the edge is inside the shutter (shown). A BITMAP
    shutter (C.7.6.15) hides the pixels its overlay sets (``state.shutter_mask``).
    """
    shapes = ds.get("ShutterShape")
    if not shapes:
        return []
    shapes = [shapes] if isinstance(shapes, str) else list(shapes)
    lab = ds.get("ShutterPresentationColorCIELabValue")
    if lab is not None:
        color = dicom_lab_to_rgb([int(v) for v in lab])
    else:
        color = grey_to_rgb(int(ds.get("ShutterPresentationValue", 0) or 0))
    shutters: list[dict[str, Any]] = []
    for shape in (str(v).upper() for v in shapes):
        if shape == "RECTANGULAR":
            left = float(ds.ShutterLeftVerticalEdge) - 1.0
            right = float(ds.ShutterRightVerticalEdge)
            top = float(ds.ShutterUpperHorizontalEdge) - 1.0
            bottom = float(ds.ShutterLowerHorizontalEdge)
            points = [[left, top], [right, top], [right, bottom], [left, bottom]]
            shutters.append({"shape": shape, "points": points, "color": list(color)})
        elif shape == "CIRCULAR":
            row, column = (float(v) for v in ds.CenterOfCircularShutter)
            shutters.append({"shape": shape, "center": [column - 0.5, row - 0.5],
                             "radius": float(ds.RadiusOfCircularShutter),
                             "color": list(color)})
        elif shape == "POLYGONAL":
            values = [float(v) for v in ds.VerticesOfThePolygonalShutter]
            # Vertices are (row, column) pairs of pixel centres.
            points = [[values[i + 1] - 0.5, values[i] - 0.5]
                      for i in range(0, len(values) - 1, 2)]
            shutters.append({"shape": shape, "points": points, "color": list(color)})
        elif shape == "BITMAP":
            state.shutter_mask = _bitmap_shutter(ds, state, image_size)
            if state.shutter_mask is not None:
                shutters.append({"shape": shape, "color": list(color)})
        else:
            _note(state, f"(0018,1600) Shutter Shape {shape!r} is not one of "
                  "RECTANGULAR, CIRCULAR, POLYGONAL or BITMAP; it is not applied")
    return shutters


def _bitmap_shutter(ds: Dataset, state: PresentationState,
                    image_size: tuple[int, int] | None) -> np.ndarray | None:
    """The pixels a BITMAP shutter covers, on the images' grid (PS3.3 C.7.6.15).

    The shutter is the overlay plane (C.9.2) of group (0018,1623) *Shutter
    Overlay Group* in the presentation state itself; a 1 in its (60xx,3000)
    *Overlay Data* is a pixel replaced by the shutter's colour.
    """
    group = ds.get("ShutterOverlayGroup")
    group = int(group) if group is not None else -1
    if not (0x6000 <= group <= 0x601E and group % 2 == 0) or (
            (group << 16 | 0x3000) not in ds):
        _note(state, f"the BITMAP shutter names overlay group {group:04X} in "
              "(0018,1623) Shutter Overlay Group, and the presentation state holds "
              "no (60xx,3000) Overlay Data there; the shutter is not applied")
        return None

    def value(element: int, default: Any = None) -> Any:
        tag = group << 16 | element
        return ds[tag].value if tag in ds else default

    rows, columns = int(value(0x0010, 0) or 0), int(value(0x0011, 0) or 0)
    bits = int(value(0x0100, 1) or 1)
    if bits != 1 or rows <= 0 or columns <= 0:
        _note(state, f"the BITMAP shutter's overlay ({group:04X},0100) Overlay Bits "
              f"Allocated is {bits} and its size {rows} x {columns}; only 1-bit "
              "overlays with rows and columns are applied")
        return None
    if int(value(0x0015, 1) or 1) > 1:
        _note(state, "the BITMAP shutter's overlay has several frames; the first is "
              "applied to every image")
    # PS3.3 C.9.2.1.2: (60xx,0050) Overlay Origin is (row, column) of the
    # overlay's first pixel, the image's first pixel being (1, 1).
    origin = value(0x0050) or [1, 1]
    top, left = int(origin[0]) - 1, int(origin[1]) - 1
    # PS3.5 8.1.2 and Annex D: one bit per pixel, from the lowest bit of each
    # byte of (60xx,3000) Overlay Data.
    bits_read = np.unpackbits(np.frombuffer(bytes(value(0x3000)), np.uint8),
                              bitorder="little")
    if bits_read.size < rows * columns:
        _note(state, f"the BITMAP shutter's (60xx,3000) Overlay Data holds "
              f"{bits_read.size} bits for {rows} x {columns} pixels; it is not "
              "applied")
        return None
    overlay = bits_read[:rows * columns].reshape(rows, columns).astype(bool)

    shape = image_size or (top + rows, left + columns)
    mask = np.zeros((max(0, shape[0]), max(0, shape[1])), dtype=bool)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + rows, mask.shape[0]), min(left + columns, mask.shape[1])
    if r0 < r1 and c0 < c1:
        mask[r0:r1, c0:c1] = overlay[r0 - top:r1 - top, c0 - left:c1 - left]
    return mask


def _read_voi(ds: Dataset, index: SliceIndex | None,
              state: PresentationState) -> None:
    """Every (0028,3110) Softcopy VOI LUT Sequence item, with its slices (C.11.8)."""
    for item in ds.get("SoftcopyVOILUTSequence") or []:
        slices = _referenced_slices(item, index)
        if slices == []:
            logger.debug("a Softcopy VOI LUT item names none of the images shown")
            continue
        voi = _softcopy_voi(item, slices, state)
        if voi is not None:
            state.voi.append(voi)
    first = state.voi[0] if state.voi else None
    if first is not None and first.window is not None:
        state.window = first.window
        state.voi_lut_function = first.function


def _softcopy_voi(item: Dataset, slices: list[int] | None,
                  state: PresentationState) -> SoftcopyVOI | None:
    """One Softcopy VOI item: its table (preferred, PS3.3 C.11.8) or its window."""
    tables = list(item.get("VOILUTSequence") or [])
    if tables:
        table = tables[0]
        if len(tables) > 1:
            _note(state, "a (0028,3010) VOI LUT Sequence holds several tables; "
                  "only the first is applied")
        if "LUTDescriptor" not in table or "LUTData" not in table:
            _note(state, "a (0028,3010) VOI LUT Sequence item lacks (0028,3002) LUT "
                  "Descriptor or (0028,3006) LUT Data; it is not applied")
            return None
        # PS3.3 C.11.2.1.1: entries (0 for 65536), first modality value mapped.
        entries, first = int(table.LUTDescriptor[0]) or 65536, int(
            table.LUTDescriptor[1])
        outputs = apply_voi_lut(first + np.arange(entries), item, 0, _OUTPUT_RANGE)
        return SoftcopyVOI(slices, None, "LINEAR", first, outputs,
                           str(table.get("LUTExplanation", "") or "").strip(), item)
    if "WindowCenter" not in item or "WindowWidth" not in item:
        _note(state, "a (0028,3110) Softcopy VOI LUT Sequence item holds neither a "
              "VOI LUT Sequence nor (0028,1050) Window Center and (0028,1051) Window "
              "Width; it is not applied")
        return None
    # Several windows may be given; the first is the one to apply.
    center, width = _first(item.WindowCenter), _first(item.WindowWidth)
    function = str(item.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function not in _VOI_FUNCTIONS:
        _note(state, f"(0028,1056) VOI LUT Function {function!r} is not one of "
              f"{', '.join(_VOI_FUNCTIONS)}; LINEAR is applied")
        function = "LINEAR"
    explanation = item.get("WindowCenterWidthExplanation", "")
    return SoftcopyVOI(slices, (float(center), float(width)), function,
                       explanation=str(_first(explanation) or "").strip(), item=item)


def _first(value: Any) -> Any:
    """The first value of a possibly multi-valued element."""
    if hasattr(value, "__len__") and not isinstance(value, str | bytes):
        return value[0] if len(value) else ""
    return value


def _read_presentation_lut(ds: Dataset, state: PresentationState) -> None:
    """The Softcopy Presentation LUT Module (PS3.3 C.11.6): a table or a shape.

    In a presentation state either replaces the images' (0028,0004) *Photometric
    Interpretation* (PS3.4 N.2.1.3 and N.2.1.4), so a MONOCHROME1 image shown
    through IDENTITY has its low values dark.
    """
    sequence = list(ds.get("PresentationLUTSequence") or [])
    if not sequence:
        shape = str(ds.get("PresentationLUTShape", "IDENTITY") or "IDENTITY")
        state.invert = shape.strip().upper() == "INVERSE"
        return
    table = sequence[0]
    try:
        entries = int(table.LUTDescriptor[0]) or 65536
        # The VOI output that falls on each entry (its input scaled back, C.11.6.1),
        # through the pipeline's own Presentation LUT stage.
        inputs = np.arange(entries) * (_OUTPUT_RANGE[1] / max(1, entries - 1))
        state.presentation_lut = apply_presentation_lut(inputs, ds, _OUTPUT_RANGE)
    except (AttributeError, TypeError, ValueError) as err:
        _note(state, f"the (2050,0010) Presentation LUT Sequence is not applied "
              f"({err})")
        return
    state.presentation_lut_explanation = str(
        table.get("LUTExplanation", "") or "").strip()
    state.invert = False


def _displayed_area(item: Dataset) -> DisplayedArea:
    top_left = [int(v) for v in item.DisplayedAreaTopLeftHandCorner]
    bottom_right = [int(v) for v in item.DisplayedAreaBottomRightHandCorner]
    mode = str(item.get("PresentationSizeMode", "SCALE TO FIT") or "SCALE TO FIT")
    magnification = float(item.get("PresentationPixelMagnificationRatio", 1.0) or 1.0)
    return DisplayedArea((top_left[0], top_left[1]),
                         (bottom_right[0], bottom_right[1]), mode.upper(),
                         magnification)


def _layer_colors(ds: Dataset) -> dict[str, tuple[int, int, int]]:
    colors = {}
    for layer in ds.get("GraphicLayerSequence") or []:
        lab = layer.get("GraphicLayerRecommendedDisplayCIELabValue")
        grey = layer.get("GraphicLayerRecommendedDisplayGrayscaleValue")
        if lab is not None and len(lab) == 3:
            colors[str(layer.GraphicLayer)] = dicom_lab_to_rgb([int(v) for v in lab])
        elif grey is not None:
            colors[str(layer.GraphicLayer)] = grey_to_rgb(int(grey))
    return colors


def _annotation_slices(annotation: Dataset, index: SliceIndex | None,
                       state: PresentationState) -> list[int] | None:
    """Slices an annotation is drawn on: None for all, [] for none of those shown."""
    slices = _referenced_slices(annotation, index)
    if slices == []:
        _note(state, "an annotation refers to images not shown and is not drawn")
    return slices


def _referenced_slices(item: Dataset, index: SliceIndex | None) -> list[int] | None:
    """Slices an item's (0008,1140) Referenced Image Sequence names; None for all."""
    references = list(item.get("ReferencedImageSequence") or [])
    if not references or index is None:
        return None
    slices: list[int] = []
    for reference in references:
        frames = reference.get("ReferencedFrameNumber")
        numbers = [None] if frames is None else (
            [int(v) for v in frames] if hasattr(frames, "__iter__")
            else [int(frames)])
        for number in numbers:
            slices += index.slices_of(str(reference.ReferencedSOPInstanceUID), number)
    return sorted(set(slices))


class _Units:
    """Annotation coordinates to PIXEL units (PS3.3 C.10.5.1.2).

    DISPLAY units run from 0 to 1 across the displayed area as shown, after the
    flip and the rotation, so they are turned back onto the stored image.
    """

    def __init__(self, area: DisplayedArea | None, rotation: int, flip: bool) -> None:
        self.area, self.rotation, self.flip = area, rotation, flip

    def __call__(self, points: list[list[float]], units: str) -> list[list[float]]:
        if str(units).upper() != "DISPLAY":
            return [[float(x), float(y)] for x, y in points]
        if self.area is None:
            raise ValueError(
                "an annotation is in DISPLAY units but neither the state's displayed "
                "area nor the image size is known; pass image_size"
            )
        left, top = self.area.top_left[0] - 1, self.area.top_left[1] - 1
        width = self.area.bottom_right[0] - left
        height = self.area.bottom_right[1] - top
        turns = (self.rotation // 90) % 4
        shown = (height, width) if turns % 2 else (width, height)
        result = []
        for fx, fy in points:
            x, y = (float(fx) - 0.5) * shown[0], (float(fy) - 0.5) * shown[1]
            for _ in range(turns):
                # Undo one clockwise quarter turn (y points down on screen).
                x, y = y, -x
            if self.flip:
                x = -x
            result.append([left + width / 2 + x, top + height / 2 + y])
        return result


def _pairs(values: Any) -> list[list[float]]:
    flat = [float(v) for v in values]
    return [flat[i:i + 2] for i in range(0, len(flat) - 1, 2)]


def _style_color(item: Dataset, sequence: str, keyword: str,
                 default: tuple[int, int, int]) -> tuple[int, int, int]:
    styles = item.get(sequence) or []
    lab = styles[0].get(keyword) if styles else None
    return dicom_lab_to_rgb([int(v) for v in lab]) if lab is not None else default


def _graphic(graphic: Dataset, convert: _Units, color: tuple[int, int, int],
             state: PresentationState) -> dict[str, Any] | None:
    kind = str(graphic.get("GraphicType", "")).upper()
    if kind not in _GRAPHIC_TYPES:
        _note(state, f"(0070,0023) Graphic Type {kind!r} is not one of "
              f"{', '.join(_GRAPHIC_TYPES)}; it is not drawn")
        return None
    points = convert(_pairs(graphic.get("GraphicData") or []),
                     str(graphic.get("GraphicAnnotationUnits", "PIXEL")))
    return {
        "kind": kind,
        "points": points,
        "filled": str(graphic.get("GraphicFilled", "N")).upper() == "Y",
        "color": list(_style_color(graphic, "LineStyleSequence",
                                   "PatternOnColorCIELabValue", color)),
        "text": "",
        "box": None,
        "anchor": None,
    }


def _text(text: Dataset, convert: _Units, color: tuple[int, int, int],
          state: PresentationState) -> dict[str, Any] | None:
    value = str(text.get("UnformattedTextValue", ""))
    box = None
    anchor = None
    if "BoundingBoxTopLeftHandCorner" in text:
        box = convert(
            [[float(v) for v in text.BoundingBoxTopLeftHandCorner],
             [float(v) for v in text.BoundingBoxBottomRightHandCorner]],
            str(text.get("BoundingBoxAnnotationUnits", "PIXEL")))
    if "AnchorPoint" in text:
        anchor = convert([[float(v) for v in text.AnchorPoint]],
                         str(text.get("AnchorPointAnnotationUnits", "PIXEL")))[0]
    if box is None and anchor is None:
        _note(state, "a text annotation has neither a bounding box nor an anchor "
              "point; it is not drawn")
        return None
    return {
        "kind": "TEXT",
        "points": [],
        "filled": False,
        "color": list(_style_color(text, "TextStyleSequence",
                                   "TextColorCIELabValue", color)),
        "text": value,
        "box": box,
        "anchor": anchor,
        "anchor_visible": str(text.get("AnchorPointVisibility", "N")).upper() == "Y",
    }
