"""Choose the viewer for an object by its SOP Class: images, documents, overlays, media.

:func:`viewerlib.open` calls :func:`show_object` first; it answers for series and
datasets that are not an image stack and leaves the rest to the stack viewer:

=========================  ===========================================================
object                     viewer
=========================  ===========================================================
image series               :class:`~.overlays.AnnotatedStackViewer`
SEG, RTSTRUCT              the referenced images with the segments / ROIs as layers
GSPS                       the referenced images with the presentation state applied
KOS                        the referenced images with the key images marked and listed
Encapsulated PDF           :class:`~.document.DocumentViewer`
SR                         :class:`~.report.ReportViewer`
photographs, video         :class:`~.media.MediaViewer`
colour or US images        :class:`~.media.MediaViewer`, multi-frame ones as cine
JPEG, PNG, MP4 file        :class:`~.media.MediaViewer`
waveforms (ECG, EEG, ...)  :class:`~.notice.StudyNotice`: what it is, where to open it
=========================  ===========================================================

Colour images (ultrasound and echo cine, colour XA, RGB secondary captures) are not
slices of a volume: the stack viewer holds grey modality values only, so they go to
the media viewer, which plays a multi-frame instance at its (0018,0040) *Cine Rate*
or (0018,1063) *Frame Time*.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from viewerlib.errors import ViewerlibError
from viewerlib.model import Series
from viewerlib.objects.references import referenced_series_uids
from viewerlib.objects.sop import NON_IMAGE_MODALITIES, ObjectKind, object_kind
from viewerlib.pipeline.instance import (
    NotAnImageError,
    missing_file_error,
    read_dicom_file,
)
from viewerlib.widgets.document import DocumentViewer
from viewerlib.widgets.media import MediaViewer
from viewerlib.widgets.notice import (
    WAVEFORM_MODALITIES,
    StudyNotice,
    describe_series,
    is_waveform,
)
from viewerlib.widgets.overlays import AnnotatedStackViewer
from viewerlib.widgets.report import ReportViewer

if TYPE_CHECKING:
    from viewerlib.model import Study
    from viewerlib.sources.base import Source
    from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

ObjectViewer = (AnnotatedStackViewer | DocumentViewer | ReportViewer | MediaViewer
                | StudyNotice)

# Modalities of photographs, video and ultrasound (PS3.3 C.7.3.1.1.1): shown as
# stills or cine loops, never as a stack.
_MEDIA_MODALITIES = frozenset({"XC", "ES", "GM", "OP", "US", "IVUS"})
# Modalities whose images are grey slices: no instance is read to tell.
_STACK_MODALITIES = frozenset({"CT", "MR", "PT", "NM"})
# (0028,0004) Photometric Interpretation of grey images (PS3.3 C.7.6.3.1.2).
_GRAYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
# Files shown by their suffix; every other file is read as DICOM.
_MEDIA_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".mp4", ".m4v", ".mov"})
_OVERLAY_KINDS = (ObjectKind.SEGMENTATION, ObjectKind.RT_STRUCTURE_SET,
                  ObjectKind.PRESENTATION_STATE, ObjectKind.KEY_OBJECT_SELECTION)
_OBJECT_NOTICE_TITLE = "Lightbox cannot show this object as images or as a report"


def is_colour_image(ds: Dataset) -> bool:
    """True for an image whose pixels are colour, not grey modality values.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,0004) *Photometric Interpretation* (RGB, YBR_*, PALETTE COLOR)
        and (0028,0002) *Samples per Pixel*; a dataset without (0028,0010)
        *Rows* is no image.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.Rows, ds.PhotometricInterpretation = 4, "YBR_FULL_422"
    >>> is_colour_image(ds)
    True
    >>> ds.PhotometricInterpretation = "MONOCHROME2"
    >>> is_colour_image(ds)
    False
    """
    if "Rows" not in ds:
        return False
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    try:
        samples = int(ds.get("SamplesPerPixel") or 1)
    except (TypeError, ValueError):
        samples = 1
    return samples > 1 or bool(photometric and photometric not in _GRAYSCALE)


def shows_as_media(ds: Dataset) -> bool:
    """True when an image instance belongs in the media viewer, not a stack.

    Photographs and videos (by SOP Class), ultrasound and visible light by
    (0008,0060) *Modality* (US, IVUS, XC, ES, GM, OP), and every other colour
    image (:func:`is_colour_image`).

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.Modality, ds.Rows, ds.PhotometricInterpretation = "US", 4, "MONOCHROME2"
    >>> shows_as_media(ds)
    True
    >>> ds.Modality = "CT"
    >>> shows_as_media(ds)
    False
    """
    kind = object_kind(ds)
    return (kind in (ObjectKind.PHOTOGRAPH, ObjectKind.VIDEO)
            or str(ds.get("Modality", "")) in _MEDIA_MODALITIES
            or (kind is ObjectKind.IMAGE and is_colour_image(ds)))


def show_object(
    study: Study | str | Dataset | os.PathLike[str],
    source: Source | None = None,
    series: Series | str | None = None,
    first: Dataset | None = None,
    **viewer_options: Any,
) -> ObjectViewer | None:
    """The viewer for a non-image object, or None when it is an image series.

    Parameters
    ----------
    study : Study, str, pydicom.dataset.Dataset or os.PathLike
        A study or its (0020,000D) *Study Instance UID* (then ``series`` says
        which object), one instance already read, or a file (DICOM, JPEG, PNG or
        MP4).
    source : Source, optional
        Where the referenced images of a SEG, RTSTRUCT, GSPS or KOS are retrieved
        from; the configured archives when not given.
    series : Series or str, optional
        The series to show.
    first : pydicom.dataset.Dataset, optional
        The series' first instance, when already at hand: it says whether the
        images are colour. Otherwise the header of one instance is read for the
        modalities that may be colour (all but CT, MR, PT and NM).
    **viewer_options
        Passed to the stack viewer when images are shown.

    Returns
    -------
    viewer or None
        None when the caller should open ``series`` as an image stack.
    """
    if isinstance(study, os.PathLike):
        return _show_file(Path(study), source, **viewer_options)
    if isinstance(study, Dataset):
        return show_datasets([study], source, **viewer_options)
    if series is None:
        return None
    study_instance_uid = study if isinstance(study, str) else study.StudyInstanceUID
    modality = getattr(series, "Modality", None)
    source = source if source is not None else _connect()
    series_instance_uid = (
        series if isinstance(series, str) else series.SeriesInstanceUID
    )
    if modality is None:
        found = source.search_for_series(study_instance_uid=str(study_instance_uid),
                                         series_instance_uid=str(series_instance_uid))
        modality = found[0].Modality if found else ""
    if modality not in NON_IMAGE_MODALITIES | _MEDIA_MODALITIES:
        if modality in _STACK_MODALITIES:
            return None
        header = first if first is not None else first_header(
            source, str(study_instance_uid), str(series_instance_uid))
        if modality in WAVEFORM_MODALITIES or is_waveform(header):
            # A waveform has no pixels: say what it is rather than fail to decode.
            described = series if isinstance(series, Series) else Series(
                str(study_instance_uid), str(series_instance_uid), Modality=modality)
            return StudyNotice([describe_series(described, header)], header,
                               title=_OBJECT_NOTICE_TITLE)
        if header is None or not shows_as_media(header):
            return None
    datasets = source.retrieve_series(str(study_instance_uid), str(series_instance_uid))
    return show_datasets(datasets, source, **viewer_options)


def show_datasets(datasets: list[Dataset], source: Source | None = None,
                  **viewer_options: Any) -> ObjectViewer:
    """The viewer for the instances of one series, by the SOP Class of the first.

    Raises
    ------
    ValueError
        If ``datasets`` is empty.
    LookupError
        If the images a SEG, RTSTRUCT, GSPS or KOS refers to are not found.
    """
    if not datasets:
        raise ValueError("the series holds no instance to show")
    first = datasets[0]
    if is_waveform(first):
        series = Series(str(first.get("StudyInstanceUID", "")),
                        str(first.get("SeriesInstanceUID", "")),
                        Modality=str(first.get("Modality", "")),
                        SeriesDescription=str(first.get("SeriesDescription", "")),
                        NumberOfSeriesRelatedInstances=len(datasets))
        return StudyNotice([describe_series(series, first)], first,
                           title=_OBJECT_NOTICE_TITLE)
    kind = object_kind(first)
    logger.info("showing a %s", kind.value)
    if kind is ObjectKind.ENCAPSULATED_PDF:
        return DocumentViewer(first)
    if kind is ObjectKind.STRUCTURED_REPORT:
        return ReportViewer(first)
    if shows_as_media(first):
        return MediaViewer.from_datasets(datasets)
    if kind in _OVERLAY_KINDS:
        volume = _referenced_volume(first, source)
        viewer = AnnotatedStackViewer.from_volume(volume, **viewer_options)
        for ds in datasets:
            apply_object(viewer, ds)
        return viewer
    return AnnotatedStackViewer.from_volume(_largest_volume(datasets), **viewer_options)


def apply_object(viewer: AnnotatedStackViewer, ds: Dataset) -> None:
    """Draw a SEG or RTSTRUCT, apply a GSPS or mark a KOS on ``viewer``.

    Raises
    ------
    ValueError
        If ``ds`` is none of these.
    """
    kind = object_kind(ds)
    if kind is ObjectKind.SEGMENTATION:
        viewer.add_segmentation(ds)
    elif kind is ObjectKind.RT_STRUCTURE_SET:
        viewer.add_structure_set(ds)
    elif kind is ObjectKind.PRESENTATION_STATE:
        viewer.apply_presentation_state(ds)
    elif kind is ObjectKind.KEY_OBJECT_SELECTION:
        viewer.mark_key_images(ds)
    else:
        raise ValueError(
            f"a {kind.value} cannot be drawn over images; only SEG, RTSTRUCT, GSPS "
            "and KOS can"
        )


def _connect() -> Source:
    from viewerlib.sources.config import connect

    return connect()


def first_header(source: Source, study_instance_uid: str,
                 series_instance_uid: str) -> Dataset | None:
    """The header of one instance of a series, or None if it cannot be read.

    One search for an instance and one metadata retrieval; the failure is
    logged (its type only), since callers only use the header to tell kinds of
    objects apart.
    """
    try:
        found = source.search_for_instances(study_instance_uid, series_instance_uid,
                                            limit=1)
        if not found:
            return None
        return source.retrieve_instance_metadata(
            study_instance_uid, series_instance_uid, found[0].SOPInstanceUID)
    except (ViewerlibError, LookupError, ValueError, OSError) as err:
        # Opening as a stack then says what is wrong with the series.
        logger.info("no header to tell a colour series by (%s)", type(err).__name__)
        return None


def _largest_volume(datasets: list[Dataset]) -> Volume:
    from viewerlib.volume.volume import read_series

    volumes = read_series(datasets)
    if not volumes:
        raise LookupError("the series holds no displayable images")
    return max(volumes, key=lambda v: v.voxels.shape[0])


def _referenced_volume(ds: Dataset, source: Source | None) -> Volume:
    """The images an overlay object refers to, retrieved from ``source``."""
    study_instance_uid = str(ds.get("StudyInstanceUID", ""))
    candidates = referenced_series_uids(ds)
    if not candidates:
        raise LookupError(
            "the object names no referenced series ((0008,1115) Referenced Series "
            "Sequence or its RTSTRUCT / KOS equivalent); open the image series and "
            "call add_segmentation, add_structure_set, apply_presentation_state or "
            "mark_key_images on its viewer"
        )
    source = source if source is not None else _connect()
    from viewerlib import events

    errors = []
    for series_instance_uid in candidates:
        try:
            datasets = source.retrieve_series(study_instance_uid, series_instance_uid)
        except LookupError as err:
            errors.append(f"{type(err).__name__}: {err}")
            continue
        events.series_opened(study_instance_uid, series_instance_uid)
        return _largest_volume(datasets)
    raise LookupError(
        "none of the series the object refers to is in the archives: "
        + "; ".join(errors)
    )


def _show_file(path: Path, source: Source | None, **viewer_options: Any
               ) -> ObjectViewer:
    if not path.exists():
        raise missing_file_error(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{str(path)!r} is a folder: open it with viewerlib.open(path), which "
            "reads it as a folder source"
        )
    if path.suffix.lower() in _MEDIA_SUFFIXES and path.stat().st_size:
        return MediaViewer.from_file(path)
    # Anything else is read as DICOM (files without a preamble are common), and
    # what is wrong with it is said as viewerlib.read_instance says it.
    ds = read_dicom_file(path)
    if "SOPClassUID" not in ds:
        raise NotAnImageError(
            f"{str(path)!r} has no (0008,0016) SOP Class UID: it is not a DICOM "
            "instance this viewer can show"
        )
    return show_datasets([ds], source, **viewer_options)
