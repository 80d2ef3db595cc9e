"""The media viewer: photographs, videos and cine loops, frames decoded in the kernel.

Cine loops are the multi-frame images that are not slices of a volume: colour or
grey ultrasound and echocardiography, colour XA and multi-frame secondary
captures. They play at their (0018,0040) *Cine Rate* or (0018,1063) *Frame Time*.

Every frame is RGB pixels sent as a binary message when the view asks for it (a
video a few frames ahead of the one shown), so the browser needs no codec, nothing
is downloaded and nothing reaches browser storage; a video is decoded in the kernel
only as far as the view asks (:class:`~viewerlib.objects.media.VideoFrames`).
Decoding in the kernel rather
than playing the file in a ``<video>`` element keeps one way of showing pixels for
every viewer, steps frame by frame exactly, and does not depend on the codecs of the
browser (Chromium builds differ in H.264 and HEVC support).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from viewerlib.objects.media import (
    MediaFrames,
    VideoFrames,
    read_dicom_video,
    read_media_file,
    read_photograph,
)
from viewerlib.objects.sop import ObjectKind, object_kind
from viewerlib.widgets._frontend import FrontEndWidget, esm_trait, front_end
from viewerlib.widgets.stack import cine_rate, overlay_texts

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

# Frames per message: enough to play ahead without a large message.
_FRAMES_PER_MESSAGE = 4
# What the viewer shows: stills to step through, or frames to play.
_KINDS = ("photo", "video", "cine")
# Playback rate of a cine loop whose header gives none, and the fastest allowed.
_DEFAULT_CINE_FPS = 10.0
_MAX_FPS = 240.0


class MediaViewer(FrontEndWidget):
    """Show photographs or play a video, with zoom, pan and frame stepping.

    Parameters
    ----------
    media : MediaFrames
        The frames; see :meth:`from_datasets` and :meth:`from_file`.
    overlay : dict of str, optional
        Identity texts (patient, study, series), shown as text only.
    """

    _esm = esm_trait(front_end("media.js"))
    frame_index = traitlets.Int(0).tag(sync=True)
    number_of_frames = traitlets.Int(1).tag(sync=True)
    #: (rows, columns) of each frame, so the view can lay out before pixels arrive;
    #: a video's frames share one size, given once.
    frame_shapes = traitlets.List([]).tag(sync=True)
    #: Playback rate of a video or cine loop; 0 for photographs.
    frames_per_second = traitlets.Float(0.0).tag(sync=True)
    #: ``photo`` (stills to step through), ``video`` or ``cine`` (frames to play).
    kind = traitlets.Unicode("photo").tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    overlay = traitlets.Dict({}).tag(sync=True)

    def __init__(self, media: MediaFrames, overlay: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        if not len(media.frames):
            raise ValueError("there is no frame to show")
        self._frames: Sequence[np.ndarray]
        if isinstance(media.frames, VideoFrames):
            # Decoded when asked for; a long video never sits whole in memory.
            self._frames = media.frames
            shapes = [[int(media.frames.shape[0]), int(media.frames.shape[1])]]
        else:
            self._frames = [np.ascontiguousarray(f, dtype=np.uint8)
                            for f in media.frames]
            shapes = [[int(f.shape[0]), int(f.shape[1])] for f in self._frames]
        self.media = media
        super().__init__(
            number_of_frames=len(self._frames),
            frame_shapes=shapes,
            frames_per_second=float(media.frames_per_second),
            kind=media.kind,
            overlay=dict(overlay or {}),
            **kwargs,
        )
        self.on_msg(self._handle_message)

    @classmethod
    def from_datasets(cls, datasets: list[Dataset], **kwargs: Any) -> MediaViewer:
        """The first video or cine loop of a series, else its photographs.

        Parameters
        ----------
        datasets : list of pydicom.dataset.Dataset
            The instances of one series. A video is an instance with a video
            transfer syntax; a cine loop is any other instance with several frames
            ((0028,0008) *Number of Frames* above 1), such as a colour ultrasound
            clip, played at :func:`~viewerlib.widgets.stack.cine_rate` (10 frames
            per second when the header gives no rate). Otherwise every frame of
            every instance is a photograph.

        Raises
        ------
        ValueError
            If ``datasets`` is empty.

        Notes
        -----
        A series of several videos or cine loops shows the first one only; open
        another one by passing its instance alone.
        """
        if not datasets:
            raise ValueError("the series holds no instance to show")
        videos = [ds for ds in datasets if object_kind(ds) is ObjectKind.VIDEO]
        if videos:
            if len(videos) > 1:
                logger.info("showing the first of %d videos", len(videos))
            return cls(read_dicom_video(videos[0]), overlay=overlay_texts(videos[0]),
                       **kwargs)
        loops = [ds for ds in datasets if _number_of_frames(ds) > 1]
        if loops:
            if len(loops) > 1:
                logger.info("showing the first of %d cine loops", len(loops))
            loop = loops[0]
            rate = cine_rate(loop) or _DEFAULT_CINE_FPS
            return cls(MediaFrames(read_photograph(loop), rate, "cine"),
                       overlay=overlay_texts(loop), **kwargs)
        frames = [frame for ds in datasets for frame in read_photograph(ds)]
        return cls(MediaFrames(frames, 0.0, "photo"),
                   overlay=overlay_texts(datasets[0]), **kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> MediaViewer:
        """A JPEG or PNG photo or an MP4 video file."""
        return cls(read_media_file(path), **kwargs)

    @traitlets.validate("frame_index")
    def _valid_frame(self, proposal: dict[str, Any]) -> int:
        return int(min(max(0, proposal["value"]), self.number_of_frames - 1))

    @traitlets.validate("kind")
    def _valid_kind(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in _KINDS:
            raise traitlets.TraitError(
                f"kind {proposal['value']!r} is not one of {', '.join(_KINDS)}")
        return str(proposal["value"])

    @traitlets.validate("frames_per_second")
    def _valid_rate(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        return float(min(max(0.0, value), _MAX_FPS)) if np.isfinite(value) else 0.0

    @property
    def frames(self) -> Sequence[np.ndarray]:
        """The frames shown, each (rows, columns, 3) uint8.

        A video's is its :class:`~viewerlib.objects.media.VideoFrames`: reading a
        frame decodes it, so ``list(viewer.frames)`` of a long video would hold
        every frame at once.
        """
        if isinstance(self._frames, VideoFrames):
            return self._frames
        return list(self._frames)

    def _handle_message(
        self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]
    ) -> None:
        if content.get("type") == "need":
            start = max(0, int(content.get("start", 0)))
            stop = min(self.number_of_frames, int(content.get("stop", start + 1)))
            for first in range(start, stop, _FRAMES_PER_MESSAGE):
                self._send_frames(first, min(stop, first + _FRAMES_PER_MESSAGE))

    def _send_frames(self, start: int, stop: int) -> None:
        frames = [np.ascontiguousarray(self._frames[i], dtype=np.uint8)
                  for i in range(start, stop)]
        self.send({"type": "frames", "start": start,
                   "shapes": [[int(f.shape[0]), int(f.shape[1])] for f in frames]},
                  buffers=[memoryview(f).cast("B") for f in frames])
        logger.debug("sent frames %d-%d", start, stop)

    def __repr__(self) -> str:
        """Return the kind and the frame count (cheap)."""
        return f"MediaViewer({self.kind}, {self.number_of_frames} frames)"


def _number_of_frames(ds: Dataset) -> int:
    """(0028,0008) *Number of Frames*, 1 when absent or unreadable."""
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1
