"""GSPS settings and annotations, and KOS key images, read and applied."""

from __future__ import annotations

import copy

import highdicom as hd
import numpy as np
import pytest
from object_builders import key_objects, phantom, presentation_state
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from viewerlib.objects.key_objects import read_key_objects
from viewerlib.objects.presentation_state import read_presentation_state
from viewerlib.objects.references import SliceIndex
from viewerlib.widgets.overlays import AnnotatedStackViewer

_LAYER = hd.pr.GraphicLayer(layer_name="LAYER1", order=1)


def _area(ds: Dataset, top_left: list[int], bottom_right: list[int],
          mode: str = "SCALE TO FIT", magnification: float | None = None) -> None:
    item = ds.DisplayedAreaSelectionSequence[0]
    item.DisplayedAreaTopLeftHandCorner = top_left
    item.DisplayedAreaBottomRightHandCorner = bottom_right
    item.PresentationSizeMode = mode
    if magnification is not None:
        item.PresentationPixelMagnificationRatio = magnification
        del item.PresentationPixelAspectRatio


def test_gsps_window_rotation_flip_and_area_are_applied_to_the_viewer() -> None:
    images, volume = phantom()
    ps = presentation_state(images, (40.0, 80.0))
    ps.ImageRotation, ps.ImageHorizontalFlip = 90, "Y"
    _area(ps, [3, 5], [10, 12], "MAGNIFY", 2.0)
    viewer = AnnotatedStackViewer.from_volume(volume)

    state = viewer.apply_presentation_state(ps)

    assert (viewer.window_center, viewer.window_width) == (40.0, 80.0)
    assert viewer.window_function == "LINEAR"
    assert (viewer.rotation, viewer.flip_horizontal, viewer.flip_vertical) == (
        90, True, False)
    assert viewer.displayed_area == {"top_left": [3, 5], "bottom_right": [10, 12],
                                     "size_mode": "MAGNIFY", "magnification": 2.0}
    # Axial: R|L across, A|P down. Flip first (L|R), then a clockwise quarter turn
    # carries the left edge to the top: top L, right A, bottom R, left P.
    assert viewer.orientation == {"left": "P", "right": "A", "top": "L",
                                  "bottom": "R"}
    assert state.warnings == []


def test_inverse_presentation_lut_shape_inverts() -> None:
    images, volume = phantom()
    ps = presentation_state(images, (40.0, 80.0))
    ps.PresentationLUTShape = "INVERSE"
    viewer = AnnotatedStackViewer.from_volume(volume)
    viewer.apply_presentation_state(ps)
    assert viewer.invert is True


def test_gsps_annotations_go_to_the_slices_they_name_in_pixel_units() -> None:
    images, volume = phantom()
    annotation = hd.pr.GraphicAnnotation(
        referenced_images=[images[2]], graphic_layer=_LAYER,
        graphic_objects=[hd.pr.GraphicObject(
            "POLYLINE", np.array([[2.0, 3.0], [10.0, 3.0], [10.0, 8.0]]), "PIXEL")],
        text_objects=[hd.pr.TextObject("<img src=x onerror=alert(1)>", "PIXEL",
                                       anchor_point=(4.0, 5.0))])
    ps = presentation_state(images, (40.0, 80.0), [annotation])
    viewer = AnnotatedStackViewer.from_volume(volume)

    viewer.apply_presentation_state(ps)

    graphic, text = viewer.annotations
    assert graphic["kind"] == "POLYLINE" and graphic["slices"] == [2]
    assert graphic["points"] == [[2.0, 3.0], [10.0, 3.0], [10.0, 8.0]]
    # The layer recommends CIELab (100, 0, 0): white.
    assert graphic["color"] == [255, 255, 255]
    assert text["text"] == "<img src=x onerror=alert(1)>"
    assert text["anchor"] == [4.0, 5.0] and text["slices"] == [2]
    assert viewer.slice_index == 2


@pytest.mark.parametrize(
    "rotation,flip,fraction,expected",
    [
        # Displayed area columns 3-10, rows 5-12: left edge 2, top 4, 8 x 8 pixels.
        (0, "N", (0.0, 0.0), [2.0, 4.0]),
        (0, "N", (0.5, 0.5), [6.0, 8.0]),
        # Turned clockwise, the area's top left corner is shown at the top right.
        (90, "N", (1.0, 0.0), [2.0, 4.0]),
        # Mirrored, the shown top left is the area's top right.
        (0, "Y", (0.0, 0.0), [10.0, 4.0]),
    ],
    ids=["origin", "centre", "rot90", "flipped"],
)
def test_display_units_are_turned_back_onto_the_image(
    rotation: int, flip: str, fraction: tuple[float, float], expected: list[float]
) -> None:
    images, volume = phantom()
    annotation = hd.pr.GraphicAnnotation(
        referenced_images=images, graphic_layer=_LAYER,
        graphic_objects=[hd.pr.GraphicObject("POINT", np.array([fraction]),
                                             "DISPLAY")])
    ps = presentation_state(images, (40.0, 80.0), [annotation])
    ps.ImageRotation, ps.ImageHorizontalFlip = rotation, flip
    _area(ps, [3, 5], [10, 12])

    state = read_presentation_state(ps, SliceIndex(volume))

    assert state.annotations[0]["points"] == [expected]
    assert state.annotations[0]["slices"] == [0, 1, 2, 3]


def test_not_a_presentation_state_raises() -> None:
    images, _ = phantom()
    with pytest.raises(ValueError, match="is not Grayscale Softcopy Presentation"):
        read_presentation_state(images[0])


def test_kos_names_its_images_and_the_viewer_lists_them() -> None:
    images, volume = phantom()
    kos = key_objects(images, [3, 1])

    selection = read_key_objects(kos)
    viewer = AnnotatedStackViewer.from_volume(volume)
    slices = viewer.mark_key_images(kos)

    assert selection.title == "Of Interest"
    assert selection.description == "Bleed <b>here</b>"
    assert [image.sop_instance_uid for image in selection.images] == [
        images[3].SOPInstanceUID, images[1].SOPInstanceUID]
    assert selection.series_instance_uids == [images[0].SeriesInstanceUID]
    assert slices == [1, 3]
    assert viewer.key_images == [{"slice_index": 1, "label": "Im 2"},
                                 {"slice_index": 3, "label": "Im 4"}]
    assert viewer.key_images_title == "Of Interest"
    assert viewer.slice_index == 1


def test_kos_of_other_images_raises() -> None:
    images, volume = phantom()
    other = copy.deepcopy(images[0])
    other.SOPInstanceUID = generate_uid()
    viewer = AnnotatedStackViewer.from_volume(volume)
    with pytest.raises(ValueError, match="none of the 1 key images is in this series"):
        viewer.mark_key_images(key_objects([other], [0]))


def test_shutters_are_read_in_pixel_coordinates() -> None:
    images, _ = phantom()
    ps = presentation_state(images, (40.0, 80.0))
    ps.ShutterShape = ["RECTANGULAR", "CIRCULAR", "POLYGONAL"]
    # Columns 3-10 and rows 5-12 stay visible: PIXEL x 2-10, y 4-12.
    ps.ShutterLeftVerticalEdge, ps.ShutterRightVerticalEdge = 3, 10
    ps.ShutterUpperHorizontalEdge, ps.ShutterLowerHorizontalEdge = 5, 12
    # Centre pixel row 8, column 6 (1-based) has its centre at PIXEL (5.5, 7.5).
    ps.CenterOfCircularShutter, ps.RadiusOfCircularShutter = [8, 6], 4
    ps.VerticesOfThePolygonalShutter = [1, 1, 1, 16, 16, 16]
    ps.ShutterPresentationValue = 65535

    state = read_presentation_state(ps)

    rectangle, circle, polygon = state.shutters
    assert rectangle["points"] == [[2.0, 4.0], [10.0, 4.0], [10.0, 12.0], [2.0, 12.0]]
    assert (circle["center"], circle["radius"]) == ([5.5, 7.5], 4.0)
    assert polygon["points"] == [[0.5, 0.5], [15.5, 0.5], [15.5, 15.5]]
    assert rectangle["color"] == [255, 255, 255]
