"""Reading a series' files once: headers with a tight reader, pixels into the volume."""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
)
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag

from viewerlib.pipeline.decode import number_of_frames, pixel_data_shortfall
from viewerlib.sources.part10 import (
    PIXEL_DATA_TAG,
    file_meta,
    raw_element,
    read_explicit_little,
    tag_object,
)

logger = logging.getLogger(__name__)

# PS3.10 7.1: a 128-byte preamble, "DICM", then the File Meta elements, the first
# (0002,0000) File Meta Information Group Length (UL, 4 bytes).
_META_START = 132
_GROUP_LENGTH_HEADER = b"\x02\x00\x00\x00UL\x04\x00"
_EXPLICIT_VR_LITTLE_ENDIAN = b"1.2.840.10008.1.2.1"
_TRANSFER_SYNTAX = tag_object(0x00020010)
_CHARACTER_SET = tag_object(0x00080005)
# (7FE0,0010) Pixel Data as its element's first bytes: group, element (PS3.5 7.1.2).
_PIXEL_DATA_BYTES = struct.pack("<HH", PIXEL_DATA_TAG >> 16, PIXEL_DATA_TAG & 0xFFFF)
# PS3.5 7.1.2: VRs whose element header has a 4-byte length (12 bytes in all).
_LONG_VR_CODES = np.array([vr[0] << 8 | vr[1] for vr in
                           b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split()])
# The first read of a file: most headers fit (a CT slice's is 2 to 20 KB).
_FIRST_READ = 32768
# A header larger than this is left to pydicom.
_LARGEST_HEADER = 8 << 20
_LAYOUTS_KEPT = 8
_ABSENT = object()
# By the identity of a raw element: it, and its converted element.
_Conversions = dict[int, tuple[RawDataElement, DataElement]]
_Fact = TypeVar("_Fact")
# What FileReader reads of a file: File Meta and kept elements, (0008,0005)
# Specific Character Set, and where the pixel data lies.
_Read = tuple[dict[Any, Any], dict[Any, Any], RawDataElement | None,
              tuple[int, int, str]]
_Made = TypeVar("_Made", bound=Dataset)
# Types of attribute a blank dataset may hold for _dataset to copy it.
_CONTAINERS = (dict, list, set)
_PLAIN_VALUES = (bool, int, float, str, tuple, type(None))
_BLANKS: dict[type, tuple[dict[str, Any], tuple[str, ...]] | None] = {}


class _KeywordTags(dict[str, BaseTag | None]):
    """Keyword to tag object (see :func:`~viewerlib.sources.part10.tag_object`).

    None for a name that is no DICOM keyword; filled as keywords are asked for.
    """

    def __missing__(self, keyword: str) -> BaseTag | None:
        number = tag_for_keyword(keyword)
        tag = self[keyword] = None if number is None else tag_object(number)
        return tag


_KEYWORD_TAGS = _KeywordTags()


class _WorkingHeader(Dataset):
    """A header :class:`FileReader` made, for read_series' own use.

    A keyword look-up of a converted element is two dictionary reads, a tenth
    of the time pydicom's general path takes, which everything else (tags,
    private elements, changes) goes through. An element still raw is
    converted by pydicom when first asked for, once for every header holding
    the same raw element (files with the same bytes share it, see
    :meth:`FileReader._elements`): the headers then share the converted
    element, so a working header never leaves read_series, where nothing
    changes a header.
    """

    def get(self, key: Any, default: Any = None) -> Any:
        """As :meth:`pydicom.dataset.Dataset.get`."""
        if type(key) is str:
            tag = _KEYWORD_TAGS[key]
            if tag is not None:
                element = self._dict.get(tag, _ABSENT)
                if type(element) is DataElement:
                    return element.value
                if element is _ABSENT:
                    return default
                return self._converted(tag, element).value
        return super().get(key, default)

    def __getattr__(self, name: str) -> Any:
        """As :meth:`pydicom.dataset.Dataset.__getattr__`."""
        tag = _KEYWORD_TAGS[name]
        if tag is not None:
            element = self._dict.get(tag)
            if type(element) is DataElement:
                return element.value
            if element is not None:
                return self._converted(tag, element).value
        return super().__getattr__(name)

    def __contains__(self, name: Any) -> bool:
        """As :meth:`pydicom.dataset.Dataset.__contains__`."""
        if type(name) is str:
            tag = _KEYWORD_TAGS[name]
            if tag is not None:
                return tag in self._dict
        return super().__contains__(name)

    def _converted(self, tag: BaseTag, element: Any) -> DataElement:
        """`element` of `tag`, converted: by pydicom, or by another header."""
        if type(element) is DataElement:
            return element
        shared = self.__dict__["_shared"]
        found = shared.get(id(element))
        if found is not None and found[0] is element:
            self._dict[tag] = found[1]
            return cast(DataElement, found[1])
        converted = cast(DataElement, self[tag])
        if converted.VR != "SQ":
            # A sequence's items know the dataset that holds them: not shared.
            shared[id(element)] = (element, converted)
        return converted


class FilePixels(os.PathLike[str]):
    """A file :class:`FileReader` read the header of, and where its pixels lie.

    A path (``os.fspath`` gives the file's), so that it stands for the file
    wherever the file's path would do.

    Attributes
    ----------
    path : str
        The file.
    header : pydicom.dataset.Dataset
        The header the volume is built from: the elements kept, some of them
        converted elements shared with other files' headers (see
        :class:`FileReader`). For reading only; it never leaves
        :func:`~viewerlib.volume.volume.read_series`.
    value_offset, value_length : int
        Where the (7FE0,0010) *Pixel Data* value lies; it ends the file.
    vr : str
        Its VR, ``'OB'`` or ``'OW'``.
    """

    __slots__ = ("_encoding", "_facts", "_layout", "_meta", "_own", "_raw", "header",
                 "path", "value_length", "value_offset", "vr", "whole_header")

    def __init__(self, path: str, raw: dict[Any, Any], meta: dict[Any, Any],
                 encoding: str | list[str], place: tuple[int, int, str],
                 facts: dict[tuple[Any, ...], Any] | None = None) -> None:
        self.path, self._raw, self._meta, self._encoding = path, raw, meta, encoding
        self.value_offset, self.value_length, self.vr = place
        self.header: Dataset = cast(Dataset, None)  # set by FileReader.read
        self.whole_header: Dataset | None = None
        self._own: Dataset | None = None
        self._layout: tuple[np.dtype, tuple[int, int]] | None | bool = False
        self._facts = {} if facts is None else facts

    def __fspath__(self) -> str:
        """The path of the file."""
        return self.path

    def __repr__(self) -> str:
        """As a path is shown, in a message."""
        return f"FilePixels({self.path!r})"

    def volume_header(self) -> Dataset:
        """Return the header a volume keeps of the file (made once).

        :attr:`whole_header` when it is set, else a header of the elements
        kept, as pydicom and :func:`~viewerlib.volume.reading.compact_header`
        make it: elements as read (pydicom converts each where it is first
        used), the file's own File Meta, the encoding it was read with.
        """
        if self._own is None:
            if self.whole_header is not None:
                self._own = self.whole_header
            else:
                self._own = _dataset(Dataset, dict(self._raw), self._encoding,
                                     _dataset(FileMetaDataset, dict(self._meta)))
        return self._own

    def shared_fact(self, name: str, tags: Sequence[BaseTag],
                    work: Callable[[Dataset], _Fact], *also: Any) -> _Fact:
        """Return ``work(self.header)``, worked out once for alike files.

        The files of a series mostly repeat their elements byte for byte, and
        so most of what is worked out from their headers (a stack key, the
        rescale, the voxel type). Files read by one :class:`FileReader` share
        the answer of `name` when their elements at `tags`, their character
        set and `also` are the same.

        Parameters
        ----------
        name : str
            Names `work`; one name for one `work` and `tags`.
        tags : sequence of pydicom.tag.BaseTag
            Every element `work` reads (from the tags the reader keeps),
            besides the transfer syntax, which is one for all the files.
        work : callable
            Takes the header.
        *also
            Anything else the answer depends on (a frame index, a length).
        """
        raw = self._raw
        key = (name, str(self._encoding), also,
               *[(raw[tag].VR, raw[tag].value) if tag in raw else _ABSENT
                 for tag in tags])
        facts = self._facts
        if key in facts:
            return cast(_Fact, facts[key])
        found = facts[key] = work(self.header)
        return found

    def decimals(self, tag: BaseTag) -> list[float] | None:
        """The values of a DS or IS element as numbers, straight from its bytes.

        None when the element is absent, empty, or a value is no number: the
        caller then reads it the usual way, which says why.
        """
        element = self._raw.get(tag)
        if element is None or element.VR not in ("DS", "IS") or not element.value:
            return None
        try:
            return [float(value) for value in element.value.split(b"\\")]
        except ValueError:
            return None

    def has(self, tag: BaseTag) -> bool:
        """True when the header holds an element of `tag`."""
        return tag in self._raw

    def stored_dtype(self) -> np.dtype | None:
        """The type of a stored value, when each frame is a plain array of them.

        That is what :func:`~viewerlib.pipeline.decode.decode_frame` reads as a
        view of the bytes: one sample of 8, 16 or 32 bits allocated, at most
        that many stored, every frame wholly there. None for anything else,
        which is read again whole, by pydicom, to be decoded.
        """
        return None if (layout := self._plain()) is None else layout[0]

    @property
    def frame_shape(self) -> tuple[int, int] | None:
        """(rows, columns) of a frame, when :meth:`stored_dtype` is not None."""
        return None if (layout := self._plain()) is None else layout[1]

    def _plain(self) -> tuple[np.dtype, tuple[int, int]] | None:
        """Return :func:`_plain_layout` of the file (worked out once)."""
        if self._layout is False:
            length = self.value_length
            self._layout = self.shared_fact(
                "plain layout", _PLAIN_LAYOUT_TAGS,
                lambda header: _plain_layout(header, length), length)
        return cast("tuple[np.dtype, tuple[int, int]] | None", self._layout)

    def read_frame(self, frame_index: int, into: np.ndarray) -> np.ndarray | None:
        """Read one frame's stored values into the bytes of `into`.

        Parameters
        ----------
        frame_index : int
            Index of the frame, starting at 0.
        into : numpy.ndarray
            C-contiguous, of exactly the frame's bytes: its slice of the
            volume when the voxels have the stored values' width, else a
            buffer.

        Returns
        -------
        numpy.ndarray or None
            (rows, columns) stored values, a view of `into`'s bytes; None when
            the file cannot be read now or is shorter than when its header
            was read (reading it the usual way then says why).
        """
        layout = self._plain()
        if layout is None:
            raise ValueError(f"{self.path!r} has no plain frames; read it with pydicom")
        dtype, shape = layout
        size = into.nbytes
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                count = os.preadv(fd, [into.data.cast("B")],
                                  self.value_offset + frame_index * size)
            finally:
                os.close(fd)
        except OSError:
            return None
        if count != size:
            return None
        return into.reshape(-1).view(np.uint8).view(dtype).reshape(shape)


@dataclass(frozen=True)
class _Layout:
    """Where the elements of a file lie, to know the next file in one look.

    Slices of a series are usually written alike: the same elements with the
    same lengths. When every byte the walk of
    :func:`~viewerlib.sources.part10.read_explicit_little` decides by (each
    element's tag, VR and length, the transfer syntax) is the same in another
    file of the same size, walking that file would find every element at the
    same offset; one array comparison says so.
    """

    size: int
    head: int
    index: np.ndarray
    expected: np.ndarray
    dataset_start: int
    meta: tuple[tuple[BaseTag, str, int, int], ...]
    kept: tuple[tuple[BaseTag, str, int, int], ...]
    pixels: tuple[int, int, str]
    # Where every value of `meta` then `kept` lies, and the place each byte
    # belongs to, by its index in `meta` + `kept`.
    values: np.ndarray
    owners: np.ndarray
    # (0008,0005) Specific Character Set: read to decode the others, not kept.
    charset: tuple[BaseTag, str, int, int] | None
    # The values, File Meta and kept elements of the last file laid out so.
    last: list[Any] = field(default_factory=list, compare=False)

    def matches(self, head: bytes) -> bool:
        """True when the file that begins with `head` is laid out alike."""
        return len(head) >= self.head and bool(np.array_equal(
            np.frombuffer(head, np.uint8)[self.index], self.expected))


class FileReader:
    """Reads the headers of one series' files with the tight reader.

    Part-10 files in explicit VR little endian whose elements up to the pixel
    data are of defined length, and whose (7FE0,0010) *Pixel Data* ends the
    file, are read with :func:`~viewerlib.sources.part10.read_explicit_little`:
    the elements asked for are kept, the others skipped by their lengths. A
    file laid out like the one before (:class:`_Layout`) is not walked at all.
    The rest is left to pydicom (:meth:`read` returns None).

    The slices of a series repeat most of their header: an element whose bytes
    are the previous file's is the same raw element, which pydicom converts
    once for all the working headers that hold it (see
    :class:`_WorkingHeader`), so building a volume converts only what
    changes from slice to slice, and only what it reads.

    Parameters
    ----------
    keep : collection of int
        Tags of the elements the headers keep.
    """

    def __init__(self, keep: Collection[int]) -> None:
        self._keep = frozenset(keep) | {int(_CHARACTER_SET)}
        self._encodings: dict[bytes, str | list[str]] = {}
        # By tag: the last raw element read.
        self._before: dict[BaseTag, RawDataElement] = {}
        self._layouts: list[_Layout] = []
        self._conversions: dict[str, _Conversions] = {}
        self._meta: FileMetaDataset | None = None
        # What FilePixels.shared_fact worked out, for every file read here.
        self._facts: dict[tuple[Any, ...], Any] = {}

    def read(self, path: str | os.PathLike[str]) -> FilePixels | None:
        """Read the header of a file, or return None to leave it to pydicom.

        Parameters
        ----------
        path : str or os.PathLike
            The file.

        Returns
        -------
        FilePixels or None
            None for anything but a Part-10 file in explicit VR little endian
            whose elements before the pixel data are of defined length and
            whose (7FE0,0010) *Pixel Data* (OB or OW, of defined length) ends
            the file; also when it cannot be read (pydicom then says why).
        """
        name = os.fspath(path)
        try:
            fd = os.open(name, os.O_RDONLY)
            try:
                read = self._read_open(fd)
            finally:
                os.close(fd)
            if read is None:
                return None
            meta, raw, charset, place = read
            encoding = self._encoding_of(charset)
        except Exception as err:  # noqa: BLE001 - pydicom reads it, and says why
            logger.debug("Left to pydicom: %s", err)
            return None
        pixels = FilePixels(name, raw, meta, encoding, place, self._facts)
        pixels.header = self._working_header(raw, meta, encoding)
        return pixels

    def _read_open(self, fd: int) -> _Read | None:
        """Read the elements of an open file, by its layout or by walking it."""
        size = os.fstat(fd).st_size
        head = b""
        for layout in self._layouts:
            if layout.size != size:
                continue
            if len(head) < layout.head:
                head = os.pread(fd, layout.head, 0)
            if layout.matches(head):
                return self._alike(head, layout)
        wanted = _FIRST_READ
        while True:
            head = os.pread(fd, min(wanted, size), 0)
            scanned = _walk(head, size, self._keep)
            if not isinstance(scanned, bool):
                break
            if not scanned or wanted >= _LARGEST_HEADER:
                return None
            wanted *= 4
        # A series has a few layouts at most (values of another length).
        self._layouts = [scanned, *self._layouts[:_LAYOUTS_KEPT - 1]]
        return self._alike(head, scanned)

    def _alike(self, head: bytes, layout: _Layout) -> _Read:
        """The elements of a file laid out as `layout`: those of the last file
        laid out so, but where the bytes of a value differ (one comparison of
        every value byte says where). Nobody changes the dictionaries made
        here: the next file alike starts from copies of them."""
        values = np.frombuffer(head, np.uint8)[layout.values]
        if not layout.last:
            meta = self._elements(head, layout.meta, _META_START)
            kept = self._elements(head, layout.kept, layout.dataset_start)
        else:
            before, meta, kept = layout.last
            meta, kept = dict(meta), dict(kept)
            count = len(layout.meta)
            for place in dict.fromkeys(layout.owners[values != before].tolist()):
                if place < count:
                    meta.update(self._elements(head, layout.meta[place:place + 1],
                                               _META_START))
                else:
                    kept.update(self._elements(
                        head, layout.kept[place - count:place - count + 1],
                        layout.dataset_start))
        layout.last[:] = [values, meta, kept]
        charset = None if layout.charset is None else self._elements(
            head, (layout.charset,), layout.dataset_start)[_CHARACTER_SET]
        return meta, kept, charset, layout.pixels

    def _elements(self, head: bytes, places: tuple[tuple[BaseTag, str, int, int], ...],
                  start: int) -> dict[Any, Any]:
        """The raw elements at `places`: the previous file's where the same.

        A raw element is immutable, so files may share it; only its
        ``value_tell`` (where its value is, counted from `start`, which
        pydicom reads only for values it has not read) may then be another
        file's.
        """
        return {tag: raw_element(head, tag, vr, value_at, length, value_at - start,
                                 self._before)
                for tag, vr, value_at, length in places}

    def _encoding_of(self, charset: RawDataElement | None) -> str | list[str]:
        """The Python encoding of a raw (0008,0005) *Specific Character Set*."""
        if charset is None or not charset.value:
            return default_encoding
        encoding = self._encodings.get(charset.value)
        if encoding is None:
            encoding = convert_encodings(convert_raw_data_element(charset).value)
            self._encodings[charset.value] = encoding
        return encoding

    def _working_header(self, raw: dict[Any, Any], meta: dict[Any, Any],
                        encoding: str | list[str]) -> Dataset:
        """The header read_series builds from (see :class:`_WorkingHeader`)."""
        if self._meta is None:
            # The volume reads the transfer syntax of the File Meta only, the
            # same in every file read here.
            self._meta = FileMetaDataset({_TRANSFER_SYNTAX: meta[_TRANSFER_SYNTAX]})
        header = _dataset(_WorkingHeader, dict(raw), encoding, self._meta)
        # Converted elements, shared by the headers of one encoding.
        header.__dict__["_shared"] = self._conversions.setdefault(str(encoding), {})
        return header


def _dataset(kind: type[_Made], elements: dict[Any, Any],
             encoding: str | list[str] | None = None,
             file_meta: FileMetaDataset | None = None) -> _Made:
    """``kind(elements)`` read in explicit VR little endian with `encoding`.

    Made by copying the attributes of a blank dataset of `kind`, each
    container a new one: pydicom's ``__init__`` sets each through a
    ``__setattr__`` that looks its name up in the data dictionary, which costs
    more than all the rest of reading a header. A File Meta is not checked
    for elements of other groups: :func:`_walk` read group 0002 only. Should
    pydicom's blank dataset hold an attribute of another type (one this copy
    might share between datasets), the dataset is made the usual way.
    """
    if kind not in _BLANKS:
        state = dict(kind().__dict__)
        safe = all(isinstance(value, _CONTAINERS + _PLAIN_VALUES)
                   for value in state.values())
        _BLANKS[kind] = (state, tuple(name for name, value in state.items()
                                      if isinstance(value, _CONTAINERS))) if safe else None
    blank = _BLANKS[kind]
    if blank is None:
        made = kind(elements)
        if encoding is not None:
            made.set_original_encoding(False, True, encoding)
        if file_meta is not None:
            made.file_meta = file_meta
        return made
    state, containers = blank
    fresh = state.copy()
    for name in containers:
        fresh[name] = state[name].copy()
    fresh["_dict"] = elements
    if encoding is not None:
        fresh.update(_read_implicit=False, _read_little=True, _read_charset=encoding)
    if file_meta is not None:
        fresh["file_meta"] = file_meta
    made = kind.__new__(kind)
    made.__dict__.update(fresh)
    return made


def tags_of(keywords: Sequence[str]) -> tuple[BaseTag, ...]:
    """The tags of DICOM keywords, as :meth:`FilePixels.shared_fact` takes them."""
    found = [_KEYWORD_TAGS[keyword] for keyword in keywords]
    if None in found:
        raise ValueError(f"not DICOM keywords: {keywords}")
    return cast("tuple[BaseTag, ...]", tuple(found))


# Every element _plain_layout reads, number_of_frames and pixel_data_shortfall
# included.
_PLAIN_LAYOUT_TAGS = tags_of((
    "Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "SamplesPerPixel", "NumberOfFrames", "PhotometricInterpretation"))


def _plain_layout(header: Dataset, length: int
                  ) -> tuple[np.dtype, tuple[int, int]] | None:
    """The stored type and frame shape of plain grayscale frames, else None.

    See :meth:`FilePixels.stored_dtype`.
    """
    try:
        rows, columns = int(header.get("Rows")), int(header.get("Columns"))
        allocated = int(header.get("BitsAllocated"))
        stored = int(header.get("BitsStored"))
        signed = int(header.get("PixelRepresentation")) == 1
        samples = int(header.get("SamplesPerPixel"))
    except (TypeError, ValueError):
        return None
    if (allocated not in (8, 16, 32) or samples != 1 or rows < 1 or columns < 1
            or not 0 < stored <= allocated
            or rows * columns * allocated // 8 * number_of_frames(header) > length
            or pixel_data_shortfall(header, length)):
        return None
    return np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}"), (rows, columns)


def _walk(head: bytes, size: int, keep: frozenset[int]) -> _Layout | bool:
    """Walk a file's first bytes: True if more are needed, False if not ours.

    Ours are Part-10 files in explicit VR little endian whose elements are all
    of defined length up to a (7FE0,0010) *Pixel Data* (OB or OW) of defined
    length that ends the file. For them, where their elements lie.
    """
    if (len(head) < _META_START + 12 or head[128:_META_START] != b"DICM"
            or head[_META_START:_META_START + 8] != _GROUP_LENGTH_HEADER):
        return False
    meta_end = _META_START + 12 + int.from_bytes(head[140:144], "little")
    if meta_end + 12 > len(head):
        return len(head) < size
    offsets: list[int] = []
    meta = file_meta(head, offsets)
    if meta is None:
        return False
    syntax = cast("RawDataElement | None", meta[0].get(_TRANSFER_SYNTAX))
    if (syntax is None or syntax.value is None
            or syntax.value.rstrip(b"\0 ") != _EXPLICIT_VR_LITTLE_ENDIAN):
        return False
    read = read_explicit_little(head, meta_end, len(head), keep, offsets)
    if read is None:
        return False
    kept, stop = read
    if stop + 12 > len(head) or head[stop:stop + 4] != _PIXEL_DATA_BYTES:
        return len(head) < size
    vr = head[stop + 4:stop + 6]
    length = int.from_bytes(head[stop + 8:stop + 12], "little")
    if vr not in (b"OB", b"OW") or stop + 12 + length != size:
        return False

    # What decides the walk: "DICM", the File Meta group's length, each
    # element's tag, VR and length (its first 8 bytes, 12 for a VR with a
    # 4-byte length), the transfer syntax.
    data = np.frombuffer(head, np.uint8)
    starts = np.array([*offsets, stop])
    vrs = data[starts + 4].astype(np.uint16) << 8 | data[starts + 5]
    widths = np.where(np.isin(vrs, _LONG_VR_CODES), 12, 8)
    ends = np.cumsum(widths)
    index = np.concatenate([
        np.arange(128, _META_START), np.arange(_META_START + 8, _META_START + 12),
        np.arange(ends[-1]) + np.repeat(starts - ends + widths, widths),
        _META_START + syntax.value_tell + np.arange(syntax.length)])
    charset = kept.pop(_CHARACTER_SET, None)
    places = _places(meta[0], _META_START) + _places(kept, meta_end)
    at = np.array([place[2] for place in places], dtype=np.int64)
    lengths = np.array([place[3] for place in places], dtype=np.int64)
    value_ends = np.cumsum(lengths)
    return _Layout(
        size=size, head=stop + 12, index=index, expected=data[index].copy(),
        dataset_start=meta_end,
        meta=places[:len(meta[0])], kept=places[len(meta[0]):],
        pixels=(stop + 12, length, vr.decode("ascii")),
        values=np.arange(value_ends[-1] if len(places) else 0)
        + np.repeat(at - value_ends + lengths, lengths),
        owners=np.repeat(np.arange(len(places)), lengths),
        charset=None if charset is None else _places({_CHARACTER_SET: charset},
                                                     meta_end)[0])


def _places(elements: Mapping[BaseTag, Any], start: int
            ) -> tuple[tuple[BaseTag, str, int, int], ...]:
    """(tag, VR, value offset, length) of raw elements read from `start`."""
    return tuple((tag, element.VR, start + element.value_tell, element.length)
                 for tag, element in elements.items())


__all__ = ["FilePixels", "FileReader", "tags_of"]
