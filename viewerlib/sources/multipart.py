"""Reading a streamed ``multipart/related`` answer (RFC 2046, RFC 2387) part by part.

WADO-RS sends a whole series as one multipart body (PS3.18 8.7.4). The reader here
hands each part on as soon as it is complete, copies each body once, and can run
ahead of its caller in a thread so that the next parts arrive while the caller
parses the last one.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests

from viewerlib.errors import SourceResponseError
from viewerlib.sources.layout import HeaderLayouts, Layout
from viewerlib.sources.part10 import (
    PixelDataPlace,
    dataset_from_pieces,
    find_pixel_data,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

T = TypeVar("T")

READER_THREAD_NAME = "lightbox-multipart-reader"
"""Name of the threads started by :func:`read_ahead`."""

# Bytes asked for when the size of what comes next is unknown: small enough that
# a first instance is handed on without waiting for a full chunk.
_CHUNK = 256 * 1024
_END = object()
# Reads of exactly what the header walk needs before reading blocks instead.
_EXACT_STEPS, _BLOCK = 8, 4096


def safe_url(url: str | None) -> str:
    """Return ``url`` without user info, query string or fragment (for messages).

    Query strings hold patient data; user info would hold credentials.
    """
    if not url:
        return "the archive"
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _content_length(headers: bytes) -> int | None:
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
            return length if length >= 0 else None
    return None


class SplitBody(NamedTuple):
    """A Part-10 body read in three pieces, its pixel data value on its own.

    Attributes
    ----------
    head : bytes
        The file up to the pixel data value.
    place : viewerlib.sources.part10.PixelDataPlace
        Where the pixel data element is.
    value : bytes
        The (7FE0,0010) *Pixel Data* value.
    tail : bytes
        What follows it (usually nothing).
    layout : viewerlib.sources.layout.Layout or None
        The layout of an earlier body that `head` was found to match.
    """

    head: bytes
    place: PixelDataPlace
    value: bytes
    tail: bytes
    layout: Layout | None = None

    def to_dataset(self, layouts: HeaderLayouts | None = None) -> Dataset:
        """The data set, as :func:`pydicom.dcmread` reads the whole body.

        `layouts` is shared by the bodies of one answer: a body laid out like
        one before is read in one look, and the bodies share the raw
        elements their bytes repeat.
        """
        if layouts is None:
            return dataset_from_pieces(self.head, self.place, self.value, self.tail)
        if self.layout is not None:
            return layouts.dataset(self.head, self.layout, self.value)
        if not self.tail and len(self.head) == self.place.value_offset:
            # Learnt when the next body is split: learning costs three times
            # this read, which would delay a first image.
            layouts.learn_later(self.head, len(self.head) + len(self.value))
        return dataset_from_pieces(self.head, self.place, self.value, self.tail,
                                   layouts.raw_elements)


def iter_multipart_parts(response: requests.Response, source_name: str,
                         chunk_size: int = _CHUNK) -> Iterator[bytes]:
    """Yield the bodies of a ``multipart/related`` answer as they arrive.

    Unlike a parser that trusts the connection, this one requires the closing
    delimiter (RFC 2046 5.1.1): an archive that frames its answer by closing the
    connection (Orthanc sends ``Connection: close`` without a length) would
    otherwise pass a cut-short series off as complete.

    A part whose headers give its ``Content-Length`` (Orthanc's do) is read with
    one exact read straight into its own buffer; the next part's headers are
    read with an exact read of the length the previous ones had, so a body is
    normally copied once, from the socket. Other parts are found by searching
    for the delimiter.

    Parameters
    ----------
    response : requests.Response
        Opened with ``stream=True``, without content coding (send
        ``Accept-Encoding: identity``); a coded answer is read through the
        decoder, by delimiter search.
    source_name : str
        For error messages.
    chunk_size : int
        Most bytes read at a time when the length of what comes is unknown.

    Raises
    ------
    viewerlib.errors.SourceResponseError
        If the answer is not multipart, has no boundary, a part has no header
        end, or the answer ends before its closing delimiter (the parts before
        have been yielded).
    """
    for body in _iter_bodies(response, source_name, chunk_size, split=False):
        assert isinstance(body, bytes)
        yield body


def iter_multipart_part10(response: requests.Response, source_name: str,
                          chunk_size: int = _CHUNK,
                          layouts: HeaderLayouts | None = None,
                          ) -> Generator[bytes | SplitBody, None, None]:
    """Like :func:`iter_multipart_parts`, for parts that are Part-10 files.

    A part with a ``Content-Length`` and pixel data of defined length comes as a
    :class:`SplitBody`, its pixel data value read straight from the socket into
    its own buffer (no copy after that); any other part as ``bytes``. With
    `layouts` (also given to :meth:`SplitBody.to_dataset`), a part of the
    length and layout of one before is split where that one was, unwalked.
    """
    return _iter_bodies(response, source_name, chunk_size, split=True, layouts=layouts)


def _iter_bodies(response: requests.Response, source_name: str, chunk_size: int,
                 split: bool, layouts: HeaderLayouts | None = None,
                 ) -> Generator[bytes | SplitBody, None, None]:
    media_type, *parameters = (p.strip() for p in
                               response.headers.get("Content-Type", "").split(";"))
    boundary = next((p.partition("=")[2].strip('"') for p in parameters
                     if p.lower().startswith("boundary=")), "")
    where = safe_url(response.url)
    if media_type.lower() != "multipart/related" or not boundary:
        raise SourceResponseError(
            source_name, f"{where} answered {media_type or 'no Content-Type'} "
            "without a multipart boundary where multipart/related was asked for. "
            "Report it to the archive's administrator.")
    raw = response.raw
    coding = response.headers.get("Content-Encoding", "identity").strip().lower()
    exact_reads = coding in ("", "identity")
    delimiter = b"\r\n--" + boundary.encode("ascii")

    def cut_short() -> SourceResponseError:
        return SourceResponseError(
            source_name, f"the answer from {where} ended before its closing "
            "multipart boundary: the transfer was cut short. Try again; the parts "
            "that arrived were kept.")

    def read_some(amount: int) -> bytes:
        # Whatever has arrived, up to amount: a read for a fixed amount would
        # hold back a first instance smaller than that.
        return raw.read1(amount)

    def read_headers(amount: int) -> bytes:
        # Probably exactly the next delimiter line and part headers.
        if exact_reads:
            return raw.read(amount, decode_content=False)
        return raw.read1(amount)

    def read_exactly(amount: int) -> bytes:
        data = raw.read(amount, decode_content=False)
        if len(data) == amount or not data:
            return data
        pieces = [data]
        got = len(data)
        while got < amount:
            more = raw.read(amount - got, decode_content=False)
            if not more:
                break
            pieces.append(more)
            got += len(more)
        return b"".join(pieces)

    # A CRLF in front lets the first delimiter (at the very start) match too.
    buffer = bytearray(b"\r\n")
    # Bytes of a Part-10 file read before walking to its pixel data.
    head_guess = 1024
    # Exact length of the last delimiter line plus part headers, a guess for the
    # next one; before the first part nothing is known.
    header_guess = 0
    while True:
        # Find the next delimiter and the two bytes after it.
        search_from = 0
        while True:
            found = buffer.find(delimiter, search_from)
            if found >= 0 and len(buffer) >= found + len(delimiter) + 2:
                break
            search_from = max(0, len(buffer) - len(delimiter) - 2)
            # Before a part whose headers may give its length, read little:
            # what comes after the headers is better read with exact reads.
            data = (read_headers(header_guess) if header_guess
                    else read_some(512 if split and exact_reads else chunk_size))
            header_guess = 0
            if not data:
                raise cut_short()
            buffer += data
        after = found + len(delimiter)
        if buffer[after:after + 2] == b"--":
            return

        # The part's headers end with an empty line (RFC 2046 5.1.1).
        while True:
            header_end = buffer.find(b"\r\n\r\n", after)
            if header_end >= 0:
                break
            if (buffer.find(delimiter, after) >= 0
                    or len(buffer) - after > 64 * 1024):
                raise SourceResponseError(
                    source_name, f"a part of the answer from {where} has no "
                    "header/body separator; the archive sent a malformed multipart "
                    "body. Report it to its administrator.")
            data = read_some(4096)
            if not data:
                raise cut_short()
            buffer += data
        body_start = header_end + 4
        length = _content_length(bytes(buffer[after:header_end]))

        if length is not None and exact_reads:
            have = len(buffer) - body_start
            if split and have < length:
                head = bytearray(buffer[body_start:])
                buffer = bytearray()
                known = (_known_layout(head, length, layouts, read_exactly)
                         if layouts is not None else None)
                if known is not None:
                    value = read_exactly(known.pixels[1])
                    if len(value) < known.pixels[1]:
                        raise cut_short()
                    head_guess = max(0, known.head - 16)
                    header_guess = body_start - found + head_guess
                    yield SplitBody(bytes(head), PixelDataPlace(
                        known.head - 12, known.head, known.pixels[1], known.pixels[2]),
                        value, b"", known)
                    continue
                place = _read_to_pixel_data(head, length, head_guess, read_exactly)
                if place is not None and len(head) == place.value_offset:
                    value = read_exactly(place.value_length)
                    tail_length = length - place.value_offset - place.value_length
                    tail = read_exactly(tail_length) if tail_length else b""
                    if len(value) < place.value_length or len(tail) < tail_length:
                        raise cut_short()
                    # The next file's header is probably as long, give or take
                    # a few characters (UIDs, numbers): read a little less, then
                    # step element by element; in the same read as the next
                    # delimiter line and part headers.
                    head_guess = max(0, place.value_offset - 16)
                    header_guess = body_start - found + head_guess
                    yield SplitBody(bytes(head), place, value, tail)
                    continue
                if place is not None:
                    # Read past the value's start: guess shorter next time.
                    head_guess = max(0, place.value_offset - 16)
                rest = read_exactly(length - len(head))
                if len(rest) < length - len(head):
                    raise cut_short()
                header_guess = body_start - found
                if place is not None:
                    # Still split (the first part of an answer, whose header
                    # length is not known yet, lands here): the value is copied
                    # once, as the whole body would be, and the elements are
                    # then read from the head alone.
                    yield _split_read_past(bytes(head), place, rest)
                    continue
                yield bytes(head) + rest
                continue
            if have >= length:
                body = bytes(buffer[body_start:body_start + length])
                del buffer[:body_start + length]
            else:
                rest = read_exactly(length - have)
                if len(rest) < length - have:
                    raise cut_short()
                body = rest if have == 0 else bytes(buffer[body_start:]) + rest
                buffer = bytearray()
            header_guess = body_start - found
            yield body
            continue

        # No length: the body ends at the next delimiter.
        search_from = body_start
        while True:
            next_found = buffer.find(delimiter, search_from)
            if next_found >= 0:
                break
            search_from = max(body_start, len(buffer) - len(delimiter))
            data = read_some(chunk_size)
            if not data:
                raise cut_short()
            buffer += data
        with memoryview(buffer) as view:
            body = bytes(view[body_start:next_found])
        del buffer[:next_found]
        yield body


def _known_layout(head: bytearray, length: int, layouts: HeaderLayouts,
                  read_exactly: Callable[[int], bytes]) -> Layout | None:
    """The layout of an earlier body that this one of `length` bytes, which
    `head` begins, matches; `head` is read on to the layout's pixel data value
    (never past it). None when no layout matches; `head` may then have grown.
    """
    for layout in layouts.of_size(length):
        if len(head) > layout.head:
            continue
        if len(head) < layout.head:
            head += read_exactly(layout.head - len(head))
            if len(head) < layout.head:
                return None
        if layout.matches(head):
            return layout
    return None


def _split_read_past(head: bytes, place: PixelDataPlace, rest: bytes) -> SplitBody:
    """A body split at its pixel data value when `head` reaches into the value.

    `head` and `rest` together are the whole body.
    """
    start = place.value_offset
    end = start + place.value_length
    if end <= len(head):
        value, tail = head[start:end], head[end:] + rest
    else:
        needed = end - len(head)
        # A slice of all of `rest` is `rest` itself: no copy when nothing follows.
        value, tail = head[start:] + rest[:needed], rest[needed:]
    return SplitBody(head[:start], place, value, tail)


def _read_to_pixel_data(head: bytearray, length: int, guess: int,
                        read_exactly: Callable[[int], bytes]
                        ) -> PixelDataPlace | None:
    """Extend ``head`` (the start of a body of ``length``) to its pixel data value.

    Returns ``None`` if the body has none to split off; ``head`` may then reach
    past where the value starts (a guess too long), and the caller reads the
    rest of the body in one piece.
    """
    walk = find_pixel_data(head)
    reads = 0
    try:
        need = next(walk)
        while True:
            if need > length:
                return None
            want = max(need, min(guess, length)) - len(head)
            reads += 1
            if reads > _EXACT_STEPS:
                # A header much longer than guessed (large private groups):
                # reading it element by element costs more than the one extra
                # copy of this body that reading past the value start costs.
                want = max(want, min(_BLOCK, length - len(head)))
            if want > 0:
                data = read_exactly(want)
                if not data:
                    return None
                head += data
            need = walk.send(None)
    except StopIteration as done:
        return done.value if isinstance(done.value, PixelDataPlace) else None
    except ValueError:
        # Not a file this walk can read; pydicom will judge the whole body.
        return None


def read_ahead(produce: Callable[[], Iterator[T]], depth: int = 4,
               close: Callable[[], Any] | None = None) -> Iterator[T]:
    """Run ``produce()`` in a thread, up to ``depth`` items ahead of the caller.

    The thread spends its time waiting on the network with the GIL released, so
    the caller's work on one item (parsing an instance) overlaps the arrival of
    the next ones.

    Parameters
    ----------
    produce : callable
        Returns the iterator to run; called in the thread.
    depth : int
        Items kept ready at most (bounds the memory held ahead).
    close : callable, optional
        Called in the thread when it stops, e.g. to close the response.

    Yields
    ------
    object
        The items of ``produce()``, in order. An exception it raises is raised
        here, after the items before it. Closing this generator early stops the
        thread after its current read.
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_on(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in produce():
                if not hand_on(item):
                    return
            hand_on(_END)
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            hand_on(err)
        finally:
            if close is not None:
                close()

    thread = threading.Thread(target=run, name=READER_THREAD_NAME, daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


__all__ = [
    "READER_THREAD_NAME",
    "SplitBody",
    "iter_multipart_part10",
    "iter_multipart_parts",
    "read_ahead",
    "safe_url",
]
