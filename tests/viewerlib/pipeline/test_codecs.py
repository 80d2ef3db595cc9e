"""Tests of the direct codec route: frame cutting, Bits Stored, JPEG colour space."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pipeline_builders import build_image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate

import viewerlib
from viewerlib.pipeline import codecs
from viewerlib.pipeline.decode import decode_frame, frame_layout

pytestmark = pytest.mark.skipif(not codecs.available(),
                                reason="imagecodecs is not installed")


def bundled(name: str) -> pydicom.Dataset:
    """Read a pydicom test file that is installed locally (never downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return pydicom.dcmread(path)


def _frames(count: int, size: int = 6) -> list[bytes]:
    # Even lengths: PS3.5 A.4 items hold an even number of bytes.
    return [bytes([index + 1]) * size for index in range(count)]


@pytest.mark.parametrize(("frames", "fragments_per_frame"),
                         [(1, 1), (1, 3), (3, 1), (2, 2)])
def test_frame_bytes_returns_each_frame_whatever_its_fragments(frames,
                                                               fragments_per_frame):
    originals = _frames(frames)
    pixel_data = encapsulate(originals, fragments_per_frame=fragments_per_frame,
                             has_bot=True)
    ds = Dataset()

    for index, original in enumerate(originals):
        assert bytes(codecs.frame_bytes(ds, pixel_data, frames, index)) == original


def test_frame_bytes_is_a_view_for_one_fragment_and_follows_new_pixel_data():
    ds = Dataset()
    first = encapsulate(_frames(2), has_bot=False)
    assert isinstance(codecs.frame_bytes(ds, first, 2, 1), memoryview)

    # New Pixel Data (another object): the memo of fragment positions is redone.
    second = encapsulate([b"\x09" * 10, b"\x08" * 4], has_bot=False)
    assert bytes(codecs.frame_bytes(ds, second, 2, 1)) == b"\x08" * 4


class _Layout:
    """The two attributes fit_bits_stored reads."""

    def __init__(self, bits_stored: int, signed: bool, allocated: int = 16) -> None:
        self.bits_stored = bits_stored
        self.signed = signed
        self.dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")


def test_fit_bits_stored_returns_clean_values_themselves():
    clean = np.array([0, 4095, 17], np.uint16)
    assert codecs.fit_bits_stored(clean, _Layout(12, False)) is clean
    signed = np.array([-2048, 2047, 0], np.int16)
    assert codecs.fit_bits_stored(signed, _Layout(12, True)) is signed


def test_fit_bits_stored_clears_and_sign_extends_like_ps3_5_8_1_1():
    # Unsigned: only the low 12 bits count, 0xF123 -> 0x123.
    junk = np.array([0xF123, 0x1FFF], np.uint16)
    assert codecs.fit_bits_stored(junk, _Layout(12, False)).tolist() == [0x123, 0xFFF]
    # Signed 12-bit: 0x0FFF is -1 and 0x0800 is -2048 (bit 11 is the sign).
    raw = np.array([0x0FFF, 0x0800, 0x07FF], np.uint16).view(np.int16)
    assert codecs.fit_bits_stored(raw, _Layout(12, True)).tolist() == [-1, -2048, 2047]
    # When the codestream decides (JPEG-LS, JPEG 2000), pydicom is asked instead.
    assert codecs.fit_bits_stored(junk, _Layout(12, False), may_correct=False) is None


def _jpeg_header(component_ids: bytes, jfif: bool) -> bytes:
    """SOI, optional APP0 JFIF, SOF0 with three components, then SOS (T.81 B.1)."""
    out = b"\xff\xd8"
    if jfif:
        body = b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00"
        out += b"\xff\xe0" + (len(body) + 2).to_bytes(2, "big") + body
    components = b"".join(bytes([c, 0x11, 0]) for c in component_ids)
    body = b"\x08\x00\x10\x00\x10\x03" + components
    out += b"\xff\xc0" + (len(body) + 2).to_bytes(2, "big") + body
    return out + b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"


@pytest.mark.parametrize(
    ("ids", "jfif", "photometric", "expected"),
    [
        (b"\x01\x02\x03", False, "YBR_FULL_422", "YBR_FULL_422"),  # as labelled
        (b"RGB", False, "YBR_FULL_422", "RGB"),  # component ids say RGB
        (b"rgb", True, "YBR_FULL", "RGB"),
        (b"\x01\x02\x03", True, "RGB", "YBR_FULL_422"),  # JFIF means YCbCr
        (b"\x01\x02\x03", False, "RGB", "RGB"),
    ],
)
def test_jpeg_colour_space_follows_the_codestream(ids, jfif, photometric, expected):
    header = _jpeg_header(ids, jfif)
    tsyntax = pydicom.uid.JPEGBaseline8Bit

    assert codecs.jpeg_colour_space(header, photometric, tsyntax) == expected
    assert codecs.jpeg_colour_space(memoryview(header), photometric,
                                    tsyntax) == expected


def test_native_frame_is_a_read_only_view_when_no_bits_need_clearing():
    stored = np.array([[0, 1, 4095], [7, 8, 9]], np.uint16)
    ds = build_image(stored, bits_stored=12)

    frame = decode_frame(ds)

    np.testing.assert_array_equal(frame.pixels, stored)
    assert not frame.pixels.flags.writeable
    assert np.shares_memory(frame.pixels, np.frombuffer(ds.PixelData, np.uint8))


def test_a_changed_header_is_seen_at_the_next_decode():
    ds = build_image(np.array([[0x0F0F, 0x00FF]], np.uint16), bits_stored=16)
    assert decode_frame(ds).pixels.tolist() == [[0x0F0F, 0x00FF]]

    ds.BitsStored, ds.HighBit = 8, 7  # now only the low byte is a value

    assert decode_frame(ds).pixels.tolist() == [[0x0F, 0xFF]]
    assert frame_layout(ds).bits_stored == 8


@pytest.mark.parametrize(("compressed", "uncompressed"), [
    ("SC_rgb_rle_16bit.dcm", "SC_rgb_16bit.dcm"),
    ("SC_rgb_rle_32bit.dcm", "SC_rgb_32bit.dcm"),
])
def test_colour_rle_planes_come_back_colour_by_pixel(compressed, uncompressed):
    # PS3.5 G.2: RLE stores one segment per byte plane of each sample.
    frame = decode_frame(bundled(compressed))
    expected = decode_frame(bundled(uncompressed)).pixels

    assert frame.decoding_plugin == "imagecodecs"
    np.testing.assert_array_equal(frame.pixels, expected)


def test_lossy_colour_jpeg_displays_close_to_its_uncompressed_original():
    # SC_rgb_jpeg_dcmtk.dcm is SC_rgb.dcm compressed (YBR_FULL, lossy): the
    # display may differ by the JPEG error only, a few levels at most on average.
    jpeg = viewerlib.read_instance(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm",
                                                     download=False))
    original = viewerlib.read_instance(get_testdata_file("SC_rgb.dcm",
                                                         download=False))

    difference = np.abs(jpeg.display_frame().astype(int)
                        - original.display_frame().astype(int))

    assert decode_frame(jpeg.dataset).decoding_plugin == "imagecodecs"
    assert difference.mean() < 2


def test_a_removed_frame_count_is_seen_at_the_next_decode():
    stored = np.arange(2 * 2 * 3, dtype=np.uint16).reshape(2, 2, 3)
    ds = build_image(stored, bits_stored=16)
    assert decode_frame(ds, 1).pixels.tolist() == stored[1].tolist()

    del ds.NumberOfFrames  # now a single frame (PS3.3 C.7.6.6: absent means 1)

    with pytest.raises(IndexError, match="outside the 1 frame"):
        decode_frame(ds, 1)


def test_jpeg_header_gives_the_frame_precision():
    # T.81 B.2.2: the first byte of the frame header is the sample precision P.
    header = bytearray(_jpeg_header(b"\x01\x02\x03", jfif=False))
    start = header.index(b"\xff\xc0") + 4
    header[start] = 12

    assert codecs.jpeg_header(bytes(header), "MONOCHROME2",
                              pydicom.uid.JPEGExtended12Bit) == ("MONOCHROME2", 12)


def test_twelve_bit_jpeg_values_stay_below_two_to_the_twelve():
    # JPGExtended.dcm: P = 12 = Bits Stored, so no value can reach 4096.
    ds = bundled("JPGExtended.dcm")
    frame = decode_frame(ds)

    assert frame.decoding_plugin == "imagecodecs"
    assert int(frame.pixels.max()) < 2 ** int(ds.BitsStored)
