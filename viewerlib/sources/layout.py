"""Part-10 files laid out alike, read in one look.

The instances of a series are usually written alike: the same elements with
the same lengths, so the same bytes decide where each element lies. A file
laid out like one read before is not walked: one array comparison says it is
alike, and only the values whose bytes changed become new raw elements. Both
the file reader of a volume (:class:`viewerlib.volume.files.FileReader`) and a
streamed series (:mod:`viewerlib.sources.multipart`) read headers so.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag

from viewerlib.sources.part10 import (
    PIXEL_DATA_TAG,
    file_meta,
    raw_element,
    read_explicit_little,
    tag_object,
)

# PS3.10 7.1: a 128-byte preamble, "DICM", then the File Meta elements, the first
# (0002,0000) File Meta Information Group Length (UL, 4 bytes).
META_START = 132
_GROUP_LENGTH_HEADER = b"\x02\x00\x00\x00UL\x04\x00"
_EXPLICIT_VR_LITTLE_ENDIAN = b"1.2.840.10008.1.2.1"
TRANSFER_SYNTAX = tag_object(0x00020010)
CHARACTER_SET = tag_object(0x00080005)
# (7FE0,0010) Pixel Data as its element's first bytes: group, element (PS3.5 7.1.2).
_PIXEL_DATA_BYTES = struct.pack("<HH", PIXEL_DATA_TAG >> 16, PIXEL_DATA_TAG & 0xFFFF)
# PS3.5 7.1.2: VRs whose element header has a 4-byte length (12 bytes in all).
_LONG_VR_CODES = np.array([vr[0] << 8 | vr[1] for vr in
                           b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split()])
# A series has a few layouts at most (values of another length).
_LAYOUTS_KEPT = 8
# (tag, VR, value offset, length) of an element.
Place = tuple[BaseTag, str, int, int]
# What a header read gives: File Meta and kept elements, (0008,0005) Specific
# Character Set, and where the pixel data value lies (offset, length, VR).
Read = tuple[dict[Any, Any], dict[Any, Any], RawDataElement | None,
             tuple[int, int, str]]
_Made = TypeVar("_Made", bound=Dataset)
# Types of attribute a blank dataset may hold for fast_dataset to copy it.
_CONTAINERS = (dict, list, set)
_PLAIN_VALUES = (bool, int, float, str, tuple, type(None))
_BLANKS: dict[type, tuple[dict[str, Any], tuple[str, ...]] | None] = {}


@dataclass(frozen=True)
class Layout:
    """Where the elements of a file lie, to know the next file in one look.

    When every byte the walk of
    :func:`~viewerlib.sources.part10.read_explicit_little` decides by (each
    element's tag, VR and length, the transfer syntax) is the same in another
    file of the same size, walking that file would find every element at the
    same offset; one array comparison says so (:meth:`matches`).

    Attributes
    ----------
    size : int
        Bytes in the file; its (7FE0,0010) *Pixel Data* value ends it.
    head : int
        Bytes up to that value: what :meth:`matches` looks at.
    pixels : tuple of (int, int, str)
        The value's offset, length and VR (``'OB'`` or ``'OW'``).
    """

    size: int
    head: int
    index: np.ndarray
    expected: np.ndarray
    dataset_start: int
    meta: tuple[Place, ...]
    kept: tuple[Place, ...]
    pixels: tuple[int, int, str]
    # Where every value of `meta` then `kept` lies, and the place each byte
    # belongs to, by its index in `meta` + `kept`.
    values: np.ndarray
    owners: np.ndarray
    # (0008,0005) Specific Character Set: read to decode the others, not kept.
    charset: Place | None
    # The values, File Meta and kept elements of the last file laid out so.
    last: list[Any] = field(default_factory=list, compare=False)

    def matches(self, head: bytes) -> bool:
        """True when the file that begins with `head` is laid out alike."""
        return len(head) >= self.head and bool(np.array_equal(
            np.frombuffer(head, np.uint8)[self.index], self.expected))


class HeaderLayouts:
    """Reads the headers of one series' Part-10 files by their layouts.

    Files in explicit VR little endian whose elements up to the pixel data are
    of defined length, and whose (7FE0,0010) *Pixel Data* (OB or OW, of
    defined length) ends the file, are read with
    :func:`~viewerlib.sources.part10.read_explicit_little` once per layout
    (:meth:`learn`); a file laid out like one before is read by comparing its
    bytes (:meth:`read`). The slices of a series repeat most of their header:
    an element whose bytes are the previous file's is the same raw element,
    which pydicom then converts once for all the headers that hold it.

    Parameters
    ----------
    keep : collection of int, optional
        Tags of the elements to read (the others are skipped by their
        lengths); default all.
    """

    def __init__(self, keep: frozenset[int] | None = None) -> None:
        self._keep = None if keep is None else keep | {int(CHARACTER_SET)}
        self._layouts: list[Layout] = []
        # By tag: the last raw element read.
        self._before: dict[BaseTag, RawDataElement] = {}
        self._encodings: dict[bytes, str | list[str]] = {}
        self._deferred: tuple[bytes, int] | None = None

    def of_size(self, size: int) -> list[Layout]:
        """The layouts known for a file of `size` bytes, the latest first."""
        if self._deferred is not None:
            self.learn(*self._deferred)
        return [layout for layout in self._layouts if layout.size == size]

    def learn_later(self, head: bytes, size: int) -> None:
        """Learn the layout of a file (as :meth:`learn`) when a layout is next
        looked up, if ever: a first image is wanted before anything else."""
        self._deferred = (head, size)

    def learn(self, head: bytes, size: int) -> Layout | bool:
        """Walk the first bytes of a file of `size` bytes to learn its layout.

        Returns the layout (kept for the files to come), True when `head`
        ends before the pixel data value starts, or False for a file not
        read this way (pydicom reads it).
        """
        self._deferred = None
        found = _walk(head, size, self._keep)
        if isinstance(found, Layout):
            self._layouts = [found, *self._layouts[:_LAYOUTS_KEPT - 1]]
        return found

    def read(self, head: bytes, layout: Layout) -> Read:
        """The elements of a file laid out as `layout`, which `head` begins.

        Those of the last file laid out so, but where the bytes of a value
        differ (one comparison of every value byte says where). The returned
        dictionaries are the layout's own: copy them before changing them.
        """
        values = np.frombuffer(head, np.uint8)[layout.values]
        if not layout.last:
            meta = self._elements(head, layout.meta, META_START)
            kept = self._elements(head, layout.kept, layout.dataset_start)
        else:
            before, meta, kept = layout.last
            meta, kept = dict(meta), dict(kept)
            count = len(layout.meta)
            places = layout.meta + layout.kept
            for index in dict.fromkeys(layout.owners[values != before].tolist()):
                tag, vr, value_at, length = places[index]
                into, start = ((meta, META_START) if index < count
                               else (kept, layout.dataset_start))
                into[tag] = raw_element(head, tag, vr, value_at, length,
                                        value_at - start, self._before)
        layout.last[:] = [values, meta, kept]
        charset = None if layout.charset is None else self._elements(
            head, (layout.charset,), layout.dataset_start)[CHARACTER_SET]
        return meta, kept, charset, layout.pixels

    def dataset(self, head: bytes, layout: Layout, value: bytes) -> Dataset:
        """The data set of a file laid out as `layout`: `head`, then `value`.

        As :func:`pydicom.dcmread` reads the whole file (a plain ``Dataset``,
        its ``file_meta`` set); `value` becomes the (7FE0,0010) *Pixel Data*
        value as it is, not copied.
        """
        meta, kept, charset, (_, _, vr) = self.read(head, layout)
        # (0008,0005) first, where it stands in a file (keys() keep that order).
        elements = {CHARACTER_SET: charset, **kept} if charset is not None else dict(kept)
        dataset = fast_dataset(Dataset, elements, self.encoding_of(charset),
                               fast_dataset(FileMetaDataset, dict(meta)))
        dataset.add_new(PIXEL_DATA_TAG, vr, value)
        return dataset

    @property
    def raw_elements(self) -> dict[BaseTag, RawDataElement]:
        """By tag, the last raw element read: the ``alike`` of
        :func:`~viewerlib.sources.part10.read_explicit_little` for headers read
        otherwise, which then share them too."""
        return self._before

    def encoding_of(self, charset: RawDataElement | None) -> str | list[str]:
        """The Python encoding of a raw (0008,0005) *Specific Character Set*."""
        if charset is None or not charset.value:
            return default_encoding
        encoding = self._encodings.get(charset.value)
        if encoding is None:
            encoding = convert_encodings(convert_raw_data_element(charset).value)
            self._encodings[charset.value] = encoding
        return encoding

    def _elements(self, head: bytes, places: tuple[Place, ...],
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


def fast_dataset(kind: type[_Made], elements: dict[Any, Any],
                 encoding: str | list[str] | None = None,
                 file_meta: Dataset | None = None) -> _Made:
    """``kind(elements)`` read in explicit VR little endian with `encoding`.

    Made by copying the attributes of a blank dataset of `kind`, each
    container a new one: pydicom's ``__init__`` sets each through a
    ``__setattr__`` that looks its name up in the data dictionary, which costs
    more than all the rest of reading a header. A File Meta is not checked
    for elements of other groups: give it group 0002 only (as
    :func:`~viewerlib.sources.part10.file_meta` reads it). Should pydicom's
    blank dataset hold an attribute of another type (one this copy might
    share between datasets), the dataset is made the usual way.
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
        # A list of encodings is the data set's own, as pydicom's reader gives it.
        fresh.update(_read_implicit=False, _read_little=True,
                     _read_charset=list(encoding) if isinstance(encoding, list)
                     else encoding)
    if file_meta is not None:
        fresh["file_meta"] = file_meta
    made = kind.__new__(kind)
    made.__dict__.update(fresh)
    return made


def _walk(head: bytes, size: int, keep: frozenset[int] | None) -> Layout | bool:
    """Walk a file's first bytes: True if more are needed, False if not ours.

    Ours are Part-10 files in explicit VR little endian whose elements are all
    of defined length up to a (7FE0,0010) *Pixel Data* (OB or OW) of defined
    length that ends the file. For them, where their elements lie.
    """
    if (len(head) < META_START + 12 or head[128:META_START] != b"DICM"
            or head[META_START:META_START + 8] != _GROUP_LENGTH_HEADER):
        return False
    meta_end = META_START + 12 + int.from_bytes(head[140:144], "little")
    if meta_end + 12 > len(head):
        return len(head) < size
    offsets: list[int] = []
    meta = file_meta(head, offsets)
    if meta is None:
        return False
    syntax = cast("RawDataElement | None", meta[0].get(TRANSFER_SYNTAX))
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
        np.arange(128, META_START), np.arange(META_START + 8, META_START + 12),
        np.arange(ends[-1]) + np.repeat(starts - ends + widths, widths),
        META_START + syntax.value_tell + np.arange(syntax.length)])
    charset = kept.pop(CHARACTER_SET, None)
    places = _places(meta[0], META_START) + _places(kept, meta_end)
    at = np.array([place[2] for place in places], dtype=np.int64)
    lengths = np.array([place[3] for place in places], dtype=np.int64)
    value_ends = np.cumsum(lengths)
    return Layout(
        size=size, head=stop + 12, index=index, expected=data[index].copy(),
        dataset_start=meta_end,
        meta=places[:len(meta[0])], kept=places[len(meta[0]):],
        pixels=(stop + 12, length, vr.decode("ascii")),
        values=np.arange(value_ends[-1] if len(places) else 0)
        + np.repeat(at - value_ends + lengths, lengths),
        owners=np.repeat(np.arange(len(places)), lengths),
        charset=None if charset is None else _places({CHARACTER_SET: charset},
                                                     meta_end)[0])


def _places(elements: Mapping[BaseTag, Any], start: int) -> tuple[Place, ...]:
    """(tag, VR, value offset, length) of raw elements read from `start`."""
    return tuple((tag, element.VR, start + element.value_tell, element.length)
                 for tag, element in elements.items())


__all__ = ["CHARACTER_SET", "META_START", "TRANSFER_SYNTAX", "HeaderLayouts", "Layout",
           "Read", "fast_dataset"]
