"""Photographs and videos, DICOM or plain files, as RGB frames decoded in the kernel.

Photographs (VL Photographic, Secondary Capture, JPEG and PNG files) become one RGB
frame each. Videos (DICOM with an MPEG-2, H.264 or HEVC transfer syntax, PS3.5 8.2.5,
and MP4 files) are decoded with PyAV (FFmpeg) into RGB frames, so the browser needs
no codec and receives pixels only, like every other viewer here.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from viewerlib.objects.sop import VIDEO_TRANSFER_SYNTAXES

try:
    import av
except ImportError:  # pragma: no cover - a dependency; guarded for a clear message
    av = None

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

# Decoded frames are kept in memory; a longer clip is cut here (RGB bytes).
MAX_VIDEO_BYTES = 768 * 1024 * 1024
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
    frames : list of numpy.ndarray
        (rows, columns, 3) uint8 sRGB, one per photograph or video frame; sizes may
        differ between photographs.
    frames_per_second : float
        Playback rate of a video; 0 for photographs.
    kind : {'photo', 'video'}
    warnings : list of str
        What was cut or could not be read.
    """

    frames: list[np.ndarray]
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


def decode_video(data: bytes | str | os.PathLike[str], demuxer: str | None = None,
                 max_bytes: int = MAX_VIDEO_BYTES) -> MediaFrames:
    """Decode a video into RGB frames.

    Parameters
    ----------
    data : bytes or path
        A video file (MP4, MOV) or a bare stream (``demuxer`` names its format).
    demuxer : str, optional
        FFmpeg format name, e.g. ``'h264'`` for an H.264 elementary stream.
    max_bytes : int
        Decoding stops (with a warning in ``warnings``) once the frames fill this.

    Returns
    -------
    MediaFrames

    Raises
    ------
    ImportError
        If PyAV is not installed.
    ValueError
        If FFmpeg cannot read the stream or it has no video.
    """
    if av is None:
        raise ImportError("showing videos needs PyAV: pip install av")
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else str(data)
    frames: list[np.ndarray] = []
    notes: list[str] = []
    used = 0
    try:
        with av.open(source, format=demuxer) as container:
            if not container.streams.video:
                raise ValueError("the file holds no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                if used + rgb.nbytes > max_bytes:
                    notes.append(
                        f"the video was cut after {len(frames)} frames "
                        f"({used // 2**20} MiB decoded)")
                    # TODO(#5): stream frames on demand instead of decoding all.
                    logger.warning(notes[-1])
                    break
                frames.append(rgb)
                used += rgb.nbytes
    except av.FFmpegError as err:
        raise ValueError(f"the video could not be decoded ({err})") from err
    if not frames:
        raise ValueError("the video has no frame that could be decoded")
    logger.info("decoded %d video frames", len(frames))
    return MediaFrames(frames, rate, "video", notes)


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
