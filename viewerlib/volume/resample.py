"""Resampling a volume onto a uniform, orthogonal grid (uneven gaps, gantry tilt)."""

from __future__ import annotations

import dataclasses
import logging
import warnings

import numpy as np
from scipy import ndimage

from viewerlib.volume.volume import GAP_SLICES, Volume, _slice_list

logger = logging.getLogger(__name__)

# Largest number of output slices, so a tiny spacing cannot exhaust memory.
_MAX_SLICES = 4096
# Interpolation weights below this are taken as none: a plane that falls on an
# original slice, up to rounding, comes from that slice alone.
_WEIGHT_TOLERANCE = 1e-6
# A gap between two slices wider than this many times the series' own slice
# spacing is a hole (slices that never arrived, files missing from a folder): no
# resampled slice is interpolated across it. One slice lost makes a gap of 2
# spacings, bridged as before and told as uneven spacing; the margin above 2
# absorbs rounding and a variable pitch. Two or more lost slices are a hole.
_HOLE_FACTOR = 2.2


def _slice_frame(volume: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the unit column direction, row direction and normal of the slices."""
    down = volume.affine[:3, 1] / np.linalg.norm(volume.affine[:3, 1])
    across = volume.affine[:3, 2] / np.linalg.norm(volume.affine[:3, 2])
    normal = np.cross(across, down)
    return down, across, normal / np.linalg.norm(normal)


def resample_uniform(
    volume: Volume, slice_spacing_mm: float | None = None, *, order: int = 1
) -> Volume:
    """Return `volume` on an orthogonal grid with evenly spaced slices.

    Parameters
    ----------
    volume : Volume
        A volume from :func:`~viewerlib.volume.volume.read_series`, possibly
        with uneven slice gaps or a gantry tilt.
    slice_spacing_mm : float, optional
        Spacing of the new slices; default the smallest gap between the
        original slice planes (no detail is lost), made a little smaller if
        need be so that the first and last new slices fall on the first and
        last original ones.
    order : int, optional
        Interpolation order, 0 (nearest) or 1 (linear, default).

    Returns
    -------
    Volume
        Slices perpendicular to the original slice normal, at the original
        in-plane spacing, covering every original voxel. The affine has no
        shear, so MPR and 3-D rendering are geometrically right. Outside the
        original data the voxels take the volume's smallest value. Integer
        volumes stay integer (rounded). ``source_order``, ``source_frames`` and
        ``datasets`` name the original slice nearest each new slice.
        ``missing_slices`` names every new slice interpolated from a slice
        that could not be decoded (a blank one), however little it weighs:
        such a slice is not the patient's image either.

    Raises
    ------
    ValueError
        If the volume has fewer than two slices, the spacing is not positive or
        `order` is not 0 or 1.

    Warns
    -----
    UserWarning
        When the volume has missing slices: the note (also in ``warnings``)
        names the new slices they spoil.

    Notes
    -----
    Each output point is placed with the true slice positions
    (``slice_positions_mm``), not the mean step of the affine: its distance
    along the normal gives a fractional slice index by interpolation between
    the two nearest planes, and its in-plane index is measured from that
    interpolated slice origin. This handles uneven gaps and tilt (a slice
    origin sliding along the plane) in one step.

    Examples
    --------
    >>> import numpy as np
    >>> from viewerlib.samples.phantom import ct_head_phantom
    >>> from viewerlib import read_series
    >>> study = ct_head_phantom(rows=8, columns=8, number_of_slices=3)
    >>> volume = read_series(study.datasets)[0]
    >>> resample_uniform(volume).shape == volume.shape
    True
    """
    resampled, spoiled = _resample(volume, slice_spacing_mm, order)
    if spoiled:
        warnings.warn(spoiled, UserWarning, stacklevel=2)
    return resampled


def _resample(
    volume: Volume, slice_spacing_mm: float | None, order: int
) -> tuple[Volume, str]:
    """:func:`resample_uniform`, and its note on missing slices ("" if none)."""
    if order not in (0, 1):
        raise ValueError(f"order must be 0 or 1, got {order}")
    slices = volume.voxels.shape[0]
    if slices < 2:
        raise ValueError("Resampling needs at least two slices")
    down, across, normal = _slice_frame(volume)
    positions = np.asarray(volume.slice_positions_mm, dtype=np.float64)
    along = positions @ normal
    if np.any(np.diff(along) <= 0):
        raise ValueError(
            "Slice positions do not increase along the normal (repeated "
            "positions?); such a stack cannot be resampled"
        )
    spacing = float(slice_spacing_mm or np.min(np.diff(along)))
    if spacing <= 0:
        raise ValueError(f"slice_spacing_mm must be positive, got {spacing}")
    if slice_spacing_mm is None:
        spacing = _covering_spacing(float(along[-1] - along[0]), spacing)
    row_mm, column_mm = volume.spacing_mm[1], volume.spacing_mm[2]
    rows, columns = volume.voxels.shape[1:]

    # The new grid: in-plane axes of the slices, covering every original
    # corner once projected (a tilt slides slices sideways).
    corners = np.array([
        p + down * r * row_mm + across * c * column_mm
        for p in (positions[0], positions[-1])
        for r in (0, rows - 1) for c in (0, columns - 1)
    ])
    d_min = (corners @ down).min()
    a_min = (corners @ across).min()
    new_rows = int(np.floor(((corners @ down).max() - d_min) / row_mm + 1e-6)) + 1
    new_columns = int(np.floor(((corners @ across).max() - a_min) / column_mm
                               + 1e-6)) + 1
    new_slices = min(int(np.floor((along[-1] - along[0]) / spacing + 1e-6)) + 1,
                     _MAX_SLICES)
    origin = normal * along[0] + down * d_min + across * a_min

    index_of_slice = np.interp  # fractional slice index from distance
    k = np.arange(new_slices, dtype=np.float64)
    plane_distance = along[0] + k * spacing
    s_index = index_of_slice(plane_distance, along, np.arange(slices))
    # Origin of the (interpolated) original slice through each new plane.
    lower = np.clip(np.floor(s_index).astype(int), 0, slices - 2)
    frac = (s_index - lower)[:, None]
    slice_origin = positions[lower] * (1 - frac) + positions[lower + 1] * frac

    # A new slice strictly inside a hole would be made up from slices far apart.
    holes = _holes(np.diff(along))
    in_hole = np.isin(lower, holes) & (frac[:, 0] > _WEIGHT_TOLERANCE) & (
        frac[:, 0] < 1 - _WEIGHT_TOLERANCE)
    out_dtype = volume.voxels.dtype
    voxels = np.empty((new_slices, new_rows, new_columns), dtype=out_dtype)
    fill = float(volume.voxels.min())
    r_grid, c_grid = np.mgrid[0:new_rows, 0:new_columns].astype(np.float32)
    same_grid = (new_rows, new_columns) == (rows, columns)
    for n in range(new_slices):
        if in_hole[n]:
            voxels[n] = fill
            continue
        corner = origin + normal * (k[n] * spacing)
        shift = corner - slice_origin[n]
        r0, c0 = float(shift @ down) / row_mm, float(shift @ across) / column_mm
        if same_grid and abs(r0) < 1e-6 and abs(c0) < 1e-6:
            # No tilt: the new plane is the linear blend of its two neighbours,
            # which is what trilinear sampling gives, at a fraction of the cost
            # (order 0: the nearest one, rounding half up as ndimage does).
            below, weight = int(lower[n]), np.float32(frac[n, 0])
            if order == 0:
                weight = np.float32(weight >= 0.5)
            plane = volume.voxels[below].astype(np.float32)
            if weight > 0:
                plane *= 1 - weight
                plane += weight * volume.voxels[below + 1].astype(np.float32)
            voxels[n] = np.rint(plane) if out_dtype.kind in "iu" else plane
            continue
        coordinates = np.stack([
            np.full_like(r_grid, s_index[n]), r_grid + r0, c_grid + c0])
        plane = ndimage.map_coordinates(
            volume.voxels, coordinates, output=np.float32, order=order,
            mode="constant", cval=fill, prefilter=False)
        if out_dtype.kind in "iu":
            plane = np.rint(plane)
        voxels[n] = plane

    affine = np.eye(4)
    affine[:3, 0] = normal * spacing
    affine[:3, 1] = down * row_mm
    affine[:3, 2] = across * column_mm
    affine[:3, 3] = origin
    nearest = np.clip(np.rint(s_index).astype(int), 0, slices - 1)
    note = (
        f"Resampled from {slices} slices to {new_slices} at {spacing:.3f} mm on an "
        "orthogonal grid (resample_uniform)"
    )
    logger.info(note)
    notes = [*volume.warnings, note]
    spoiled, spoiled_note = _spoiled_slices(volume.missing_slices, lower,
                                            frac[:, 0], order, slices)
    if spoiled_note:
        notes.append(spoiled_note)
    blank = np.flatnonzero(in_hole).tolist()
    if blank:
        notes.append(_hole_note(along, holes, blank, new_slices, fill))
    return dataclasses.replace(
        volume,
        voxels=voxels,
        affine=affine,
        spacing_mm=(spacing, float(row_mm), float(column_mm)),
        source_order=[volume.source_order[i] for i in nearest],
        source_frames=[volume.source_frames[i] for i in nearest],
        datasets=[volume.datasets[i] for i in nearest],
        slice_positions_mm=np.array([origin + normal * (x * spacing) for x in k]),
        warnings=notes,
        missing_slices=sorted(set(spoiled) | set(blank)),
    ), spoiled_note


def _holes(gaps: np.ndarray) -> list[int]:
    """Indexes of the gaps (gap i lies after slice i) too wide to interpolate across.

    The series' own spacing is taken as the smallest gap, but no smaller than half
    the median gap (one stray, nearly repeated position does not set it): the
    median alone would be too coarse when many slices are missing here and there.
    """
    if gaps.size < 1:
        return []
    own = max(float(gaps.min()), float(np.median(gaps)) / 2)
    return np.flatnonzero(gaps > _HOLE_FACTOR * own).tolist()


def _hole_note(along: np.ndarray, holes: list[int], blank: list[int],
               new_slices: int, fill: float) -> str:
    """The note (also logged) on the new slices left blank in holes of the series."""
    gaps = np.diff(along)
    own = max(float(gaps.min()), float(np.median(gaps)) / 2)
    widest = max(float(gaps[i]) for i in holes)
    where = ", ".join(f"{i + 1} and {i + 2} ({gaps[i]:.1f} mm)" for i in holes[:10])
    if len(holes) > 10:
        where += f" and {len(holes) - 10} more"
    note = (
        f"{GAP_SLICES}: {len(blank)} resampled slice(s) of {new_slices} lie in "
        f"{len(holes)} gap(s) of the series up to {widest:.1f} mm wide, more than "
        f"{_HOLE_FACTOR:g} times its slice spacing ({own:.3f} mm): between original "
        f"slices {where} of {len(along)} (counted from 1). No image of the patient "
        f"was there: resampled slice(s) {_slice_list(blank)} are left blank (value "
        f"{fill:g}), not interpolated across the gap, and named in missing_slices; "
        "do not read or measure across them"
    )
    logger.warning(note)
    return note


def _spoiled_slices(
    missing: list[int], lower: np.ndarray, fraction: np.ndarray, order: int,
    slices: int,
) -> tuple[list[int], str]:
    """The new slices interpolated from a missing one, and the note that says so.

    Parameters
    ----------
    missing : list of int
        ``missing_slices`` of the original volume (blank slices).
    lower, fraction : numpy.ndarray
        For each new slice, the original slice below it and how far (0 to 1)
        it lies towards the next one.
    order : int
        1: both neighbours count, each unless its weight is (nearly) zero;
        0: the nearest one counts (both at an exact half, where rounding
        could go either way).
    slices : int
        Slices of the original volume.

    Returns
    -------
    spoiled : list of int
        Indexes of the new slices, from 0.
    note : str
        "" when nothing is missing.
    """
    lost = set(missing)
    if not lost:
        return [], ""
    spoiled = []
    for n, (below, part) in enumerate(zip(lower.tolist(), fraction.tolist(),
                                          strict=True)):
        if order == 0:
            half = abs(part - 0.5) <= _WEIGHT_TOLERANCE
            used = {below, below + 1} if half else {below + int(part > 0.5)}
        else:
            used = ({below} if part < 1 - _WEIGHT_TOLERANCE else set()) | (
                {below + 1} if part > _WEIGHT_TOLERANCE else set())
        if used & lost:
            spoiled.append(n)
    originals = _slice_list(sorted(lost))
    if not spoiled:
        logger.info("no resampled slice lies on the missing slice(s) %s", originals)
        return [], ""
    # A blend with a blank slice is a made-up image: flagged like the blank one.
    note = (
        f"Missing slice(s) after resampling: resampled slice(s) "
        f"{_slice_list(spoiled)} of {len(lower)} are interpolated from original "
        f"slice(s) {originals} of {slices} (counted from 1), which could not be "
        "decoded (blank); "
        "they are not the patient's image, so do not read or measure on them "
        "(missing_slices names them on the new grid)"
    )
    logger.warning(note)
    return spoiled, note


def _covering_spacing(extent_mm: float, spacing_mm: float) -> float:
    """Return the largest spacing <= `spacing_mm` that divides `extent_mm` evenly."""
    if extent_mm <= 0:
        return spacing_mm
    steps = max(1, int(np.ceil(extent_mm / spacing_mm - 1e-6)))
    return extent_mm / steps


def _is_sheared(volume: Volume) -> bool:
    """True when the slice axis of the affine is not along the slice normal."""
    _, _, normal = _slice_frame(volume)
    step = volume.affine[:3, 0]
    length = float(np.linalg.norm(step))
    return length > 0 and abs(abs(float(step @ normal)) / length - 1) > 1e-6


def on_uniform_grid(volume: Volume, *, orthogonal: bool = False,
                    warn: bool = True) -> Volume:
    """Return `volume` itself when its grid is uniform, else a resampled copy.

    Parameters
    ----------
    volume : Volume
        A volume from :func:`~viewerlib.volume.volume.read_series`.
    orthogonal : bool, optional
        Also resample a gantry tilt (a sheared affine), for views that draw
        the voxel grid as a box, such as the 3-D viewer. Default False: a
        sheared but evenly spaced volume is returned as it is.
    warn : bool, optional
        Whether to warn of resampled slices interpolated from a missing one
        (default). A viewer passes False when the reader has been told of the
        missing slice already (read_series warns of it; the MPR shows it), so
        that one slice is not told again by the slices resampled from it; the
        note is in ``warnings`` either way.

    Returns
    -------
    Volume
        `volume` when its affine is exact (and unsheared, if `orthogonal`);
        otherwise :func:`resample_uniform` of it, whose ``warnings`` end with a
        note of the resampling (also logged). The new slice spacing is the
        smallest gap, but no finer than half the median gap, so that one
        close pair of slices cannot multiply the memory; it is adjusted to
        reach the last slice exactly. A volume that cannot be resampled
        (repeated positions) is returned as it is, with a warning note.
        ``missing_slices`` is mapped onto the new grid as by
        :func:`resample_uniform`.

    Warns
    -----
    UserWarning
        When a resampled slice is interpolated from a missing one, unless
        `warn` is False.

    Examples
    --------
    >>> from viewerlib.samples.phantom import ct_head_phantom
    >>> from viewerlib import read_series
    >>> study = ct_head_phantom(rows=8, columns=8, number_of_slices=3)
    >>> volume = read_series(study.datasets)[0]
    >>> on_uniform_grid(volume) is volume
    True
    """
    if volume.voxels.shape[0] < 2:
        return volume
    if volume.affine_is_exact and not (orthogonal and _is_sheared(volume)):
        return volume
    _, _, normal = _slice_frame(volume)
    along = np.asarray(volume.slice_positions_mm, np.float64) @ normal
    gaps = np.abs(np.diff(along))
    spacing = float(volume.spacing_mm[0])
    if not volume.affine_is_exact and gaps.size and gaps.min() > 0:
        spacing = max(float(gaps.min()), float(np.median(gaps)) / 2)
    try:
        resampled, spoiled = _resample(
            volume, _covering_spacing(float(abs(along[-1] - along[0])), spacing), 1)
    except ValueError as err:
        note = (f"The volume could not be resampled onto a uniform grid ({err}); "
                "it is shown on its own grid, so slices may be misplaced")
        logger.warning(note)
        return dataclasses.replace(volume, warnings=[*volume.warnings, note])
    if spoiled and warn:
        warnings.warn(spoiled, UserWarning, stacklevel=2)
    return resampled
