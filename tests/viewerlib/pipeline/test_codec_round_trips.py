"""Round trips through real encoders: known arrays in, the same values out.

Each case encodes a synthetic 3-frame array of known stored values with an
installed encoder (pydicom's ``compress`` with its RLE, pyjpegls and pylibjpeg
encoders, or imagecodecs for the syntaxes pydicom cannot write), wraps the
codestreams in encapsulated Pixel Data (PS3.5 A.4) and decodes every frame
through :func:`viewerlib.pipeline.decode.decode_frame`, by the direct
imagecodecs route and by pydicom's plugins. The expected values are the
arrays themselves: equal for lossless syntaxes, within NEAR for JPEG-LS
near-lossless (ITU T.87 A.4.4: every reconstructed sample is within NEAR of
the original), and within a stated bound for lossy ones.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from pipeline_builders import build_image
from pydicom import uid
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_encoder

from viewerlib.errors import DecodingError
from viewerlib.pipeline import codecs
from viewerlib.pipeline.decode import decode_frame

try:
    import imagecodecs
except ImportError:  # pragma: no cover - imagecodecs is a dependency
    imagecodecs = None

FRAMES, SHAPE = 3, (64, 80)


def noise(bits: int, signed: bool) -> np.ndarray:
    """Every value of the bit depth is possible; the extremes are present."""
    low = -(1 << (bits - 1)) if signed else 0
    high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    rng = np.random.default_rng(1000 * bits + signed)
    values = rng.integers(low, high + 1, size=(FRAMES, *SHAPE))
    values[:, 0, 0], values[:, 0, 1] = low, high
    return values


def smooth(bits: int, signed: bool, margin: int = 0) -> np.ndarray:
    """A smooth image (what lossy coders are for), a different one per frame.

    Values stay `margin` away from the ends of the range.
    """
    span = 1 << bits
    middle = 0 if signed else span // 2
    r, c = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    frames = [middle + 0.35 * span * np.sin(r / 9.0 + k) * np.cos(c / 11.0)
              for k in range(FRAMES)]
    low = (-(span // 2) if signed else 0) + margin
    high = ((span // 2) - 1 if signed else span - 1) - margin
    return np.clip(np.rint(np.stack(frames)), low, high).astype(np.int64)


def native(values: np.ndarray, bits: int, signed: bool) -> pydicom.Dataset:
    return build_image(values, bits_allocated=8 if bits <= 8 else 16,
                       bits_stored=bits, signed=signed)


def encapsulated(values: np.ndarray, bits: int, signed: bool, tsyntax: str,
                 frames: list[bytes]) -> pydicom.Dataset:
    """`values` described natively, with `frames` as its encapsulated data."""
    ds = native(values, bits, signed)
    ds.file_meta.TransferSyntaxUID = tsyntax
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


def _needs(plugin_ok: bool, what: str) -> None:
    if not plugin_ok:
        pytest.skip(f"{what} is not installed")


def by_pydicom(**options: object) -> Callable[..., pydicom.Dataset]:
    """Encode with ``Dataset.compress`` (pydicom's own encoder plugins)."""

    def encode(values, bits, signed, tsyntax):
        _needs(get_encoder(tsyntax).is_available, f"a pydicom encoder for {tsyntax}")
        ds = native(values, bits, signed)
        ds.compress(tsyntax, **options)
        return ds

    return encode


def by_imagecodecs(name: str, **options: object) -> Callable[..., pydicom.Dataset]:
    """Encode each frame with ``imagecodecs.<name>_encode``."""

    def encode(values, bits, signed, tsyntax):
        _needs(imagecodecs is not None and hasattr(imagecodecs, f"{name}_encode"),
               f"imagecodecs with {name}_encode")
        function = getattr(imagecodecs, f"{name}_encode")
        dtype = np.dtype(f"{'i' if signed else 'u'}{1 if bits <= 8 else 2}")
        frames = []
        for frame in values:
            if name == "jpeg8" and signed:
                # ITU T.81 knows no sign: the Bits Stored two's complement
                # pattern is coded as an unsigned sample of precision P.
                frame = frame & ((1 << bits) - 1)
                dtype = np.dtype(dtype.str.replace("i", "u"))
            arguments = dict(options)
            if name == "jpeg8" and (bits > 8 or arguments.get("lossless")):
                arguments["bitspersample"] = bits
            frames.append(bytes(function(frame.astype(dtype), **arguments)))
        return encapsulated(values, bits, signed, tsyntax, frames)

    return encode


# (id, transfer syntax, bits stored, signed, make values, encoder, expectation)
# expectation: 0 for lossless (exact), ("near", n) or ("lossy", largest error,
# largest mean error), both in stored-value units.
_CASES = [
    ("rle-8", uid.RLELossless, 8, False, noise, by_pydicom(), 0),
    ("rle-16-signed", uid.RLELossless, 16, True, noise, by_pydicom(), 0),
    # T.81 baseline, quality 90: a few levels on a smooth 8-bit image.
    ("jpeg-baseline-8", uid.JPEGBaseline8Bit, 8, False, smooth,
     by_imagecodecs("jpeg8", level=90), ("lossy", 6, 1.0)),
    # T.81 extended (process 4), 12-bit, quality 90.
    ("jpeg-extended-12", uid.JPEGExtended12Bit, 12, False, smooth,
     by_imagecodecs("jpeg8", level=90), ("lossy", 40, 4.0)),
    # Process 14 with predictor 6 (not SV1), and SV1 (predictor 1).
    ("jpeg-lossless-p6-12", uid.JPEGLossless, 12, False, noise,
     by_imagecodecs("jpeg8", lossless=True, predictor=6), 0),
    ("jpeg-lossless-p6-16", uid.JPEGLossless, 16, False, noise,
     by_imagecodecs("jpeg8", lossless=True, predictor=6), 0),
    ("jpeg-lossless-p7-12-signed", uid.JPEGLossless, 12, True, noise,
     by_imagecodecs("jpeg8", lossless=True, predictor=7), 0),
    ("jpeg-sv1-8", uid.JPEGLosslessSV1, 8, False, noise,
     by_imagecodecs("jpeg8", lossless=True, predictor=1), 0),
    ("jpeg-sv1-16-signed", uid.JPEGLosslessSV1, 16, True, noise,
     by_imagecodecs("jpeg8", lossless=True, predictor=1), 0),
    ("jpeg-ls-12", uid.JPEGLSLossless, 12, False, noise, by_pydicom(), 0),
    ("jpeg-ls-16-signed", uid.JPEGLSLossless, 16, True, noise, by_pydicom(), 0),
    ("jpeg-ls-near-2-12", uid.JPEGLSNearLossless, 12, False, noise,
     by_pydicom(jls_error=2), ("near", 2)),
    ("jpeg-ls-near-3-16", uid.JPEGLSNearLossless, 16, False, noise,
     by_pydicom(jls_error=3), ("near", 3)),
    # T.87 codes unsigned samples, so signed data is coded by its two's
    # complement pattern: within NEAR of the most negative value a sample may
    # come back as the most positive (pydicom's JPEG-LS guide says so). Real
    # signed images stay away from the ends; so do these values.
    ("jpeg-ls-near-3-16-signed", uid.JPEGLSNearLossless, 16, True,
     lambda bits, signed: smooth(bits, signed, margin=3), by_pydicom(jls_error=3),
     ("near", 3)),
    ("j2k-lossless-12", uid.JPEG2000Lossless, 12, False, noise, by_pydicom(), 0),
    ("j2k-lossless-16-signed", uid.JPEG2000Lossless, 16, True, noise,
     by_pydicom(), 0),
    ("j2k-lossy-12", uid.JPEG2000, 12, False, smooth, by_pydicom(j2k_cr=[8]),
     ("lossy", 40, 4.0)),
    ("htj2k-lossless-12", uid.HTJ2KLossless, 12, False, noise,
     by_imagecodecs("htj2k", reversible=True), 0),
    ("htj2k-lossless-16-signed", uid.HTJ2KLossless, 16, True, noise,
     by_imagecodecs("htj2k", reversible=True), 0),
    ("htj2k-rpcl-12-signed", uid.HTJ2KLosslessRPCL, 12, True, noise,
     by_imagecodecs("htj2k", reversible=True, tlm=True), 0),
    # OpenJPH's irreversible coding: `level` is its quantisation step.
    ("htj2k-lossy-12", uid.HTJ2K, 12, False, smooth,
     by_imagecodecs("htj2k", level=0.0001, reversible=False), ("lossy", 40, 4.0)),
    ("htj2k-lossy-16-signed", uid.HTJ2K, 16, True, smooth,
     by_imagecodecs("htj2k", level=0.0001, reversible=False), ("lossy", 640, 64.0)),
]


@pytest.fixture(params=["direct", "pydicom"])
def route(request, monkeypatch) -> str:
    """Decode by the direct imagecodecs route, or with it switched off."""
    if request.param == "direct" and not codecs.available():
        pytest.skip("imagecodecs is not installed")
    if request.param == "pydicom":
        monkeypatch.setattr(codecs, "imagecodecs", None)
    return request.param


@pytest.mark.parametrize(("tsyntax", "bits", "signed", "make", "encode", "expect"),
                         [case[1:] for case in _CASES],
                         ids=[case[0] for case in _CASES])
def test_every_frame_comes_back_as_encoded(route, tsyntax, bits, signed, make,
                                          encode, expect):
    values = make(bits, signed)
    ds = encode(values, bits, signed, tsyntax)
    assert ds.file_meta.TransferSyntaxUID == tsyntax

    decoded = [decode_frame(ds, k) for k in range(FRAMES)]

    pixels = np.stack([frame.pixels for frame in decoded]).astype(np.int64)
    plugins = {frame.decoding_plugin for frame in decoded}
    if route == "direct":
        assert plugins == {"imagecodecs"}
    else:
        assert "imagecodecs" not in plugins
    assert pixels.shape == values.shape
    error = np.abs(pixels - values)
    if expect == 0:
        np.testing.assert_array_equal(pixels, values)
    elif expect[0] == "near":
        assert error.max() <= expect[1]
    else:
        _, largest, mean = expect
        assert error.max() <= largest and error.mean() <= mean
    # No decoder may hand back values outside Bits Stored (PS3.5 8.1.1).
    low = -(1 << (bits - 1)) if signed else 0
    assert pixels.min() >= low and pixels.max() < low + (1 << bits)


def test_deflated_explicit_vr_little_endian_is_exact(tmp_path):
    # PS3.5 A.5: the whole dataset is deflated; the pixels are native.
    values = smooth(16, True)
    values[:, 0, :2] = (-32768, 32767)
    ds = native(values, 16, True)
    ds.file_meta.TransferSyntaxUID = uid.DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflated.dcm"
    ds.save_as(path, enforce_file_format=True)
    # Really deflated: the file is smaller than its pixel bytes alone.
    assert path.stat().st_size < values.size * 2 // 2
    read = pydicom.dcmread(path)

    decoded = np.stack([decode_frame(read, k).pixels for k in range(FRAMES)])

    np.testing.assert_array_equal(decoded, values)


def _start_of_scan_predictor(codestream: bytes) -> tuple[int, int]:
    """(SOF marker, predictor Ss) of a JPEG codestream (ITU T.81 B.2.2, B.2.3)."""
    sof = next(m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)
               and bytes([0xFF, m]) in codestream)
    start = codestream.index(b"\xff\xda")
    components = codestream[start + 4]
    # After Ls (2), Ns (1) and two bytes per component comes Ss: the
    # predictor selection value in lossless processes (T.81 H.1.2.1).
    return sof, codestream[start + 5 + 2 * components]


@pytest.mark.parametrize(("tsyntax", "predictor"), [
    (uid.JPEGLossless, 6), (uid.JPEGLossless, 7), (uid.JPEGLosslessSV1, 1)])
def test_jpeg_lossless_cases_carry_the_predictor_their_syntax_names(tsyntax,
                                                                    predictor):
    # 1.2.840.10008.1.2.4.57 allows any predictor, .70 only Selection Value 1:
    # the cases above really are process 14 (SOF3) with those predictors.
    ds = by_imagecodecs("jpeg8", lossless=True, predictor=predictor)(
        noise(12, False), 12, False, tsyntax)
    codestream = next(generate_frames(ds.PixelData, number_of_frames=FRAMES))

    assert _start_of_scan_predictor(codestream) == (0xC3, predictor)


def _main_header_markers(codestream: bytes) -> dict[int, bytes]:
    """The marker segments of a JPEG 2000 main header (ITU T.800 A.4, A.5)."""
    assert codestream[:2] == b"\xff\x4f"  # SOC
    markers: dict[int, bytes] = {}
    position = 2
    while True:
        (marker,) = struct.unpack_from(">H", codestream, position)
        if marker == 0xFF90:  # SOT: the first tile-part; the main header ends
            return markers
        (length,) = struct.unpack_from(">H", codestream, position + 2)
        markers[marker] = codestream[position + 4:position + 2 + length]
        position += 2 + length


def test_htj2k_rpcl_codestream_has_what_its_transfer_syntax_promises():
    # The RPCL syntax promises RPCL progression (T.800 A.6.1: SGcod's first
    # byte, 2 = RPCL) and a TLM marker segment (T.800 A.7.1, 0xFF55); HTJ2K
    # block coding is announced by the CAP marker (T.814, 0xFF50).
    ds = by_imagecodecs("htj2k", reversible=True, tlm=True)(
        noise(12, False), 12, False, uid.HTJ2KLosslessRPCL)
    codestream = next(generate_frames(ds.PixelData, number_of_frames=FRAMES))
    markers = _main_header_markers(codestream)

    cod = markers[0xFF52]
    progression, layers = cod[1], struct.unpack_from(">H", cod, 2)[0]
    assert (progression, layers) == (2, 1)
    assert 0xFF55 in markers and 0xFF50 in markers


# Codestreams no decoder accepts: they stand for frames that must not be read.
_GARBAGE = b"\xff" * 64


@pytest.mark.parametrize(("tsyntax", "bits", "signed", "encode"), [
    (uid.RLELossless, 16, True, by_pydicom()),
    (uid.JPEGLosslessSV1, 16, False,
     by_imagecodecs("jpeg8", lossless=True, predictor=1)),
    (uid.JPEGLSLossless, 12, False, by_pydicom()),
    (uid.JPEG2000Lossless, 16, True, by_pydicom()),
    (uid.HTJ2KLossless, 12, False, by_imagecodecs("htj2k", reversible=True)),
], ids=["rle", "jpeg-sv1", "jpeg-ls", "j2k", "htj2k"])
def test_decoding_one_frame_never_touches_the_others(route, tsyntax, bits, signed,
                                                     encode):
    values = noise(bits, signed)
    good = encode(values, bits, signed, tsyntax)
    frames = list(generate_frames(good.PixelData, number_of_frames=FRAMES))
    ds = encapsulated(values, bits, signed, tsyntax,
                      [_GARBAGE, frames[1], _GARBAGE])

    # Frames 0 and 2 cannot be decoded at all ...
    for broken in (0, 2):
        with pytest.raises(DecodingError, match=re.escape(str(tsyntax))):
            decode_frame(ds, broken)
    # ... so frame 1 decoding right shows that only its own bytes were read.
    np.testing.assert_array_equal(decode_frame(ds, 1).pixels, values[1])


def test_native_frame_is_cut_from_its_own_bytes():
    values = noise(16, True)
    ds = native(values, 16, True)
    frame_bytes = values[0].size * 2
    raw = bytearray(ds.PixelData)
    raw[:frame_bytes] = b"\xff" * frame_bytes  # frame 0 now reads -1 everywhere
    ds.PixelData = bytes(raw)

    np.testing.assert_array_equal(decode_frame(ds, 1).pixels, values[1])
    assert decode_frame(ds, 0).pixels.tolist() == np.full(SHAPE, -1).tolist()


def test_deflated_file_round_trips_through_a_byte_stream():
    # The same through an in-memory file: pydicom inflates while reading.
    values = noise(12, False)
    ds = native(values, 12, False)
    ds.file_meta.TransferSyntaxUID = uid.DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)

    read = pydicom.dcmread(buffer)

    assert read.file_meta.TransferSyntaxUID == uid.DeflatedExplicitVRLittleEndian
    np.testing.assert_array_equal(decode_frame(read, 2).pixels, values[2])
