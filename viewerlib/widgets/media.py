"""The media viewer: photographs and videos, frames decoded in the kernel.

Every frame is RGB pixels sent as a binary message when the view asks for it (a
video a few frames ahead of the one shown), so the browser needs no codec, nothing
is downloaded and nothing reaches browser storage. Decoding in the kernel rather
than playing the file in a ``<video>`` element keeps one way of showing pixels for
every viewer, steps frame by frame exactly, and does not depend on the codecs of the
browser (Chromium builds differ in H.264 and HEVC support).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from viewerlib.objects.media import (
    MediaFrames,
    read_dicom_video,
    read_media_file,
    read_photograph,
)
from viewerlib.objects.sop import ObjectKind, object_kind
from viewerlib.widgets._frontend import front_end
from viewerlib.widgets.stack import overlay_texts

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

# Frames per message: enough to play ahead without a large message.
_FRAMES_PER_MESSAGE = 4


class MediaViewer(anywidget.AnyWidget):
    """Show photographs or play a video, with zoom, pan and frame stepping.

    Parameters
    ----------
    media : MediaFrames
        The frames; see :meth:`from_datasets` and :meth:`from_file`.
    overlay : dict of str, optional
        Identity texts (patient, study, series), shown as text only.
    """

    _esm = front_end("media.js")
    frame_index = traitlets.Int(0).tag(sync=True)
    number_of_frames = traitlets.Int(1).tag(sync=True)
    #: (rows, columns) of each frame, so the view can lay out before pixels arrive.
    frame_shapes = traitlets.List([]).tag(sync=True)
    frames_per_second = traitlets.Float(0.0).tag(sync=True)
    kind = traitlets.Unicode("photo").tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    overlay = traitlets.Dict({}).tag(sync=True)

    def __init__(self, media: MediaFrames, overlay: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        if not media.frames:
            raise ValueError("there is no frame to show")
        self._frames = [np.ascontiguousarray(f, dtype=np.uint8) for f in media.frames]
        self.media = media
        super().__init__(
            number_of_frames=len(self._frames),
            frame_shapes=[[int(f.shape[0]), int(f.shape[1])] for f in self._frames],
            frames_per_second=float(media.frames_per_second),
            kind=media.kind,
            overlay=dict(overlay or {}),
            **kwargs,
        )
        self.on_msg(self._handle_message)

    @classmethod
    def from_datasets(cls, datasets: list[Dataset], **kwargs: Any) -> MediaViewer:
        """Photographs (every frame of every instance) or the first video of a series.

        Raises
        ------
        ValueError
            If ``datasets`` is empty.
        """
        if not datasets:
            raise ValueError("the series holds no instance to show")
        overlay = overlay_texts(datasets[0])
        videos = [ds for ds in datasets if object_kind(ds) is ObjectKind.VIDEO]
        if videos:
            if len(videos) > 1:
                logger.info("showing the first of %d videos", len(videos))
            return cls(read_dicom_video(videos[0]), overlay=overlay, **kwargs)
        frames = [frame for ds in datasets for frame in read_photograph(ds)]
        return cls(MediaFrames(frames, 0.0, "photo"), overlay=overlay, **kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> MediaViewer:
        """A JPEG or PNG photo or an MP4 video file."""
        return cls(read_media_file(path), **kwargs)

    @traitlets.validate("frame_index")
    def _valid_frame(self, proposal: dict[str, Any]) -> int:
        return int(min(max(0, proposal["value"]), self.number_of_frames - 1))

    @property
    def frames(self) -> list[np.ndarray]:
        """The frames shown, each (rows, columns, 3) uint8."""
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
        frames = self._frames[start:stop]
        self.send({"type": "frames", "start": start,
                   "shapes": [[int(f.shape[0]), int(f.shape[1])] for f in frames]},
                  buffers=[memoryview(f).cast("B") for f in frames])
        logger.debug("sent frames %d-%d", start, stop)

    def __repr__(self) -> str:
        """Return the kind and the frame count (cheap)."""
        return f"MediaViewer({self.kind}, {self.number_of_frames} frames)"
