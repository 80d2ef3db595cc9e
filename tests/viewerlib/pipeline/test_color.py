"""Tests of viewerlib.pipeline.color: YBR, planar configuration and palettes."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pipeline_builders import build_image
from pydicom.data import get_testdata_file

from viewerlib.pipeline.instance import read_instance

RGB = np.array(
    [[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]],
     [[0, 0, 0], [128, 64, 32], [10, 200, 90], [250, 250, 5]]],
    dtype=np.uint8,
)


def rgb_to_ybr_full(rgb: np.ndarray) -> np.ndarray:
    """The PS3.3 C.7.6.3.1.2 YBR_FULL equations, written out."""
    r, g, b = (rgb[..., i].astype(float) for i in range(3))
    y = 0.2990 * r + 0.5870 * g + 0.1140 * b
    cb = -0.1687 * r - 0.3313 * g + 0.5000 * b + 128
    cr = 0.5000 * r - 0.4187 * g - 0.0813 * b + 128
    return np.clip(np.rint(np.stack([y, cb, cr], -1)), 0, 255).astype(np.uint8)


def test_ybr_full_is_shown_as_rgb():
    ds = build_image(rgb_to_ybr_full(RGB), bits_allocated=8, photometric="YBR_FULL")

    shown = read_instance(ds).display_frame()

    assert shown.dtype == np.uint8 and shown.shape == (2, 4, 3)
    assert np.abs(shown.astype(int) - RGB).max() <= 2


def test_ybr_full_422_uncompressed_is_upsampled_and_shown_as_rgb():
    # Two pixels share Cb/Cr: use pairs of equal colours so nothing is lost.
    pairs = np.repeat(RGB[:, ::2], 2, axis=1)
    ybr = rgb_to_ybr_full(pairs)
    packed = bytearray()
    for row in ybr:
        for left, right in zip(row[::2], row[1::2], strict=True):
            packed += bytes([left[0], right[0], left[1], left[2]])  # Y Y Cb Cr
    ds = build_image(ybr, bits_allocated=8, photometric="YBR_FULL_422",
                     raw_bytes=bytes(packed))

    shown = read_instance(ds).display_frame()

    assert np.abs(shown.astype(int) - pairs).max() <= 2


def test_planar_configuration_1_is_shown_like_0():
    planes = np.moveaxis(RGB, -1, 0).tobytes()  # RRR...GGG...BBB...
    ds = build_image(RGB, bits_allocated=8, photometric="RGB",
                     planar_configuration=1, raw_bytes=planes)

    np.testing.assert_array_equal(read_instance(ds).display_frame(), RGB)


def test_16_bit_rgb_is_scaled_to_8_bits():
    rgb16 = RGB.astype(np.uint16) * 257  # 255 -> 65535
    ds = build_image(rgb16, bits_allocated=16, photometric="RGB")

    np.testing.assert_array_equal(read_instance(ds).display_frame(), RGB)


def palette_image(bits: int, first: int, **elements) -> pydicom.Dataset:
    """A 1 x 4 PALETTE COLOR image with a 4-entry palette starting at `first`."""
    stored = np.array([[first - 1, first, first + 1, first + 9]])
    ds = build_image(stored, bits_allocated=8, photometric="PALETTE COLOR",
                     **elements)
    return ds


@pytest.mark.parametrize("bits", [8, 16])
def test_palette_color_maps_and_clamps(bits):
    top = 2**bits - 1
    red, green, blue = [0, top, top, 0], [0, 0, top, top], [top, 0, 0, top]
    ds = palette_image(bits, 10)
    dtype = "<u1" if bits == 8 else "<u2"
    for name, table in zip(("Red", "Green", "Blue"), (red, green, blue), strict=True):
        setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [4, 10, bits])
        setattr(ds, f"{name}PaletteColorLookupTableData",
                np.array(table, dtype).tobytes())

    shown = read_instance(ds).display_frame()

    # Index 9 is below the first mapped value (entry 0); 19 beyond the end (entry 3).
    assert shown.tolist() == [[[0, 0, 255], [0, 0, 255], [255, 0, 0], [0, 255, 255]]]


def test_segmented_palette_is_expanded():
    ds = palette_image(16, 0)
    # Discrete (0, 0), then linear to 300 over 3 steps: 0, 100, 200, 300.
    segments = np.array([0, 1, 0, 1, 3, 300], "<u2").tobytes()
    for name in ("Red", "Green", "Blue"):
        setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [4, 0, 16])
        setattr(ds, f"Segmented{name}PaletteColorLookupTableData", segments)
    ds.PixelData = np.array([[0, 1, 2, 3]], np.uint8).tobytes()

    shown = read_instance(ds).display_frame()

    expected = np.rint(np.array([0, 100, 200, 300]) * 255 / 65535)
    np.testing.assert_array_equal(shown[0, :, 0], expected)


def _sc_rgb() -> np.ndarray:
    """SC_rgb.dcm: bands of known colours, the original the others encode."""
    original = pydicom.dcmread(get_testdata_file("SC_rgb.dcm", download=False))
    return np.frombuffer(original.PixelData, np.uint8).reshape(100, 100, 3)


def _shown(name: str) -> np.ndarray:
    ds = pydicom.dcmread(get_testdata_file(name, download=False))
    return read_instance(ds).display_frame()


@pytest.mark.parametrize(
    "name",
    # RLE (PS3.5 G) and JPEG Lossless SV1 (ITU T.81 process 14, predictor 1,
    # RGB components, no colour transform) are both lossless.
    ["SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm"],
)
def test_lossless_colour_files_show_the_original_rgb_exactly(name):
    np.testing.assert_array_equal(_shown(name), _sc_rgb())


@pytest.mark.parametrize(
    "name", ["SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm"])
def test_lossy_jpeg_colour_files_show_the_original_within_the_jpeg_error(name):
    # JPEG baseline (process 1) quantises its DCT coefficients: away from the
    # band edges (every 10 rows), where chroma subsampling blurs colours, each
    # pixel keeps its colour within a few levels (6 measured on these files).
    interior = (np.arange(100) % 10 >= 2) & (np.arange(100) % 10 <= 7)
    error = np.abs(_shown(name).astype(int) - _sc_rgb())[interior]
    assert error.max() <= 8


def test_uncompressed_ybr_full_is_converted_by_the_ps3_3_equations():
    # SC_ybr_full_uncompressed.dcm holds the YCbCr samples decoded from the
    # lossy SC_rgb_jpeg_dcmtk.dcm (e.g. black is Y 0, Cb 127, Cr 128), so its
    # distance from SC_rgb.dcm is the JPEG's error, not the colour conversion:
    # both files display identically, and the conversion itself matches the
    # inverse of the PS3.3 C.7.6.3.1.2 YBR_FULL equations within rounding.
    ds = pydicom.dcmread(get_testdata_file("SC_ybr_full_uncompressed.dcm",
                                           download=False))
    ybr = np.frombuffer(ds.PixelData, np.uint8).reshape(100, 100, 3).astype(float)
    y, cb, cr = ybr[..., 0], ybr[..., 1] - 128, ybr[..., 2] - 128
    # Inverse of Y = .299 R + .587 G + .114 B, Cb = (B - Y) / 1.772,
    # Cr = (R - Y) / 1.402, worked by hand.
    rgb = np.stack([y + 1.402 * cr,
                    y - 0.344136 * cb - 0.714136 * cr,
                    y + 1.772 * cb], -1)
    expected = np.clip(np.rint(rgb), 0, 255)

    shown = read_instance(ds).display_frame()

    assert np.abs(shown.astype(int) - expected).max() <= 1
    np.testing.assert_array_equal(shown, _shown("SC_rgb_jpeg_dcmtk.dcm"))


def _expand(words):
    from viewerlib.pipeline.color import _expand_segmented

    return _expand_segmented(np.asarray(words, np.uint16), 10_000).tolist()


def test_indirect_segment_replays_segments_at_a_byte_offset():
    # PS3.3 C.7.9.2.3: opcode 2, number of segments, byte offset (low word,
    # high word) from the start of the data. Segments, by word index:
    #   0: discrete [10, 20]            (words 0-3, bytes 0-7)
    #   4: linear to 50 over 3          (words 4-6, bytes 8-13): 30, 40, 50
    #   7: discrete [0]                 (words 7-9)
    #  10: indirect, copy 2 segments from byte 8 (word 4): linear to 50 from the
    #      current last value 0 -> 16.67, 33.33, 50; then discrete [0] -> 0.
    words = [0, 2, 10, 20, 1, 3, 50, 0, 1, 0, 2, 2, 8, 0]

    table = _expand(words)

    np.testing.assert_allclose(
        table, [10, 20, 30, 40, 50, 0, 50 / 3, 100 / 3, 50, 0])


def test_indirect_segment_with_a_word_offset_is_accepted():
    # Some writers store the word index (4) instead of the byte offset (8);
    # byte 4 would fall inside segment 0, so the word reading is unambiguous.
    words = [0, 2, 10, 20, 1, 3, 50, 0, 1, 0, 2, 1, 4, 0]
    assert _expand(words)[-3:] == pytest.approx([50 / 3, 100 / 3, 50])


@pytest.mark.parametrize(
    ("words", "match"),
    [
        ([1, 2, 5], "starts with a linear segment"),
        ([0, 1, 7, 5, 1, 0], "unknown opcode 5"),
        ([0, 1, 7, 2, 1, 6, 0], "not the byte offset of an earlier segment"),
        ([0, 1, 7, 2, 1, 3, 0], "not the byte offset of an earlier segment"),
    ],
    ids=["linear-first", "bad-opcode", "points-at-itself", "points-mid-segment"],
)
def test_corrupt_segmented_palette_raises(words, match):
    with pytest.raises(ValueError, match=match):
        _expand(words)


def rgb_to_rct(rgb: np.ndarray, bits: int = 8) -> np.ndarray:
    """PS3.3 C.7.6.3.1.2 YBR_RCT forward, chroma offset by the DC shift."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    half = 2 ** (bits - 1)
    return np.stack([(r + 2 * g + b) // 4, b - g + half, r - g + half], -1)


def test_ybr_rct_samples_are_inverted_exactly():
    # (200, 100, 50): Y = floor(450 / 4) = 112, Cb = -50 + 128, Cr = 100 + 128.
    assert rgb_to_rct(np.array([200, 100, 50])).tolist() == [112, 78, 228]
    from viewerlib.pipeline.color import to_display_rgb

    ds = build_image(RGB, bits_allocated=8, photometric="RGB")

    shown = to_display_rgb(rgb_to_rct(RGB), "YBR_RCT", ds)

    np.testing.assert_array_equal(shown, RGB)


def test_ybr_ict_samples_are_inverted_like_ybr_full():
    from viewerlib.pipeline.color import to_display_rgb

    ds = build_image(RGB, bits_allocated=8, photometric="RGB")

    shown = to_display_rgb(rgb_to_ybr_full(RGB), "YBR_ICT", ds)

    assert np.abs(shown.astype(int) - RGB).max() <= 2
