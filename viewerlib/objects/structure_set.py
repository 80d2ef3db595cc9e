"""RT Structure Sets (RTSTRUCT, PS3.3 A.19) as overlay layers: ROI contours."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np
from skimage.draw import line, polygon

from viewerlib.objects.layers import FALLBACK_COLORS, OverlayLayer
from viewerlib.objects.references import SliceIndex
from viewerlib.objects.sop import ObjectKind, object_kind

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)


def read_structure_set(ds: Dataset, volume: Volume) -> list[OverlayLayer]:
    """One overlay layer per ROI of an RT Structure Set, on the slices of ``volume``.

    A contour lies on the slice that its (3006,0016) *Contour Image Sequence*
    names, else on the slice whose plane holds its points. A closed contour
    (CLOSED_PLANAR) covers the pixels whose centres lie inside it; several on one
    slice combine by the even-odd rule, so an inner contour cuts a hole
    (PS3.3 C.8.8.6.3). Open contours and points mark the pixels they pass.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (3006,0020) *Structure Set ROI Sequence* (number, name, frame of
        reference) and (3006,0039) *ROI Contour Sequence* ((3006,002A) *ROI
        Display Color* and the contours).
    volume : viewerlib.volume.volume.Volume
        The images the structures were drawn on.

    Returns
    -------
    list of OverlayLayer
        In the order of the Structure Set ROI Sequence, style ``'outline'``.

    Raises
    ------
    ValueError
        If ``ds`` is not an RTSTRUCT, or its ROIs lie in another Frame of Reference
        than the volume.
    """
    if object_kind(ds) is not ObjectKind.RT_STRUCTURE_SET:
        raise ValueError(
            f"(0008,0016) SOP Class UID {ds.get('SOPClassUID', '')} is not RT "
            "Structure Set Storage (1.2.840.10008.5.1.4.1.1.481.3)"
        )
    index = SliceIndex(volume)
    rois = list(ds.get("StructureSetROISequence") or [])
    frames = {str(roi.get("ReferencedFrameOfReferenceUID", "")) for roi in rois}
    frames.discard("")
    if volume.frame_of_reference_uid and frames and (
            volume.frame_of_reference_uid not in frames):
        raise ValueError(
            "the structure set's ROIs lie in another (3006,0024) Referenced Frame of "
            "Reference UID than the images; open the series they were drawn on"
        )
    contours = {int(item.ReferencedROINumber): item
                for item in ds.get("ROIContourSequence") or []}
    layers = []
    for position, roi in enumerate(rois):
        number = int(roi.ROINumber)
        item = contours.get(number)
        color = _display_color(item, position)
        layer = OverlayLayer(name=str(roi.get("ROIName", "")) or f"ROI {number}",
                             number=number, color=color, style="outline")
        if item is not None:
            _rasterise(item, index, layer)
        layers.append(layer)
    logger.info("read a structure set with %d ROIs", len(layers))
    return layers


def _display_color(item: Dataset | None, position: int) -> tuple[int, int, int]:
    value = item.get("ROIDisplayColor") if item is not None else None
    if value is not None and len(value) == 3:
        red, green, blue = (min(max(int(v), 0), 255) for v in value)
        return red, green, blue
    return FALLBACK_COLORS[position % len(FALLBACK_COLORS)]


def _rasterise(item: Dataset, index: SliceIndex, layer: OverlayLayer) -> None:
    shape = index.shape[1:]
    missed = 0
    contours = list(item.get("ContourSequence") or [])
    for contour in contours:
        data = np.asarray([float(v) for v in contour.get("ContourData") or []])
        if data.size < 3 or data.size % 3:
            missed += 1
            continue
        points = data.reshape(-1, 3)
        slice_index = _referenced_slice(contour, index)
        if slice_index is None:
            slice_index, pixels = index.locate(points)
        else:
            pixels = index.in_plane(points, slice_index)
        if slice_index is None:
            missed += 1
            continue
        mask = _contour_mask(str(contour.get("ContourGeometricType", "")), pixels,
                             shape)
        if slice_index in layer.masks:
            # Even-odd: a contour inside another is a hole.
            layer.masks[slice_index] ^= mask
        else:
            layer.masks[slice_index] = mask
    if missed:
        message = (f"{missed} of {len(contours)} contours of ROI {layer.number} lie "
                   "on none of the images shown and are not drawn")
        layer.warnings.append(message)
        logger.warning(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def _referenced_slice(contour: Dataset, index: SliceIndex) -> int | None:
    for image in contour.get("ContourImageSequence") or []:
        frame = image.get("ReferencedFrameNumber")
        found = index.slices_of(str(image.get("ReferencedSOPInstanceUID", "")),
                                None if frame is None else int(frame))
        if found:
            return found[0]
    return None


def _contour_mask(kind: str, pixels: np.ndarray, shape: tuple[int, int]
                  ) -> np.ndarray:
    """Pixels of one contour given as fractional (row, column) vertices."""
    mask = np.zeros(shape, dtype=bool)
    rows, columns = pixels[:, 0], pixels[:, 1]
    if kind == "CLOSED_PLANAR" and len(pixels) >= 3:
        inside_rows, inside_columns = polygon(rows, columns, shape)
        mask[inside_rows, inside_columns] = True
        return mask
    # POINT, OPEN_PLANAR and OPEN_NONPLANAR: the pixels the points and segments pass.
    whole = np.rint(pixels).astype(int)
    for (r0, c0), (r1, c1) in zip(whole, whole[1:], strict=False):
        line_rows, line_columns = line(r0, c0, r1, c1)
        keep = ((line_rows >= 0) & (line_rows < shape[0]) & (line_columns >= 0)
                & (line_columns < shape[1]))
        mask[line_rows[keep], line_columns[keep]] = True
    for r, c in whole:
        if 0 <= r < shape[0] and 0 <= c < shape[1]:
            mask[r, c] = True
    return mask
