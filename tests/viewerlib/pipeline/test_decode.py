"""Tests of viewerlib.pipeline.decode: one frame per call, per transfer syntax."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pipeline_builders import build_image
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder

from viewerlib.errors import DecodingError
from viewerlib.pipeline import codecs
from viewerlib.pipeline.decode import decode_frame, transfer_syntax_of


def bundled(name: str) -> pydicom.Dataset:
    """Read a pydicom test file that is installed locally (never downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return pydicom.dcmread(path)


# Lossless encodings of MR_small.dcm: each must give the very same stored values.
MR_SMALL_LOSSLESS = [
    ("MR_small_implicit.dcm", uid.ImplicitVRLittleEndian),
    ("MR_small_bigendian.dcm", uid.ExplicitVRBigEndian),
    ("MR_small_RLE.dcm", uid.RLELossless),
    ("MR_small_jpeg_ls_lossless.dcm", uid.JPEGLSLossless),
    ("MR_small_jp2klossless.dcm", uid.JPEG2000Lossless),
]


@pytest.mark.parametrize(("name", "tsyntax"), MR_SMALL_LOSSLESS,
                         ids=[n for n, _ in MR_SMALL_LOSSLESS])
def test_lossless_syntaxes_give_the_uncompressed_values(name, tsyntax):
    reference = np.frombuffer(bundled("MR_small.dcm").PixelData, "<i2").reshape(64, 64)
    ds = bundled(name)
    assert transfer_syntax_of(ds) == tsyntax

    frame = decode_frame(ds)

    assert frame.pixels.shape == (64, 64)
    np.testing.assert_array_equal(frame.pixels, reference)


@pytest.mark.parametrize(
    ("name", "tsyntax"),
    [
        ("image_dfl.dcm", uid.DeflatedExplicitVRLittleEndian),
        ("JPEG-LL.dcm", uid.JPEGLosslessSV1),
        ("JPGExtended.dcm", uid.JPEGExtended12Bit),
        ("JPEG2000.dcm", uid.JPEG2000),
        ("JPEGLSNearLossless_16.dcm", uid.JPEGLSNearLossless),
        ("SC_rgb_jpeg_dcmtk.dcm", uid.JPEGBaseline8Bit),
    ],
)
def test_each_transfer_syntax_decodes_one_frame(name, tsyntax):
    ds = bundled(name)
    assert transfer_syntax_of(ds) == tsyntax

    frame = decode_frame(ds)

    samples = int(ds.SamplesPerPixel)
    expected = (ds.Rows, ds.Columns) + ((3,) if samples == 3 else ())
    assert frame.pixels.shape == expected
    assert frame.pixels.std() > 0
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        # The direct route, or pydicom's pylibjpeg plugin for what it leaves.
        assert frame.decoding_plugin in ("imagecodecs", "pylibjpeg")


def test_signed_jpeg_2000_matches_its_uncompressed_twin():
    # JPEG2000_UNC.dcm holds the uncompressed pixels of JPEG2000.dcm (signed,
    # with negative values): a sign correction mistake would show here.
    j2k = decode_frame(bundled("JPEG2000.dcm")).pixels
    uncompressed = decode_frame(bundled("JPEG2000_UNC.dcm")).pixels
    assert uncompressed.min() < 0
    np.testing.assert_array_equal(j2k, uncompressed)


def test_ybr_rct_jpeg_2000_comes_back_as_the_original_rgb():
    frame = decode_frame(bundled("US1_J2KR.dcm"))
    uncompressed = decode_frame(bundled("US1_UNCR.dcm")).pixels

    assert frame.photometric_interpretation == "RGB"
    np.testing.assert_array_equal(frame.pixels, uncompressed)


@pytest.mark.parametrize("frame_index", [0, 1])
def test_single_frame_of_a_multiframe_matches_the_uncompressed_frame(frame_index):
    rle = bundled("SC_rgb_rle_2frame.dcm")
    native = bundled("SC_rgb_2frame.dcm")
    expected = np.frombuffer(native.PixelData, np.uint8).reshape(2, 100, 100, 3)

    frame = decode_frame(rle, frame_index)

    np.testing.assert_array_equal(frame.pixels, expected[frame_index])


def test_frame_index_out_of_range_raises():
    with pytest.raises(IndexError, match="outside the 2 frame"):
        decode_frame(bundled("SC_rgb_rle_2frame.dcm"), 2)


def test_missing_pixel_data_raises():
    with pytest.raises(ValueError, match="no \\(7FE0,0010\\)"):
        decode_frame(bundled("rtplan.dcm"))


def test_transfer_syntax_without_decoder_raises():
    ds = bundled("JPEG2000.dcm")
    ds.file_meta.TransferSyntaxUID = uid.JPEG2000MC

    with pytest.raises(DecodingError, match=r"1\.2\.840\.10008\.1\.2\.4\.93"):
        decode_frame(ds)


def test_no_installed_plugin_raises_naming_syntax_and_package(monkeypatch):
    # Hide the real installed plugins of the decoder: what a user without
    # pylibjpeg-openjpeg would have.
    decoder = get_decoder(uid.JPEG2000)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(codecs, "imagecodecs", None)

    with pytest.raises(DecodingError) as info:
        decode_frame(bundled("JPEG2000.dcm"))

    message = str(info.value)
    assert "1.2.840.10008.1.2.4.91" in message
    assert "JPEG 2000 Image Compression" in message
    assert "pylibjpeg-openjpeg" in message


def test_corrupt_data_reports_every_plugin_failure():
    ds = bundled("JPEG2000.dcm")
    fragments = pydicom.encaps.generate_fragmented_frames(ds.PixelData)
    first = b"".join(next(fragments))
    ds.PixelData = pydicom.encaps.encapsulate([first[:200]])

    with pytest.raises(DecodingError, match="pylibjpeg: .*pillow: "):
        decode_frame(ds)


def test_file_without_file_meta_uses_the_encoding_it_was_read_with():
    ds = pydicom.dcmread(get_testdata_file("no_meta.dcm", download=False), force=True)
    assert transfer_syntax_of(ds) == uid.ImplicitVRLittleEndian


@pytest.mark.parametrize(
    ("allocated", "stored_bits", "signed"),
    [(8, 8, False), (8, 6, True), (16, 12, False), (16, 12, True), (16, 16, True),
     (32, 20, True), (32, 24, False)],
)
def test_native_frames_drop_the_bits_above_bits_stored(allocated, stored_bits, signed):
    # PS3.5 8.1.1: the high bits are junk (here all ones); the value is the low
    # Bits Stored bits, sign-extended from bit Bits Stored - 1 when signed.
    values = np.array([[0, 1, 2 ** (stored_bits - 1) - 1], [2 ** (stored_bits - 1),
                       2**stored_bits - 1, 5]], np.int64)
    junk = ((2**allocated - 1) >> stored_bits) << stored_bits
    raw = (values | junk).astype(f"<u{allocated // 8}").tobytes()
    ds = build_image(values, bits_allocated=allocated, bits_stored=stored_bits,
                     signed=signed, raw_bytes=raw)

    pixels = decode_frame(ds).pixels

    expected = values - (values >= 2 ** (stored_bits - 1)) * 2**stored_bits * signed
    assert pixels.dtype.kind == ("i" if signed else "u")
    np.testing.assert_array_equal(pixels, expected)


@pytest.mark.parametrize("planar", [0, 1])
def test_native_colour_frames_come_back_colour_by_pixel(planar):
    rgb = np.arange(2 * 3 * 2 * 3).reshape(2, 2, 3, 3).astype(np.uint8)
    frames = rgb if planar == 0 else rgb.transpose(0, 3, 1, 2)
    ds = build_image(rgb[0], bits_allocated=8, photometric="RGB",
                     planar_configuration=planar, raw_bytes=frames.tobytes(),
                     NumberOfFrames=2)

    np.testing.assert_array_equal(decode_frame(ds, 1).pixels, rgb[1])


def test_short_native_pixel_data_raises_a_clear_error():
    ds = build_image(np.zeros((4, 4)), raw_bytes=bytes(10))
    with pytest.raises(Exception, match="(?i)pixel data|length|expected"):
        decode_frame(ds)
