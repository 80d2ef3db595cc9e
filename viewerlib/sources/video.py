"""Video files (MP4, MOV) as DICOM Video Photographic Image instances, in memory.

A folder's videos are handed on the way an archive would store them: the
compressed stream is not decoded or re-encoded, only taken out of its container
and encapsulated in (7FE0,0010) *Pixel Data* under the transfer syntax that names
its codec, profile and level (PS3.5 A.4.7 for H.264, A.4.8 for HEVC). The viewers
then show it as they show any DICOM video. Nothing is written to disk.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.tag import Tag
from pydicom.uid import (
    HEVCM10P51,
    HEVCMP51,
    MPEG4HP41,
    MPEG4HP422D,
    PYDICOM_IMPLEMENTATION_UID,
)

try:
    import av
except ImportError:  # pragma: no cover - a dependency; guarded for a clear message
    av = None

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

logger = logging.getLogger(__name__)

VIDEO_PHOTOGRAPHIC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.4.1"
# FFmpeg's level numbers: H.264 level x 10 (41 is 4.1); HEVC general_level_idc,
# level x 30 (153 is 5.1).
_H264_LEVEL_4_1, _H264_LEVEL_4_2, _HEVC_LEVEL_5_1 = 41, 42, 153
# H.264 profiles a High Profile decoder decodes (ITU-T H.264 A.2): Constrained
# Baseline and Main are subsets of High.
_H264_HIGH_SUBSETS = frozenset({"Constrained Baseline", "Main", "High"})
# (0028,2114) Lossy Image Compression Method of each codec (PS3.3 C.7.6.1.1.5).
_COMPRESSION_METHOD = {"h264": "ISO_14496_10", "hevc": "ISO_23008_2"}


class VideoReadError(ValueError):
    """A video file could not be read; the message says why, in a user's words."""


@dataclass(frozen=True)
class VideoStreamInfo:
    """What the container says about a file's first video stream.

    Attributes
    ----------
    codec, profile : str
        FFmpeg's names, e.g. ``'h264'`` and ``'High'``.
    level : int
        FFmpeg's level number (``41`` for H.264 level 4.1); negative if unknown.
    rows, columns : int
        Frame size.
    frames_per_second : float
        Average frame rate; 0 if the file does not say.
    """

    codec: str
    profile: str
    level: int
    rows: int
    columns: int
    frames_per_second: float


def video_transfer_syntax(info: VideoStreamInfo) -> str | None:
    """Name the transfer syntax that carries a stream as it is (``None``: none).

    Parameters
    ----------
    info : VideoStreamInfo
        Codec, profile and level of the stream.

    Returns
    -------
    str or None
        MPEG-4 AVC/H.264 High Profile / Level 4.1 (``1.2.840.10008.1.2.4.102``)
        for H.264 up to level 4.1, High Profile / Level 4.2 For 2D Video (``.104``)
        for level 4.2, HEVC/H.265 Main or Main 10 Profile / Level 5.1 (``.107``,
        ``.108``) for HEVC.

    Examples
    --------
    >>> video_transfer_syntax(VideoStreamInfo("h264", "High", 40, 1080, 1920, 30))
    '1.2.840.10008.1.2.4.102'
    >>> video_transfer_syntax(VideoStreamInfo("h264", "High 10", 40, 64, 64, 30))
    """
    if info.codec == "h264" and info.profile in _H264_HIGH_SUBSETS:
        if info.level <= _H264_LEVEL_4_1:
            return str(MPEG4HP41)
        if info.level == _H264_LEVEL_4_2:
            return str(MPEG4HP422D)
    if info.codec == "hevc" and info.level <= _HEVC_LEVEL_5_1:
        return {"Main": str(HEVCMP51), "Main 10": str(HEVCM10P51)}.get(info.profile)
    return None


def _stream_info(stream: VideoStream) -> VideoStreamInfo:
    context = stream.codec_context
    level = getattr(context, "level", -99)
    rate = stream.average_rate or stream.guessed_rate
    return VideoStreamInfo(str(context.name), str(context.profile or ""),
                           int(level if level is not None else -99),
                           int(context.height), int(context.width),
                           float(rate) if rate else 0.0)


def _elementary_stream(container: InputContainer, stream: VideoStream,
                       codec: str) -> tuple[bytes, int]:
    """Copy a stream out of its container as an Annex B byte stream, in memory.

    MP4 keeps H.264 and HEVC with length-prefixed NAL units and the parameter
    sets in its header; DICOM wants the byte stream with start codes and the
    parameter sets in line (ITU-T H.264 Annex B), which FFmpeg's raw muxer
    writes. Returns the bytes and the number of frames (packets) copied.
    """
    buffer = io.BytesIO()
    frames = 0
    with av.open(buffer, mode="w", format=codec) as output:
        target = output.add_stream_from_template(stream)
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's empty packet at the end
            packet.stream = target
            output.mux(packet)
            frames += 1
    return buffer.getvalue(), frames


def _unsupported(path: Path, info: VideoStreamInfo) -> NotImplementedError:
    level = f"level {info.level}" if info.level >= 0 else "an unknown level"
    return NotImplementedError(
        f"{path.name} holds {info.codec} video ({info.profile or 'no profile'}, "
        f"{level}), which no DICOM video transfer syntax carries as it is (H.264 "
        "High Profile up to level 4.2, HEVC Main or Main 10 up to level 5.1): "
        f"open the file itself, viewerlib.open(Path({str(path)!r})), which plays "
        "any video FFmpeg decodes")


def read_video_file(path: Path, attributes: dict[str, Any],
                    with_pixels: bool = True) -> Dataset:
    """Read a video file as a Video Photographic Image instance (PS3.3 A.32.7).

    Parameters
    ----------
    path : Path
        An MP4 or MOV file.
    attributes : dict
        DICOM JSON of the identifying elements (study, series and instance
        UIDs, dates, descriptions) the folder index gave the file.
    with_pixels : bool
        ``False`` for the header only: the container is probed, the stream is
        not copied.

    Returns
    -------
    pydicom.dataset.Dataset
        SOP Class Video Photographic Image Storage, (0028,0004) *Photometric
        Interpretation* YBR_PARTIAL_420, (0028,0008) *Number of Frames*,
        (0018,1063) *Frame Time* in ms and, with pixels, the stream
        encapsulated in (7FE0,0010) *Pixel Data* as one fragment after an empty
        Basic Offset Table (PS3.5 A.4.7).

    Raises
    ------
    OSError
        If the file cannot be opened (deleted, no permission).
    VideoReadError
        If it holds no video stream FFmpeg can read.
    NotImplementedError
        If its codec, profile or level fits no DICOM video transfer syntax
        (H.264 High 10 or 4:2:2, H.264 above level 4.2, VP9, AV1, ...); the
        message says to open the file itself, which plays any of them.
    ImportError
        If PyAV is not installed.
    """
    if av is None:
        raise ImportError("reading video files needs PyAV: pip install av")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError("the file holds no video stream")
            stream = container.streams.video[0]
            info = _stream_info(stream)
            syntax = video_transfer_syntax(info)
            if syntax is None:
                raise _unsupported(path, info)
            stream_bytes = b""
            if with_pixels:
                stream_bytes, frames = _elementary_stream(container, stream,
                                                          info.codec)
            else:
                frames = int(stream.frames or 0) or sum(
                    1 for packet in container.demux(stream) if packet.size)
    except OSError:
        # Gone or not readable: the caller says so in its own words.
        raise
    except av.FFmpegError as err:
        raise VideoReadError(f"FFmpeg could not read it as a video ({err})") from err
    if frames == 0:
        raise VideoReadError("its video stream holds no frame")

    dataset = Dataset.from_json(attributes)
    dataset.SOPClassUID = VIDEO_PHOTOGRAPHIC_IMAGE_STORAGE
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    # PS3.5 A.4.7 and A.4.8: 8-bit 4:2:0 colour, frames in decoding order.
    dataset.Rows, dataset.Columns = info.rows, info.columns
    dataset.SamplesPerPixel = 3
    dataset.PhotometricInterpretation = "YBR_PARTIAL_420"
    dataset.PlanarConfiguration = 0
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    dataset.PixelRepresentation = 0
    dataset.NumberOfFrames = frames
    if info.frames_per_second > 0:
        # PS3.3 C.7.6.5: Frame Time in ms, named by Frame Increment Pointer.
        dataset.FrameTime = f"{1000.0 / info.frames_per_second:.6g}"
        dataset.CineRate = round(info.frames_per_second)
        dataset.FrameIncrementPointer = Tag("FrameTime")
    dataset.LossyImageCompression = "01"
    dataset.LossyImageCompressionMethod = _COMPRESSION_METHOD[info.codec]
    if with_pixels:
        dataset.PixelData = encapsulate([stream_bytes], has_bot=False)
        dataset["PixelData"].VR = "OB"
        dataset["PixelData"].is_undefined_length = True
    logger.debug("read a video of %d frames (%s)", frames, syntax)
    return dataset


__all__ = ["VIDEO_PHOTOGRAPHIC_IMAGE_STORAGE", "VideoReadError", "VideoStreamInfo",
           "read_video_file", "video_transfer_syntax"]
