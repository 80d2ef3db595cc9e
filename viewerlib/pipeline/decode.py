"""Decode one frame of pixel data with the fastest installed pydicom plugin."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydicom import uid
from pydicom.pixels import get_decoder

from viewerlib.errors import DecodingError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

_LIBJPEG = "pylibjpeg pylibjpeg-libjpeg"
_OPENJPEG = "pylibjpeg pylibjpeg-openjpeg"
_NATIVE_LITTLE_ENDIAN = (
    uid.ImplicitVRLittleEndian,
    uid.ExplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
)

# Plugins in the order we try them, fastest first. pylibjpeg wraps compiled
# libraries (libjpeg, OpenJPEG, a Rust RLE decoder); pydicom's own RLE decoder is
# pure Python and Pillow adds a colour conversion we do not want, so both come last.
# One row per transfer syntax: (plugins in order, pip packages that add a decoder).
_PLUGIN_TABLE: dict[str, tuple[tuple[str, ...], str]] = {
    uid.RLELossless: (("pylibjpeg", "gdcm", "pydicom"), "pylibjpeg pylibjpeg-rle"),
    uid.JPEGBaseline8Bit: (("pylibjpeg", "gdcm", "pillow"), _LIBJPEG),
    uid.JPEGExtended12Bit: (("pylibjpeg", "gdcm", "pillow"), _LIBJPEG),
    uid.JPEGLossless: (("pylibjpeg", "gdcm"), _LIBJPEG),
    uid.JPEGLosslessSV1: (("pylibjpeg", "gdcm"), _LIBJPEG),
    uid.JPEGLSLossless: (("pylibjpeg", "gdcm", "pyjpegls"), "pylibjpeg-libjpeg"),
    uid.JPEGLSNearLossless: (("pylibjpeg", "gdcm", "pyjpegls"), "pylibjpeg-libjpeg"),
    uid.JPEG2000Lossless: (("pylibjpeg", "gdcm", "pillow"), _OPENJPEG),
    uid.JPEG2000: (("pylibjpeg", "gdcm", "pillow"), _OPENJPEG),
    uid.HTJ2KLossless: (("pylibjpeg",), _OPENJPEG),
    uid.HTJ2KLosslessRPCL: (("pylibjpeg",), _OPENJPEG),
    uid.HTJ2K: (("pylibjpeg",), _OPENJPEG),
}


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame and the colour space its samples are really in.

    Attributes
    ----------
    pixels : numpy.ndarray
        Stored pixel values, shape (rows, columns) or (rows, columns, samples),
        always colour-by-pixel whatever (0028,0006) *Planar Configuration* says.
        Bits above (0028,0101) *Bits Stored* are already cleared and signed values
        sign-extended (pydicom does this while decoding).
    photometric_interpretation : str
        The colour space of `pixels`. It can differ from the dataset's
        (0028,0004) *Photometric Interpretation*: OpenJPEG returns YBR_RCT and
        YBR_ICT images as RGB.
    transfer_syntax_uid : str
        The transfer syntax the frame was encoded with.
    decoding_plugin : str
        The pydicom plugin that decoded the frame ("" for native encodings).
    """

    pixels: np.ndarray
    photometric_interpretation: str
    transfer_syntax_uid: str
    decoding_plugin: str


def transfer_syntax_of(ds: Dataset) -> uid.UID:
    """Return the transfer syntax of `ds`, inferring it for files without File Meta.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0002,0010) *Transfer Syntax UID* from ``ds.file_meta``; when that is
        absent (ACR-NEMA style files read with ``force=True``), the encoding
        pydicom found while reading.

    Returns
    -------
    pydicom.uid.UID
        The transfer syntax UID.

    Raises
    ------
    DecodingError
        If the dataset has neither File Meta nor a known original encoding.
    """
    file_meta = getattr(ds, "file_meta", None)
    tsyntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if tsyntax:
        return uid.UID(tsyntax)

    is_implicit, is_little = getattr(ds, "original_encoding", (None, None))
    if is_implicit is None or is_little is None:
        raise DecodingError(
            "The dataset has no (0002,0010) 'Transfer Syntax UID' and was not read "
            "from a file, so its encoding is unknown; set "
            "ds.file_meta.TransferSyntaxUID before displaying it"
        )
    if is_implicit:
        return uid.ImplicitVRLittleEndian
    return uid.ExplicitVRLittleEndian if is_little else uid.ExplicitVRBigEndian


def number_of_frames(ds: Dataset) -> int:
    """Return (0028,0008) *Number of Frames*, treating absent or 0 as 1.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,0008) *Number of Frames*.

    Returns
    -------
    int
        The number of frames, at least 1.
    """
    value = ds.get("NumberOfFrames", 1)
    try:
        count = int(value) if value not in (None, "") else 1
    except (TypeError, ValueError):
        count = 1
    return max(count, 1)


def decode_frame(ds: Dataset, frame_index: int = 0) -> DecodedFrame:
    """Decode one frame of `ds` without decoding the other frames.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A dataset with (7FE0,0010) *Pixel Data* (or *Float Pixel Data*) and the
        Image Pixel module: (0028,0010) *Rows*, (0028,0011) *Columns*,
        (0028,0100) *Bits Allocated*, (0028,0101) *Bits Stored*,
        (0028,0103) *Pixel Representation*, (0028,0004) *Photometric
        Interpretation* and (0028,0002) *Samples per Pixel*.
    frame_index : int, optional
        Index of the frame, starting at 0 (frame number 1 in DICOM).

    Returns
    -------
    DecodedFrame
        The stored values of the frame and the colour space they are in.

    Raises
    ------
    IndexError
        If `frame_index` is outside the frames of `ds`.
    ValueError
        If `ds` has no pixel data.
    DecodingError
        If no installed plugin can decode the transfer syntax, or every plugin
        tried failed; the message names the transfer syntax (UID and name), each
        failure and the pip packages that would add a decoder.

    Notes
    -----
    The array is decoded with pydicom's ``raw=True`` so that pydicom does not turn
    YBR_FULL into RGB behind our back; :mod:`viewerlib.pipeline.color` does that
    step once, knowing what the decoder returned.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset, FileMetaDataset
    >>> from pydicom.uid import ExplicitVRLittleEndian
    >>> ds = Dataset()
    >>> ds.file_meta = FileMetaDataset()
    >>> ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    >>> ds.Rows, ds.Columns, ds.SamplesPerPixel = 2, 2, 1
    >>> ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    >>> ds.PixelRepresentation = 0
    >>> ds.PhotometricInterpretation = "MONOCHROME2"
    >>> ds.PixelData = np.array([[1, 2], [3, 0xF004]], "<u2").tobytes()
    >>> decode_frame(ds).pixels.tolist()  # the bits above Bits Stored are dropped
    [[1, 2], [3, 4]]
    """
    fast = _decode_native_little_endian(ds, frame_index)
    if fast is not None:
        return fast

    pixel_keywords = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    if not any(k in ds for k in pixel_keywords):
        raise ValueError(
            "The dataset has no (7FE0,0010) 'Pixel Data', so there is no frame to "
            "decode; check that the instance was retrieved with its bulk data"
        )

    frames = number_of_frames(ds)
    if not 0 <= frame_index < frames:
        raise IndexError(
            f"frame_index {frame_index} is outside the {frames} frame(s) of this "
            "instance ((0028,0008) 'Number of Frames'); use 0 to "
            f"{frames - 1} (frame_index starts at 0)"
        )

    tsyntax = transfer_syntax_of(ds)
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as err:
        raise DecodingError(
            f"No pixel data decoder exists for transfer syntax '{tsyntax.name}' "
            f"({tsyntax}); pydicom cannot decode it with any plugin. Convert the "
            "instance to another transfer syntax (e.g. with dcmtk or gdcmconv)"
        ) from err

    if decoder.is_native:
        return _decode_with(ds, decoder, frame_index, "", tsyntax)

    preferred, packages = _PLUGIN_TABLE.get(tsyntax, ((), ""))
    available = decoder.available_plugins
    plugins = [p for p in preferred if p in available]
    plugins += [p for p in available if p not in plugins]
    if not plugins:
        missing = "; ".join(decoder.missing_dependencies) or "none listed"
        raise DecodingError(
            f"No installed plugin can decode transfer syntax '{tsyntax.name}' "
            f"({tsyntax}). Install one, e.g. `pip install {packages or 'python-gdcm'}`"
            f" (pydicom's missing dependencies: {missing})"
        )

    failures = []
    for plugin in plugins:
        try:
            return _decode_with(ds, decoder, frame_index, plugin, tsyntax)
        except Exception as err:  # noqa: BLE001 - every failure is reported below
            logger.debug("Plugin %s failed on frame %d: %s", plugin, frame_index, err)
            failures.append(f"{plugin}: {err}")

    raise DecodingError(
        f"Every installed plugin failed to decode frame_index {frame_index} of "
        f"transfer syntax '{tsyntax.name}' ({tsyntax}): " + "; ".join(failures)
        + ". The pixel data may be corrupt; another decoder may help, e.g. "
        "`pip install python-gdcm`"
    )


def _decode_native_little_endian(ds: Dataset, frame_index: int) -> DecodedFrame | None:
    """Decode a native little-endian frame with numpy alone, or return None.

    The common case (8, 16 or 32 bits allocated, one or three samples not
    subsampled, a whole frame present) needs one pass over the frame's bytes:
    a copy that also clears the bits above Bits Stored. Anything else (big
    endian, 1-bit, YBR_*_422/420, short or odd data, a bad frame index) returns
    None and goes through pydicom, which also gives the detailed errors.
    """
    file_meta = getattr(ds, "file_meta", None)
    tsyntax = file_meta.get(0x00020010) if file_meta is not None else None
    if tsyntax is None or tsyntax.value not in _NATIVE_LITTLE_ENDIAN:
        return None
    pixel_data = ds.get(0x7FE00010)
    if pixel_data is None or not isinstance(pixel_data.value, bytes):
        return None
    try:
        rows, columns = ds[0x00280010].value, ds[0x00280011].value
        allocated, stored = ds[0x00280100].value, ds[0x00280101].value
        signed = ds[0x00280103].value == 1
        samples = ds[0x00280002].value
    except (KeyError, AttributeError):
        return None
    if allocated not in (8, 16, 32) or samples not in (1, 3) or not stored:
        return None
    photometric = str(ds[0x00280004].value) if 0x00280004 in ds else ""
    if samples == 3 and (photometric.endswith(("_422", "_420"))):
        return None
    frames = number_of_frames(ds)
    data = pixel_data.value
    frame_length = rows * columns * samples
    frame_bytes = frame_length * allocated // 8
    if not 0 <= frame_index < frames or len(data) < frames * frame_bytes:
        return None

    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    view = np.frombuffer(data, dtype, frame_length, frame_index * frame_bytes)
    planar = samples == 3 and int(ds.get("PlanarConfiguration", 0) or 0) == 1
    shape = (samples, rows, columns) if planar else (rows, columns, samples)
    view = view.reshape(shape)
    if planar:
        # PS3.3 C.7.6.3.1.3: colour-by-plane; return colour-by-pixel.
        view = view.transpose(1, 2, 0)
    out = np.empty((rows, columns, samples), dtype.newbyteorder("="))
    shift = allocated - min(int(stored), allocated)
    # PS3.5 8.1.1: bits above Bits Stored carry no meaning; clear them in the
    # copy itself (unsigned), or shift them out to sign-extend (signed).
    if shift == 0:
        np.copyto(out, view)
    elif not signed:
        np.bitwise_and(view, (1 << int(stored)) - 1, out=out)
    else:
        np.left_shift(view, shift, out=out)
        np.right_shift(out, shift, out=out)
    pixels = out[..., 0] if samples == 1 else out
    return DecodedFrame(pixels, photometric, str(tsyntax.value), "")


def _decode_with(
    ds: Dataset, decoder: object, frame_index: int, plugin: str, tsyntax: uid.UID
) -> DecodedFrame:
    """Decode one frame with one plugin and describe the result."""
    # raw=True: colour conversion is ours to do (see Notes of decode_frame);
    # pydicom still clears the bits above Bits Stored (PS3.5 8.1.1).
    arr, properties = decoder.as_array(  # type: ignore[attr-defined]
        ds, index=frame_index, raw=True, decoding_plugin=plugin
    )
    if not arr.flags.writeable:
        arr = arr.copy()
    photometric = str(
        properties.get("photometric_interpretation", ds.PhotometricInterpretation)
    )
    logger.debug("Decoded frame %d with plugin %r", frame_index, plugin or "native")
    return DecodedFrame(arr, photometric, str(tsyntax), plugin)


def pixel_data_shortfall(ds: Dataset, available_bytes: int) -> str | None:
    """Say so when native pixel data is shorter than the header promises.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,0010) *Rows*, (0028,0011) *Columns*, (0028,0002) *Samples per
        Pixel*, (0028,0100) *Bits Allocated*, (0028,0008) *Number of Frames* and the
        transfer syntax; encapsulated (compressed) data is not checked here.
    available_bytes : int
        The bytes there are: the length of (7FE0,0010) *Pixel Data*, or a file's
        size as a lower bound.

    Returns
    -------
    str or None
        What is wrong and what to do, or None when nothing is missing.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if syntax is None or syntax.is_encapsulated or "Rows" not in ds:
        return None
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        samples = 2  # PS3.3 C.7.6.3.1.2: two chroma values shared by two pixels
    expected = (int(ds.Rows) * int(ds.Columns) * samples
                * int(ds.get("BitsAllocated", 0) or 0)
                * int(ds.get("NumberOfFrames", 1) or 1)) // 8
    if available_bytes < expected:
        return (f"the file is cut short: its pixel data needs {expected} bytes and "
                f"{available_bytes} are there; copy it again from its source")
    return None
