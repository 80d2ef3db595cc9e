"""Tests of viewerlib.pipeline.voi: windows, VOI LUT, presets and default window."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pipeline_builders import build_image
from pydicom.dataset import Dataset

from viewerlib.pipeline.voi import (
    VOILUTFunction,
    VOILUTPreset,
    WindowPreset,
    apply_voi_lut,
    apply_windowing,
    default_window,
    padding_mask,
    padding_values,
    voi_lut_presets,
    voi_presets,
    window_presets,
)


def linear_by_hand(x: float, c: float, w: float, y0: float, y1: float) -> float:
    """PS3.3 C.11.2.1.2.1 written out for one value."""
    if x <= c - 0.5 - (w - 1) / 2:
        return y0
    if x > c - 0.5 + (w - 1) / 2:
        return y1
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * (y1 - y0) + y0


def test_linear_window_worked_example():
    # c=40, w=400: ramp from -160 to 239; 39.5 is its middle.
    values = np.array([-1000.0, -160.0, 39.5, 100.0, 239.5, 3000.0])

    out = apply_windowing(values, 40, 400)

    expected = [0.0, 0.0, 127.5, (60.5 / 399 + 0.5) * 255, 255.0, 255.0]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("c", "w"), [(40, 400), (0.5, 2), (1000, 1), (-600, 1500)])
@pytest.mark.parametrize("output_range", [(0, 255), (0, 65535), (-1, 1)])
def test_linear_window_matches_the_formula(c, w, output_range):
    x = np.linspace(c - w, c + w, 41)

    out = apply_windowing(x, c, w, "LINEAR", output_range)

    expected = [linear_by_hand(v, c, w, *output_range) for v in x]
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-3)


def test_linear_exact_worked_example():
    out = apply_windowing(np.array([-160.0, 140.0, 240.0, 241.0]), 40, 400,
                          VOILUTFunction.LINEAR_EXACT)
    # ((x - c) / w + 0.5) * 255: x=140 -> 0.75 * 255.
    np.testing.assert_allclose(out, [0.0, 191.25, 255.0, 255.0], atol=1e-4)


def test_sigmoid_worked_example():
    out = apply_windowing(np.array([40.0, 140.0]), 40, 400, "SIGMOID")
    # 255 / (1 + exp(-4 (x - c) / w)): x=c -> 127.5, x=c+w/4 -> 255/(1+e^-1).
    np.testing.assert_allclose(out, [127.5, 255 / (1 + math.exp(-1))], rtol=1e-6)


@pytest.mark.parametrize(("function", "width"),
                         [("LINEAR", 0.5), ("LINEAR_EXACT", 0), ("SIGMOID", -1)])
def test_invalid_width_raises(function, width):
    with pytest.raises(ValueError, match="Window Width"):
        apply_windowing(np.zeros(1), 0, width, function)


def test_unknown_function_raises():
    with pytest.raises(ValueError, match="VOI LUT Function"):
        apply_windowing(np.zeros(1), 0, 10, "CUBIC")


def test_every_window_pair_with_its_explanation():
    ds = build_image(np.zeros((1, 1)))
    ds.WindowCenter = [40, 400, -600]
    ds.WindowWidth = [400, 1800, 1500]
    ds.WindowCenterWidthExplanation = ["SOFT", "BONE", "LUNG"]

    presets = window_presets(ds)

    assert [(p.center, p.width, p.explanation) for p in presets] == [
        (40.0, 400.0, "SOFT"), (400.0, 1800.0, "BONE"), (-600.0, 1500.0, "LUNG")]


def test_enhanced_frame_voi_lut_sequence_is_used_per_frame():
    ds = build_image(np.zeros((2, 1, 1)))
    groups = []
    for center in (10, 20):
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, 100
        group = Dataset()
        group.FrameVOILUTSequence = [voi]
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = groups

    assert window_presets(ds, 1)[0].center == 20.0


def test_voi_lut_sequence_maps_and_clamps():
    ds = build_image(np.zeros((1, 1)))
    item = Dataset()
    item.LUTDescriptor = [3, 100, 8]
    item.LUTData = [0, 51, 255]
    ds.VOILUTSequence = [item]

    out = apply_voi_lut(np.array([50.0, 100.0, 101.0, 102.0, 500.0]), ds)

    assert out.tolist() == [0.0, 0.0, 51.0, 255.0, 255.0]


def test_voi_lut_sequence_16_bit_entries_scale_to_output():
    ds = build_image(np.zeros((1, 1)))
    item = Dataset()
    item.LUTDescriptor = [2, 0, 16]
    item.LUTData = [0, 65535]
    ds.VOILUTSequence = [item]

    assert apply_voi_lut(np.array([0.0, 1.0]), ds).tolist() == [0.0, 255.0]


def test_missing_voi_lut_raises():
    with pytest.raises(ValueError, match="VOI LUT Sequence"):
        apply_voi_lut(np.zeros(1), build_image(np.zeros((1, 1))))


def test_default_window_ignores_pixel_padding_value():
    stored = np.array([[0, 1000, 1100, 1200]], np.uint16)
    ds = build_image(stored, bits_stored=12, PixelPaddingValue=0,
                     RescaleSlope="1", RescaleIntercept="-1024")
    values = stored.astype(np.float64) - 1024

    window = default_window(values, ds)

    # Without padding the range is -24 .. 176.
    assert (window.center, window.width) == (76.0, 200.0)
    assert window.function is VOILUTFunction.LINEAR_EXACT


def test_default_window_ignores_pixel_padding_range():
    stored = np.array([[0, 5, 10, 500, 700]], np.uint16)
    ds = build_image(stored, bits_stored=12, PixelPaddingValue=0,
                     PixelPaddingRangeLimit=10)

    window = default_window(stored.astype(float), ds)

    assert (window.center, window.width) == (600.0, 200.0)


def test_default_window_prefers_the_files_window():
    ds = build_image(np.zeros((1, 1)), WindowCenter=50, WindowWidth=350)
    window = default_window(np.array([0.0, 4000.0]), ds)
    assert (window.center, window.width) == (50.0, 350.0)


def test_sigmoid_far_from_the_centre_saturates_without_overflow():
    # -4 (x - c) / w = +-1310.72 would overflow exp(): the ends are 0 and 255.
    out = apply_windowing(np.array([-32768.0, 32767.0]), 0, 100, "SIGMOID")
    assert out.tolist() == [0.0, 255.0]


def test_voi_presets_list_windows_then_every_voi_lut():
    ds = build_image(np.zeros((1, 1)), WindowCenter=40, WindowWidth=400,
                     VOILUTFunction="SIGMOID")
    named, unnamed, broken = Dataset(), Dataset(), Dataset()
    named.LUTDescriptor, named.LUTData = [2, 0, 8], [0, 255]
    named.LUTExplanation = "LUNG"
    unnamed.LUTDescriptor, unnamed.LUTData = [2, 0, 8], [255, 0]
    broken.LUTExplanation = "NO DATA"
    ds.VOILUTSequence = [named, broken, unnamed]

    # The item without LUT Descriptor and LUT Data cannot be applied: left out,
    # but the others keep their index in the sequence.
    assert voi_lut_presets(ds) == [VOILUTPreset(0, "LUNG"),
                                   VOILUTPreset(2, "VOI LUT 3")]
    assert voi_presets(ds) == [
        WindowPreset(40.0, 400.0, "", VOILUTFunction.SIGMOID),
        VOILUTPreset(0, "LUNG"), VOILUTPreset(2, "VOI LUT 3")]


@pytest.mark.parametrize(("signed", "bits_stored", "vr", "written", "expected"), [
    (True, 16, "SS", -2000, (-2000, -2000)),
    (True, 16, "US", 0xF830, (-2000, -2000)),
    (True, 12, "US", 0x830, (-2000, -2000)),
    (True, 12, "SS", -2048, (-2048, -2048)),
    (False, 16, "US", 0xF830, (0xF830, 0xF830)),  # unsigned: as written
], ids=["ss", "us-16", "us-12", "ss-12-lowest", "unsigned"])
def test_padding_values_take_the_sign_of_the_pixels(signed, bits_stored, vr,
                                                    written, expected):
    # PS3.3 C.7.5.1.1.2: the padding is a stored value, so it has the pixels'
    # own Pixel Representation whatever VR the writer chose.
    ds = build_image(np.zeros((1, 1)), bits_stored=bits_stored, signed=signed)
    ds.add_new(0x00280120, vr, written)
    assert padding_values(ds) == expected


def test_signed_padding_range_masks_every_value_between():
    ds = build_image(np.zeros((1, 1)), signed=True)
    ds.add_new(0x00280120, "US", 0x8000)  # -32768
    ds.add_new(0x00280121, "SS", -2000)  # (0028,0121) Pixel Padding Range Limit
    stored = np.array([-32768, -3000, -2000, -1999, 0], np.int16)

    assert padding_mask(stored, ds).tolist() == [True, True, True, False, False]
