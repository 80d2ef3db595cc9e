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

    def __init__(self, pixels: np.ndarray, affine: np.ndarray,
                 spacing_mm: tuple[float, float],
                 orientation_labels: dict[str, str]) -> None:
        # Scrolling builds one per frame shown: filling the instance dict
        # directly costs half of the frozen dataclass's object.__setattr__
        # calls; assigning an attribute afterwards is still refused.
        fields = self.__dict__
        fields["pixels"] = pixels
        fields["affine"] = affine
        fields["spacing_mm"] = spacing_mm
        fields["orientation_labels"] = orientation_labels


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

    Notes
    -----
    Samples are placed by the true slice positions: when the gaps between
    slices are uneven (see
    :attr:`~viewerlib.volume.volume.Volume.affine_is_exact`) each point is
    found between its two neighbouring slice planes, not by the affine's mean
    step, and interpolated there.
    """
    mode = SlabMode(slab_mode)
    exact = volume.affine_is_exact
    if exact and slab_thickness_mm == 0 and spacing_mm is None and order in (0, 1):
        plane = _aligned_plane(volume, row_direction, column_direction, center_mm,
                               order)
        if plane is not None:
            return plane
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
    row_step, column_step = _output_spacing(volume, rows_dir, cols_dir, spacing_mm)

    # The output spans the volume's corners projected onto the plane.
    along_rows = (corners - center) @ rows_dir
    along_cols = (corners - center) @ cols_dir
    row_extent = float(along_rows.max() - along_rows.min())
    column_extent = float(along_cols.max() - along_cols.min())
    n_rows = min(int(np.floor(row_extent / row_step + 1e-6)) + 1, _MAX_SIDE)
    n_cols = min(int(np.floor(column_extent / column_step + 1e-6)) + 1, _MAX_SIDE)
    origin = center + along_rows.min() * rows_dir + along_cols.min() * cols_dir

    # Planes of the slab, one per slice spacing (at least the centre plane).
    slice_step = max(volume.spacing_mm[0], 1e-3)
    n_planes = max(1, int(np.ceil(slab_thickness_mm / slice_step)))
    offsets = (np.arange(n_planes) - (n_planes - 1) / 2) * (
        slab_thickness_mm / n_planes if n_planes > 1 else 0.0
    )

    inverse = np.linalg.inv(volume.affine)
    index_row_step = inverse[:3, :3] @ (rows_dir * row_step)
    index_column_step = inverse[:3, :3] @ (cols_dir * column_step)
    r_index = c_index = None
    planes = []
    for offset in offsets:
        start = (inverse @ np.append(origin + normal * offset, 1.0))[:3]
        # Cheapest exact route first: slicing, then line blending, then splines.
        plane = None
        if exact:
            plane = _lattice_plane(volume.voxels, start, index_row_step,
                                   index_column_step, n_rows, n_cols)
        if plane is None and order == 1 and exact:
            plane = _single_oblique_plane(volume.voxels, start, index_row_step,
                                          index_column_step, n_rows, n_cols)
        if plane is not None:
            planes.append(plane)
            continue
        if r_index is None or c_index is None:
            r_index, c_index = np.mgrid[0:n_rows, 0:n_cols].astype(np.float64)
        points = (
            origin[:, None, None]
            + rows_dir[:, None, None] * (r_index * row_step)
            + cols_dir[:, None, None] * (c_index * column_step)
            + normal[:, None, None] * offset
        )
        if exact:
            homogeneous = np.concatenate([points, np.ones((1, n_rows, n_cols))])
            index = np.tensordot(inverse, homogeneous, axes=1)[:3]
        else:
            index = _true_index(volume, points)
        sampled = ndimage.map_coordinates(
            volume.voxels, index, output=np.float32, order=order,
            mode="constant", cval=np.nan, prefilter=False,
        )
        planes.append(sampled)
    if len(planes) == 1:
        pixels = planes[0]
    else:
        pixels = _combine_slab(np.stack(planes), mode)

    affine = np.eye(4)
    affine[:3, 0] = rows_dir * row_step
    affine[:3, 1] = cols_dir * column_step
    affine[:3, 2] = normal
    affine[:3, 3] = origin
    return Reformat(
        pixels.astype(np.float32, copy=False),
        affine,
        (row_step, column_step),
        edge_labels(rows_dir, cols_dir),
    )


def _true_index(volume: Volume, points: np.ndarray) -> np.ndarray:
    """(3, rows, columns) LPS points to array indexes by the true slice positions.

    A slice index within 1e-3 of the first or last slice is put on it, as the
    slicing routes do for the affine, so that a plane through an end slice is
    not lost to rounding.
    """
    index = np.moveaxis(volume.lps_to_index(np.moveaxis(points, 0, -1)), -1, 0)
    last = volume.voxels.shape[0] - 1
    slice_index = index[0]
    slice_index[np.abs(slice_index) < 1e-3] = 0.0
    slice_index[np.abs(slice_index - last) < 1e-3] = float(last)
    return index


@dataclass(frozen=True)
class _AlignedGeometry:
    """What an axis-aligned reformat of one volume needs, worked out once."""

    fixed_axis: int
    index: tuple[slice, slice]
    transpose: bool
    spacing_mm: tuple[float, float]
    labels: dict[str, str]
    affine: np.ndarray
    inverse: np.ndarray


def _aligned_geometry(volume: Volume, row_direction: np.ndarray,
                      column_direction: np.ndarray) -> _AlignedGeometry | None:
    # Per-volume memo: the geometry depends only on the affine and the directions.
    key = (np.asarray(row_direction, float).tobytes(),
           np.asarray(column_direction, float).tobytes())
    memo = volume.__dict__.setdefault("_aligned_reformats", {})
    if key in memo and memo[key][0] is volume.affine:
        return memo[key][1]
    axes = volume.affine[:3, :3] / np.linalg.norm(volume.affine[:3, :3], axis=0)
    picked = []
    for direction in (np.asarray(row_direction, float),
                      np.asarray(column_direction, float)):
        length = float(np.linalg.norm(direction))
        alignment = axes.T @ (direction / length) if length else np.zeros(3)
        axis = int(np.argmax(np.abs(alignment)))
        if abs(abs(alignment[axis]) - 1) > 1e-6:
            memo[key] = (volume.affine, None)
            return None
        picked.append((axis, 1 if alignment[axis] > 0 else -1))
    (row_axis, row_sign), (column_axis, column_sign) = picked
    if row_axis == column_axis:
        memo[key] = (volume.affine, None)
        return None
    fixed = ({0, 1, 2} - {row_axis, column_axis}).pop()
    by_axis = {row_axis: slice(None, None, row_sign),
               column_axis: slice(None, None, column_sign)}
    index = tuple(by_axis[a] for a in sorted(by_axis))
    shape = volume.voxels.shape
    first = [0, 0, 0]
    first[row_axis] = 0 if row_sign > 0 else shape[row_axis] - 1
    first[column_axis] = 0 if column_sign > 0 else shape[column_axis] - 1
    affine = np.eye(4)
    affine[:3, 0] = volume.affine[:3, row_axis] * row_sign
    affine[:3, 1] = volume.affine[:3, column_axis] * column_sign
    affine[:3, 2] = np.cross(affine[:3, 1], affine[:3, 0])
    affine[:3, 2] /= np.linalg.norm(affine[:3, 2])
    affine[:3, 3] = (volume.affine @ [*first, 1.0])[:3]
    geometry = _AlignedGeometry(
        fixed_axis=fixed, index=index,  # type: ignore[arg-type]
        transpose=row_axis > column_axis,
        spacing_mm=(float(volume.spacing_mm[row_axis]),
                    float(volume.spacing_mm[column_axis])),
        labels=edge_labels(affine[:3, 0], affine[:3, 1]),
        affine=affine, inverse=np.linalg.inv(volume.affine))
    memo[key] = (volume.affine, geometry)
    return geometry


def _aligned_plane(volume: Volume, row_direction: np.ndarray,
                   column_direction: np.ndarray, center_mm: np.ndarray | None,
                   order: int) -> Reformat | None:
    """An orthogonal reformat of a volume whose axes it follows, by plain slicing.

    The plane keeps the acquired voxels one to one at their own spacing, so no
    interpolation happens within it; between two planes of voxels, the two are
    blended linearly (``order=1``) or the nearer is taken (``order=0``).
    Returns None when the directions do not follow the volume's axes.
    """
    geometry = _aligned_geometry(volume, row_direction, column_direction)
    if geometry is None:
        return None
    voxels = volume.voxels
    size = voxels.shape[geometry.fixed_axis]
    if center_mm is None:
        position = (size - 1) / 2.0
    else:
        inverse = geometry.inverse[geometry.fixed_axis]
        x, y, z = (float(v) for v in center_mm)
        position = inverse[0] * x + inverse[1] * y + inverse[2] * z + inverse[3]

    def plane(at: int) -> np.ndarray:
        index: list[slice | int] = list(geometry.index)
        index.insert(geometry.fixed_axis, at)
        picked = voxels[tuple(index)]
        return (picked.T if geometry.transpose else picked).astype(np.float32)

    nearest = int(round(position))
    if abs(position - nearest) < 1e-3 or order == 0:
        if not 0 <= nearest < size:
            return None  # outside the volume: the general route fills NaN
        pixels = plane(nearest)
    else:
        below = int(np.floor(position))
        if below < 0 or below + 1 >= size:
            return None
        weight = np.float32(position - below)
        pixels = plane(below)
        pixels *= 1 - weight
        pixels += weight * plane(below + 1)

    affine = geometry.affine.copy()
    affine[:3, 3] += volume.affine[:3, geometry.fixed_axis] * position
    return Reformat(pixels, affine, geometry.spacing_mm, dict(geometry.labels))


def _combine_slab(stack: np.ndarray, mode: SlabMode) -> np.ndarray:
    """Combine the planes of a thick slab (axis 0), ignoring NaN outside the volume."""
    if mode is SlabMode.MIP:
        return np.nanmax(stack, axis=0) if not np.isnan(stack).all() else stack[0]
    if mode is SlabMode.MINIP:
        return np.nanmin(stack, axis=0) if not np.isnan(stack).all() else stack[0]
    return _nanmean(stack)


def _output_spacing(volume: Volume, rows_dir: np.ndarray, cols_dir: np.ndarray,
                    spacing_mm: float | tuple[float, float] | None
                    ) -> tuple[float, float]:
    """(row, column) spacing of a reformat: as asked, else native where possible.

    A direction along an axis of the volume keeps that axis' own spacing, so an
    orthogonal reformat shows the acquired voxels one to one (its pixels may be
    non-square; the viewer draws them at their true aspect). Other directions
    take the finest in-plane spacing.
    """
    if spacing_mm is not None:
        pair = (spacing_mm, spacing_mm) if np.isscalar(spacing_mm) else spacing_mm
        steps = tuple(float(v) for v in pair)  # type: ignore[union-attr]
        if len(steps) != 2 or min(steps) <= 0:
            raise ValueError(f"spacing_mm must be positive, got {spacing_mm!r}")
        return steps[0], steps[1]
    finest = float(min(volume.spacing_mm[1], volume.spacing_mm[2]))
    axes = volume.affine[:3, :3] / np.linalg.norm(volume.affine[:3, :3], axis=0)
    steps = []
    for direction in (rows_dir, cols_dir):
        alignment = np.abs(axes.T @ direction)
        axis = int(np.argmax(alignment))
        steps.append(float(volume.spacing_mm[axis]) if alignment[axis] > 1 - 1e-6
                     else finest)
    return steps[0], steps[1]


def _single_oblique_plane(
    voxels: np.ndarray,
    start: np.ndarray,
    row_step: np.ndarray,
    column_step: np.ndarray,
    n_rows: int,
    n_cols: int,
) -> np.ndarray | None:
    """Trilinear sampling of a plane that keeps one array axis, by blending lines.

    When one in-plane direction runs along a single array axis and the other has
    no component on it, every output line lies along that axis: it is a bilinear
    blend of four whole lines of the array, followed by a linear interpolation
    along the line. This gives the same values as trilinear interpolation at a
    fraction of the cost of general spline sampling. Returns None for planes
    oblique to every axis.
    """
    tolerance = 1e-6
    for line_step, across_step, transpose in ((column_step, row_step, False),
                                              (row_step, column_step, True)):
        along = np.flatnonzero(np.abs(line_step) > tolerance)
        if len(along) == 1 and abs(across_step[along[0]]) <= tolerance:
            break
    else:
        return None
    axis = int(along[0])
    count_along, count_across = (n_rows, n_cols) if transpose else (n_cols, n_rows)
    others = [a for a in range(3) if a != axis]
    # The array as (other 1, other 2, line axis): a view, no copy.
    lines = np.moveaxis(voxels, axis, -1)
    size_a, size_b, size_line = lines.shape

    # Position of each output line on the two other axes, and its 4 neighbours.
    t = np.arange(count_across, dtype=np.float64)
    pa = start[others[0]] + t * across_step[others[0]]
    pb = start[others[1]] + t * across_step[others[1]]
    inside = (pa >= -1e-6) & (pa <= size_a - 1 + 1e-6) \
        & (pb >= -1e-6) & (pb <= size_b - 1 + 1e-6)
    a0i = np.clip(np.floor(pa).astype(np.intp), 0, max(size_a - 2, 0))
    b0i = np.clip(np.floor(pb).astype(np.intp), 0, max(size_b - 2, 0))
    a1i = np.minimum(a0i + 1, size_a - 1)
    b1i = np.minimum(b0i + 1, size_b - 1)
    fa = np.clip(pa - a0i, 0, 1).astype(np.float32)[:, None]
    fb = np.clip(pb - b0i, 0, 1).astype(np.float32)[:, None]

    # Position along the line: whole voxels need no interpolation there.
    u = np.arange(count_along, dtype=np.float64)
    pl = start[axis] + u * line_step[axis]
    inside_line = (pl >= -1e-3) & (pl <= size_line - 1 + 1e-3)
    on_voxels = bool(np.all(np.abs(pl - np.rint(pl)) < 1e-3))
    l0i = np.clip(np.rint(pl) if on_voxels else np.floor(pl), 0,
                  max(size_line - 2, 0) if not on_voxels else size_line - 1
                  ).astype(np.intp)
    fl = np.clip(pl - l0i, 0, 1).astype(np.float32)

    # Whole lines are copied out of the array (contiguous when the line axis is
    # the last one), then the samples along them are picked.
    run = on_voxels and len(l0i) > 0 and bool(np.all(np.diff(l0i) == 1))

    def along_line(ai: np.ndarray, bi: np.ndarray) -> np.ndarray:
        whole = lines[ai, bi]
        if run:
            return whole[:, l0i[0]:l0i[-1] + 1].astype(np.float32)
        if on_voxels:
            return whole[:, l0i].astype(np.float32)
        l1i = np.minimum(l0i + 1, size_line - 1)
        return (whole[:, l0i].astype(np.float32) * (1 - fl)
                + whole[:, l1i].astype(np.float32) * fl)

    corners = [along_line(ai, bi)
               for ai, bi in ((a0i, b0i), (a0i, b1i), (a1i, b0i), (a1i, b1i))]
    near = corners[0] * (1 - fb) + corners[1] * fb
    far = corners[2] * (1 - fb) + corners[3] * fb
    out = near * (1 - fa) + far * fa
    out[~inside, :] = np.nan
    out[:, ~inside_line] = np.nan
    return out.T if transpose else out


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


# Row and column directions of the three standard views (LPS), by the LPS axis
# their plane is fixed on: axial z, coronal y, sagittal x.
_STANDARD_VIEWS = {
    2: (np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])),
    1: (np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0])),
    0: (np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0])),
}
_AFFINE_MEMO_LIMIT = 4096


@dataclass
class _StandardView:
    """What a standard view of one volume needs per call, worked out once."""

    geometry: _AlignedGeometry
    position_at_zero: float  # array index along the fixed axis at location 0
    position_per_mm: float
    centre_position: float
    size: int  # planes along the fixed axis
    affines: dict[float, np.ndarray]
    # The array index with the plane number left out, per fixed axis.
    first: slice
    second: slice


def _standard_view(volume: Volume, lps_axis: int) -> _StandardView | None:
    rows_dir, cols_dir = _STANDARD_VIEWS[lps_axis]
    # Uneven slice gaps: planes are not evenly spaced voxels, so no slicing.
    geometry = (_aligned_geometry(volume, rows_dir, cols_dir)
                if volume.affine_is_exact else None)
    view = None
    if geometry is not None:
        inverse = geometry.inverse[geometry.fixed_axis]
        centre = _through(volume, lps_axis, None)
        at_centre = float(inverse[:3] @ centre + inverse[3])
        per_mm = float(inverse[lps_axis])
        first, second = geometry.index
        view = _StandardView(geometry, at_centre - per_mm * float(centre[lps_axis]),
                             per_mm, at_centre,
                             volume.voxels.shape[geometry.fixed_axis], {},
                             first, second)
    volume.__dict__.setdefault("_standard_views", {})[lps_axis] = (
        volume.affine, volume.voxels.shape, view)
    return view


def _standard_plane(volume: Volume, lps_axis: int,
                    location_mm: float | None) -> Reformat | None:
    """A standard view that falls on a plane of voxels, by slicing alone.

    The hot path of scrolling through a volume: the geometry is memoised on
    the volume (checked against its affine and shape), so a call costs one
    strided copy to float32 and a few look-ups. Returns None (the caller takes
    :func:`oblique`) when the view is oblique to the volume's axes or falls
    between two planes.
    """
    voxels = volume.voxels
    views = volume.__dict__.get("_standard_views")
    entry = views.get(lps_axis) if views is not None else None
    if entry is not None and entry[0] is volume.affine and entry[1] == voxels.shape:
        view = entry[2]
    else:
        view = _standard_view(volume, lps_axis)
    if view is None:
        return None
    if location_mm is None:
        position = view.centre_position
    else:
        position = view.position_at_zero + view.position_per_mm * location_mm
    nearest = round(position)
    if not (-1e-3 < position - nearest < 1e-3 and 0 <= nearest < view.size):
        return None
    geometry = view.geometry
    fixed = geometry.fixed_axis
    if fixed == 0:
        picked = voxels[nearest, view.first, view.second]
    elif fixed == 1:
        picked = voxels[view.first, nearest, view.second]
    else:
        picked = voxels[view.first, view.second, nearest]
    pixels = (picked.T if geometry.transpose else picked).astype(np.float32)
    affine = view.affines.get(position)
    if affine is None:
        affine = geometry.affine.copy()
        affine[:3, 3] += volume.affine[:3, fixed] * position
        if len(view.affines) >= _AFFINE_MEMO_LIMIT:
            view.affines.clear()
        view.affines[position] = affine
    return Reformat(pixels, affine.copy(), geometry.spacing_mm, dict(geometry.labels))


def _through(volume: Volume, axis: int, location_mm: float | None) -> np.ndarray:
    """Return the centre of the volume moved to `location_mm` on LPS `axis`."""
    memo = volume.__dict__.setdefault("_center_lps", {})
    if memo.get("affine") is not volume.affine:
        memo.update(affine=volume.affine, center=_corners_lps(volume).mean(axis=0))
    center = memo["center"].copy()
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
    if not slab:
        plane = _standard_plane(volume, 2, location_mm)
        if plane is not None:
            return plane
    return oblique(volume, np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]),
                   _through(volume, 2, location_mm), **slab)  # type: ignore[arg-type]


def coronal(
    volume: Volume, location_mm: float | None = None, **slab: object
) -> Reformat:
    """Return the coronal plane at LPS y = `location_mm` (default the centre).

    Head at the top, patient's right on the image left. Keyword arguments are
    those of :func:`oblique`.
    """
    if not slab:
        plane = _standard_plane(volume, 1, location_mm)
        if plane is not None:
            return plane
    return oblique(volume, np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0]),
                   _through(volume, 1, location_mm), **slab)  # type: ignore[arg-type]


def sagittal(
    volume: Volume, location_mm: float | None = None, **slab: object
) -> Reformat:
    """Return the sagittal plane at LPS x = `location_mm` (default the centre).

    Head at the top, anterior on the image left. Keyword arguments are those
    of :func:`oblique`.
    """
    if not slab:
        plane = _standard_plane(volume, 0, location_mm)
        if plane is not None:
            return plane
    return oblique(volume, np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0]),
                   _through(volume, 0, location_mm), **slab)  # type: ignore[arg-type]
