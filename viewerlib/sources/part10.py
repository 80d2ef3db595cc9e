"""Where the pixel data of a DICOM Part-10 file begins, found while it arrives.

A series streamed as ``multipart/related`` (PS3.18 8.7.4) carries one Part-10 file
per part. Reading the (7FE0,0010) *Pixel Data* value with its own exact read puts
it in memory once, straight from the socket, instead of once in the part and again
when pydicom cuts it out. This module walks the element headers (PS3.5 7.1) far
enough to say where that value is; pydicom still parses everything else.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Container, Generator
from dataclasses import dataclass
from typing import cast

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

PIXEL_DATA_TAG = 0x7FE00010
_PREAMBLE_AND_PREFIX = 132  # PS3.10 7.1: 128-byte preamble, then "DICM"
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
# PS3.5 7.1.2: explicit VRs with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_IMPLICIT_LE = "1.2.840.10008.1.2"
# (0002,0000) File Meta Information Group Length as written: UL, 4 bytes.
_GROUP_LENGTH_HEADER = b"\x02\x00\x00\x00UL\x04\x00"
_TRANSFER_SYNTAX_TAG = 0x00020010
_BIG_ENDIAN, _DEFLATED = "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"
_UINT16, _UINT32 = struct.Struct("<H"), struct.Struct("<I")
# Tag group, element, VR and 2-byte length of an explicit VR element header.
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
# Every VR pydicom knows, as written in a file and as pydicom names it.
# (Plain strings, decoded from the bytes, as pydicom's reader gives them.)
_VR_NAMES = {name.encode("ascii"): name.encode("ascii").decode("ascii")
             for name in (vr.value for vr in VR) if len(name) == 2}
_LONG_VR_NAMES = frozenset(vr.value for vr in EXPLICIT_VR_LENGTH_32)
_Elements = dict[BaseTag, DataElement | RawDataElement]
# One tag object per tag: a dictionary keyed by them is searched by identity,
# without a call of the tag class's __eq__ (a Python method) per look-up.
_TAG_OBJECTS: dict[int, BaseTag] = {}


@dataclass(frozen=True)
class PixelDataPlace:
    """Where the top-level (7FE0,0010) *Pixel Data* element of a file lies.

    Attributes
    ----------
    element_offset : int
        Byte offset of the element's tag in the file.
    value_offset : int
        Byte offset of its value.
    value_length : int
        Length of its value (defined; encapsulated pixel data of undefined
        length is not split off).
    vr : str
        ``'OB'`` or ``'OW'`` as written, or ``''`` for implicit VR.
    """

    element_offset: int
    value_offset: int
    value_length: int
    vr: str


def find_pixel_data(buffer: bytearray
                    ) -> Generator[int, None, PixelDataPlace | None]:
    """Walk the element headers of a Part-10 file as ``buffer`` grows.

    A generator: each value it yields is the length ``buffer`` must reach before
    the walk can go on (extend ``buffer`` in place, then resume it); it returns
    where the top-level pixel data value is, or ``None`` when the file has none
    of defined length or is not one this walk reads (no ``DICM`` prefix, big
    endian, deflated). It never asks for bytes past the start of that value.

    Examples
    --------
    >>> data = bytearray(b"no DICM prefix".ljust(140))
    >>> walk = find_pixel_data(data)
    >>> try:
    ...     next(walk)
    ... except StopIteration as done:
    ...     print(done.value)
    None
    """
    if len(buffer) < _PREAMBLE_AND_PREFIX:
        yield _PREAMBLE_AND_PREFIX
    if bytes(buffer[128:132]) != b"DICM":
        return None
    position = _PREAMBLE_AND_PREFIX
    transfer_syntax = ""

    # Group 0002 is always explicit VR little endian (PS3.10 7.1).
    while True:
        if len(buffer) < position + 8:
            yield position + 8
        tag = (_UINT16.unpack_from(buffer, position)[0] << 16
               | _UINT16.unpack_from(buffer, position + 2)[0])
        if tag >> 16 != 0x0002:
            break
        vr = bytes(buffer[position + 4:position + 6])
        if vr in _LONG_VRS:
            if len(buffer) < position + 12:
                yield position + 12
            length = _UINT32.unpack_from(buffer, position + 8)[0]
            start = position + 12
        else:
            length = _UINT16.unpack_from(buffer, position + 6)[0]
            start = position + 8
        if length == _UNDEFINED:
            return None
        if tag == 0x00020010:
            if len(buffer) < start + length:
                yield start + length
            transfer_syntax = bytes(buffer[start:start + length]).decode(
                "ascii", "replace").strip("\0 ")
        position = start + length

    if transfer_syntax in (_BIG_ENDIAN, _DEFLATED) or not transfer_syntax:
        return None
    explicit = transfer_syntax != _IMPLICIT_LE
    place = yield from _walk(buffer, position, explicit, depth=0)
    return place if isinstance(place, PixelDataPlace) else None


def _walk(buffer: bytearray, position: int, explicit: bool, depth: int
          ) -> Generator[int, None, PixelDataPlace | int | None]:
    """Walk elements from ``position``.

    At depth 0, return where the pixel data is (or ``None``); inside an item,
    return the offset of the delimiter that ends it.
    """
    while True:
        if len(buffer) < position + 8:
            yield position + 8
        tag = (_UINT16.unpack_from(buffer, position)[0] << 16
               | _UINT16.unpack_from(buffer, position + 2)[0])
        if tag in (_ITEM_END, _SEQUENCE_END):
            if depth == 0:
                raise ValueError("a delimitation item outside any sequence")
            return position
        vr = b""
        if explicit:
            vr = bytes(buffer[position + 4:position + 6])
            if vr in _LONG_VRS:
                if len(buffer) < position + 12:
                    yield position + 12
                length = _UINT32.unpack_from(buffer, position + 8)[0]
                start = position + 12
            else:
                length = _UINT16.unpack_from(buffer, position + 6)[0]
                start = position + 8
        else:
            length = _UINT32.unpack_from(buffer, position + 4)[0]
            start = position + 8
        if depth == 0 and tag == PIXEL_DATA_TAG:
            if length == _UNDEFINED:
                return None
            return PixelDataPlace(position, start, length, vr.decode("ascii"))
        if length != _UNDEFINED:
            position = start + length
            continue
        # Undefined length: a sequence (or UN holding one), PS3.5 7.5.
        position = yield from _skip_items(buffer, start, explicit, depth)


def _skip_items(buffer: bytearray, position: int, explicit: bool, depth: int
                ) -> Generator[int, None, int]:
    """Skip the items of an undefined-length sequence; return the offset after it."""
    while True:
        if len(buffer) < position + 8:
            yield position + 8
        tag = (_UINT16.unpack_from(buffer, position)[0] << 16
               | _UINT16.unpack_from(buffer, position + 2)[0])
        length = _UINT32.unpack_from(buffer, position + 4)[0]
        position += 8
        if tag == _SEQUENCE_END:
            return position
        if tag != _ITEM:
            raise ValueError(f"expected an item tag (FFFE,E000) in a sequence, "
                             f"found ({tag >> 16:04X},{tag & 0xFFFF:04X})")
        if length != _UNDEFINED:
            position += length
            continue
        end = yield from _walk(buffer, position, explicit, depth + 1)
        assert isinstance(end, int)
        position = end + 8  # past the item delimitation item


def _not_file_meta(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag.group != 0x0002


def tag_object(tag: int) -> BaseTag:
    """Return the one :class:`~pydicom.tag.BaseTag` the readers here key `tag` by.

    Examples
    --------
    >>> tag_object(0x00280010) is tag_object(0x00280010)
    True
    """
    found = _TAG_OBJECTS.get(tag)
    if found is None:
        found = _TAG_OBJECTS.setdefault(tag, BaseTag(tag))
    return found


def read_explicit_little(
    data: bytes, start: int, end: int, keep: Container[int] | None = None,
    offsets: list[int] | None = None,
    alike: dict[BaseTag, RawDataElement] | None = None,
) -> tuple[_Elements, int] | None:
    """Read plain explicit VR little endian elements, as pydicom's reader makes them.

    Parameters
    ----------
    data : bytes
        Holds the elements (PS3.5 7.1.2) from `start`.
    start, end : int
        Where to begin, and where the bytes at hand end.
    keep : container of int, optional
        Tags of the elements to return; the others are skipped by their
        length, never looked at. Default: all.
    offsets : list of int, optional
        If given, the offset of every element walked is appended to it.
    alike : dict, optional
        Raw elements of data sets read before (a series' instances repeat
        most of theirs), by tag: an element of the same VR and value bytes is
        that one, since raw elements never change (its ``value_tell`` may be
        another data set's, which nothing reads for a value at hand); each new
        one is put there. Fewer objects for the garbage collector to walk,
        again and again, while a series arrives.

    Returns
    -------
    tuple of (dict, int) or None
        The :class:`~pydicom.dataelem.RawDataElement` that pydicom's reader
        yields for the elements kept (values unparsed, ``value_tell`` counted
        from `start`), by tag; and the offset where the walk stopped: at the
        top-level (7FE0,0010) *Pixel Data* element, else at the first element
        not wholly before `end` (`end` itself when the bytes end with an
        element). None for anything but the common case, which pydicom reads:
        an element of a VR pydicom does not know, an item or delimiter, an
        undefined length (a sequence of undefined length, encapsulated pixel
        data).

    Notes
    -----
    One tight loop: pydicom's general reader costs about three times as much
    (more where most elements are skipped), which for every instance of a
    series arriving or read at memory speed is most of the time the series
    takes. The tight readers of a stream
    (:func:`dataset_from_pieces`) and of files
    (:class:`viewerlib.volume.files.FileReader`) both use it.
    """
    elements: _Elements = {}
    unpack_header = _EXPLICIT_HEADER.unpack_from
    unpack_length = _UINT32.unpack_from
    vr_names = _VR_NAMES
    long_vrs = _LONG_VR_NAMES
    tag_objects = _TAG_OBJECTS
    position = start
    while position + 8 <= end:
        group, element, raw_vr, length = unpack_header(data, position)
        vr = vr_names.get(raw_vr)
        if vr is None or group == 0xFFFE:
            return None
        if vr in long_vrs:
            if position + 12 > end:
                break
            length = unpack_length(data, position + 8)[0]
            value_at = position + 12
        else:
            value_at = position + 8
        if length == _UNDEFINED:
            return None
        tag = group << 16 | element
        if tag == PIXEL_DATA_TAG:
            break
        following = value_at + length
        if following > end:
            break
        if offsets is not None:
            offsets.append(position)
        if keep is None or tag in keep:
            key = tag_objects.get(tag) or tag_object(tag)
            elements[key] = raw_element(data, key, vr, value_at, length,
                                        value_at - start, alike)
        position = following
    return elements, position


def _dataset_of(elements: _Elements) -> Dataset:
    """A dataset of `elements`, with the original encoding read_dataset gives."""
    dataset = Dataset(elements)
    encoding: str | list[str] = default_encoding
    charset = elements.get(BaseTag(0x00080005))
    if isinstance(charset, RawDataElement):
        encoding = convert_encodings(convert_raw_data_element(charset).value)
    dataset.set_original_encoding(False, True, encoding)
    return dataset


def raw_element(data: bytes, tag: BaseTag, vr: str, value_at: int, length: int,
                value_tell: int, alike: dict[BaseTag, RawDataElement] | None = None,
                ) -> RawDataElement:
    """The raw element whose value is ``data[value_at:value_at + length]``, as
    pydicom's reader makes it (explicit VR little endian).

    With `alike` (see :func:`read_explicit_little`), the one already there when
    its VR and value bytes are the same; else a new one, put there.
    """
    value = (data[value_at:value_at + length] if length
             else cast("bytes | None", empty_value_for_VR(vr, raw=True)))
    earlier = alike.get(tag) if alike is not None else None
    if earlier is None or earlier.value != value or earlier.VR != vr:
        earlier = RawDataElement(tag, vr, length, value, value_tell, False, True)
        if alike is not None:
            alike[tag] = earlier
    return earlier


def file_meta(head: bytes, offsets: list[int] | None = None
              ) -> tuple[_Elements, int] | None:
    """The File Meta elements of a Part-10 file, as pydicom reads them, and
    where they end; None for a File Meta this tight read leaves to pydicom.

    Read by (0002,0000) *File Meta Information Group Length* (PS3.10 7.1),
    which must end the group as pydicom's reader ends it: at the first
    element of another group. `offsets` is as for :func:`read_explicit_little`.
    """
    if head[_PREAMBLE_AND_PREFIX:_PREAMBLE_AND_PREFIX + 8] != _GROUP_LENGTH_HEADER:
        return None
    end = _PREAMBLE_AND_PREFIX + 12 + _UINT32.unpack_from(
        head, _PREAMBLE_AND_PREFIX + 8)[0]
    read = read_explicit_little(head, _PREAMBLE_AND_PREFIX, end, offsets=offsets)
    if (read is None or read[1] != end or len(head) < end + 2
            or head[end:end + 2] == b"\2\0" or any(tag >> 16 != 2 for tag in read[0])):
        return None
    return read[0], end


def dataset_from_pieces(head: bytes, place: PixelDataPlace, value: bytes,
                        tail: bytes = b"",
                        alike: dict[BaseTag, RawDataElement] | None = None) -> Dataset:
    """Build the data set of a file read as head, pixel data value and tail.

    Parameters
    ----------
    head : bytes
        The file up to (at least) the start of the pixel data element.
    place : PixelDataPlace
        From :func:`find_pixel_data`.
    value : bytes
        The pixel data value; used as is, not copied.
    tail : bytes
        What follows the value (usually nothing).
    alike : dict, optional
        Shared by the instances of one series: see :func:`read_explicit_little`.

    Returns
    -------
    pydicom.dataset.Dataset
        With the elements, ``file_meta`` and original encoding
        :func:`pydicom.dcmread` gives (a plain ``Dataset``, not a
        ``FileDataset``: there is no file, and it is cheaper to build).
    """
    found = file_meta(head)
    if found is not None:
        meta, start = found
        syntax = meta.get(_TRANSFER_SYNTAX_TAG)
        implicit = (syntax is not None and syntax.value is not None
                    and syntax.value.rstrip(b"\0 ") == _IMPLICIT_LE.encode())
    else:
        stream = io.BytesIO(head)
        stream.seek(_PREAMBLE_AND_PREFIX)
        meta = read_dataset(stream, is_implicit_VR=False, is_little_endian=True,
                            stop_when=_not_file_meta)
        implicit = meta.get("TransferSyntaxUID") == _IMPLICIT_LE
        start = stream.tell()
    read = None
    if not implicit and not tail:
        read = read_explicit_little(head, start, place.element_offset, alike=alike)
    if read is not None and read[1] == place.element_offset:
        dataset = _dataset_of(read[0])
    else:
        main = head[start:place.element_offset]
        dataset = read_dataset(io.BytesIO(main + tail if tail else main),
                               is_implicit_VR=implicit, is_little_endian=True)
    dataset.file_meta = FileMetaDataset(meta)
    # Implicit VR Little Endian pixel data is OW (PS3.5 A.1 c).
    dataset.add_new(PIXEL_DATA_TAG, place.vr or "OW", value)
    return dataset


__all__ = ["PixelDataPlace", "dataset_from_pieces", "file_meta", "find_pixel_data",
           "raw_element", "read_explicit_little", "tag_object"]
