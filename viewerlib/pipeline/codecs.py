"""Direct codec calls on one encapsulated frame, without pydicom's decode machinery.

pydicom's ``as_array`` validates the dataset, builds a runner and copies the
result on every call: 0.1 to 0.6 ms per frame, as much as decoding a small
frame. Here the frame's bytes are cut out of (7FE0,0010) *Pixel Data* (the
fragment positions are worked out once per dataset) and handed to imagecodecs,
which wraps libjpeg-turbo, CharLS, OpenJPEG and a DICOM RLE decoder, is the
fastest installed decoder for every syntax it covers (see bench/pixels.py) and
releases the GIL while it decodes, so threads decode frames in parallel.

Only cases whose result is known to match the standard are taken; anything
else (an unexpected shape or type, a colour JPEG 2000 in YBR, a JPEG-LS or
JPEG 2000 whose values need a sign correction from its codestream header)
returns None and goes through pydicom, which knows those corrections.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom import uid
from pydicom.encaps import get_frame

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

try:  # imagecodecs is a dependency, but a broken install must not stop decoding
    import imagecodecs
except ImportError:  # pragma: no cover - exercised only without imagecodecs
    imagecodecs = None

PLUGIN_NAME = "imagecodecs"

_ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000) Item, little endian
_JPEG_PROCESS = (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit)
_JPEG_LOSSLESS = (uid.JPEGLossless, uid.JPEGLosslessSV1)
_JPEG_LS = (uid.JPEGLSLossless, uid.JPEGLSNearLossless)
_JPEG_2000 = (uid.JPEG2000Lossless, uid.JPEG2000, uid.HTJ2KLossless,
              uid.HTJ2KLosslessRPCL, uid.HTJ2K)
# Start Of Frame markers of ITU T.81 B.1.1.3 (C4 DHT, C8 JPG and CC DAC are not).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG-LS Start Of Frame (ITU T.87 C.2.2); its frame header is laid out as T.81's.
_SOF55 = 0xF7


def available() -> bool:
    """Return True when imagecodecs is installed and importable."""
    return imagecodecs is not None


def handles(tsyntax: str) -> bool:
    """Return True when this module has a direct route for `tsyntax` installed."""
    return imagecodecs is not None and tsyntax in _DECODERS


def covers(tsyntax: str) -> bool:
    """Return True when imagecodecs, once installed, decodes `tsyntax` here."""
    return tsyntax in _DECODERS


def frame_bytes(ds: Dataset, pixel_data: bytes, frames: int,
                index: int) -> bytes | memoryview:
    """Return the encoded bytes of one frame of encapsulated `pixel_data`.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Holds a memo of the fragment positions (keyed by the identity of
        `pixel_data`, so replacing the Pixel Data invalidates it).
    pixel_data : bytes
        The encapsulated (7FE0,0010) *Pixel Data* (PS3.5 A.4).
    frames : int
        (0028,0008) *Number of Frames*.
    index : int
        The frame, starting at 0.

    Returns
    -------
    bytes or memoryview
        A zero-copy view when the frame is one fragment, else the joined bytes.
    """
    memo = ds.__dict__.get("_lightbox_fragments")
    if memo is None or memo[0] is not pixel_data or memo[1] != frames:
        memo = (pixel_data, frames, _fragment_spans(pixel_data))
        ds.__dict__["_lightbox_fragments"] = memo
    spans = memo[2]
    if spans is not None:
        if len(spans) == frames:  # PS3.5 A.4: one fragment per frame
            start, end = spans[index]
            return memoryview(pixel_data)[start:end]
        if frames == 1:
            return b"".join(pixel_data[s:e] for s, e in spans)
    # Several fragments per frame: pydicom reads the offset tables.
    return get_frame(pixel_data, index, number_of_frames=frames)


def _fragment_spans(pixel_data: bytes) -> list[tuple[int, int]] | None:
    """Return (start, end) of every fragment after the Basic Offset Table item."""
    spans = []
    position = 0
    size = len(pixel_data)
    first = True
    while position + 8 <= size:
        if pixel_data[position:position + 4] != _ITEM:
            break  # Sequence Delimiter or trailing padding
        length = struct.unpack_from("<I", pixel_data, position + 4)[0]
        start = position + 8
        if length == 0xFFFFFFFF or start + length > size:
            return None  # undefined or truncated item: let pydicom report it
        if not first:
            spans.append((start, start + length))
        first = False
        position = start + length
    return spans if spans else None


# Codestreams that end in an End Of Image marker: ITU T.81 B.2.1 (JPEG), T.87
# (JPEG-LS, same marker) and the End Of Codestream of T.800 A.4.4 (JPEG 2000,
# also FFD9). RLE (PS3.5 G) has no end marker.
_ENDS_WITH_EOI = frozenset((*_JPEG_PROCESS, *_JPEG_LOSSLESS, *_JPEG_LS, *_JPEG_2000))
_EOI = b"\xff\xd9"
_EOI_SEARCH = 64  # bytes at the end of a frame where its end marker is looked for
_NAMES = {**{s: "JPEG" for s in (*_JPEG_PROCESS, *_JPEG_LOSSLESS)},
          **{s: "JPEG-LS" for s in _JPEG_LS}, **{s: "JPEG 2000" for s in _JPEG_2000}}


def codestream_problem(frame: bytes | memoryview, tsyntax: str) -> str | None:
    """Say so when a frame's codestream does not end as its standard requires.

    Parameters
    ----------
    frame : bytes or memoryview
        One frame's encoded bytes (see :func:`frame_bytes`).
    tsyntax : str
        The transfer syntax UID.

    Returns
    -------
    str or None
        What is wrong and what to do, or None when the End Of Image / End Of
        Codestream marker (FFD9) is in the frame's last 64 bytes (after it may
        come the NUL that pads a fragment to an even length, PS3.5 A.4, or
        other padding). None too for syntaxes without an end marker (RLE).

    Notes
    -----
    Decoders (CharLS in particular) return an image without complaint when the
    end of a codestream is zeroed or missing: the lost rows then hold made-up
    values. Only the last bytes are read, so the check costs nothing; it
    cannot see damage in the middle of a codestream that still ends well.
    """
    if tsyntax not in _ENDS_WITH_EOI or len(frame) < 2:
        return None
    # Found near the end, not only at it: real files that decode correctly pad
    # after the marker with NUL or FF, or carry a few stray bytes. Entropy-coded
    # data never holds FFD9 (T.81 B.1.1.5 byte stuffing, T.87 A.1 bit stuffing,
    # T.800 A.1.1), so a marker found there is the real end.
    if _EOI in bytes(frame[-_EOI_SEARCH:]):
        return None
    kind = _NAMES[tsyntax]
    zeros = len(frame) - len(bytes(frame).rstrip(b"\0"))
    detail = f" (its last {zeros} bytes are zero)" if zeros > 1 else ""
    return (f"the {kind} codestream does not end in its End Of Image marker "
            f"(FFD9){detail}: the pixel data is damaged or cut short and part of "
            "the image may hold made-up values; copy the file again from its "
            "source")


def jpeg_header(frame: bytes | memoryview, photometric: str,
                tsyntax: str) -> tuple[str, int]:
    """Return the colour space of a JPEG's raw components and its precision.

    Parameters
    ----------
    frame : bytes or memoryview
        A JPEG (ITU T.81) codestream, or a JPEG-LS (ITU T.87) one, whose values
        likewise never reach 2**P (its MAXVAL is at most 2**P - 1, C.2.4.1.1).
    photometric : str
        (0028,0004) *Photometric Interpretation* of the dataset.
    tsyntax : str
        The transfer syntax UID.

    Returns
    -------
    colour_space : str
        `photometric`, unless a 3-component codestream says otherwise:
        component identifiers "RGB" mean RGB; a JFIF APP0 marker means YCbCr
        (JFIF 1.02 section 4) -- the mislabelled files seen in the field.
    precision : int
        Sample precision P of the frame header (T.81 B.2.2), 0 if not found:
        decoded values never reach 2**P.
    """
    data = frame  # bytes or memoryview: indexing gives ints, no copy
    position = 2
    jfif = False
    precision = 0
    component_ids: list[int] = []
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # Start Of Scan: no more header segments
            break
        length = (data[position + 2] << 8) | data[position + 3]
        body = position + 4
        if marker == 0xE0 and bytes(data[body:body + 4]) == b"JFIF":
            jfif = True
        elif (marker in _SOF_MARKERS or marker == _SOF55 and tsyntax in _JPEG_LS
              ) and length >= 8:
            precision = data[body]
            count = data[body + 5]
            component_ids = [data[body + 6 + 3 * i] for i in range(count)
                             if body + 6 + 3 * i < position + 2 + length]
        position += 2 + length
    if len(component_ids) != 3:
        return photometric, precision
    if component_ids in ([82, 71, 66], [114, 103, 98]):
        return "RGB", precision
    if jfif and "YBR" not in photometric:
        space = "YBR_FULL_422" if tsyntax == uid.JPEGBaseline8Bit else "YBR_FULL"
        return space, precision
    return photometric, precision


def jpeg_colour_space(frame: bytes | memoryview, photometric: str,
                      tsyntax: str) -> str:
    """Return the colour space a 3-sample JPEG's raw components are in.

    See :func:`jpeg_header`, which also gives the precision.
    """
    return jpeg_header(frame, photometric, tsyntax)[0]


def _decode_rle(frame: Any, layout: Any) -> np.ndarray:
    # PS3.5 G.2: one segment per byte of each sample, i.e. colour-by-plane.
    data = imagecodecs.dicomrle_decode(frame, layout.unsigned_dtype)
    arr = np.frombuffer(data, layout.unsigned_dtype)
    if layout.samples == 1:
        return arr.reshape(layout.rows, layout.columns)
    planes = arr.reshape(layout.samples, layout.rows, layout.columns)
    return np.ascontiguousarray(planes.transpose(1, 2, 0))


def _decode_jpeg(frame: Any, layout: Any) -> np.ndarray:
    if layout.samples == 1:
        return imagecodecs.jpeg8_decode(frame)
    # Same colour space in and out: libjpeg-turbo hands back the raw components.
    return imagecodecs.jpeg8_decode(frame, colorspace="RGB", outcolorspace="RGB")


def _decode_jpeg_lossless(frame: Any, layout: Any) -> np.ndarray:
    if layout.samples == 1:
        return imagecodecs.ljpeg_decode(frame)
    return imagecodecs.jpeg8_decode(frame, colorspace="RGB", outcolorspace="RGB")


def _decode_jpeg_ls(frame: Any, layout: Any) -> np.ndarray:
    return imagecodecs.jpegls_decode(frame)


def _decode_jpeg_2000(frame: Any, layout: Any) -> np.ndarray:
    # One thread per frame: the series reader decodes frames in parallel.
    return imagecodecs.jpeg2k_decode(frame, numthreads=1)


_DECODERS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    uid.RLELossless: _decode_rle,
    **{syntax: _decode_jpeg for syntax in _JPEG_PROCESS},
    **{syntax: _decode_jpeg_lossless for syntax in _JPEG_LOSSLESS},
    **{syntax: _decode_jpeg_ls for syntax in _JPEG_LS},
    **{syntax: _decode_jpeg_2000 for syntax in _JPEG_2000},
}


def decode(frame: Any, layout: Any, frame_index: int = 0
           ) -> tuple[np.ndarray, str] | None:
    """Decode one frame and bring it to the stored values the standard defines.

    Parameters
    ----------
    frame : bytes or memoryview
        The frame's codestream (see :func:`frame_bytes`).
    layout : viewerlib.pipeline.decode.FrameLayout
        The pixel description of the dataset.
    frame_index : int, optional
        Index of the frame (keys the memo of JPEG colour spaces).

    Returns
    -------
    (numpy.ndarray, str) or None
        Stored values (rows, columns[, samples]) with the bits above Bits
        Stored cleared (or sign-extended), and the colour space they are in;
        None when the case is left to pydicom.

    Raises
    ------
    Exception
        Whatever the codec raises on a corrupt frame; the caller reports it.
    """
    tsyntax = layout.transfer_syntax
    photometric = layout.photometric
    if layout.samples == 3:
        if tsyntax in _JPEG_LS:
            return None  # CharLS may apply an HP colour transform: pydicom's job
        if tsyntax in _JPEG_2000 and photometric != "RGB":
            return None  # OpenJPEG's MCT changes the colour space: pydicom's job
    precision = 0
    if tsyntax in _JPEG_PROCESS or tsyntax in _JPEG_LOSSLESS or tsyntax in _JPEG_LS:
        # Read once per frame: the header decides the colour space, and a
        # precision within Bits Stored spares the check of the high bits (a
        # pass over every value: a tenth of decoding a small frame).
        known = layout.jpeg_headers.get(frame_index)
        if known is None:
            known = jpeg_header(frame, photometric, tsyntax)
            layout.jpeg_headers[frame_index] = known
        photometric, precision = known
    arr = _DECODERS[tsyntax](frame, layout)
    if arr.shape != layout.shape or arr.dtype.itemsize != layout.dtype.itemsize \
            or arr.dtype.kind not in "iu":
        return None
    arr = arr.view(layout.dtype)
    if 0 < precision <= layout.bits_stored and (
            not layout.signed or precision == layout.dtype.itemsize * 8):
        return arr, photometric  # unsigned values below 2**P <= 2**Bits Stored
    corrected = fit_bits_stored(arr, layout,
                                may_correct=tsyntax not in _JPEG_LS + _JPEG_2000)
    if corrected is None:
        return None
    return corrected, photometric


def fit_bits_stored(arr: np.ndarray, layout: Any, may_correct: bool = True
                    ) -> np.ndarray | None:
    """Return `arr` with only Bits Stored significant (PS3.5 8.1.1).

    Parameters
    ----------
    arr : numpy.ndarray
        Stored values in the dataset's type (signed when Pixel Representation
        is 1); may be read-only.
    layout : viewerlib.pipeline.decode.FrameLayout
        Gives Bits Stored and the signedness.
    may_correct : bool, optional
        If False, return None instead of correcting (the codestream's own
        header decides the correction; pydicom reads it).

    Returns
    -------
    numpy.ndarray or None
        `arr` itself when every value is already in range (the usual case: one
        read-only pass, no copy), else a corrected copy, or None.
    """
    shift = layout.dtype.itemsize * 8 - layout.bits_stored
    if shift <= 0 or arr.size == 0:
        return arr
    if not layout.signed:
        if int(arr.max()) < 1 << layout.bits_stored:
            return arr
        if not may_correct:
            return None
        return np.bitwise_and(arr, (1 << layout.bits_stored) - 1)
    limit = 1 << (layout.bits_stored - 1)
    if int(arr.min()) >= -limit and int(arr.max()) < limit:
        return arr
    if not may_correct:
        return None
    # Shift left then right: the arithmetic shift of a signed type sign-extends.
    out = np.left_shift(arr, shift)
    np.right_shift(out, shift, out=out)
    return out
