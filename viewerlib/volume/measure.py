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
    """
    values = np.asarray(point, dtype=np.float64)
    if values.shape != (3,):
        raise ValueError(f"A point is (slice, row, column), got {list(point)}")
    return (volume.affine @ np.append(values, 1.0))[:3]


def distance_mm(volume: Volume, start: Point, end: Point) -> float:
    """Return the distance in mm between two (slice, row, column) points.

    Parameters
    ----------
    volume : Volume
        Gives the affine (so tilted and anisotropic volumes measure right).
    start, end : sequence of 3 float
        (slice, row, column) indexes.

    Returns
    -------
    float
        Euclidean distance in patient space.
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
        Voxel count x voxel volume (area x slice spacing).
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
    elif mask.shape == volume.voxels.shape:
        values = volume.voxels[mask]
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
        volume_mm3=area * float(volume.spacing_mm[0]),
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
