"""Which kind of object a DICOM instance is, by its (0008,0016) *SOP Class UID*."""

from __future__ import annotations

import enum
import logging
from typing import Any

logger = logging.getLogger(__name__)


class ObjectKind(enum.Enum):
    """What the viewer does with an instance: the kinds of PS3.4 storage it knows."""

    IMAGE = "image"
    STRUCTURED_REPORT = "structured report"
    ENCAPSULATED_PDF = "encapsulated PDF"
    KEY_OBJECT_SELECTION = "key object selection"
    SEGMENTATION = "segmentation"
    RT_STRUCTURE_SET = "RT structure set"
    PRESENTATION_STATE = "grayscale softcopy presentation state"
    PHOTOGRAPH = "photograph"
    VIDEO = "video"


# PS3.4 B.5 Standard SOP Classes: one table, every other lookup derives from it.
SOP_CLASSES: dict[str, ObjectKind] = {
    "1.2.840.10008.5.1.4.1.1.104.1": ObjectKind.ENCAPSULATED_PDF,
    "1.2.840.10008.5.1.4.1.1.88.59": ObjectKind.KEY_OBJECT_SELECTION,
    "1.2.840.10008.5.1.4.1.1.66.4": ObjectKind.SEGMENTATION,
    "1.2.840.10008.5.1.4.1.1.66.7": ObjectKind.SEGMENTATION,  # Label Map (2024c)
    "1.2.840.10008.5.1.4.1.1.481.3": ObjectKind.RT_STRUCTURE_SET,
    "1.2.840.10008.5.1.4.1.1.11.1": ObjectKind.PRESENTATION_STATE,
    "1.2.840.10008.5.1.4.1.1.77.1.4": ObjectKind.PHOTOGRAPH,  # VL Photographic
    "1.2.840.10008.5.1.4.1.1.7": ObjectKind.PHOTOGRAPH,  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.77.1.4.1": ObjectKind.VIDEO,  # Video Photographic
    "1.2.840.10008.5.1.4.1.1.77.1.1.1": ObjectKind.VIDEO,  # Video Endoscopic
    "1.2.840.10008.5.1.4.1.1.77.1.2.1": ObjectKind.VIDEO,  # Video Microscopic
    "1.2.840.10008.5.1.4.1.1.88.11": ObjectKind.STRUCTURED_REPORT,  # Basic Text
    "1.2.840.10008.5.1.4.1.1.88.22": ObjectKind.STRUCTURED_REPORT,  # Enhanced
    "1.2.840.10008.5.1.4.1.1.88.33": ObjectKind.STRUCTURED_REPORT,  # Comprehensive
    "1.2.840.10008.5.1.4.1.1.88.34": ObjectKind.STRUCTURED_REPORT,  # Comprehensive 3D
    "1.2.840.10008.5.1.4.1.1.88.35": ObjectKind.STRUCTURED_REPORT,  # Extensible
}

# Transfer syntaxes whose pixel data is a video stream (PS3.5 A.4.5 to A.4.13).
VIDEO_TRANSFER_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101",  # MPEG-2
    "1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103",  # MPEG-4 AVC/H.264
    "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",  # H.264 stereo / 2D
    "1.2.840.10008.1.2.4.106",  # H.264 Stereo High
    "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108",  # HEVC/H.265
})

# Modalities of series that hold no image stack (PS3.3 C.7.3.1.1.1).
NON_IMAGE_MODALITIES = frozenset(
    {"SR", "PR", "KO", "SEG", "RTSTRUCT", "RTPLAN", "REG", "DOC"}
)


def object_kind(ds: Any) -> ObjectKind:
    """The kind of object of one instance.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0008,0016) *SOP Class UID*, and for a multi-frame photograph the
        transfer syntax in the file meta, which tells a video stream apart.

    Returns
    -------
    ObjectKind
        ``IMAGE`` for every SOP Class not in :data:`SOP_CLASSES`.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    >>> object_kind(ds).value
    'encapsulated PDF'
    """
    kind = SOP_CLASSES.get(str(ds.get("SOPClassUID", "")), ObjectKind.IMAGE)
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax in VIDEO_TRANSFER_SYNTAXES:
        return ObjectKind.VIDEO
    return kind
