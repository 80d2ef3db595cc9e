"""Overlay layers: a named, coloured mask per slice of the images it lies on."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class SliceMasks(MutableMapping[int, np.ndarray]):
    """Bool masks by ``slice_index``, each kept as its bounding box only.

    A mask is given and read back as a whole (rows, columns) slice, but only the
    smallest box holding its set pixels is stored: a SEG of a hundred organs on
    512 x 512 slices would otherwise keep 256 kB per organ and slice, most of it
    False, in the kernel and again in the browser.

    Parameters
    ----------
    masks : mapping of int to numpy.ndarray, optional
        Masks to start with, each (rows, columns) and all of one shape.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((512, 512), bool)
    >>> mask[100:110, 200:204] = True
    >>> masks = SliceMasks({3: mask})
    >>> masks.box(3)[:2], masks.box(3)[2].shape, masks.nbytes
    ((100, 200), (10, 4), 40)
    >>> bool((masks[3] == mask).all())
    True
    """

    def __init__(self, masks: Mapping[int, np.ndarray] | None = None) -> None:
        self._boxes: dict[int, tuple[int, int, np.ndarray]] = {}
        self._shape: tuple[int, int] | None = None
        for slice_index, mask in (masks or {}).items():
            self[slice_index] = mask

    @property
    def shape(self) -> tuple[int, int] | None:
        """(rows, columns) of the slices; None before the first mask."""
        return self._shape

    @property
    def nbytes(self) -> int:
        """Bytes held by the boxes."""
        return sum(box.nbytes for _, _, box in self._boxes.values())

    def box(self, slice_index: int) -> tuple[int, int, np.ndarray]:
        """(top row, left column, bool box) of one slice's mask; the box may be empty.

        Raises
        ------
        KeyError
            If the layer has no mask on that slice.
        """
        return self._boxes[int(slice_index)]

    def __setitem__(self, slice_index: int, mask: np.ndarray) -> None:
        """Keep the bounding box of a (rows, columns) mask of the layer's shape."""
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError(
                f"a slice mask must be (rows, columns), not of shape {mask.shape}")
        if self._shape is not None and mask.shape != self._shape:
            raise ValueError(
                f"a mask of shape {mask.shape} on slice {slice_index} does not fit "
                f"the layer's other slices of {self._shape}")
        self._shape = (int(mask.shape[0]), int(mask.shape[1]))
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            self._boxes[int(slice_index)] = (0, 0, np.zeros((0, 0), dtype=bool))
            return
        columns = np.flatnonzero(mask.any(axis=0))
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        left, right = int(columns[0]), int(columns[-1]) + 1
        self._boxes[int(slice_index)] = (
            top, left, np.ascontiguousarray(mask[top:bottom, left:right]))

    def __getitem__(self, slice_index: int) -> np.ndarray:
        """Return the whole (rows, columns) mask of a slice, built from its box."""
        top, left, box = self._boxes[int(slice_index)]
        assert self._shape is not None
        mask = np.zeros(self._shape, dtype=bool)
        mask[top:top + box.shape[0], left:left + box.shape[1]] = box
        return mask

    def __delitem__(self, slice_index: int) -> None:
        """Forget a slice's mask."""
        del self._boxes[int(slice_index)]

    def __iter__(self) -> Iterator[int]:
        """Iterate over the slices with a mask, in the order they were given."""
        return iter(self._boxes)

    def __len__(self) -> int:
        """Return the number of slices with a mask."""
        return len(self._boxes)

    def __repr__(self) -> str:
        """Return the slice count and the bytes held (cheap)."""
        return f"SliceMasks({len(self)} slices, {self.nbytes} bytes)"


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
    masks : SliceMasks
        For each ``slice_index`` (from 0) that the layer touches, a bool
        (rows, columns) mask on the pixel grid of that slice, stored as its
        bounding box (:meth:`SliceMasks.box`). A plain dict given here is
        converted.
    warnings : list of str
        Parts of the object that could not be placed on the images.
    """

    name: str
    number: int
    color: tuple[int, int, int]
    style: str
    masks: SliceMasks = field(default_factory=SliceMasks)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Keep the masks as bounding boxes, whatever mapping was given."""
        if not isinstance(self.masks, SliceMasks):
            given: Any = self.masks
            self.masks = SliceMasks(given)

    def dense(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The masks as one bool (slices, rows, columns) array of ``shape``."""
        volume = np.zeros(shape, dtype=bool)
        for slice_index in self.masks:
            top, left, box = self.masks.box(slice_index)
            volume[slice_index, top:top + box.shape[0], left:left + box.shape[1]] = box
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
