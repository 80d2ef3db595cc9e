"""Segmentations (SEG, PS3.3 A.51) as overlay layers on the images they segment."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.pixels import iter_pixels

from viewerlib.objects.color import dicom_lab_to_rgb
from viewerlib.objects.layers import FALLBACK_COLORS, OverlayLayer
from viewerlib.objects.references import SliceIndex
from viewerlib.objects.sop import ObjectKind, object_kind

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

# A pixel offset further than this from a whole number means another pixel grid.
_GRID_TOLERANCE = 0.01
# (0062,0001) Segmentation Type, PS3.3 C.8.20.2.
_SEGMENTATION_TYPES = ("BINARY", "FRACTIONAL", "LABELMAP")


def read_segmentation(ds: Dataset, volume: Volume) -> list[OverlayLayer]:
    """One overlay layer per segment of a SEG, placed on the slices of ``volume``.

    Each frame is placed by (0008,2112) *Source Image Sequence* when it names an
    instance of the volume (and has its pixel grid), else by its plane position,
    orientation and pixel spacing in the same (0020,0052) *Frame of Reference
    UID*: on the images' own grid it is pasted, on another one it is resampled
    onto the images by nearest neighbour.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A Segmentation Storage or Label Map Segmentation Storage instance. Uses
        (0062,0002) *Segment Sequence* (number, label, (0062,000D) *Recommended
        Display CIELab Value*), (0062,0001) *Segmentation Type* (BINARY,
        FRACTIONAL or LABELMAP), (0062,000E) *Maximum Fractional Value*,
        (0028,0120) *Pixel Padding Value* (the background of a LABELMAP), the
        per-frame and shared functional groups ((0020,9113) *Plane Position
        Sequence*, (0020,9116) *Plane Orientation Sequence*, (0028,9110) *Pixel
        Measures Sequence*, (0062,000A) *Segment Identification Sequence*) and
        the pixel data.
    volume : viewerlib.volume.volume.Volume
        The images segmented.

    Returns
    -------
    list of OverlayLayer
        In (0062,0004) *Segment Number* order, style ``'fill'``.

    Raises
    ------
    ValueError
        If ``ds`` is not a SEG, or no frame lies on the volume.

    Notes
    -----
    In a LABELMAP (DICOM 2024c) each pixel holds the number of the one segment it
    belongs to, and the Pixel Padding Value (0 when absent) marks the
    background: a segment numbered so (highdicom writes one, "Background") gets
    no layer, and a value that names no segment is drawn in none. A frame whose
    (0028,135A) *Spatial Locations Preserved* is NO or REORIENTED_ONLY is placed
    by position, not by the image it was derived from.

    Resampling is nearest neighbour in three dimensions: an image pixel takes the
    value of the SEG pixel whose area its centre falls in (PS3.3 C.7.6.2.1.1), on
    the SEG frame whose slab holds it: the frame's plane plus or minus half its
    (0018,0088) *Spacing Between Slices* (else (0018,0050) *Slice Thickness*,
    else the images' slice spacing).
    """
    if object_kind(ds) is not ObjectKind.SEGMENTATION:
        raise ValueError(
            f"(0008,0016) SOP Class UID {ds.get('SOPClassUID', '')} is not "
            "Segmentation Storage (1.2.840.10008.5.1.4.1.1.66.4) or Label Map "
            "Segmentation Storage (1.2.840.10008.5.1.4.1.1.66.7); open it with "
            "viewerlib.open instead"
        )
    index = SliceIndex(volume)
    kind = str(ds.get("SegmentationType", "BINARY")).strip().upper()
    # The background of a LABELMAP: its Pixel Padding Value, else 0. A segment
    # that describes it is not drawn.
    background = int(ds.get("PixelPaddingValue", 0) or 0)
    layers = {
        int(segment.SegmentNumber): OverlayLayer(
            name=(str(segment.get("SegmentLabel", ""))
                  or f"Segment {segment.SegmentNumber}"),
            number=int(segment.SegmentNumber),
            color=_segment_color(segment, position),
            style="fill",
        )
        for position, segment in enumerate(ds.SegmentSequence)
        if kind != "LABELMAP" or int(segment.SegmentNumber) != background
    }
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    same_frame_of_reference = str(ds.get("FrameOfReferenceUID", "")) == str(
        volume.frame_of_reference_uid) and bool(volume.frame_of_reference_uid)
    unplaced = 0
    number_of_frames = 0
    for frame_index, frame in enumerate(_frames(ds, kind, background)):
        number_of_frames += 1
        groups = per_frame[frame_index] if frame_index < len(per_frame) else None
        number = None
        if kind != "LABELMAP":
            number = _functional(groups, shared, "SegmentIdentificationSequence",
                                 "ReferencedSegmentNumber")
            if number is None or int(number) not in layers:
                unplaced += 1
                continue
        placed = _place_by_reference(frame, groups, shared, index)
        if placed is None and same_frame_of_reference:
            placed = _place_by_position(frame, groups, shared, index, volume,
                                        background)
        if not placed:
            unplaced += 1
            continue
        for slice_index, values in placed:
            for layer, mask in _segment_masks(values, layers, number, background):
                if not mask.any():
                    continue
                if slice_index in layer.masks:
                    layer.masks[slice_index] |= mask
                else:
                    layer.masks[slice_index] = mask
    if number_of_frames and unplaced == number_of_frames:
        raise ValueError(
            "no frame of the SEG lies on the images: its (0008,2112) Source Image "
            "Sequence names none of them and its (0020,0052) Frame of Reference UID "
            "differs, or its planes pass through none of them; open the series the "
            "SEG was made from"
        )
    if unplaced:
        message = (f"{unplaced} of {number_of_frames} SEG frames lie on none of the "
                   "images shown and are not drawn")
        logger.warning(message)
        warnings.warn(message, UserWarning, stacklevel=2)
        for layer in layers.values():
            layer.warnings.append(message)
    logger.info("read a %s SEG with %d segments", kind, len(layers))
    return [layers[number] for number in sorted(layers)]


def _segment_color(segment: Dataset, position: int) -> tuple[int, int, int]:
    lab = segment.get("RecommendedDisplayCIELabValue")
    if lab is not None and len(lab) == 3:
        return dicom_lab_to_rgb([int(v) for v in lab])
    return FALLBACK_COLORS[position % len(FALLBACK_COLORS)]


def _frames(ds: Dataset, kind: str, background: int) -> Iterator[np.ndarray]:
    """Yield each frame: bool (in the segment or not), or a LABELMAP's numbers.

    Frames are decoded one at a time, so a SEG of many segments never needs the
    memory of all its frames at once.
    """
    if kind not in _SEGMENTATION_TYPES:
        raise ValueError(
            f"(0062,0001) Segmentation Type {kind!r} is not one of "
            f"{', '.join(_SEGMENTATION_TYPES)}; the SEG cannot be drawn")
    # PS3.3 C.8.20.2.3: a FRACTIONAL pixel is a fraction of (0062,000E) Maximum
    # Fractional Value; one at least half in the segment is shown as in it.
    maximum = float(ds.get("MaximumFractionalValue", 255) or 255)
    for pixels in iter_pixels(ds):
        if kind == "LABELMAP":
            yield np.asarray(pixels, dtype=np.int64)
        elif kind == "FRACTIONAL":
            yield pixels >= maximum / 2.0
        else:
            yield pixels > 0


def _segment_masks(values: np.ndarray, layers: dict[int, OverlayLayer],
                   number: Any, background: int
                   ) -> Iterator[tuple[OverlayLayer, np.ndarray]]:
    """The layer and mask of each segment in one placed frame."""
    if number is not None:
        yield layers[int(number)], np.asarray(values, dtype=bool)
        return
    # A LABELMAP: each segment number present, but not the background.
    for label in np.unique(values):
        layer = layers.get(int(label))
        if layer is not None and int(label) != background:
            yield layer, values == label


def _functional(groups: Any, shared: Any, sequence: str, keyword: str) -> Any:
    """An element of a functional group, per-frame first (PS3.3 C.7.6.16)."""
    for container in (groups, shared):
        if container is None:
            continue
        items = container.get(sequence) or []
        if items and keyword in items[0]:
            return items[0].get(keyword)
    return None


def _place_by_reference(frame: np.ndarray, groups: Any, shared: Any,
                        index: SliceIndex) -> list[tuple[int, np.ndarray]] | None:
    if frame.shape != index.shape[1:]:
        return None
    for container in (groups, shared):
        derivations = (container.get("DerivationImageSequence") or []
                       if container is not None else [])
        for derivation in derivations:
            for source in derivation.get("SourceImageSequence") or []:
                # (0028,135A) Spatial Locations Preserved: only a frame whose
                # pixels keep the source image's places lies on its grid; the
                # others are placed by position.
                preserved = str(source.get("SpatialLocationsPreserved", "YES"))
                if preserved.strip().upper() not in ("", "YES"):
                    continue
                number = source.get("ReferencedFrameNumber")
                numbers = [None] if number is None else (
                    list(number) if hasattr(number, "__iter__") else [number])
                for frame_number in numbers:
                    found = index.slices_of(
                        str(source.get("ReferencedSOPInstanceUID", "")),
                        None if frame_number is None else int(frame_number))
                    if found:
                        return [(found[0], frame.copy())]
    return None


def _place_by_position(frame: np.ndarray, groups: Any, shared: Any,
                       index: SliceIndex, volume: Volume, background: int
                       ) -> list[tuple[int, np.ndarray]] | None:
    position = _functional(groups, shared, "PlanePositionSequence",
                           "ImagePositionPatient")
    if position is None:
        return None
    geometry = _FrameGeometry.of(frame.shape, position, groups, shared, volume)
    if geometry.on_grid_of(volume):
        slice_index, corner = index.locate(geometry.origin[np.newaxis])
        row, column = corner[0] if len(corner) else (0.0, 0.0)
        if slice_index is not None and (
                abs(row - round(row)) <= _GRID_TOLERANCE
                and abs(column - round(column)) <= _GRID_TOLERANCE):
            return [(slice_index, _paste(frame, round(row), round(column),
                                         index.shape[1:], background))]
    return geometry.resample(frame, volume, background)


def _paste(frame: np.ndarray, top: int, left: int, shape: tuple[int, ...],
           background: int) -> np.ndarray:
    """The frame on the image grid with its first pixel at (top, left)."""
    values = np.full(shape, background if frame.dtype != bool else False,
                     dtype=frame.dtype)
    rows, columns = frame.shape
    # Paste the frame where it overlaps the image; the rest lies outside.
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + rows, shape[0]), min(left + columns, shape[1])
    if r0 < r1 and c0 < c1:
        values[r0:r1, c0:c1] = frame[r0 - top:r1 - top, c0 - left:c1 - left]
    return values


class _FrameGeometry:
    """Where a SEG frame's pixels lie in the patient (PS3.3 C.7.6.2.1.1).

    ``origin`` is the centre of its first pixel; ``row_direction`` runs along a
    row (columns increase), ``column_direction`` down a column (rows increase);
    ``spacing`` is (between rows, between columns) and ``half_thickness`` half
    the slab the frame stands for.
    """

    def __init__(self, shape: tuple[int, ...], origin: np.ndarray,
                 row_direction: np.ndarray, column_direction: np.ndarray,
                 spacing: tuple[float, float], half_thickness: float) -> None:
        self.shape = shape
        self.origin = origin
        self.row_direction = row_direction / np.linalg.norm(row_direction)
        self.column_direction = column_direction / np.linalg.norm(column_direction)
        normal = np.cross(self.row_direction, self.column_direction)
        self.normal = normal / np.linalg.norm(normal)
        self.spacing = spacing
        self.half_thickness = half_thickness

    @classmethod
    def of(cls, shape: tuple[int, ...], position: Any, groups: Any, shared: Any,
           volume: Volume) -> _FrameGeometry:
        """A frame's geometry; what its groups leave out is the images'."""
        orientation = _functional(groups, shared, "PlaneOrientationSequence",
                                  "ImageOrientationPatient")
        if orientation is not None:
            cosines = [float(v) for v in orientation]
            row_direction, column_direction = cosines[:3], cosines[3:6]
        else:
            row_direction = list(volume.affine[:3, 2])
            column_direction = list(volume.affine[:3, 1])
        spacing = _functional(groups, shared, "PixelMeasuresSequence", "PixelSpacing")
        pixel = ((float(spacing[0]), float(spacing[1])) if spacing is not None
                 else (float(volume.spacing_mm[1]), float(volume.spacing_mm[2])))
        thickness = None
        for keyword in ("SpacingBetweenSlices", "SliceThickness"):
            value = _functional(groups, shared, "PixelMeasuresSequence", keyword)
            if value is not None and float(value) > 0:
                thickness = float(value)
                break
        if thickness is None:
            thickness = float(volume.spacing_mm[0]) or 1.0
        return cls(shape, np.asarray([float(v) for v in position]),
                   np.asarray(row_direction, float), np.asarray(column_direction,
                                                                float),
                   pixel, thickness / 2.0)

    def on_grid_of(self, volume: Volume) -> bool:
        """True if the frame has the images' orientation and pixel spacing."""
        volume_row = volume.affine[:3, 2] / np.linalg.norm(volume.affine[:3, 2])
        volume_column = volume.affine[:3, 1] / np.linalg.norm(volume.affine[:3, 1])
        return bool(
            np.allclose(self.row_direction, volume_row, atol=1e-3)
            and np.allclose(self.column_direction, volume_column, atol=1e-3)
            and np.allclose(self.spacing, volume.spacing_mm[1:], rtol=1e-3))

    def resample(self, frame: np.ndarray, volume: Volume, background: int
                 ) -> list[tuple[int, np.ndarray]]:
        """The frame on every image slice its slab reaches, nearest neighbour."""
        slices, rows, columns = volume.voxels.shape
        affine = np.asarray(volume.affine, dtype=float)
        fill = False if frame.dtype == bool else background
        placed = []
        row_steps, column_steps = np.arange(rows, dtype=float), np.arange(
            columns, dtype=float)
        for slice_index in range(slices):
            # Each quantity is linear in (row, column): its value at the slice's
            # first pixel centre plus a step per row and per column.
            start = (affine @ [slice_index, 0.0, 0.0, 1.0])[:3] - self.origin
            per_row, per_column = affine[:3, 1], affine[:3, 2]
            depth = self._linear(start, per_row, per_column, self.normal)
            corners = [depth[0] + depth[1] * r + depth[2] * c
                       for r in (0, rows - 1) for c in (0, columns - 1)]
            if min(corners) >= self.half_thickness or (
                    max(corners) < -self.half_thickness):
                continue
            d = depth[0] + depth[1] * row_steps[:, None] + depth[2] * column_steps
            u = self._linear(start, per_row, per_column, self.row_direction)
            v = self._linear(start, per_row, per_column, self.column_direction)
            # Fractional (row, column) of each image pixel centre in the frame;
            # its pixel is the one whose area [k - 0.5, k + 0.5) holds it.
            frame_column = (u[0] + u[1] * row_steps[:, None] + u[2] * column_steps
                            ) / self.spacing[1]
            frame_row = (v[0] + v[1] * row_steps[:, None] + v[2] * column_steps
                         ) / self.spacing[0]
            i = np.floor(frame_row + 0.5).astype(np.int64)
            j = np.floor(frame_column + 0.5).astype(np.int64)
            inside = ((d >= -self.half_thickness) & (d < self.half_thickness)
                      & (i >= 0) & (i < frame.shape[0])
                      & (j >= 0) & (j < frame.shape[1]))
            if not inside.any():
                continue
            values = np.full((rows, columns), fill, dtype=frame.dtype)
            values[inside] = frame[i[inside], j[inside]]
            placed.append((slice_index, values))
        return placed

    @staticmethod
    def _linear(start: np.ndarray, per_row: np.ndarray, per_column: np.ndarray,
                direction: np.ndarray) -> tuple[float, float, float]:
        """(value at the first pixel, step per row, step per column) along one axis."""
        return (float(start @ direction), float(per_row @ direction),
                float(per_column @ direction))
