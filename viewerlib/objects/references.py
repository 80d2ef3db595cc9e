"""Find the slice of a volume that an object refers to: by UID, or by position."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

# A point this far (in slice spacings) from the nearest slice plane lies on none.
_PLANE_TOLERANCE = 0.5


class SliceIndex:
    """Where each referenced image of a volume is, and where patient points fall.

    Parameters
    ----------
    volume : viewerlib.volume.volume.Volume
        Uses ``datasets`` ((0008,0018) *SOP Instance UID* of each slice),
        ``source_frames`` (the frame of a multi-frame instance), ``affine`` and
        ``slice_positions_mm``.
    """

    def __init__(self, volume: Volume) -> None:
        self.volume = volume
        self.shape = tuple(volume.voxels.shape)
        self._by_frame: dict[tuple[str, int], int] = {}
        self._by_instance: dict[str, list[int]] = {}
        for slice_index, header in enumerate(volume.datasets):
            uid = str(header.get("SOPInstanceUID", ""))
            frames = volume.source_frames
            frame_number = (
                frames[slice_index][1] + 1 if slice_index < len(frames) else 1
            )
            self._by_frame[(uid, frame_number)] = slice_index
            self._by_instance.setdefault(uid, []).append(slice_index)
        row_step = volume.affine[:3, 1]
        column_step = volume.affine[:3, 2]
        normal = np.cross(column_step, row_step)
        self._normal = normal / np.linalg.norm(normal)
        self._in_plane = np.stack([row_step, column_step], axis=1)
        positions = np.asarray(volume.slice_positions_mm, dtype=float).reshape(-1, 3)
        self._positions = positions
        self._plane_offsets = positions @ self._normal
        self._spacing = float(volume.spacing_mm[0]) or 1.0

    def slices_of(self, sop_instance_uid: str, frame_number: int | None = None
                  ) -> list[int]:
        """Slices (``slice_index`` from 0) showing an instance, or one of its frames.

        Parameters
        ----------
        sop_instance_uid : str
            (0008,1155) *Referenced SOP Instance UID*.
        frame_number : int, optional
            (0008,1160) *Referenced Frame Number*, from 1; every frame when absent.
        """
        if frame_number is None:
            return list(self._by_instance.get(str(sop_instance_uid), []))
        found = self._by_frame.get((str(sop_instance_uid), int(frame_number)))
        return [] if found is None else [found]

    @property
    def sop_instance_uids(self) -> set[str]:
        """The (0008,0018) *SOP Instance UID* of every slice."""
        return set(self._by_instance)

    def locate(self, points_lps_mm: Sequence[Sequence[float]] | np.ndarray
               ) -> tuple[int | None, np.ndarray]:
        """The slice a planar set of patient points lies on, and their pixel indexes.

        Parameters
        ----------
        points_lps_mm : array_like
            (points, 3) patient coordinates (LPS, mm), for example (3006,0050)
            *Contour Data* or (0020,0032) *Image Position (Patient)*.

        Returns
        -------
        slice_index : int or None
            The slice whose plane is nearest to the points' mean, or None when it
            is further than half a slice spacing away.
        indexes : numpy.ndarray
            (points, 2) fractional (row, column) of each point on that slice, pixel
            centres at whole numbers (PS3.3 C.7.6.2.1.1).
        """
        points = np.asarray(points_lps_mm, dtype=float).reshape(-1, 3)
        if not len(self._positions):
            return None, np.empty((0, 2))
        offsets = points @ self._normal
        distance = np.abs(self._plane_offsets - float(np.mean(offsets)))
        slice_index = int(np.argmin(distance))
        indexes = self.in_plane(points, slice_index)
        if distance[slice_index] > _PLANE_TOLERANCE * self._spacing:
            return None, indexes
        return slice_index, indexes

    def in_plane(self, points_lps_mm: np.ndarray, slice_index: int) -> np.ndarray:
        """(row, column) of patient points projected onto slice ``slice_index``."""
        relative = np.asarray(points_lps_mm, dtype=float).reshape(-1, 3) - (
            self._positions[slice_index]
        )
        solution, *_ = np.linalg.lstsq(self._in_plane, relative.T, rcond=None)
        return solution.T


def referenced_series_uids(ds: Any) -> list[str]:
    """Series Instance UIDs of the images an object refers to, most referenced first.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A SEG or GSPS ((0008,1115) *Referenced Series Sequence*), an RTSTRUCT
        ((3006,0010) *Referenced Frame of Reference Sequence* down to (3006,0014)
        *RT Referenced Series Sequence*) or a KOS ((0040,A375) *Current Requested
        Procedure Evidence Sequence*).

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds, series = Dataset(), Dataset()
    >>> series.SeriesInstanceUID = "1.2.3"
    >>> ds.ReferencedSeriesSequence = [series]
    >>> referenced_series_uids(ds)
    ['1.2.3']
    """
    counts: Counter[str] = Counter()

    def add(series_items: Any, *instance_keywords: str) -> None:
        for series in series_items or []:
            uid = str(series.get("SeriesInstanceUID", ""))
            if uid:
                counts[uid] += max(1, sum(len(series.get(keyword) or [])
                                          for keyword in instance_keywords))

    add(ds.get("ReferencedSeriesSequence"), "ReferencedInstanceSequence",
        "ReferencedImageSequence")
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or []:
        add(study.get("ReferencedSeriesSequence"), "ReferencedSOPSequence")
    for frame in ds.get("ReferencedFrameOfReferenceSequence") or []:
        for study in frame.get("RTReferencedStudySequence") or []:
            add(study.get("RTReferencedSeriesSequence"), "ContourImageSequence")
    return [uid for uid, _ in counts.most_common()]
