"""Measurements in patient space: distance, angle and region statistics."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from skimage import draw

from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

Point = Sequence[float]


def index_to_lps(volume: Volume, point: Point) -> np.ndarray:
    """Return the LPS position in mm of a (slice, row, column) index.

    Parameters
    ----------
    volume : Volume
        Gives the affine.
    point : sequence of 3 float
        (slice, row, column); fractions are allowed.

    Returns
    -------
    numpy.ndarray
        (x, y, z) in mm.

    Raises
    ------
    ValueError
        If `point` does not have 3 values.

    Notes
    -----
    Slices are placed at their own (0020,0032) *Image Position (Patient)*
    (PS3.3 C.7.6.2.1.1), so a volume with uneven gaps (or a file missing from
    the series) measures right although its affine steps by the mean gap; see
    :meth:`~viewerlib.volume.volume.Volume.index_to_lps`.
    """
    values = np.asarray(point, dtype=np.float64)
    if values.shape != (3,):
        raise ValueError(f"A point is (slice, row, column), got {list(point)}")
    return volume.index_to_lps(values)


def distance_mm(volume: Volume, start: Point, end: Point) -> float:
    """Return the distance in mm between two (slice, row, column) points.

    Parameters
    ----------
    volume : Volume
        Gives the affine and the true slice positions (so tilted, anisotropic
        and unevenly spaced volumes measure right).
    start, end : sequence of 3 float
        (slice, row, column) indexes.

    Returns
    -------
    float
        Euclidean distance in patient space.

    Examples
    --------
    >>> from viewerlib.samples.phantom import ct_head_phantom
    >>> from viewerlib import read_series
    >>> study = ct_head_phantom(rows=8, columns=8, number_of_slices=3)
    >>> volume = read_series(study.datasets)[0]
    >>> distance_mm(volume, (0, 0, 0), (2, 0, 0)) == 2 * volume.spacing_mm[0]
    True
    """
    vector = index_to_lps(volume, end) - index_to_lps(volume, start)
    return float(np.linalg.norm(vector))


def angle_deg(volume: Volume, vertex: Point, first: Point, second: Point) -> float:
    """Return the angle at `vertex` between the rays to `first` and `second`.

    Parameters
    ----------
    volume : Volume
        Gives the affine.
    vertex, first, second : sequence of 3 float
        (slice, row, column) indexes.

    Returns
    -------
    float
        Angle in degrees, 0 to 180, measured in patient space.

    Raises
    ------
    ValueError
        If a ray has zero length.
    """
    origin = index_to_lps(volume, vertex)
    a = index_to_lps(volume, first) - origin
    b = index_to_lps(volume, second) - origin
    lengths = np.linalg.norm(a) * np.linalg.norm(b)
    if lengths == 0:
        raise ValueError("An angle needs two points distinct from its vertex")
    cosine = float(np.clip(np.dot(a, b) / lengths, -1.0, 1.0))
    return float(np.degrees(np.arccos(cosine)))


@dataclass(frozen=True)
class RegionStatistics:
    """Statistics of a region in modality units (HU for CT).

    Attributes
    ----------
    mean, sd, minimum, maximum : float
        Of the voxel values; `sd` is the population standard deviation (ddof 0).
    count : int
        Number of voxels.
    area_mm2 : float
        Area on the slice (pixel count x pixel area) for a 2-D region; for a
        3-D mask, the area summed over its slices.
    volume_mm3 : float
        Area on each slice x the thickness that slice stands for: the slice
        spacing, or with uneven gaps half the gap to each neighbour.
    """

    mean: float
    sd: float
    minimum: float
    maximum: float
    count: int
    area_mm2: float
    volume_mm3: float


def _pixel_area_mm2(volume: Volume) -> float:
    """Return the area of one pixel, from the affine's in-plane columns."""
    return float(np.linalg.norm(np.cross(volume.affine[:3, 1], volume.affine[:3, 2])))


def slice_thickness_mm(volume: Volume) -> np.ndarray:
    """Return the thickness along the normal that each slice stands for, in mm.

    Parameters
    ----------
    volume : Volume
        Gives the slice spacing and the true slice positions.

    Returns
    -------
    numpy.ndarray
        (slices,) float64: the slice spacing when the affine is exact, else
        half the distance to each neighbouring plane (the whole distance to
        the only neighbour at either end).
    """
    slices = volume.voxels.shape[0]
    if volume.affine_is_exact or slices < 2:
        return np.full(slices, float(volume.spacing_mm[0]))
    # The plane normal, row direction x column direction (PS3.3 C.7.6.2.1.1).
    normal = np.cross(volume.affine[:3, 2], volume.affine[:3, 1])
    normal = normal / np.linalg.norm(normal)
    gaps = np.abs(np.diff(np.asarray(volume.slice_positions_mm, float) @ normal))
    thickness = np.empty(slices)
    thickness[0], thickness[-1] = gaps[0], gaps[-1]
    thickness[1:-1] = (gaps[:-1] + gaps[1:]) / 2
    return thickness


def region_statistics(
    volume: Volume, mask: np.ndarray, slice_index: int | None = None
) -> RegionStatistics:
    """Return mean, SD, minimum, maximum and area of a region.

    Parameters
    ----------
    volume : Volume
        Gives voxels and geometry.
    mask : numpy.ndarray of bool
        (rows, columns) region on slice `slice_index`, or (slices, rows,
        columns) over the volume.
    slice_index : int, optional
        Required for a 2-D mask.

    Returns
    -------
    RegionStatistics
        In modality units.

    Raises
    ------
    ValueError
        If the mask shape does not match, a 2-D mask has no `slice_index`, or
        the region is empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 2:
        if slice_index is None:
            raise ValueError("A 2-D mask needs slice_index (which slice it is on)")
        if mask.shape != volume.voxels.shape[1:]:
            raise ValueError(
                f"mask shape {mask.shape} is not (rows, columns) "
                f"{volume.voxels.shape[1:]} of the volume"
            )
        values = volume.voxels[slice_index][mask]
        per_slice = np.zeros(volume.voxels.shape[0])
        per_slice[slice_index] = values.size
    elif mask.shape == volume.voxels.shape:
        values = volume.voxels[mask]
        per_slice = mask.sum(axis=(1, 2)).astype(np.float64)
    else:
        raise ValueError(
            f"mask shape {mask.shape} matches neither a slice "
            f"{volume.voxels.shape[1:]} nor the volume {volume.voxels.shape}"
        )
    if values.size == 0:
        raise ValueError("The region contains no voxels; draw a larger region")

    values = values.astype(np.float64)
    pixel_area = _pixel_area_mm2(volume)
    area = float(values.size) * pixel_area
    return RegionStatistics(
        mean=float(values.mean()),
        sd=float(values.std()),
        minimum=float(values.min()),
        maximum=float(values.max()),
        count=int(values.size),
        area_mm2=area,
        volume_mm3=float(per_slice @ slice_thickness_mm(volume)) * pixel_area,
    )


def ellipse_mask(
    shape: tuple[int, int], center: tuple[float, float], radii: tuple[float, float]
) -> np.ndarray:
    """Return a (rows, columns) mask of an ellipse.

    Parameters
    ----------
    shape : tuple of int
        (rows, columns) of the slice.
    center : tuple of float
        (row, column) of the centre.
    radii : tuple of float
        (row radius, column radius) in pixels.

    Returns
    -------
    numpy.ndarray of bool
        True inside the ellipse.
    """
    mask = np.zeros(shape, dtype=bool)
    rr, cc = draw.ellipse(center[0], center[1], radii[0], radii[1], shape=shape)
    mask[rr, cc] = True
    return mask


def polygon_mask(
    shape: tuple[int, int], vertices: Sequence[tuple[float, float]]
) -> np.ndarray:
    """Return a (rows, columns) mask of a polygon given as (row, column) vertices."""
    points = np.asarray(vertices, dtype=np.float64)
    return draw.polygon2mask(shape, points)
