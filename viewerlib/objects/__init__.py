"""Non-image DICOM objects as plain Python values the viewers show.

One module per kind of object: :mod:`~viewerlib.objects.segmentation` (SEG) and
:mod:`~viewerlib.objects.structure_set` (RTSTRUCT) become overlay layers on the
images they lie on, :mod:`~viewerlib.objects.presentation_state` (GSPS) becomes
display settings and annotations, :mod:`~viewerlib.objects.key_objects` (KOS) the
key images, :mod:`~viewerlib.objects.document` (Encapsulated PDF) page images and
:mod:`~viewerlib.objects.media` photographs and video frames. :mod:`sop` says which
kind an instance is.
"""

from viewerlib.objects.sop import ObjectKind, object_kind

__all__ = ["ObjectKind", "object_kind"]
