"""Slice geometry in the patient coordinate system and splitting series into stacks."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from viewerlib.pipeline.decode import number_of_frames
from viewerlib.pipeline.instance import pixel_spacing_of

logger = logging.getLogger(__name__)

# Orientations within this many degrees of each other belong to one stack.
_ORIENTATION_TOLERANCE_DEG = 0.5
# Spacings differing by more than this fraction (or 0.01 mm) are non-uniform.
_SPACING_RELATIVE_TOLERANCE = 0.01
_SPACING_ABSOLUTE_TOLERANCE_MM = 0.01
# Stacking direction this far off the slice normal means a tilted gantry.
_TILT_TOLERANCE_DEG = 0.1
# stack_key's default: work the frame's geometry out.
_NOT_GIVEN = object()
# Every element plane_orientation reads (frame_geometry's but the position), and
# every element stack_key reads besides the geometry it is given.
ORIENTATION_KEYWORDS = (
    "ImageOrientationPatient", "PixelSpacing", "ImagerPixelSpacing", "PixelAspectRatio",
    "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")
STACK_KEY_KEYWORDS = (
    "SeriesInstanceUID", "FrameOfReferenceUID", "Rows", "Columns", "ImageType",
    "EchoNumbers", "PhotometricInterpretation")


@dataclass(frozen=True)
class FrameGeometry:
    """Where one frame lies in the patient, PS3.3 C.7.6.2.1.1.

    Attributes
    ----------
    position : numpy.ndarray
        (0020,0032) *Image Position (Patient)*: LPS mm of the centre of the first
        transmitted pixel.
    row_cosines : numpy.ndarray
        Direction of the first row (the way the column index grows), from the
        first three values of (0020,0037) *Image Orientation (Patient)*.
    column_cosines : numpy.ndarray
        Direction of the first column (the way the row index grows).
    pixel_spacing : tuple of float or None
        (row spacing, column spacing) in mm.
    """

    position: np.ndarray
    row_cosines: np.ndarray
    column_cosines: np.ndarray
    pixel_spacing: tuple[float, float] | None

    @cached_property
    def normal(self) -> np.ndarray:
        """Unit slice normal, row cosines x column cosines (worked out once)."""
        normal = slice_normal([*self.row_cosines, *self.column_cosines])
        normal.flags.writeable = False  # shared by the frames of a series (at)
        return normal

    def at(self, position: np.ndarray) -> FrameGeometry:
        """The frame of the same orientation and spacing at another position.

        The slices of a series share their orientation: it, and its normal,
        are worked out once.
        """
        moved = FrameGeometry(position, self.row_cosines, self.column_cosines,
                              self.pixel_spacing)
        moved.__dict__["normal"] = self.normal
        return moved


def slice_normal(image_orientation: Sequence[float]) -> np.ndarray:
    """Return the unit normal of a slice from Image Orientation (Patient).

    Parameters
    ----------
    image_orientation : sequence of 6 float
        (0020,0037) *Image Orientation (Patient)*: row then column direction
        cosines.

    Returns
    -------
    numpy.ndarray
        The unit vector row x column; it points the way positions grow in a
        stack acquired in the usual order.

    Raises
    ------
    ValueError
        If there are not 6 values or the two directions are parallel or zero.

    Examples
    --------
    >>> slice_normal([1, 0, 0, 0, 1, 0]).tolist()  # axial: towards the head
    [0.0, 0.0, 1.0]
    """
    values = [float(v) for v in image_orientation]
    if len(values) != 6:
        raise ValueError(
            f"(0020,0037) 'Image Orientation (Patient)' needs 6 values, got "
            f"{len(values)}"
        )
    # Plain floats: numpy's cross product and norm cost more than the sums on
    # three values, and this runs for every slice that arrives.
    rx, ry, rz, cx, cy, cz = values
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    length = math.sqrt(normal[0] * normal[0] + normal[1] * normal[1]
                       + normal[2] * normal[2])
    if length < 1e-6:
        raise ValueError(
            f"(0020,0037) 'Image Orientation (Patient)' {values} has "
            "parallel or zero row and column directions; the header is corrupt"
        )
    return np.array(normal) / length


def _functional_item(ds: Dataset, frame_index: int, sequence: str) -> Any:
    """Return the frame's item of a functional group (per-frame, then shared)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame_index < len(per_frame):
        group = per_frame[frame_index].get(sequence)
        if group:
            return group[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and shared[0].get(sequence):
        return shared[0].get(sequence)[0]
    return None


def frame_geometry(ds: Dataset, frame_index: int = 0) -> FrameGeometry | None:
    """Return the geometry of one frame, or None if the dataset has none.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0020,0032) *Image Position (Patient)* and (0020,0037) *Image
        Orientation (Patient)*, from the frame's Plane Position Sequence and Plane
        Orientation Sequence for enhanced multi-frame instances (PS3.3 C.7.6.16.2.3
        and C.7.6.16.2.4), else from the top level; and the pixel spacing of
        :func:`~viewerlib.pipeline.instance.pixel_spacing_of`.
    frame_index : int, optional
        Index of the frame, starting at 0.

    Returns
    -------
    FrameGeometry or None
        None when position or orientation is missing or unusable.
    """
    plane_position = _functional_item(ds, frame_index, "PlanePositionSequence")
    position = (plane_position or ds).get("ImagePositionPatient")
    if position is None:
        return None
    try:
        plane = _orientation(ds, frame_index)
        if plane is None:
            return None
        position_mm = np.asarray([float(v) for v in position], dtype=np.float64)
    except (TypeError, ValueError) as err:
        logger.warning("Unusable patient geometry, treated as absent: %s", err)
        return None
    if position_mm.shape != (3,):
        return None
    return FrameGeometry(position_mm, *plane)


def plane_orientation(ds: Dataset, frame_index: int = 0) -> FrameGeometry | None:
    """Return the orientation and pixel spacing of a frame, placed at the origin.

    What :func:`frame_geometry` works out but the position, from the elements of
    ``ORIENTATION_KEYWORDS`` alone: the slices of a series share it, and
    :meth:`FrameGeometry.at` places it. None when the orientation is absent
    or unusable (:func:`frame_geometry` says why).
    """
    try:
        plane = _orientation(ds, frame_index)
    except (TypeError, ValueError):
        return None
    return None if plane is None else FrameGeometry(np.zeros(3), *plane)


def _orientation(ds: Dataset, frame_index: int
                 ) -> tuple[np.ndarray, np.ndarray, tuple[float, float] | None] | None:
    """Row and column cosines and pixel spacing of a frame; None when there is
    no orientation. Raises TypeError or ValueError when it is unusable."""
    plane = _functional_item(ds, frame_index, "PlaneOrientationSequence")
    orientation = (plane or ds).get("ImageOrientationPatient")
    if orientation is None:
        return None
    cosines = np.asarray([float(v) for v in orientation], dtype=np.float64)
    slice_normal(cosines.tolist())
    row = cosines[:3] / np.linalg.norm(cosines[:3])
    column = cosines[3:] / np.linalg.norm(cosines[3:])
    # Shared by the frames of a series (FrameGeometry.at): never changed.
    row.flags.writeable = column.flags.writeable = False
    spacing, source, _ = pixel_spacing_of(ds, frame_index)
    if source == "PixelAspectRatio":
        spacing = None
    return row, column, spacing


def positions_along_normal(
    geometries: Sequence[FrameGeometry], normal: np.ndarray
) -> np.ndarray:
    """Return each frame's distance in mm along `normal` from the origin.

    Parameters
    ----------
    geometries : sequence of FrameGeometry
        The frames of one stack.
    normal : numpy.ndarray
        The unit slice normal of the stack.

    Returns
    -------
    numpy.ndarray
        float64 distances, Image Position (Patient) . normal.
    """
    return np.array([float(np.dot(g.position, normal)) for g in geometries])


@dataclass(frozen=True)
class StackSpacing:
    """How the slices of a sorted stack are spaced.

    Attributes
    ----------
    spacing_mm : float
        Median distance between adjacent slice planes, along the normal (from
        positions, never (0018,0050) *Slice Thickness*).
    gaps_mm : numpy.ndarray
        Every distance between adjacent planes.
    is_uniform : bool
        False when a gap differs from the median by more than 1 % (or 0.01 mm).
    step_mm : numpy.ndarray
        Mean vector from one slice position to the next (LPS mm); with a
        gantry tilt it is not parallel to the normal.
    tilt_deg : float
        Angle between `step_mm` and the normal; 0 without gantry tilt.
    """

    spacing_mm: float
    gaps_mm: np.ndarray
    is_uniform: bool
    step_mm: np.ndarray
    tilt_deg: float

    @property
    def is_tilted(self) -> bool:
        """True when the stacking direction is not the slice normal (shear)."""
        return self.tilt_deg > _TILT_TOLERANCE_DEG


def gaps_are_even(gaps_mm: Sequence[float] | np.ndarray) -> bool:
    """True when no gap differs from the median gap by more than 1 % (or 0.01 mm).

    Examples
    --------
    >>> gaps_are_even([4.0, 4.0, 4.02]), gaps_are_even([4.0, 8.0, 4.0])
    (True, False)
    """
    gaps = np.asarray(gaps_mm, dtype=float)
    if gaps.size == 0:
        return True
    spacing = float(np.median(gaps))
    tolerance = max(abs(spacing) * _SPACING_RELATIVE_TOLERANCE,
                    _SPACING_ABSOLUTE_TOLERANCE_MM)
    return bool(np.all(np.abs(gaps - spacing) <= tolerance))


def stack_spacing(
    sorted_geometries: Sequence[FrameGeometry], normal: np.ndarray
) -> StackSpacing:
    """Measure slice spacing, uniformity and gantry tilt of a sorted stack.

    Parameters
    ----------
    sorted_geometries : sequence of FrameGeometry
        At least two frames, sorted by position along `normal`.
    normal : numpy.ndarray
        Unit slice normal.

    Returns
    -------
    StackSpacing
        See the attributes.

    Raises
    ------
    ValueError
        With fewer than two frames.

    Examples
    --------
    >>> import numpy as np
    >>> cos = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    >>> frames = [FrameGeometry(np.array([0, 0, z]), *cos, (1, 1)) for z in (0, 2, 5)]
    >>> s = stack_spacing(frames, np.array([0, 0, 1.0]))
    >>> (s.spacing_mm, s.is_uniform, s.tilt_deg)
    (2.5, False, 0.0)
    """
    if len(sorted_geometries) < 2:
        raise ValueError("A stack needs at least two slices to measure spacing")
    along = positions_along_normal(sorted_geometries, normal)
    gaps = np.diff(along)
    spacing = float(np.median(gaps))
    uniform = gaps_are_even(gaps)

    first, last = sorted_geometries[0].position, sorted_geometries[-1].position
    step = (last - first) / (len(sorted_geometries) - 1)
    length = float(np.linalg.norm(step))
    if length == 0:
        tilt = 0.0
    else:
        cosine = abs(float(np.dot(step, normal))) / length
        tilt = float(np.degrees(np.arccos(min(1.0, cosine))))
    return StackSpacing(spacing, gaps, uniform, step, tilt)


def _orientation_key(geometry: FrameGeometry | None) -> tuple[int, ...]:
    """Return a hashable orientation, rounded to the stack tolerance."""
    if geometry is None:
        return ()
    # Round to roughly the tolerance in radians so near-equal cosines match.
    step = np.radians(_ORIENTATION_TOLERANCE_DEG)
    cosines = np.concatenate([geometry.row_cosines, geometry.column_cosines])
    return tuple(int(v) for v in np.rint(cosines / step))


def is_localizer(ds: Dataset) -> bool:
    """Return True if (0008,0008) *Image Type* says LOCALIZER (scout, surview)."""
    return "LOCALIZER" in [str(v).upper() for v in _as_list(ds.get("ImageType"))]


def _as_list(value: Any) -> list[Any]:
    """Return a possibly multi-valued element as a list."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def stack_key(ds: Dataset, frame_index: int = 0, *,
              geometry: FrameGeometry | None | object = _NOT_GIVEN
              ) -> tuple[Any, ...]:
    """Return the key that frames of one stack share.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0020,000E) *Series Instance UID*, (0020,0052) *Frame of Reference
        UID*, (0028,0010) *Rows*, (0028,0011) *Columns*, (0008,0008) *Image Type*
        (LOCALIZER images are kept apart), (0018,0086) *Echo Numbers* and the
        orientation of :func:`frame_geometry`.
    frame_index : int, optional
        Index of the frame, starting at 0.
    geometry : FrameGeometry or None, optional
        ``frame_geometry(ds, frame_index)``, when the caller has it already.

    Returns
    -------
    tuple
        Frames with equal keys can form one volume.
    """
    if geometry is _NOT_GIVEN:
        geometry = frame_geometry(ds, frame_index)
    image_type = _as_list(ds.get("ImageType"))
    return (
        str(ds.get("SeriesInstanceUID", "")),
        str(ds.get("FrameOfReferenceUID", "")),
        int(ds.get("Rows", 0) or 0),
        int(ds.get("Columns", 0) or 0),
        "LOCALIZER" in [str(v).upper() for v in image_type],
        tuple(str(v) for v in image_type),
        tuple(str(v) for v in _as_list(ds.get("EchoNumbers"))),
        str(ds.get("PhotometricInterpretation", "")),
        _orientation_key(geometry),  # type: ignore[arg-type]
    )


# What each field of a stack key is, for a message: stack_key's order.
_KEY_FIELDS = ("series", "frame of reference", "rows", "columns", "localizer",
               "image type", "echo", "photometric", "orientation")
# A slice normal this close to an axis (within about 30 degrees) names its plane.
_PLANE_COSINE = 0.85


def plane_name(geometry: FrameGeometry) -> str:
    """Name the plane of a frame: axial, coronal, sagittal or oblique.

    Parameters
    ----------
    geometry : FrameGeometry
        Its slice normal decides: along the patient's z (foot to head) axis an
        axial plane, along y a coronal and along x a sagittal one; else oblique.

    Examples
    --------
    >>> import numpy as np
    >>> frame = FrameGeometry(np.zeros(3), np.array([0.0, 1, 0]),
    ...                       np.array([0.0, 0, -1]), (1.0, 1.0))
    >>> plane_name(frame)
    'sagittal'
    """
    normal = np.abs(geometry.normal)
    axis = int(np.argmax(normal))
    if normal[axis] < _PLANE_COSINE:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _cosines_text(geometry: FrameGeometry) -> str:
    """(0020,0037) values of a frame, rounded, as DICOM writes them."""
    return _values([f"{round(float(v), 3):g}" for v in
                    (*geometry.row_cosines, *geometry.column_cosines)])


def _values(values: Sequence[str]) -> str:
    """A multi-valued element as DICOM writes it (backslashes), or "none"."""
    return "\\".join(values) or "none"


def stack_difference(
    key: tuple[Any, ...], geometry: FrameGeometry | None,
    other_key: tuple[Any, ...], other_geometry: FrameGeometry | None,
) -> str:
    """Say, in words, what keeps a frame out of another frame's stack.

    Parameters
    ----------
    key, geometry
        :func:`stack_key` and :func:`frame_geometry` of a frame of the stack a
        reader sees.
    other_key, other_geometry
        The same for a frame of a stack set apart from it.

    Returns
    -------
    str
        Each difference, naming the element (tag and keyword) and both values
        (no UIDs); for equal keys, that the frames repeat positions.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset
    >>> axial = FrameGeometry(np.zeros(3), np.array([1.0, 0, 0]),
    ...                       np.array([0.0, 1, 0]), (1.0, 1.0))
    >>> sagittal = FrameGeometry(np.zeros(3), np.array([0.0, 1, 0]),
    ...                          np.array([0.0, 0, -1]), (1.0, 1.0))
    >>> ds = Dataset()
    >>> ds.Rows, ds.Columns = 16, 16
    >>> text = stack_difference(stack_key(ds, geometry=axial), axial,
    ...                         stack_key(ds, geometry=sagittal), sagittal)
    >>> text.startswith("another orientation: (0020,0037) Image Orientation")
    True
    >>> "(sagittal), not" in text and text.endswith("(axial)")
    True
    """
    mine = dict(zip(_KEY_FIELDS, key, strict=True))
    theirs = dict(zip(_KEY_FIELDS, other_key, strict=True))
    found: list[str] = []
    if theirs["series"] != mine["series"]:
        found.append("another series ((0020,000E) Series Instance UID)")
    if theirs["frame of reference"] != mine["frame of reference"]:
        found.append("another frame of reference ((0020,0052) Frame of Reference "
                     "UID): it lies in another patient coordinate system")
    if (theirs["rows"], theirs["columns"]) != (mine["rows"], mine["columns"]):
        found.append(f"another size: (0028,0010) Rows x (0028,0011) Columns "
                     f"{theirs['rows']} x {theirs['columns']}, not {mine['rows']} x "
                     f"{mine['columns']}")
    if theirs["localizer"] and not mine["localizer"]:
        found.append("a localizer ((0008,0008) Image Type LOCALIZER)")
    elif theirs["image type"] != mine["image type"]:
        found.append(f"another (0008,0008) Image Type: {_values(theirs['image type'])}"
                     f", not {_values(mine['image type'])}")
    if theirs["echo"] != mine["echo"]:
        found.append(f"another echo: (0018,0086) Echo Numbers {_values(theirs['echo'])}"
                     f", not {_values(mine['echo'])}")
    if theirs["photometric"] != mine["photometric"]:
        found.append("another (0028,0004) Photometric Interpretation: "
                     f"{theirs['photometric'] or 'none'}, not "
                     f"{mine['photometric'] or 'none'}")
    if theirs["orientation"] != mine["orientation"]:
        if geometry is None or other_geometry is None:
            found.append("another orientation: (0020,0037) Image Orientation "
                         "(Patient) or (0020,0032) Image Position (Patient) is "
                         "absent from " + ("these" if other_geometry is None
                                           else "the others"))
        else:
            found.append(
                "another orientation: (0020,0037) Image Orientation (Patient) "
                f"{_cosines_text(other_geometry)} ({plane_name(other_geometry)}), "
                f"not {_cosines_text(geometry)} ({plane_name(geometry)})")
    if not found:
        found.append("the same positions again (a repeated acquisition, another "
                     "temporal phase, or the same files twice)")
    return "; ".join(found)


def split_into_stacks(
    frames: Sequence[tuple[Dataset, int]],
    geometries: Sequence[FrameGeometry | None] | None = None,
    keys: Sequence[tuple[Any, ...]] | None = None,
) -> list[list[int]]:
    """Group frames into stacks that can each form one volume.

    Parameters
    ----------
    frames : sequence of (pydicom.dataset.Dataset, int)
        (dataset, frame_index) pairs, e.g. every frame of every instance of a
        series. The elements used are those of :func:`stack_key`.
    geometries : sequence of FrameGeometry or None, optional
        ``frame_geometry`` of each frame, when the caller has worked them out
        (it needs them again to sort each stack).
    keys : sequence of tuple, optional
        ``stack_key`` of each frame, when the caller has worked them out.

    Returns
    -------
    list of list of int
        Indexes into `frames`, one list per stack, in order of first appearance.
        Frames at the same position within one key (repeated acquisitions or
        temporal phases) go to further stacks, in input order.
    """
    if geometries is None:
        geometries = [frame_geometry(ds, frame_index) for ds, frame_index in frames]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, ((ds, frame_index), geometry) in enumerate(
            zip(frames, geometries, strict=True)):
        key = (stack_key(ds, frame_index, geometry=geometry) if keys is None
               else keys[index])
        groups.setdefault(key, []).append(index)

    stacks: list[list[int]] = []
    for members in groups.values():
        # A second frame at an already-used position starts (or joins) a new stack.
        layers: list[tuple[set[Any], list[int]]] = []
        for index in members:
            geometry = geometries[index]
            # Frames without geometry have no position to clash on.
            where: Any = ("input", index)
            if geometry is not None:
                where = round(float(np.dot(geometry.position, geometry.normal)), 3)
            for used, layer in layers:
                if where not in used:
                    used.add(where)
                    layer.append(index)
                    break
            else:
                layers.append(({where}, [index]))
        stacks.extend(layer for _, layer in layers)
    return stacks


def frames_of(datasets: Sequence[Dataset]) -> list[tuple[Dataset, int]]:
    """Return (dataset, frame_index) for every frame of every dataset."""
    return [(ds, i) for ds in datasets for i in range(number_of_frames(ds))]
