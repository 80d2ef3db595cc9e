"""Reading a series' files once: headers with a tight reader, pixels into the volume."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar, cast

import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag

from viewerlib.pipeline.decode import number_of_frames
from viewerlib.sources.layout import (
    TRANSFER_SYNTAX,
    HeaderLayouts,
    Read,
    fast_dataset,
)
from viewerlib.sources.part10 import tag_object

logger = logging.getLogger(__name__)

# The first read of a file: most headers fit (a CT slice's is 2 to 20 KB).
_FIRST_READ = 32768
# A header larger than this is left to pydicom.
_LARGEST_HEADER = 8 << 20
_ABSENT = object()
# By the identity of a raw element: it, and its converted element.
_Conversions = dict[int, tuple[RawDataElement, DataElement]]
_Fact = TypeVar("_Fact")


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
    :class:`~viewerlib.sources.layout.HeaderLayouts`): the headers then share the converted
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
                self._own = fast_dataset(Dataset, dict(self._raw), self._encoding,
                                         fast_dataset(FileMetaDataset, dict(self._meta)))
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


class FileReader:
    """Reads the headers of one series' files with the tight reader.

    Part-10 files in explicit VR little endian whose elements up to the pixel
    data are of defined length, and whose (7FE0,0010) *Pixel Data* ends the
    file, are read with :func:`~viewerlib.sources.part10.read_explicit_little`:
    the elements asked for are kept, the others skipped by their lengths. A
    file laid out like one before is not walked at all (see
    :class:`~viewerlib.sources.layout.HeaderLayouts`). The rest is left to
    pydicom (:meth:`read` returns None).

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
        self._layouts = HeaderLayouts(frozenset(keep))
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
            encoding = self._layouts.encoding_of(charset)
        except Exception as err:  # noqa: BLE001 - pydicom reads it, and says why
            logger.debug("Left to pydicom: %s", err)
            return None
        pixels = FilePixels(name, raw, meta, encoding, place, self._facts)
        pixels.header = self._working_header(raw, meta, encoding)
        return pixels

    def _read_open(self, fd: int) -> Read | None:
        """Read the elements of an open file, by its layout or by walking it."""
        size = os.fstat(fd).st_size
        head = b""
        for layout in self._layouts.of_size(size):
            if len(head) < layout.head:
                head = os.pread(fd, layout.head, 0)
            if layout.matches(head):
                return self._layouts.read(head, layout)
        wanted = _FIRST_READ
        while True:
            head = os.pread(fd, min(wanted, size), 0)
            scanned = self._layouts.learn(head, size)
            if not isinstance(scanned, bool):
                break
            if not scanned or wanted >= _LARGEST_HEADER:
                return None
            wanted *= 4
        return self._layouts.read(head, scanned)

    def _working_header(self, raw: dict[Any, Any], meta: dict[Any, Any],
                        encoding: str | list[str]) -> Dataset:
        """The header read_series builds from (see :class:`_WorkingHeader`)."""
        if self._meta is None:
            # The volume reads the transfer syntax of the File Meta only, the
            # same in every file read here.
            self._meta = FileMetaDataset({TRANSFER_SYNTAX: meta[TRANSFER_SYNTAX]})
        header = fast_dataset(_WorkingHeader, dict(raw), encoding, self._meta)
        # Converted elements, shared by the headers of one encoding.
        header.__dict__["_shared"] = self._conversions.setdefault(str(encoding), {})
        return header


def tags_of(keywords: Sequence[str]) -> tuple[BaseTag, ...]:
    """The tags of DICOM keywords, as :meth:`FilePixels.shared_fact` takes them."""
    found = [_KEYWORD_TAGS[keyword] for keyword in keywords]
    if None in found:
        raise ValueError(f"not DICOM keywords: {keywords}")
    return cast("tuple[BaseTag, ...]", tuple(found))


# Every element _plain_layout reads, number_of_frames included.
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
        frames = header.get("NumberOfFrames")
        if frames not in (None, ""):
            int(frames)  # a count pydicom's decoders refuse is left to them
    except (TypeError, ValueError):
        return None
    if (allocated not in (8, 16, 32) or samples != 1 or rows < 1 or columns < 1
            or not 0 < stored <= allocated
            or rows * columns * allocated // 8 * number_of_frames(header) > length):
        return None
    return np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}"), (rows, columns)


__all__ = ["FilePixels", "FileReader", "tags_of"]
