"""Overlay layers: a named, coloured mask per slice of the images it lies on."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class OverlayLayer:
    """One segment of a SEG or one ROI of an RT Structure Set, on a volume's grid.

    Attributes
    ----------
    name : str
        (0062,0005) *Segment Label* or (3006,0026) *ROI Name*; shown as text only.
    number : int
        (0062,0004) *Segment Number* or (3006,0022) *ROI Number*.
    color : tuple of int
        sRGB (0 to 255) recommended by the object.
    style : {'fill', 'outline'}
        How the viewer draws it: a translucent fill (segments) or the border of
        the region (contours).
    masks : dict of int to numpy.ndarray
        For each ``slice_index`` (from 0) that the layer touches, a bool
        (rows, columns) mask on the pixel grid of that slice. TODO(#5): keep
        only each slice's bounding box, for SEGs of a hundred organs.
    warnings : list of str
        Parts of the object that could not be placed on the images.
    """

    name: str
    number: int
    color: tuple[int, int, int]
    style: str
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def dense(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The masks as one bool (slices, rows, columns) array of ``shape``."""
        volume = np.zeros(shape, dtype=bool)
        for slice_index, mask in self.masks.items():
            volume[slice_index] = mask
        return volume

    def __repr__(self) -> str:
        """Return the number, style and slice count (no names: cheap and private)."""
        return (
            f"OverlayLayer({self.number}, {self.style}, "
            f"{len(self.masks)} slices)"
        )


# Colours for layers whose object recommends none, distinct on grey images.
FALLBACK_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120),
    (255, 120, 255), (255, 150, 60), (160, 120, 255), (0, 230, 190),
)
