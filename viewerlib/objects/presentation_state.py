"""Grayscale Softcopy Presentation States (GSPS, PS3.3 A.33.1) as plain settings.

A presentation state says how a set of images is to be shown: the window, the
rotation and flip, the part of the image displayed and the graphic and text
annotations drawn over it. This module turns one into numbers and lists the stack
viewer applies; every text stays a plain string.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from viewerlib.objects.color import dicom_lab_to_rgb, grey_to_rgb
from viewerlib.objects.sop import ObjectKind, object_kind

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.objects.references import SliceIndex

logger = logging.getLogger(__name__)

_DEFAULT_ANNOTATION_COLOR = (255, 213, 74)
_GRAPHIC_TYPES = ("POINT", "POLYLINE", "INTERPOLATED", "CIRCLE", "ELLIPSE")


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
        (0028,1050) *Window Center* and (0028,1051) *Window Width* of the
        (0028,3110) *Softcopy VOI LUT Sequence*.
    voi_lut_function : str
        (0028,1056) *VOI LUT Function*, LINEAR when absent.
    invert : bool
        (2050,0020) *Presentation LUT Shape* INVERSE.
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
        or ``center`` and ``radius``) and the ``color`` of what lies outside it.
    label : str
        (0070,0080) *Content Label*.
    warnings : list of str
        Parts not applied.
    """

    window: tuple[float, float] | None = None
    voi_lut_function: str = "LINEAR"
    invert: bool = False
    rotation: int = 0
    flip_horizontal: bool = False
    displayed_area: DisplayedArea | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    shutters: list[dict[str, Any]] = field(default_factory=list)
    label: str = ""
    warnings: list[str] = field(default_factory=list)


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
        Graphic Annotation and Graphic Layer modules (PS3.3 C.11.8, C.11.6, C.10.6,
        C.10.4, C.10.5, C.10.7).
    index : SliceIndex, optional
        The images shown, to find which slices each annotation belongs to; without
        it, annotations that name images are kept for every slice.
    image_size : (int, int), optional
        (rows, columns) of the images, for annotations in DISPLAY units when the
        state selects no displayed area.

    Returns
    -------
    PresentationState

    Raises
    ------
    ValueError
        If ``ds`` is not a GSPS.

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
    state = PresentationState(label=str(ds.get("ContentLabel", "")))
    _read_voi(ds, state)
    state.invert = str(ds.get("PresentationLUTShape", "IDENTITY")).upper() == "INVERSE"
    if "PresentationLUTSequence" in ds:
        _note(state, "a (2050,0010) Presentation LUT Sequence table is not applied; "
              "only the LUT shape")
    # PS3.3 C.10.6.1.1: the flip comes first, then the clockwise rotation.
    state.rotation = int(ds.get("ImageRotation", 0) or 0) % 360
    state.flip_horizontal = str(ds.get("ImageHorizontalFlip", "N")).upper() == "Y"
    areas = list(ds.get("DisplayedAreaSelectionSequence") or [])
    if areas:
        state.displayed_area = _displayed_area(areas[0])
        if len(areas) > 1:
            _note(state, "only the first of several displayed areas is applied")
    state.shutters = _shutters(ds, state)
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


def _shutters(ds: Dataset, state: PresentationState) -> list[dict[str, Any]]:
    """Display shutters in PIXEL coordinates; what lies outside one is hidden.

    PS3.3 C.7.6.11.1: edges and vertices name pixels by (column or row) number
    from 1, and a pixel on the edge is inside the shutter (shown).
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
        else:
            # TODO(#5): bitmap shutters (overlay planes, C.7.6.15) are not drawn.
            _note(state, f"the {shape} display shutter is not applied")
    return shutters


def _read_voi(ds: Dataset, state: PresentationState) -> None:
    items = list(ds.get("SoftcopyVOILUTSequence") or [])
    if not items:
        return
    voi = items[0]
    if "VOILUTSequence" in voi:
        # TODO(#5): VOI LUT tables from a presentation state are not applied yet.
        _note(state, "a (0028,3010) VOI LUT Sequence table is not applied; the "
              "images' own window is kept")
        return
    if "WindowCenter" not in voi or "WindowWidth" not in voi:
        return
    center, width = voi.WindowCenter, voi.WindowWidth
    # Several windows may be given; the first is the one to apply.
    center = center[0] if hasattr(center, "__len__") and not isinstance(center, str) \
        else center
    width = width[0] if hasattr(width, "__len__") and not isinstance(width, str) \
        else width
    state.window = (float(center), float(width))
    state.voi_lut_function = str(voi.get("VOILUTFunction", "LINEAR") or "LINEAR")
    if len(items) > 1:
        _note(state, "only the first (0028,3110) Softcopy VOI LUT Sequence item is "
              "applied, to every image")


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
    references = list(annotation.get("ReferencedImageSequence") or [])
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
    if not slices:
        _note(state, "an annotation refers to images not shown and is not drawn")
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
