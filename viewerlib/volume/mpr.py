"""Multiplanar reformats of a volume: axial, coronal, sagittal, oblique and slabs."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

# Patient axes of LPS: +x towards the patient's Left, +y Posterior, +z Head.
_POSITIVE_LABELS = ("L", "P", "H")
_NEGATIVE_LABELS = ("R", "A", "F")
# A direction component smaller than this does not get a letter in a label.
_LABEL_THRESHOLD = 0.25
# Largest reformat side in pixels, so a badly chosen spacing cannot exhaust memory.
_MAX_SIDE = 2048


class SlabMode(enum.Enum):
    """How the planes of a thick slab are combined."""

    MIP = "mip"
    MINIP = "minip"
    AVERAGE = "average"


@dataclass(frozen=True)
class Reformat:
    """A 2-D image resampled from a volume.

    Attributes
    ----------
    pixels : numpy.ndarray
        float32 (rows, columns) modality values; NaN outside the volume.
    affine : numpy.ndarray
        4 x 4 matrix mapping (row, column, 0, 1) to LPS mm; the third column is
        the plane normal (unit length).
    spacing_mm : tuple of float
        (row, column) pixel spacing in mm.
    orientation_labels : dict of str to str
        Patient direction at each edge: keys "top", "bottom", "left", "right".
    """

    pixels: np.ndarray
    affine: np.ndarray
    spacing_mm: tuple[float, float]
    orientation_labels: dict[str, str]


def direction_label(direction: np.ndarray) -> str:
    """Return the patient direction letters of an LPS vector, biggest first.

    Parameters
    ----------
    direction : numpy.ndarray
        A vector in patient LPS coordinates.

    Returns
    -------
    str
        One to three of L/R, P/A, H/F (PS3.3 C.7.6.1.1.1 letters); components
        under a quarter of the length are left out.

    Examples
    --------
    >>> import numpy as np
    >>> direction_label(np.array([0.0, -1.0, 0.0]))
    'A'
    >>> direction_label(np.array([0.7, 0.0, -0.7]))
    'LF'
    """
    vector = np.asarray(direction, dtype=np.float64)
    length = float(np.linalg.norm(vector))
    if length == 0:
        return ""
    vector = vector / length
    letters = []
    for axis in np.argsort(-np.abs(vector), kind="stable"):
        if abs(vector[axis]) < _LABEL_THRESHOLD:
            continue
        labels = _POSITIVE_LABELS if vector[axis] > 0 else _NEGATIVE_LABELS
        letters.append(labels[axis])
    return "".join(letters)


def edge_labels(
    row_direction: np.ndarray, column_direction: np.ndarray
) -> dict[str, str]:
    """Return the labels of the four edges of an image.

    Parameters
    ----------
    row_direction : numpy.ndarray
        LPS direction in which the row index grows (down the image).
    column_direction : numpy.ndarray
        LPS direction in which the column index grows (to the right).

    Returns
    -------
    dict of str to str
        Keys "top", "bottom", "left", "right".
    """
    return {
        "top": direction_label(-row_direction),
        "bottom": direction_label(row_direction),
        "left": direction_label(-column_direction),
        "right": direction_label(column_direction),
    }


def _corners_lps(volume: Volume) -> np.ndarray:
    """Return the LPS positions of the 8 corner voxel centres."""
    slices, rows, columns = volume.voxels.shape
    corners = np.array(
        [[s, r, c, 1.0] for s in (0, slices - 1) for r in (0, rows - 1)
         for c in (0, columns - 1)]
    )
    return (volume.affine @ corners.T).T[:, :3]


def oblique(
    volume: Volume,
    row_direction: np.ndarray,
    column_direction: np.ndarray,
    center_mm: np.ndarray | None = None,
    *,
    spacing_mm: float | None = None,
    slab_thickness_mm: float = 0.0,
    slab_mode: SlabMode | str = SlabMode.MIP,
    order: int = 1,
) -> Reformat:
    """Resample a plane (or a thick slab) of any orientation from a volume.

    Parameters
    ----------
    volume : Volume
        The source volume; positions come from its affine.
    row_direction : numpy.ndarray
        LPS direction down the output image (row index grows).
    column_direction : numpy.ndarray
        LPS direction to the right of the output image; made orthogonal to
        `row_direction`.
    center_mm : numpy.ndarray, optional
        An LPS point on the plane; default the centre of the volume.
    spacing_mm : float, optional
        Output pixel spacing; default the smallest in-plane spacing of the volume.
    slab_thickness_mm : float, optional
        Thickness of the slab along the plane normal; 0 (default) for one plane.
    slab_mode : SlabMode or str, optional
        "mip", "minip" or "average" across the slab. Default "mip".
    order : int, optional
        Spline order of the interpolation (0 nearest, 1 trilinear). Default 1.

    Returns
    -------
    Reformat
        The image covers the whole volume as projected onto the plane.

    Raises
    ------
    ValueError
        If the directions are parallel or zero, or the thickness is negative.
    """
    mode = SlabMode(slab_mode)
    rows_dir = np.asarray(row_direction, dtype=np.float64)
    cols_dir = np.asarray(column_direction, dtype=np.float64)
    if np.linalg.norm(rows_dir) == 0 or np.linalg.norm(cols_dir) == 0:
        raise ValueError("row_direction and column_direction must not be zero")
    rows_dir = rows_dir / np.linalg.norm(rows_dir)
    cols_dir = cols_dir - np.dot(cols_dir, rows_dir) * rows_dir
    if np.linalg.norm(cols_dir) < 1e-6:
        raise ValueError("row_direction and column_direction must not be parallel")
    cols_dir = cols_dir / np.linalg.norm(cols_dir)
    normal = np.cross(cols_dir, rows_dir)
    if slab_thickness_mm < 0:
        raise ValueError(f"slab_thickness_mm must be >= 0, got {slab_thickness_mm}")

    corners = _corners_lps(volume)
    center = corners.mean(axis=0) if center_mm is None else np.asarray(center_mm, float)
    step = float(spacing_mm or min(volume.spacing_mm[1], volume.spacing_mm[2]))

    # The output spans the volume's corners projected onto the plane.
    along_rows = (corners - center) @ rows_dir
    along_cols = (corners - center) @ cols_dir
    row_extent = float(along_rows.max() - along_rows.min())
    column_extent = float(along_cols.max() - along_cols.min())
    n_rows = min(int(np.floor(row_extent / step)) + 1, _MAX_SIDE)
    n_cols = min(int(np.floor(column_extent / step)) + 1, _MAX_SIDE)
    origin = center + along_rows.min() * rows_dir + along_cols.min() * cols_dir

    # Planes of the slab, one per slice spacing (at least the centre plane).
    slice_step = max(volume.spacing_mm[0], 1e-3)
    n_planes = max(1, int(np.ceil(slab_thickness_mm / slice_step)))
    offsets = (np.arange(n_planes) - (n_planes - 1) / 2) * (
        slab_thickness_mm / n_planes if n_planes > 1 else 0.0
    )

    inverse = np.linalg.inv(volume.affine)
    r_index = c_index = None
    planes = []
    for offset in offsets:
        start = (inverse @ np.append(origin + normal * offset, 1.0))[:3]
        lattice = _lattice_plane(volume.voxels, start,
                                 inverse[:3, :3] @ (rows_dir * step),
                                 inverse[:3, :3] @ (cols_dir * step), n_rows, n_cols)
        if lattice is not None:
            planes.append(lattice)
            continue
        if r_index is None or c_index is None:
            r_index, c_index = np.mgrid[0:n_rows, 0:n_cols].astype(np.float64)
        points = (
            origin[:, None, None]
            + rows_dir[:, None, None] * (r_index * step)
            + cols_dir[:, None, None] * (c_index * step)
            + normal[:, None, None] * offset
        )
        homogeneous = np.concatenate([points, np.ones((1, n_rows, n_cols))])
        index = np.tensordot(inverse, homogeneous, axes=1)[:3]
        sampled = ndimage.map_coordinates(
            volume.voxels, index, output=np.float32, order=order,
            mode="constant", cval=np.nan, prefilter=False,
        )
        planes.append(sampled)
    stack = np.stack(planes)

    if len(planes) == 1:
        pixels = stack[0]
    elif mode is SlabMode.MIP:
        pixels = np.nanmax(stack, axis=0) if not np.isnan(stack).all() else stack[0]
    elif mode is SlabMode.MINIP:
        pixels = np.nanmin(stack, axis=0) if not np.isnan(stack).all() else stack[0]
    else:
        pixels = _nanmean(stack)

    affine = np.eye(4)
    affine[:3, 0] = rows_dir * step
    affine[:3, 1] = cols_dir * step
    affine[:3, 2] = normal
    affine[:3, 3] = origin
    return Reformat(
        pixels.astype(np.float32),
        affine,
        (step, step),
        edge_labels(rows_dir, cols_dir),
    )


def _lattice_plane(
    voxels: np.ndarray,
    start: np.ndarray,
    row_step: np.ndarray,
    column_step: np.ndarray,
    n_rows: int,
    n_cols: int,
) -> np.ndarray | None:
    """Return the plane by slicing when it falls exactly on voxel centres.

    When each output step is one voxel along one array axis and the first
    sample is a voxel centre, interpolation would return the voxels unchanged:
    a (strided, possibly reversed) view of the array gives the same plane
    without computing any weights. Returns None for every other plane.
    Positions within 1e-3 voxel of a centre count as on it (real slice
    positions carry rounding of that order; the interpolation weight of the
    neighbour would be below 0.001).
    """
    tolerance = 1e-3
    axes = []
    for step in (row_step, column_step):
        nonzero = np.flatnonzero(np.abs(step) > tolerance)
        if len(nonzero) != 1 or abs(abs(step[nonzero[0]]) - 1) > tolerance:
            return None
        axes.append((int(nonzero[0]), int(np.sign(step[nonzero[0]]))))
    if axes[0][0] == axes[1][0] or np.any(np.abs(start - np.rint(start)) > tolerance):
        return None
    start_index = np.rint(start).astype(int)
    fixed = ({0, 1, 2} - {axes[0][0], axes[1][0]}).pop()
    if not 0 <= start_index[fixed] < voxels.shape[fixed]:
        return np.full((n_rows, n_cols), np.nan, np.float32)

    out = np.full((n_rows, n_cols), np.nan, np.float32)
    bounds = []
    for (axis, sign), count in zip(axes, (n_rows, n_cols), strict=True):
        # Output positions k with 0 <= start + sign * k < size.
        first = start_index[axis]
        size = voxels.shape[axis]
        ks = np.arange(count)
        valid = ks[(first + sign * ks >= 0) & (first + sign * ks < size)]
        if valid.size == 0:
            return out
        bounds.append((int(valid[0]), int(valid[-1]) + 1, first, sign))
    index: list[slice | int] = [slice(None)] * 3
    index[fixed] = int(start_index[fixed])
    for (axis, _), (k0, k1, first, sign) in zip(axes, bounds, strict=True):
        begin, end = first + sign * k0, first + sign * (k1 - 1)
        if sign > 0:
            index[axis] = slice(begin, end + 1)
        else:
            index[axis] = slice(begin, end - 1 if end > 0 else None, -1)
    plane = voxels[tuple(index)]
    if axes[0][0] > axes[1][0]:
        plane = plane.T
    (r0, r1, _, _), (c0, c1, _, _) = bounds
    out[r0:r1, c0:c1] = plane
    return out


def _nanmean(stack: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN, NaN where every plane is NaN (no warning)."""
    valid = ~np.isnan(stack)
    count = valid.sum(axis=0)
    total = np.where(valid, stack, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _through(volume: Volume, axis: int, location_mm: float | None) -> np.ndarray:
    """Return the centre of the volume moved to `location_mm` on LPS `axis`."""
    center = _corners_lps(volume).mean(axis=0)
    if location_mm is not None:
        center[axis] = float(location_mm)
    return center


def axial(
    volume: Volume, location_mm: float | None = None, **slab: object
) -> Reformat:
    """Return the axial plane at LPS z = `location_mm` (default the centre).

    Shown the radiological way: patient's right on the image left ("R" left,
    "L" right), anterior at the top. Keyword arguments are those of
    :func:`oblique` (``slab_thickness_mm``, ``slab_mode``, ``spacing_mm``).
    """
    return oblique(volume, np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]),
                   _through(volume, 2, location_mm), **slab)  # type: ignore[arg-type]


def coronal(
    volume: Volume, location_mm: float | None = None, **slab: object
) -> Reformat:
    """Return the coronal plane at LPS y = `location_mm` (default the centre).

    Head at the top, patient's right on the image left. Keyword arguments are
    those of :func:`oblique`.
    """
    return oblique(volume, np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0]),
                   _through(volume, 1, location_mm), **slab)  # type: ignore[arg-type]


def sagittal(
    volume: Volume, location_mm: float | None = None, **slab: object
) -> Reformat:
    """Return the sagittal plane at LPS x = `location_mm` (default the centre).

    Head at the top, anterior on the image left. Keyword arguments are those
    of :func:`oblique`.
    """
    return oblique(volume, np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0]),
                   _through(volume, 0, location_mm), **slab)  # type: ignore[arg-type]
