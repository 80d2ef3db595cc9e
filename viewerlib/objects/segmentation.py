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


def read_segmentation(ds: Dataset, volume: Volume) -> list[OverlayLayer]:
    """One overlay layer per segment of a SEG, placed on the slices of ``volume``.

    Each frame is placed by (0008,2112) *Source Image Sequence* when it names an
    instance of the volume, else by (0020,0032) *Image Position (Patient)* in the
    same (0020,0052) *Frame of Reference UID*.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A Segmentation Storage instance. Uses (0062,0002) *Segment Sequence*
        (number, label, (0062,000D) *Recommended Display CIELab Value*),
        (0062,0001) *Segmentation Type*, (0062,000E) *Maximum Fractional Value*,
        the per-frame and shared functional groups and the pixel data.
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
    NotImplementedError
        For a frame on another pixel grid (other spacing or orientation), which
        would need resampling.
    """
    if object_kind(ds) is not ObjectKind.SEGMENTATION:
        raise ValueError(
            f"(0008,0016) SOP Class UID {ds.get('SOPClassUID', '')} is not "
            "Segmentation Storage (1.2.840.10008.5.1.4.1.1.66.4); open it with "
            "viewerlib.open instead"
        )
    index = SliceIndex(volume)
    layers = {
        int(segment.SegmentNumber): OverlayLayer(
            name=(str(segment.get("SegmentLabel", ""))
                  or f"Segment {segment.SegmentNumber}"),
            number=int(segment.SegmentNumber),
            color=_segment_color(segment, position),
            style="fill",
        )
        for position, segment in enumerate(ds.SegmentSequence)
    }
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    same_frame_of_reference = str(ds.get("FrameOfReferenceUID", "")) == str(
        volume.frame_of_reference_uid) and bool(volume.frame_of_reference_uid)
    unplaced = 0
    number_of_frames = 0
    for frame_index, frame in enumerate(_binary_frames(ds)):
        number_of_frames += 1
        groups = per_frame[frame_index] if frame_index < len(per_frame) else None
        number = _functional(groups, shared, "SegmentIdentificationSequence",
                             "ReferencedSegmentNumber")
        layer = layers.get(int(number)) if number is not None else None
        if layer is None:
            unplaced += 1
            continue
        placed = _place_by_reference(frame, groups, shared, index)
        if placed is None and same_frame_of_reference:
            placed = _place_by_position(frame, groups, shared, index, volume)
        if placed is None:
            unplaced += 1
            continue
        slice_index, mask = placed
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
            "differs; open the series the SEG was made from"
        )
    if unplaced:
        message = (f"{unplaced} of {number_of_frames} SEG frames lie on none of the "
                   "images shown and are not drawn")
        logger.warning(message)
        warnings.warn(message, UserWarning, stacklevel=2)
        for layer in layers.values():
            layer.warnings.append(message)
    logger.info("read a SEG with %d segments", len(layers))
    return [layers[number] for number in sorted(layers)]


def _segment_color(segment: Dataset, position: int) -> tuple[int, int, int]:
    lab = segment.get("RecommendedDisplayCIELabValue")
    if lab is not None and len(lab) == 3:
        return dicom_lab_to_rgb([int(v) for v in lab])
    return FALLBACK_COLORS[position % len(FALLBACK_COLORS)]


def _binary_frames(ds: Dataset) -> Iterator[np.ndarray]:
    """Yield each frame as (rows, columns) bool: in the segment or not.

    Frames are decoded one at a time, so a SEG of many segments never needs the
    memory of all its frames at once.
    """
    kind = str(ds.get("SegmentationType", "BINARY")).upper()
    if kind == "LABELMAP":
        raise NotImplementedError(
            "label map segmentations ((0062,0001) Segmentation Type LABELMAP) are not "
            "implemented; convert to a BINARY SEG"
        )
    # PS3.3 C.8.20.2.3: a FRACTIONAL pixel is a fraction of (0062,000E) Maximum
    # Fractional Value; one at least half in the segment is shown as in it.
    maximum = float(ds.get("MaximumFractionalValue", 255) or 255)
    for pixels in iter_pixels(ds):
        yield pixels >= maximum / 2.0 if kind == "FRACTIONAL" else pixels > 0


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
                        index: SliceIndex) -> tuple[int, np.ndarray] | None:
    if frame.shape != index.shape[1:]:
        return None
    for container in (groups, shared):
        derivations = (container.get("DerivationImageSequence") or []
                       if container is not None else [])
        for derivation in derivations:
            for source in derivation.get("SourceImageSequence") or []:
                number = source.get("ReferencedFrameNumber")
                numbers = [None] if number is None else (
                    list(number) if hasattr(number, "__iter__") else [number])
                for frame_number in numbers:
                    found = index.slices_of(
                        str(source.get("ReferencedSOPInstanceUID", "")),
                        None if frame_number is None else int(frame_number))
                    if found:
                        return found[0], frame.copy()
    return None


def _place_by_position(frame: np.ndarray, groups: Any, shared: Any,
                       index: SliceIndex, volume: Volume
                       ) -> tuple[int, np.ndarray] | None:
    position = _functional(groups, shared, "PlanePositionSequence",
                           "ImagePositionPatient")
    if position is None:
        return None
    orientation = _functional(groups, shared, "PlaneOrientationSequence",
                              "ImageOrientationPatient")
    spacing = _functional(groups, shared, "PixelMeasuresSequence", "PixelSpacing")
    _check_same_grid(orientation, spacing, volume)
    slice_index, corner = index.locate([[float(v) for v in position]])
    if slice_index is None:
        return None
    row, column = corner[0]
    if (abs(row - round(row)) > _GRID_TOLERANCE
            or abs(column - round(column)) > _GRID_TOLERANCE):
        raise NotImplementedError(
            "the SEG frame starts between pixels of the images ((0020,0032) Image "
            f"Position (Patient) at row {row:.2f}, column {column:.2f}); resampling a "
            "segmentation is not implemented"
        )
    mask = np.zeros(index.shape[1:], dtype=bool)
    top, left = int(round(row)), int(round(column))
    rows, columns = frame.shape
    # Paste the frame where it overlaps the image; the rest lies outside.
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + rows, mask.shape[0]), min(left + columns, mask.shape[1])
    if r0 < r1 and c0 < c1:
        mask[r0:r1, c0:c1] = frame[r0 - top:r1 - top, c0 - left:c1 - left]
    return slice_index, mask


def _check_same_grid(orientation: Any, spacing: Any, volume: Volume) -> None:
    if orientation is not None:
        row_direction = np.asarray([float(v) for v in orientation[:3]])
        column_direction = np.asarray([float(v) for v in orientation[3:]])
        volume_row = volume.affine[:3, 2] / np.linalg.norm(volume.affine[:3, 2])
        volume_column = volume.affine[:3, 1] / np.linalg.norm(volume.affine[:3, 1])
        if (not np.allclose(row_direction, volume_row, atol=1e-3)
                or not np.allclose(column_direction, volume_column, atol=1e-3)):
            raise NotImplementedError(
                "the SEG frames have another (0020,0037) Image Orientation (Patient) "
                "than the images; resampling a segmentation is not implemented"
            )
    if spacing is not None:
        if not np.allclose([float(v) for v in spacing], volume.spacing_mm[1:],
                           rtol=1e-3):
            raise NotImplementedError(
                f"the SEG's (0028,0030) Pixel Spacing {list(spacing)} differs from "
                f"the images' {list(volume.spacing_mm[1:])}; resampling a "
                "segmentation is not implemented"
            )
