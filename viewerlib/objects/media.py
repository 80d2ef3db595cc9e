"""Photographs and videos, DICOM or plain files, as RGB frames decoded in the kernel.

Photographs (VL Photographic, Secondary Capture, JPEG and PNG files) become one RGB
frame each. Videos (DICOM with an MPEG-2, H.264 or HEVC transfer syntax, PS3.5 8.2.5,
and MP4 files) are decoded with PyAV (FFmpeg) into RGB frames, so the browser needs
no codec and receives pixels only, like every other viewer here. A video is decoded
on demand, a few frames at a time from the key frame before them, and only a
bounded number of decoded frames is kept (:class:`VideoFrames`), so an hour of video
takes the memory of its compressed stream and a few frames.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from viewerlib.objects.sop import VIDEO_TRANSFER_SYNTAXES

try:
    import av
except ImportError:  # pragma: no cover - a dependency; guarded for a clear message
    av = None

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

# Decoded video frames the kernel keeps at once (RGB bytes); the rest of a video
# stays compressed and is decoded again when it is asked for.
VIDEO_CACHE_BYTES = 128 * 1024 * 1024
# Frames decoded together around one asked for: playback asks for the next ones.
_VIDEO_CHUNK_FRAMES = 8
_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
# PS3.5 A.4.5 to A.4.13: the demuxer FFmpeg needs for each video transfer syntax.
_DEMUXER = {
    "1.2.840.10008.1.2.4.100": "mpegvideo", "1.2.840.10008.1.2.4.101": "mpegvideo",
    "1.2.840.10008.1.2.4.102": "h264", "1.2.840.10008.1.2.4.103": "h264",
    "1.2.840.10008.1.2.4.104": "h264", "1.2.840.10008.1.2.4.105": "h264",
    "1.2.840.10008.1.2.4.106": "h264",
    "1.2.840.10008.1.2.4.107": "hevc", "1.2.840.10008.1.2.4.108": "hevc",
}


@dataclass
class MediaFrames:
    """Frames to show in the media viewer.

    Attributes
    ----------
    frames : sequence of numpy.ndarray
        (rows, columns, 3) uint8 sRGB, one per photograph or video frame; sizes may
        differ between photographs. A video's is a :class:`VideoFrames`, which
        decodes a frame when it is read.
    frames_per_second : float
        Playback rate of a video; 0 for photographs.
    kind : {'photo', 'video'}
    warnings : list of str
        What was cut or could not be read.
    """

    frames: Sequence[np.ndarray]
    frames_per_second: float
    kind: str
    warnings: list[str] = field(default_factory=list)


def read_photograph(ds: Dataset) -> list[np.ndarray]:
    """The frames of a DICOM photograph as RGB, as the pipeline shows them.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Any image instance with pixel data; a grey one is repeated in R, G and B.
    """
    from viewerlib.pipeline.instance import read_instance

    instance = read_instance(ds)
    frames = []
    for frame_index in range(instance.number_of_frames):
        shown = np.asarray(instance.display_frame(frame_index), dtype=np.uint8)
        frames.append(np.repeat(shown[..., np.newaxis], 3, axis=2) if shown.ndim == 2
                      else shown[..., :3])
    return frames


def read_image_file(path: str | os.PathLike[str]) -> np.ndarray:
    """A JPEG or PNG file as (rows, columns, 3) uint8, turned as its EXIF says."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        # EXIF Orientation (CIPA DC-008 4.6.4): phones store photos sideways.
        upright = ImageOps.exif_transpose(image)
        return np.asarray(upright.convert("RGB"), dtype=np.uint8)


class VideoFrames(Sequence[np.ndarray]):
    """The frames of a video, decoded when read, a bounded number kept.

    Reading frame ``i`` decodes the chunk of frames around it, starting from the
    key frame at or before the chunk: by seeking in a container that has an
    index (MP4, MOV), or, in a bare stream (a DICOM video's (7FE0,0010) *Pixel
    Data*), by handing its packets from that key frame to a fresh decoder.
    Playback goes on with the same decoder. The decoded frames are kept in a
    least-recently-used cache of ``cache_bytes``.

    Parameters
    ----------
    data : bytes or path
        A video file (MP4, MOV) or a bare stream (``demuxer`` names its format).
    demuxer : str, optional
        FFmpeg format name, e.g. ``'h264'`` for an H.264 elementary stream.
    cache_bytes : int
        Most bytes of decoded RGB frames kept at once (at least one chunk).

    Raises
    ------
    ImportError
        If PyAV is not installed.
    ValueError
        If FFmpeg cannot read the stream, it has no video, or its first frame
        cannot be decoded.

    Notes
    -----
    Frames are counted from the packets of the stream, one per frame. The
    indexes are in presentation order (``frame_index`` from 0).
    """

    def __init__(self, data: bytes | str | os.PathLike[str],
                 demuxer: str | None = None,
                 cache_bytes: int = VIDEO_CACHE_BYTES) -> None:
        if av is None:
            raise ImportError("showing videos needs PyAV: pip install av")
        self._data = bytes(data) if isinstance(data, bytes | bytearray) else None
        self._path = None if self._data is not None else str(data)
        self._demuxer = demuxer
        self._lock = threading.RLock()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_bytes = int(cache_bytes)
        self._held_bytes = 0
        #: Frames decoded since the video was opened (for tests and logs).
        self.decoded_frames = 0
        self._container: Any = None
        self._cursor: Iterator[tuple[int, Any]] | None = None
        self._cursor_next = -1
        try:
            self._index()
            frame_bytes = self.shape[0] * self.shape[1] * 3
            self._chunk = max(1, min(_VIDEO_CHUNK_FRAMES,
                                     self._cache_bytes // max(1, frame_bytes)))
            if not len(self):
                raise ValueError("the video has no frame that could be decoded")
            self[0]  # a stream that opens but cannot be decoded fails here
        except av.FFmpegError as err:
            raise ValueError(f"the video could not be decoded ({err})") from err
        logger.info("opened a video of %d frames (%s)", len(self),
                    "seekable" if self._seekable else "bare stream")

    def _open(self) -> Any:
        source = io.BytesIO(self._data) if self._data is not None else self._path
        return av.open(source, format=self._demuxer)

    def _index(self) -> None:
        """Count the frames and find the key frames, reading packets only."""
        with self._open() as container:
            if not container.streams.video:
                raise ValueError("the file holds no video stream")
            stream = container.streams.video[0]
            self.frames_per_second = float(
                stream.average_rate or stream.guessed_rate or 25)
            self.shape = (int(stream.codec_context.height),
                          int(stream.codec_context.width))
            self._codec = stream.codec_context.name
            packets = [(packet.pts, packet.pos, packet.size, packet.is_keyframe)
                       for packet in container.demux(stream) if packet.size]
        # A container with timestamps seeks; a bare stream is read from its packets.
        self._seekable = self._demuxer is None and all(
            p[0] is not None for p in packets)
        if not self._seekable and self._data is None:
            self._data = Path(str(self._path)).read_bytes()
        if self._seekable:
            # Presentation order is the order of the timestamps.
            self._pts = sorted(int(p[0]) for p in packets)
            self._by_pts = {pts: i for i, pts in enumerate(self._pts)}
            self._keys = sorted(self._by_pts[int(p[0])] for p in packets if p[3])
            self._packets: list[tuple[int, int]] = []
        else:
            # A bare stream: its packets are in decoding order, and a closed group
            # of pictures starts at its key frame in presentation order too.
            self._packets = [(int(p[1]), int(p[2])) for p in packets]
            self._keys = [i for i, p in enumerate(packets) if p[3]] or [0]
        if not self._keys or self._keys[0] != 0:
            self._keys = [0, *self._keys]
        self._count = len(packets)

    def __len__(self) -> int:
        """Return the number of frames (one per packet of the stream)."""
        return self._count

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> list[np.ndarray]: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | list[np.ndarray]:
        """Frame ``index`` as (rows, columns, 3) uint8, decoded if need be."""
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame_index {index} is outside the video's "
                             f"{len(self)} frames")
        index = index % len(self)
        with self._lock:
            try:
                if index not in self._cache:
                    self._decode_chunk(index)
            except av.FFmpegError as err:
                self._cursor = None
                raise ValueError(f"frame {index} of the video could not be decoded "
                                 f"({err})") from err
            shown = index
            if shown not in self._cache:
                # The decoder gave no picture for this packet: show the nearest
                # earlier frame, as players do.
                shown = max((i for i in self._cache if i < index), default=-1)
                if shown < 0:
                    raise ValueError(f"frame {index} of the video could not be "
                                     "decoded")
            self._cache.move_to_end(shown)
            return self._cache[shown]

    @property
    def held_frames(self) -> int:
        """Decoded frames kept now."""
        return len(self._cache)

    def _decode_chunk(self, index: int) -> None:
        start = index - index % self._chunk
        stop = min(len(self), start + self._chunk)
        key = self._keys[bisect_right(self._keys, start) - 1]
        if self._cursor is None or not key <= self._cursor_next <= start:
            self._restart(key)
        assert self._cursor is not None
        for position, picture in self._cursor:
            self.decoded_frames += 1
            self._cursor_next = position + 1
            if position >= start:
                self._keep(position, picture.to_ndarray(format="rgb24"))
            if position >= stop - 1:
                return
        # The stream ended: the next read starts afresh.
        self._cursor = None

    def _keep(self, position: int, rgb: np.ndarray) -> None:
        if position in self._cache:
            self._held_bytes -= self._cache.pop(position).nbytes
        self._cache[position] = rgb
        self._held_bytes += rgb.nbytes
        # The least recently read go first; the chunk being decoded stays.
        while self._held_bytes > self._cache_bytes and len(self._cache) > self._chunk:
            _, dropped = self._cache.popitem(last=False)
            self._held_bytes -= dropped.nbytes

    def _restart(self, key: int) -> None:
        """Decode anew from key frame ``key`` (a frame index)."""
        if self._container is not None:
            self._container.close()
            self._container = None
        self._cursor = (self._seek(key) if self._seekable
                        else self._from_packets(key))
        self._cursor_next = key
        logger.debug("video decoding restarts at frame %d", key)

    def _seek(self, key: int) -> Iterator[tuple[int, Any]]:
        container = self._container = self._open()
        stream = container.streams.video[0]
        container.seek(self._pts[key], stream=stream, backward=True)
        for picture in container.decode(stream):
            position = self._by_pts.get(int(picture.pts)) if (
                picture.pts is not None) else None
            if position is not None:
                yield position, picture

    def _from_packets(self, key: int) -> Iterator[tuple[int, Any]]:
        assert self._data is not None
        decoder = av.CodecContext.create(self._codec, "r")
        if key > 0:
            # The parameter sets (H.264 SPS and PPS) travel with the first packet:
            # decode it once, then start over at the key frame.
            first, size = self._packets[0]
            for _ in decoder.decode(av.Packet(self._data[first:first + size])):
                pass
            for _ in decoder.decode(None):
                pass
            decoder.flush_buffers()
        position = key
        for offset, size in self._packets[key:]:
            for picture in decoder.decode(av.Packet(self._data[offset:offset + size])):
                yield position, picture
                position += 1
        for picture in decoder.decode(None):
            yield position, picture
            position += 1

    def __repr__(self) -> str:
        """Return the frame count and how many are decoded now (cheap)."""
        return f"VideoFrames({len(self)} frames, {self.held_frames} decoded)"


def decode_video(data: bytes | str | os.PathLike[str], demuxer: str | None = None,
                 cache_bytes: int = VIDEO_CACHE_BYTES) -> MediaFrames:
    """Open a video whose frames are decoded when they are read.

    Parameters
    ----------
    data : bytes or path
        A video file (MP4, MOV) or a bare stream (``demuxer`` names its format).
    demuxer : str, optional
        FFmpeg format name, e.g. ``'h264'`` for an H.264 elementary stream.
    cache_bytes : int
        Most bytes of decoded frames kept at once (:class:`VideoFrames`).

    Returns
    -------
    MediaFrames
        ``frames`` is a :class:`VideoFrames`.

    Raises
    ------
    ImportError
        If PyAV is not installed.
    ValueError
        If FFmpeg cannot read the stream or it has no video.
    """
    frames = VideoFrames(data, demuxer, cache_bytes)
    return MediaFrames(frames, frames.frames_per_second, "video")


def read_dicom_video(ds: Dataset) -> MediaFrames:
    """Decode a DICOM video (an MPEG-2, H.264 or HEVC transfer syntax).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses the transfer syntax, (7FE0,0010) *Pixel Data* (the fragments of one
        stream, PS3.5 8.2.5) and (0018,1063) *Frame Time* or (0018,0040) *Cine
        Rate* for the playback rate.

    Raises
    ------
    ValueError
        If the transfer syntax is not a video one.
    """
    from pydicom.encaps import generate_fragments

    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if syntax not in VIDEO_TRANSFER_SYNTAXES:
        raise ValueError(
            f"transfer syntax {syntax} is not a video one (MPEG-2, H.264 or HEVC); "
            "open the instance as an image"
        )
    # PS3.5 8.2.5: the whole stream, split into fragments of any length.
    stream = b"".join(generate_fragments(ds.PixelData))
    media = decode_video(stream, _DEMUXER[syntax])
    if ds.get("FrameTime"):
        media.frames_per_second = 1000.0 / float(ds.FrameTime)
    elif ds.get("CineRate"):
        media.frames_per_second = float(ds.CineRate)
    return media


def read_media_file(path: str | os.PathLike[str]) -> MediaFrames:
    """A photo (JPEG, PNG) or a video file (MP4, MOV) as frames, by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in _PHOTO_SUFFIXES:
        return MediaFrames([read_image_file(path)], 0.0, "photo")
    return decode_video(path)
