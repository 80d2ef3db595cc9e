"""SEG and RTSTRUCT become masks on exactly the voxels they cover (worked by hand)."""

from __future__ import annotations

import numpy as np
import pytest
from object_builders import (
    COLUMNS,
    ROWS,
    SLICES,
    frame_geometry,
    phantom,
    segmentation,
    structure_set,
    x_mm,
    y_mm,
)

from viewerlib.objects.color import dicom_lab_to_rgb
from viewerlib.objects.layers import OverlayLayer
from viewerlib.objects.segmentation import read_segmentation
from viewerlib.objects.structure_set import read_structure_set

SHAPE = (SLICES, ROWS, COLUMNS)


def _two_segments() -> np.ndarray:
    masks = np.zeros((*SHAPE, 2), dtype=np.uint8)
    masks[1, 3:6, 4:9, 0] = 1  # rows 3-5, columns 4-8 on slice 1
    masks[2, 10, 2, 1] = 1  # one voxel on slice 2
    masks[3, 0:2, 14:16, 1] = 1  # the top right corner of slice 3
    return masks


def test_seg_segments_land_on_the_referenced_voxels() -> None:
    images, volume = phantom()
    masks = _two_segments()
    seg = segmentation(images, masks, ["Bleed", "Oedema"],
                       [(100.0, 0.0, 0.0), (50.0, 0.0, 0.0)])

    layers = read_segmentation(seg, volume)

    assert [layer.name for layer in layers] == ["Bleed", "Oedema"]
    assert [layer.style for layer in layers] == ["fill", "fill"]
    for k, layer in enumerate(layers):
        np.testing.assert_array_equal(layer.dense(SHAPE), masks[..., k].astype(bool))
    assert sorted(layers[0].masks) == [1]
    assert sorted(layers[1].masks) == [2, 3]
    # L* 100 is white; L* 50 grey is sRGB 119: Y = (66/116)^3 = 0.1842, and
    # 1.055 * 0.1842^(1/2.4) - 0.055 = 0.466, * 255 = 118.9.
    assert layers[0].color == (255, 255, 255)
    assert layers[1].color == (119, 119, 119)


def test_seg_without_source_references_is_placed_by_position() -> None:
    images, volume = phantom()
    masks = _two_segments()
    seg = segmentation(images, masks, ["Bleed", "Oedema"],
                       [(60.0, 60.0, 40.0), (60.0, -40.0, 30.0)])
    for item in seg.PerFrameFunctionalGroupsSequence:
        del item.DerivationImageSequence
    # Move the first frame two columns to the patient's left (+x): 2 x 0.9 mm.
    first = seg.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0]
    x, y, z = (float(v) for v in first.ImagePositionPatient)
    first.ImagePositionPatient = [x + 2 * 0.9, y, z]

    layers = read_segmentation(seg, volume)

    expected = np.zeros(SHAPE, dtype=bool)
    expected[1, 3:6, 6:11] = True
    np.testing.assert_array_equal(layers[0].dense(SHAPE), expected)
    np.testing.assert_array_equal(layers[1].dense(SHAPE), masks[..., 1] > 0)


def test_fractional_seg_shows_pixels_at_least_half_in() -> None:
    images, volume = phantom()
    fractions = np.zeros((*SHAPE, 1), dtype=np.float32)
    fractions[0, 5, 5, 0] = 0.6
    fractions[0, 5, 6, 0] = 0.4
    fractions[0, 5, 7, 0] = 1.0
    seg = segmentation(images, fractions, ["Partial"], [(60.0, 60.0, 40.0)],
                       fractional=True)

    (layer,) = read_segmentation(seg, volume)

    assert np.argwhere(layer.dense(SHAPE)).tolist() == [[0, 5, 5], [0, 5, 7]]


def test_seg_of_other_images_raises() -> None:
    images, volume = phantom()
    seg = segmentation(images, _two_segments(), ["A", "B"],
                       [(50.0, 0.0, 0.0), (50.0, 0.0, 0.0)])
    for item in seg.PerFrameFunctionalGroupsSequence:
        del item.DerivationImageSequence
    seg.FrameOfReferenceUID = "1.2.3.4"
    with pytest.raises(ValueError, match="no frame of the SEG lies on the images"):
        read_segmentation(seg, volume)


def _scaled(lightness: float, a_star: float, b_star: float) -> list[int]:
    # PS3.3 C.10.7.1.1: L* 0-100 and a*, b* -128-127 onto 0-65535.
    return [round(lightness * 65535 / 100), round((a_star + 128) * 65535 / 255),
            round((b_star + 128) * 65535 / 255)]


def test_cielab_of_the_srgb_primaries_gives_them_back() -> None:
    # Lindbloom's table of sRGB primaries in CIELab, D50 (Bradford adapted).
    assert dicom_lab_to_rgb(_scaled(54.29, 80.80, 69.89)) == (255, 0, 0)
    assert dicom_lab_to_rgb(_scaled(29.57, 68.30, -112.03)) == (0, 0, 255)


def test_cielab_hue_direction() -> None:
    # +a* is towards red, -a* towards green; +b* towards yellow, -b* towards blue.
    scale = 65535 / 255
    red, green, blue = dicom_lab_to_rgb([32768, round((60 + 128) * scale), 32896])
    assert red > green and red > blue
    red, green, blue = dicom_lab_to_rgb([32768, 32896, round((-60 + 128) * scale)])
    assert blue > red and blue > green


def _square(c0: float, c1: float, r0: float, r1: float) -> list[tuple[float, float]]:
    return [(x_mm(c0), y_mm(r0)), (x_mm(c1), y_mm(r0)), (x_mm(c1), y_mm(r1)),
            (x_mm(c0), y_mm(r1))]


def test_rtstruct_contours_fill_the_pixels_whose_centres_are_inside() -> None:
    images, volume = phantom()
    # ROI 1 on slice 2 by UID: the square between the pixel edges at columns
    # 2.5-6.5 and rows 3.5-7.5 holds the centres of columns 3-6 and rows 4-7; an
    # inner contour (columns 3.5-5.5, rows 4.5-6.5) cuts out columns 4-5, rows 5-6.
    # ROI 2 on slice 0, found by its z alone: columns 9.5-11.5, rows 0.5-1.5.
    rtstruct = structure_set(images, [
        ("Tumour", (255, 0, 0), [(2, _square(2.5, 6.5, 3.5, 7.5), 2),
                                 (2, _square(3.5, 5.5, 4.5, 6.5), 2)]),
        ("Cord", (0, 128, 255), [(None, _square(9.5, 11.5, 0.5, 1.5), 0)]),
    ])

    tumour, cord = read_structure_set(rtstruct, volume)

    expected = np.zeros(SHAPE, dtype=bool)
    expected[2, 4:8, 3:7] = True
    expected[2, 5:7, 4:6] = False
    np.testing.assert_array_equal(tumour.dense(SHAPE), expected)
    expected = np.zeros(SHAPE, dtype=bool)
    expected[0, 1, 10:12] = True
    np.testing.assert_array_equal(cord.dense(SHAPE), expected)
    assert (tumour.name, tumour.color, tumour.style) == ("Tumour", (255, 0, 0),
                                                         "outline")
    assert cord.color == (0, 128, 255)


def test_rtstruct_contour_off_every_slice_is_reported() -> None:
    images, volume = phantom()
    rtstruct = structure_set(images, [("Off", (0, 255, 0), [
        (None, _square(1.5, 3.5, 1.5, 3.5), 0)])])
    # z = 30 mm is 14 mm above the last slice (z = 16 mm): on none of them.
    contour = rtstruct.ROIContourSequence[0].ContourSequence[0]
    data = [float(v) for v in contour.ContourData]
    data[2::3] = [30.0] * 4
    contour.ContourData = data
    with pytest.warns(UserWarning, match="1 of 1 contours of ROI 1 lie on none"):
        (layer,) = read_structure_set(rtstruct, volume)
    assert layer.masks == {}


def test_rtstruct_in_another_frame_of_reference_raises() -> None:
    images, volume = phantom()
    rtstruct = structure_set(images, [("A", (1, 2, 3), [])])
    rtstruct.StructureSetROISequence[0].ReferencedFrameOfReferenceUID = "1.2.3"
    with pytest.raises(ValueError, match="another .3006,0024. Referenced Frame"):
        read_structure_set(rtstruct, volume)


def _square_on_own_grid(position: tuple[float, float, float], spacing: float,
                        rows: slice, columns: slice, size: int,
                        orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0,
                                                          0.0)):
    """A one-frame SEG of ``size`` x ``size`` pixels, ``rows`` x ``columns`` set."""
    images, volume = phantom()
    frame = np.zeros((1, size, size, 1), dtype=np.uint8)
    frame[0, rows, columns, 0] = 1
    seg = segmentation(images, frame, ["Square"], [(50.0, 0.0, 0.0)],
                       **frame_geometry(position, spacing, orientation))
    return seg, volume


def test_seg_on_a_finer_grid_is_resampled_onto_the_image_pixels() -> None:
    # A 32 x 32 frame of 0.45 mm pixels on slice 1 (z = 8 mm), its first pixel
    # centre 0.3 mm right of the image's (x = -6.45 mm). Image column c has its
    # centre at x = -6.75 + 0.9 c, which is frame column (0.9 c - 0.3) / 0.45 =
    # 2 c - 0.67, in the area of frame column 2 c - 1. Rows line up: frame row 2 r.
    # The frame's rows 6-11 and columns 8-13 are set, so image rows 3-5 (2 r in
    # 6-11) and columns 5-7 (2 c - 1 in 8-13: 9, 11, 13) are in the segment.
    seg, volume = _square_on_own_grid((x_mm(0) + 0.3, y_mm(0), 8.0), 0.45,
                                      slice(6, 12), slice(8, 14), 32)

    (layer,) = read_segmentation(seg, volume)

    expected = np.zeros(SHAPE, dtype=bool)
    expected[1, 3:6, 5:8] = True
    np.testing.assert_array_equal(layer.dense(SHAPE), expected)


def test_seg_turned_in_its_plane_lands_transposed() -> None:
    # The frame's rows run along +x and its columns along +y (Image Orientation
    # (Patient) 0\1\0\1\0\0), same origin and spacing: frame pixel (i, j) is at
    # x = -6.75 + 0.9 i, y = -6.75 + 0.9 j, which is image pixel (row j, column i).
    # Frame rows 2-4, columns 7-12 become image rows 7-12, columns 2-4, on slice 2.
    seg, volume = _square_on_own_grid((x_mm(0), y_mm(0), 12.0), 0.9, slice(2, 5),
                                      slice(7, 13), 16,
                                      orientation=(0.0, 1.0, 0.0, 1.0, 0.0, 0.0))

    (layer,) = read_segmentation(seg, volume)

    expected = np.zeros(SHAPE, dtype=bool)
    expected[2, 7:13, 2:5] = True
    np.testing.assert_array_equal(layer.dense(SHAPE), expected)


def test_seg_frame_beyond_the_slices_lies_on_none_and_raises() -> None:
    # z = 30 mm is 14 mm past the last slice (z = 16), beyond its 2 mm half slab.
    seg, volume = _square_on_own_grid((x_mm(0), y_mm(0), 30.0), 0.45, slice(0, 4),
                                      slice(0, 4), 32)
    with pytest.raises(ValueError, match="no frame of the SEG lies on the images"):
        read_segmentation(seg, volume)


def test_label_map_seg_puts_each_segment_number_on_its_pixels() -> None:
    images, volume = phantom()
    masks = _two_segments()
    seg = segmentation(images, masks, ["Bleed", "Oedema"],
                       [(100.0, 0.0, 0.0), (50.0, 0.0, 0.0)], labelmap=True)
    assert seg.SegmentationType == "LABELMAP"
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.7"

    layers = read_segmentation(seg, volume)

    assert [layer.name for layer in layers] == ["Bleed", "Oedema"]
    for k, layer in enumerate(layers):
        np.testing.assert_array_equal(layer.dense(SHAPE), masks[..., k].astype(bool))
    assert sorted(layers[1].masks) == [2, 3]


def test_label_map_on_another_grid_is_resampled_label_by_label() -> None:
    # Two labels on one 0.45 mm frame of slice 1, first pixel centres aligned
    # (frame column 2 c is image column c): label 1 on frame rows 0-3, label 2 on
    # frame rows 4-7, both on frame columns 0-5. Image rows 0-1 get label 1
    # (2 r in 0-3), rows 2-3 label 2, columns 0-2 (2 c in 0-5).
    images, volume = phantom()
    frame = np.zeros((1, 32, 32, 2), dtype=np.uint8)
    frame[0, 0:4, 0:6, 0] = 1
    frame[0, 4:8, 0:6, 1] = 1
    seg = segmentation(images, frame, ["A", "B"], [(50.0, 0.0, 0.0)] * 2,
                       labelmap=True,
                       **frame_geometry((x_mm(0), y_mm(0), 8.0), 0.45))

    first, second = read_segmentation(seg, volume)

    assert np.argwhere(first.dense(SHAPE)).tolist() == [
        [1, r, c] for r in (0, 1) for c in (0, 1, 2)]
    assert np.argwhere(second.dense(SHAPE)).tolist() == [
        [1, r, c] for r in (2, 3) for c in (0, 1, 2)]


def test_layer_keeps_only_the_bounding_box_of_each_slice() -> None:
    mask = np.zeros((512, 512), dtype=bool)
    mask[100:110, 200:204] = True
    layer = OverlayLayer("Organ", 1, (255, 0, 0), "fill", {7: mask})
    assert layer.masks.nbytes == 10 * 4

    other = np.zeros((512, 512), dtype=bool)
    other[300, 50] = True
    layer.masks[7] |= other

    # The box now runs from row 100 to 300 and from column 50 to 203.
    top, left, box = layer.masks.box(7)
    assert (top, left, box.shape) == (100, 50, (201, 154))
    assert layer.masks.nbytes == 201 * 154
    np.testing.assert_array_equal(layer.masks[7], mask | other)
    assert layer.dense((8, 512, 512))[7].sum() == 41
