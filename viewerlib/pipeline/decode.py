"""Decode one frame of pixel data with the fastest installed pydicom plugin."""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from pydicom import uid
from pydicom.dataelem import RawDataElement
from pydicom.pixels import get_decoder

from viewerlib.errors import DecodingError
from viewerlib.pipeline import codecs

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

_PIXEL_DATA_TAG = 0x7FE00010

# How every message about a header that does not fit its whole pixel data begins;
# and one about pixel data short of its header's size, not known to be whole.
MISFIT = "its header does not match its pixel data"
UNFIT = "its pixel data does not fit its header"
# How every message about a file that ends too soon begins.
CUT_SHORT = "the file is cut short"

_LIBJPEG = "pylibjpeg pylibjpeg-libjpeg"
_OPENJPEG = "pylibjpeg pylibjpeg-openjpeg"
_NATIVE_LITTLE_ENDIAN = (
    uid.ImplicitVRLittleEndian,
    uid.ExplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
)

# The direct imagecodecs route (viewerlib.pipeline.codecs) comes before all of
# these where it covers the syntax. pydicom plugins in the order we try them,
# fastest first. pylibjpeg wraps compiled
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
        sign-extended. May be a read-only view of the dataset's Pixel Data
        (native data needs no copy); copy it before writing into it.
    photometric_interpretation : str
        The colour space of `pixels`. It can differ from the dataset's
        (0028,0004) *Photometric Interpretation*: OpenJPEG returns YBR_RCT and
        YBR_ICT images as RGB.
    transfer_syntax_uid : str
        The transfer syntax the frame was encoded with.
    decoding_plugin : str
        "imagecodecs" for the direct codec route, else the pydicom plugin that
        decoded the frame ("" for native encodings).
    warnings : tuple of str
        Signs that the frame decoded but its data is damaged (see
        :func:`~viewerlib.pipeline.codecs.codestream_problem`); empty when
        none were found.
    """

    pixels: np.ndarray
    photometric_interpretation: str
    transfer_syntax_uid: str
    decoding_plugin: str
    warnings: tuple[str, ...] = ()


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
    layout = frame_layout(ds)
    failures: list[str] = []
    if layout is not None and 0 <= frame_index < layout.frames:
        try:
            fast = layout.decode(ds, frame_index)
        except Exception as err:  # noqa: BLE001 - reported with pydicom's below
            logger.debug("imagecodecs failed on frame %d: %s", frame_index, err)
            failures.append(f"{codecs.PLUGIN_NAME}: {err}")
            fast = None
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
    if not plugins and not failures:
        missing = "; ".join(decoder.missing_dependencies) or "none listed"
        raise DecodingError(
            f"No installed plugin can decode transfer syntax '{tsyntax.name}' "
            f"({tsyntax}). Install one, e.g. `pip install "
            f"{'imagecodecs` or `pip install ' if codecs.covers(tsyntax) else ''}"
            f"{packages or 'python-gdcm'}`"
            f" (pydicom's missing dependencies: {missing})"
        )

    for plugin in plugins:
        try:
            decoded = _decode_with(ds, decoder, frame_index, plugin, tsyntax)
        except Exception as err:  # noqa: BLE001 - every failure is reported below
            logger.debug("Plugin %s failed on frame %d: %s", plugin, frame_index, err)
            failures.append(f"{plugin}: {err}")
            continue
        return _with_codestream_check(decoded, ds, frames, frame_index)

    raise DecodingError(
        f"Every installed plugin failed to decode frame_index {frame_index} of "
        f"transfer syntax '{tsyntax.name}' ({tsyntax}): " + "; ".join(failures)
        + ". The pixel data may be corrupt; another decoder may help, e.g. "
        "`pip install python-gdcm`"
    )


# What describes a frame's bytes; read on every call, so a change to any of
# them (or a new Pixel Data) is seen at once.
_LAYOUT_TAGS = (
    0x00280010,  # Rows
    0x00280011,  # Columns
    0x00280002,  # Samples per Pixel
    0x00280100,  # Bits Allocated
    0x00280101,  # Bits Stored
    0x00280103,  # Pixel Representation
    0x00280004,  # Photometric Interpretation
    0x00280006,  # Planar Configuration
    0x00280008,  # Number of Frames
)
_PIXEL_DATA = 0x7FE00010
_TRANSFER_SYNTAX = 0x00020010
_LAYOUT_AND_PIXEL_TAGS = (*_LAYOUT_TAGS, _PIXEL_DATA)


class _Missing:
    """Stands for an absent element: its value is None."""

    value = None


_MISSING = _Missing()
_MISSING_FOR_EACH = (_MISSING,) * len(_LAYOUT_AND_PIXEL_TAGS)
_VALUE = operator.attrgetter("value")


@dataclass(frozen=True)
class FrameLayout:
    """How the frames of one dataset are laid out, worked out once per dataset.

    Only the common cases get a layout (native little endian or a syntax with
    a direct codec route; 8, 16 or 32 bits allocated; one or three samples not
    subsampled); :func:`frame_layout` returns None for the rest, which pydicom
    decodes.

    Attributes
    ----------
    transfer_syntax : str
        (0002,0010) *Transfer Syntax UID*.
    rows, columns, samples : int
        Frame shape; `samples` is (0028,0002) *Samples per Pixel*.
    bits_stored : int
        (0028,0101) *Bits Stored*.
    signed : bool
        (0028,0103) *Pixel Representation* is 1.
    dtype : numpy.dtype
        Little-endian type of one sample (Bits Allocated, signedness).
    unsigned_dtype : numpy.dtype
        The same width, unsigned.
    photometric : str
        (0028,0004) *Photometric Interpretation*.
    planar : bool
        Colour-by-plane ((0028,0006) *Planar Configuration* 1) native data.
    frames : int
        (0028,0008) *Number of Frames*, at least 1.
    pixel_data : bytes
        The (7FE0,0010) *Pixel Data* the layout was worked out for.
    jpeg_headers : dict of int to (str, int)
        Colour space and precision of each JPEG frame decoded so far, as its
        codestream markers say (read once per frame).
    """

    transfer_syntax: str
    rows: int
    columns: int
    samples: int
    bits_stored: int
    signed: bool
    dtype: np.dtype
    unsigned_dtype: np.dtype
    photometric: str
    planar: bool
    frames: int
    pixel_data: bytes
    jpeg_headers: dict[int, tuple[str, int]] = field(default_factory=dict,
                                                     compare=False)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one decoded frame, colour-by-pixel."""
        if self.samples == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples)

    def decode(self, ds: Dataset, frame_index: int) -> DecodedFrame | None:
        """Decode one frame by the direct route, or return None for pydicom's."""
        if self.transfer_syntax in _NATIVE_LITTLE_ENDIAN:
            return self._native(frame_index)
        frame = codecs.frame_bytes(ds, self.pixel_data, self.frames, frame_index)
        decoded = codecs.decode(frame, self, frame_index)
        if decoded is None:
            return None
        pixels, photometric = decoded
        problem = codecs.codestream_problem(frame, self.transfer_syntax)
        return DecodedFrame(pixels, photometric, self.transfer_syntax,
                            codecs.PLUGIN_NAME,
                            () if problem is None
                            else (f"frame_index {frame_index}: {problem}",))

    def _native(self, frame_index: int) -> DecodedFrame | None:
        # A view of the frame's bytes: no copy unless bits above Bits Stored
        # are set (PS3.5 8.1.1), which one read-only pass finds out.
        count = self.rows * self.columns * self.samples
        view = np.frombuffer(self.pixel_data, self.dtype, count,
                             frame_index * count * self.dtype.itemsize)
        if self.planar:
            # PS3.3 C.7.6.3.1.3: colour-by-plane; return colour-by-pixel.
            view = view.reshape(self.samples, self.rows, self.columns)
            view = view.transpose(1, 2, 0)
        else:
            view = view.reshape(self.shape)
        pixels = codecs.fit_bits_stored(view, self)
        return DecodedFrame(pixels, self.photometric,  # type: ignore[arg-type]
                            self.transfer_syntax, "")


def _element_values(ds: Dataset, keys: tuple[int, ...] = _LAYOUT_AND_PIXEL_TAGS,
                    convert: bool = False) -> tuple[object, ...] | None:
    """Return the transfer syntax, the layout elements' values and Pixel Data.

    Reads pydicom's element dictionaries directly with C-level look-ups: a
    keyword look-up costs about a microsecond each, which for small frames is
    as much as copying them. `keys` may be the dictionary's own tag objects
    (see :func:`_dictionary_keys`), found by identity without calling the
    tag class's ``__eq__``. An element still raw from the file gives its raw
    bytes, which never equal a converted value, so the memo check in
    :func:`frame_layout` fails and the elements are converted (`convert`).
    """
    meta = ds.__dict__.get("file_meta")
    if meta is None:
        return None
    if convert:
        for owner, tag in ((meta, _TRANSFER_SYNTAX), *((ds, t) for t in _LAYOUT_TAGS),
                           (ds, _PIXEL_DATA)):
            if tag in owner._dict:
                owner[tag]  # noqa: B018 - pydicom converts a raw element on access
    values = [meta._dict.get(_TRANSFER_SYNTAX, _MISSING).value]
    values += map(_VALUE, map(ds._dict.get, keys, _MISSING_FOR_EACH))
    return tuple(values)


def _dictionary_keys(ds: Dataset) -> tuple[int, ...]:
    """Return the tag objects ``ds._dict`` holds for the layout tags (or ints)."""
    elements = ds._dict
    return tuple(elements[tag].tag if tag in elements else tag
                 for tag in _LAYOUT_AND_PIXEL_TAGS)


def frame_layout(ds: Dataset) -> FrameLayout | None:
    """Return the :class:`FrameLayout` of `ds`, or None when pydicom must decode.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses the transfer syntax, (0028,0010) *Rows*, (0028,0011) *Columns*,
        (0028,0002) *Samples per Pixel*, (0028,0100) *Bits Allocated*,
        (0028,0101) *Bits Stored*, (0028,0103) *Pixel Representation*,
        (0028,0004) *Photometric Interpretation*, (0028,0006) *Planar
        Configuration*, (0028,0008) *Number of Frames* and (7FE0,0010) *Pixel
        Data*.

    Returns
    -------
    FrameLayout or None
        Memoised on the dataset and checked against the current values on
        every call.
    """
    memo = ds.__dict__.get("_lightbox_layout")
    try:
        if memo is not None:
            keys, remembered, layout = memo
            values = _element_values(ds, keys)
            # Identity first: comparing two Pixel Data values would read them.
            if (values is not None and remembered[-1] is values[-1]
                    and remembered == values):
                return layout
        values = _element_values(ds, convert=True)
        keys = _dictionary_keys(ds)
    except (AttributeError, KeyError, TypeError):
        return None
    if values is None:
        return None
    layout = _work_out_layout(values)
    ds.__dict__["_lightbox_layout"] = (keys, values, layout)
    return layout


def _work_out_layout(values: tuple[object, ...]) -> FrameLayout | None:
    """Build the layout from :func:`_element_values`, or None if not covered."""
    (tsyntax, rows, columns, samples, allocated, stored, representation,
     photometric, planar, frames, pixel_data) = values
    if not isinstance(pixel_data, bytes) or tsyntax is None:
        return None
    native = tsyntax in _NATIVE_LITTLE_ENDIAN
    if not native and not codecs.handles(str(tsyntax)):
        return None
    try:
        rows, columns, samples = int(rows), int(columns), int(samples)  # type: ignore[arg-type]
        allocated, stored = int(allocated), int(stored)  # type: ignore[arg-type]
        signed = int(representation) == 1  # type: ignore[arg-type]
        count = int(frames) if frames not in (None, "") else 1  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    photometric = str(photometric or "").strip()
    if (allocated not in (8, 16, 32) or samples not in (1, 3) or rows < 1
            or columns < 1 or not 0 < stored <= allocated
            or photometric.endswith(("_422", "_420")) and native):
        return None
    count = max(count, 1)
    planar_by_plane = samples == 3 and native and int(planar or 0) == 1
    if native and len(pixel_data) < count * rows * columns * samples * allocated // 8:
        return None  # short data: pydicom gives the detailed error
    kind = "i" if signed else "u"
    return FrameLayout(
        transfer_syntax=str(tsyntax), rows=rows, columns=columns, samples=samples,
        bits_stored=stored, signed=signed, dtype=np.dtype(f"<{kind}{allocated // 8}"),
        unsigned_dtype=np.dtype(f"<u{allocated // 8}"), photometric=photometric,
        planar=planar_by_plane, frames=count, pixel_data=pixel_data)


def _with_codestream_check(decoded: DecodedFrame, ds: Dataset, frames: int,
                           frame_index: int) -> DecodedFrame:
    """Add a warning to a frame pydicom decoded when its codestream ends badly."""
    if not codecs.covers(decoded.transfer_syntax_uid):
        return decoded
    try:
        frame = codecs.frame_bytes(ds, ds.PixelData, frames, frame_index)
    except Exception as err:  # noqa: BLE001 - the check is a bonus, never a failure
        logger.debug("no codestream check for frame %d: %s", frame_index, err)
        return decoded
    problem = codecs.codestream_problem(frame, decoded.transfer_syntax_uid)
    if problem is None:
        return decoded
    return replace(decoded, warnings=(f"frame_index {frame_index}: {problem}",))


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


def native_pixel_bytes(ds: Dataset) -> int | None:
    """Bytes of native pixel data its header describes.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,0010) *Rows*, (0028,0011) *Columns*, (0028,0002) *Samples per
        Pixel*, (0028,0100) *Bits Allocated*, (0028,0004) *Photometric
        Interpretation*, (0028,0008) *Number of Frames* and the transfer syntax.

    Returns
    -------
    int or None
        None when the data is encapsulated (compressed) or the header does not
        say: no transfer syntax, no or no number for a size element.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if syntax is None or uid.UID(syntax).is_encapsulated or "Rows" not in ds:
        return None
    try:
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
            samples = 2  # PS3.3 C.7.6.3.1.2: two chroma values shared by two pixels
        return (int(ds.Rows) * int(ds.Columns) * samples
                * int(ds.get("BitsAllocated", 0) or 0) * number_of_frames(ds)) // 8
    except (TypeError, ValueError, AttributeError):
        return None


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
    expected = native_pixel_bytes(ds)
    if expected is not None and available_bytes < expected:
        return (f"{CUT_SHORT}: its pixel data needs {expected} bytes and "
                f"{available_bytes} are there; copy it again from its source")
    return None


def header_misfit(ds: Dataset, available: int) -> str | None:
    """Say so when whole native pixel data is not the size its header gives.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,0010) *Rows*, (0028,0011) *Columns*, (0028,0002) *Samples
        per Pixel*, (0028,0100) *Bits Allocated*, (0028,0008) *Number of
        Frames*, (0028,0004) *Photometric Interpretation* and the transfer
        syntax; encapsulated (compressed) data is not checked.
    available : int
        The length of the whole (7FE0,0010) *Pixel Data* value: the length
        its element declares, and every byte of it there.

    Returns
    -------
    str or None
        What is wrong and what to do when the whole value is shorter than the
        header needs; None when it holds that much (more is shown as pydicom
        shows it).

    Examples
    --------
    >>> from pydicom.dataset import Dataset, FileMetaDataset
    >>> ds = Dataset()
    >>> ds.file_meta = FileMetaDataset()
    >>> ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    >>> ds.Rows, ds.Columns, ds.BitsAllocated = 17, 16, 16
    >>> print(header_misfit(ds, 512).split(":")[0])
    its header does not match its pixel data
    >>> header_misfit(ds, 544) is None
    True
    """
    return _misfit(ds, native_pixel_bytes(ds), available)


def _misfit(ds: Dataset, needed: int | None, available: int) -> str | None:
    """:func:`header_misfit`, given the bytes the header needs."""
    if needed is None or available >= needed:
        # More than the header needs is shown as pydicom shows it (the frames
        # the header describes; PS3.5 8.1.1 pads with a byte): refusing it
        # would blank slices that display.
        return None
    return (f"{MISFIT}: {_sizes(ds, needed, available)}, the whole (7FE0,0010) "
            "Pixel Data. The file is not cut short: it was written inconsistent, "
            "and every copy of it is the same, so copying it again will not help; "
            "ask the sender for the original image")


def _sizes(ds: Dataset, needed: int, available: int) -> str:
    """The header's size of the pixel data, element by element, and what is there."""
    frames = number_of_frames(ds)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    return (f"(0028,0010) Rows {int(ds.Rows)} x (0028,0011) Columns "
            f"{int(ds.Columns)}"
            + (f" x (0028,0002) Samples per Pixel {samples}" if samples != 1 else "")
            + f" x (0028,0100) Bits Allocated {int(ds.get('BitsAllocated', 0) or 0)}"
            + (f" x (0028,0008) Number of Frames {frames}" if frames != 1 else "")
            + f" needs {needed} bytes and {available} are there")


def pixel_data_problem(ds: Dataset, available: int,
                       declared: int | None = None) -> str | None:
    """Say why native pixel data cannot be decoded as its header describes it.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses the elements of :func:`header_misfit`.
    available : int
        Bytes of the (7FE0,0010) *Pixel Data* value at hand.
    declared : int, optional
        The value length its element declares, as a raw element read from a
        file keeps it. Fewer bytes than that means the file ends inside the
        value: cut short; as many, that the value is whole. None when unknown
        (a dataset made in memory, or streamed from an archive): fewer bytes
        than the header needs are then either cause, and the message says so.

    Returns
    -------
    str or None
        What is wrong and what to do: the file is cut short (see
        :func:`~viewerlib.pipeline.decode.pixel_data_shortfall`); its header
        does not match its whole pixel data (:func:`header_misfit`); or, not
        knowing which, that the pixel data does not fit its header (starts
        with ``UNFIT``). None when the pixel data fits its header.

    Examples
    --------
    >>> from pydicom.dataset import Dataset, FileMetaDataset
    >>> ds = Dataset()
    >>> ds.file_meta = FileMetaDataset()
    >>> ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    >>> ds.Rows, ds.Columns, ds.BitsAllocated = 16, 16, 16
    >>> print(pixel_data_problem(ds, 412, declared=512).split(":")[0])
    the file is cut short
    >>> print(pixel_data_problem(ds, 412, declared=412).split(":")[0])
    its header does not match its pixel data
    """
    if declared is not None and available < declared:
        # The file ends inside the value: cut short, whatever the header says.
        return pixel_data_shortfall(ds, available)
    needed = native_pixel_bytes(ds)
    if declared is None and needed is not None and available < needed:
        return (f"{UNFIT}: {_sizes(ds, needed, available)}. Either the pixel data "
                "was cut short before it got here, or the header's size is wrong: "
                "get the image again from its source, and if the new copy is the "
                "same, ask the sender for the original image")
    return _misfit(ds, needed, available)


def dataset_pixel_problem(ds: Dataset) -> str | None:
    """:func:`pixel_data_problem` of a dataset's own (7FE0,0010) *Pixel Data*.

    The element is looked at as read (never converted), so that the length
    declared in a file is known.
    """
    element = ds.get_item(_PIXEL_DATA_TAG)
    if element is None:
        return None
    value = element.value
    if value is None or not isinstance(value, bytes | bytearray | memoryview):
        return None
    declared = element.length if isinstance(element, RawDataElement) else None
    return pixel_data_problem(ds, len(value), declared)
