"""Key Object Selection documents (KOS, PS3.3 A.35.4): the images flagged as key."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from viewerlib.objects.sop import ObjectKind, object_kind

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.objects.references import SliceIndex

logger = logging.getLogger(__name__)

# Deeper content trees are not followed, so a hostile file cannot exhaust memory.
_MAX_DEPTH = 16


@dataclass
class KeyImage:
    """One referenced image: (0008,1155) *Referenced SOP Instance UID*, frames."""

    sop_instance_uid: str
    frame_numbers: list[int] = field(default_factory=list)
    series_instance_uid: str = ""


@dataclass
class KeyObjectSelection:
    """A KOS as plain values.

    Attributes
    ----------
    title : str
        The document title's (0008,0104) *Code Meaning*, e.g. "Of Interest".
    description : str
        The text of the "Key Object Description" content item, if any.
    images : list of KeyImage
        In document order.
    """

    title: str
    description: str
    images: list[KeyImage]

    @property
    def series_instance_uids(self) -> list[str]:
        """Series of the key images, the one with the most images first."""
        counts = Counter(image.series_instance_uid for image in self.images
                         if image.series_instance_uid)
        return [uid for uid, _ in counts.most_common()]

    def slices(self, index: SliceIndex) -> list[int]:
        """``slice_index`` values of the key images among the slices of ``index``."""
        found: list[int] = []
        for image in self.images:
            numbers: list[int | None] = list(image.frame_numbers) or [None]
            for number in numbers:
                found += index.slices_of(image.sop_instance_uid, number)
        return sorted(set(found))


def read_key_objects(ds: Dataset) -> KeyObjectSelection:
    """The key images of a Key Object Selection Document.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0040,A043) *Concept Name Code Sequence* (the title), the IMAGE and
        TEXT content items of (0040,A730) *Content Sequence*, and (0040,A375)
        *Current Requested Procedure Evidence Sequence* for each image's series.

    Returns
    -------
    KeyObjectSelection

    Raises
    ------
    ValueError
        If ``ds`` is not a KOS.
    """
    if object_kind(ds) is not ObjectKind.KEY_OBJECT_SELECTION:
        raise ValueError(
            f"(0008,0016) SOP Class UID {ds.get('SOPClassUID', '')} is not Key "
            "Object Selection Document Storage (1.2.840.10008.5.1.4.1.1.88.59)"
        )
    series_of: dict[str, str] = {}
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or []:
        for series in study.get("ReferencedSeriesSequence") or []:
            for instance in series.get("ReferencedSOPSequence") or []:
                series_of[str(instance.ReferencedSOPInstanceUID)] = str(
                    series.SeriesInstanceUID)
    images: list[KeyImage] = []
    descriptions: list[str] = []
    _collect(ds, images, descriptions, series_of, 0)
    title = ""
    codes = ds.get("ConceptNameCodeSequence") or []
    if codes:
        title = str(codes[0].get("CodeMeaning", ""))
    return KeyObjectSelection(title=title, description="\n".join(descriptions),
                              images=images)


def _collect(node: Dataset, images: list[KeyImage], descriptions: list[str],
             series_of: dict[str, str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    for item in node.get("ContentSequence") or []:
        kind = str(item.get("ValueType", ""))
        if kind == "IMAGE":
            for reference in item.get("ReferencedSOPSequence") or []:
                uid = str(reference.ReferencedSOPInstanceUID)
                frames = reference.get("ReferencedFrameNumber")
                numbers = [] if frames is None else (
                    [int(v) for v in frames] if hasattr(frames, "__iter__")
                    else [int(frames)])
                images.append(KeyImage(uid, numbers, series_of.get(uid, "")))
        elif kind == "TEXT":
            descriptions.append(str(item.get("TextValue", "")))
        _collect(item, images, descriptions, series_of, depth + 1)
