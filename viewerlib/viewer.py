"""``viewerlib.open``: from a study in an archive to a viewer on screen, in one call.

This is the one place where the layers meet: a source finds and retrieves the series,
the pipeline and volume turn it into modality values with geometry, and the widget
shows it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from viewerlib import events
from viewerlib.errors import PartialSeriesError, SourceError, ViewerlibError
from viewerlib.model import Series, Study
from viewerlib.objects.sop import NON_IMAGE_MODALITIES
from viewerlib.pipeline.instance import missing_file_error
from viewerlib.sources.federated import not_searched_note
from viewerlib.sources.local import FolderSource
from viewerlib.volume.diagnosis import file_damage
from viewerlib.volume.progressive import SeriesLoad
from viewerlib.volume.stacks import (
    RETRIEVED_STACKS,
    add_left_out_note,
    relative_name,
)
from viewerlib.volume.volume import (
    Volume,
    input_name,
    is_alert,
    read_series,
)
from viewerlib.widgets.compare import Comparison
from viewerlib.widgets.compare import compare as _compare
from viewerlib.widgets.dispatch import ObjectViewer, first_header, show_object
from viewerlib.widgets.mpr import MPRViewer, mpr_shows
from viewerlib.widgets.notice import (
    WAVEFORM_MODALITIES,
    StudyNotice,
    describe_series,
)
from viewerlib.widgets.overlays import AnnotatedStackViewer
from viewerlib.widgets.report_layout import (
    ImagesWithReport,
    ReportPane,
    is_report,
    report_series,
)
from viewerlib.widgets.stack import StackViewer, overlay_texts
from viewerlib.widgets.volume3d import VolumeViewer

if TYPE_CHECKING:
    from viewerlib.sources.base import Source

logger = logging.getLogger(__name__)

# Modalities whose series are not image stacks (reports, annotations, states,
# waveforms).
_NON_IMAGE_MODALITIES = NON_IMAGE_MODALITIES | frozenset(WAVEFORM_MODALITIES)
# Elements that hold an image's pixels.
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Series whose first header is read to say what a study without images holds.
_DESCRIBED_WITH_HEADER = 8
# A string of only digits and dots names a study: a UID, valid (PS3.5 9.1) or not.
_UID_LIKE = re.compile(r"[0-9.]+")
# File suffixes that mark a string as a path even when nothing is there.
_PATH_SUFFIXES = frozenset({".dcm", ".dicom", ".ima", ".jpg", ".jpeg", ".png",
                            ".mp4", ".m4v", ".mov"})


def is_image_series(series: Series) -> bool:
    """True for a series of images, by its (0008,0060) *Modality*.

    Reports, annotations, presentation states and waveforms (SR, DOC, KO, PR,
    SEG, RTSTRUCT, ECG, EEG, ...) are not.

    Examples
    --------
    >>> is_image_series(Series("1", "1.1", "CT"))
    True
    >>> is_image_series(Series("1", "1.2", "ECG"))
    False
    """
    return series.Modality not in _NON_IMAGE_MODALITIES


def choose_series(series: list[Series]) -> Series:
    """The series a reader looks at first: the image series with the most instances.

    Raises
    ------
    LookupError
        If the study has no image series (:func:`open` then shows its reports,
        or says what it holds).
    """
    if not series:
        # A search that could not reach every archive says which ones.
        note = not_searched_note(series)
        raise LookupError("no archive holds a series of this study: check the Study "
                          "Instance UID, or whether your role may use the archive "
                          "that has it" + (f". {note}" if note else ""))
    images = [s for s in series if is_image_series(s)]
    if not images:
        raise LookupError(
            "the study holds no image series (only "
            + ", ".join(sorted({s.Modality for s in series}))
            + "): viewerlib.open(study) shows its reports, or says what it holds"
        )
    return max(images, key=lambda s: s.NumberOfSeriesRelatedInstances or 0)


def _resolve(
    study: Study | str, source: Source | None, series: Series | str | None
) -> tuple[Source, str, Series | str]:
    """The source, the Study Instance UID, and the series (chosen if not given)."""
    if source is None:
        source = _connect()
    study_instance_uid = study if isinstance(study, str) else study.StudyInstanceUID
    if series is None:
        series = choose_series(
            source.search_for_series(study_instance_uid=study_instance_uid)
        )
    return source, str(study_instance_uid), series


def open_volume(
    study: Study | str | os.PathLike[str] | Sequence[Dataset],
    source: Source | None = None,
    series: Series | str | None = None
) -> Volume:
    """Retrieve one series of ``study`` and return it as a :class:`Volume`.

    Parameters
    ----------
    study : Study, str, os.PathLike or sequence of pydicom.dataset.Dataset
        A study from a search, or its (0020,000D) *Study Instance UID*; or a
        folder (or DICOMDIR) holding one study, or one file, named as for
        :func:`open`; or a study in memory, its datasets (a
        :class:`~viewerlib.samples.phantom.PhantomStudy`, a list), read as
        :func:`~viewerlib.volume.volume.read_series` reads them.
    source : Source, optional
        Where to retrieve from; the configured archives (:func:`viewerlib.connect`)
        when not given.
    series : Series or str, optional
        The series, or its (0020,000E) *Series Instance UID*; by default the image
        series with the most instances (:func:`choose_series`).

    Returns
    -------
    Volume
        The largest stack of the series when it splits into several (for example a
        localizer and the axial images); a note in its ``warnings`` (and a
        ``UserWarning``) then names the files of every stack left out, why each
        is apart (another orientation, size, frame of reference, ...) and how to
        see it. A series that arrives only in part (files gone from a folder
        since it was indexed, say) gives the volume of what arrived, with a
        ``UserWarning`` and a note in its ``warnings`` naming what is missing.
        Files of a folder are named by their path in the folder.

    Warns
    -----
    UserWarning
        Once for each problem a reader must not miss, as
        :func:`~viewerlib.volume.volume.read_series` warns: nothing shows the
        volume yet. :func:`open` shows the same notes on its viewer instead.
    """
    return _read_volume(study, source, series, warn=True, stacklevel=3)


def _read_volume(
    study: Study | str | os.PathLike[str] | Sequence[Dataset], source: Source | None,
    series: Series | str | None, *, warn: bool, stacklevel: int = 2,
    shown_by_viewer: Callable[[str], bool] | None = None,
) -> Volume:
    """:func:`open_volume`; with ``warn=False`` for a caller that shows the notes.

    Each problem reaches the reader once: as a ``UserWarning`` when the volume
    is returned to the caller (`warn`), or on the alert line of the viewer
    that shows it (:func:`open`). A viewer that shows only some notes itself
    (the MPR's line of slices not decoded) names them with `shown_by_viewer`:
    the others are warned. Only the stack returned is told of, once it is
    chosen; the stacks left out are named by one note in it. Every note is
    logged, without folders or UIDs, and kept in ``Volume.warnings`` either way.
    """
    datasets_given = datasets_in(study)
    if datasets_given is not None:
        if series is not None or source is not None:
            raise ValueError("the datasets are the study, so source= and series= do "
                             "not apply: drop them")
        chosen = _largest_series(datasets_given)
        volumes = read_series(chosen, warn=False)
        volume = _largest_stack(volumes, chosen, None, "viewerlib.read_series(study)")
        if warn:
            _tell(volume, shown_by_viewer, (), stacklevel + 1)
        return volume
    path = path_named(study)
    if path is not None:
        _check_exists(path)
        if not (path.is_dir() or path.name.upper() == "DICOMDIR"):
            if series is not None or source is not None:
                raise ValueError(f"{path.name} is one file, so source= and series= do "
                                 "not apply: drop them, or give the file's folder")
            volumes = read_series([path], names_relative_to=path.parent, warn=False)
            volume = _largest_stack(volumes, [path], path.parent,
                                    "viewerlib.read_series(file)")
            if warn:
                _tell(volume, shown_by_viewer, (), stacklevel + 1)
            return volume
        source, study = _study_of_folder(path, source)
    assert not isinstance(study, os.PathLike)
    # Files the folder's index could not place may belong to the series.
    folder_note = (_unreadable_note(source) if path is not None
                   and isinstance(source, FolderSource) else "")
    source, study_instance_uid, series = _resolve(study, source, series)
    series_instance_uid = (
        series if isinstance(series, str) else str(series.SeriesInstanceUID)
    )
    # Files of a folder are named by their path in it: never the folders above
    # (which may name the patient), nor an instance UID.
    folder = _folder_of(source)
    partial: PartialSeriesError | None = None
    try:
        datasets = source.retrieve_series(study_instance_uid, series_instance_uid)
    except PartialSeriesError as err:
        if not err.datasets:
            raise
        # What arrived is shown, and the volume says what is missing.
        partial, datasets = err, err.datasets
        logger.warning("%d instance(s) of the series did not arrive",
                       err.missing_count)
        if warn and not (shown_by_viewer is not None
                         and shown_by_viewer(str(err))):
            warnings.warn(str(err), UserWarning, stacklevel=stacklevel)
    events.series_opened(study_instance_uid, series_instance_uid)
    # Warned below, of the stack returned only.
    volumes = read_series(datasets, names_relative_to=folder, warn=False)
    if not volumes:
        raise LookupError(f"series {series_instance_uid} holds no displayable images")
    how = _how_to_read_stacks(folder)
    volume = _largest_stack(volumes, datasets, folder, how)
    if partial is not None:
        volume.warnings.append(str(partial))
    if folder_note:
        volume.warnings.append(folder_note)
    if warn:
        told = (str(partial),) if partial is not None else ()
        _tell(volume, shown_by_viewer, told, stacklevel + 1)
    return volume


def _tell(volume: Volume, shown_by_viewer: Callable[[str], bool] | None,
          told: tuple[str, ...], stacklevel: int) -> None:
    """Warn, once each, the notes of `volume` a reader must not miss.

    Those `shown_by_viewer` picks, and those in `told` (warned already), are
    left to their viewer. `stacklevel` counts from the caller of this function.
    """
    for note in dict.fromkeys(volume.warnings):
        if (is_alert(note) and note not in told
                and not (shown_by_viewer is not None and shown_by_viewer(note))):
            warnings.warn(note, UserWarning, stacklevel=stacklevel + 1)


def _how_to_read_stacks(folder: Path | None) -> str:
    """The call that gives every stack of a series as a volume, for a note.

    read_series(folder) reads the files a folder source does: those its DICOMDIR
    references, or else every file of the folder and its sub-folders.
    """
    return RETRIEVED_STACKS if folder is None else "viewerlib.read_series(folder)"


def _folder_of(source: Source) -> Path | None:
    """The folder a folder source reads, for naming its files; else None."""
    if not isinstance(source, FolderSource):
        return None
    path = source.path
    return path.parent if path.name.upper() == "DICOMDIR" else path


def _largest_stack(volumes: list[Volume], inputs: list[Any], folder: Path | None,
                   how: str) -> Volume:
    """The volume with the most slices; a note in it names the stacks left out.

    When the slices left out fill the uneven gaps of the stack shown (a slice
    of the series written with another orientation, say), that note says so,
    in place of the note on uneven spacing: one file, told once.
    """
    volume = max(volumes, key=lambda v: v.voxels.shape[0])
    add_left_out_note(volume, [other for other in volumes if other is not volume],
                      lambda index: input_name(inputs[index], folder), how)
    return volume


def open(
    study: Study | str | Volume | Dataset | os.PathLike[str] | Sequence[Dataset],
    source: Source | None = None,
    series: Series | str | None = None,
    **viewer_options: Any,
) -> StackViewer | ObjectViewer | ReportPane:
    """Open a study in the stack viewer, showing each image as it arrives.

    Parameters
    ----------
    study : Study, str, Volume, pydicom.dataset.Dataset or os.PathLike
        A study from a search, its (0020,000D) *Study Instance UID*, or a volume
        already in memory (shown as it is). An instance already read, or a file
        (DICOM, JPEG, PNG, MP4), is shown in the viewer its SOP Class asks for.
        A folder (or a DICOMDIR) is read as a
        :class:`~viewerlib.sources.local.FolderSource` and its one study is
        opened. A string names a file or folder when that path exists (or it
        holds a ``/``); a string of digits and dots is always a UID. A sequence
        of pydicom Datasets (a generated
        :class:`~viewerlib.samples.phantom.PhantomStudy`, a list) is a study in
        memory, shown as its saved folder would be: the largest stack, with
        the notes on the alert line (``source`` and ``series`` do not apply).
    source, series
        As for :func:`open_volume`. A ``series`` that is not an image stack (SEG,
        RTSTRUCT, GSPS, KOS, PDF, SR, photographs, video, colour or ultrasound
        images) is shown by the viewer
        :func:`viewerlib.widgets.dispatch.show_object` chooses: for example a SEG
        as coloured layers over the images it segments, an echo cine in the
        media viewer, playing at its frame rate.
    **viewer_options
        Passed to :class:`~viewerlib.widgets.stack.StackViewer`, e.g. ``window``.

    Returns
    -------
    StackViewer
        The viewer (an :class:`~viewerlib.widgets.overlays.AnnotatedStackViewer`
        for a study), on screen before the series has arrived: it shows the first
        image as soon as it is decoded and fills in the others as they stream in,
        with a progress line. Its ``volume`` attribute holds the voxels as a numpy
        array with their geometry (``affine``, ``spacing_mm``); reading it waits
        until the series is whole, and raises
        :class:`~viewerlib.errors.PartialSeriesError` (naming the missing
        instances) if the archive stopped half-way. Its ``study_objects`` list
        the study's SEG, RTSTRUCT, presentation states and key object selections
        that refer to the series, each switched on and off from the viewer
        (:meth:`~viewerlib.widgets.overlays.AnnotatedStackViewer.show_study_object`);
        they are looked up once the first image is on screen.
    ReportPane
        For a study without image series that holds structured reports or
        Encapsulated PDFs: the newest shown (``.report``), a menu when there
        are several (``.reports``), and a line naming what else it holds.
    StudyNotice
        For a study with nothing that can be shown (only a waveform, say): what
        each series holds and where to open it instead
        (:class:`~viewerlib.widgets.notice.StudyNotice`), not an error.

    Raises
    ------
    FileNotFoundError
        If a path is given and nothing is there.
    viewerlib.pipeline.instance.NotAnImageError
        If a file is empty (0 bytes).
    LookupError
        If a folder holds no study, or several (the message lists them), or no
        archive holds the study.
    ValueError
        If a folder is given with a ``source``, a file with a ``series``, or
        datasets with either, or the sequence given is empty.
    TypeError
        If a sequence given holds anything but pydicom Datasets.

    Notes
    -----
    The series is streamed in one WADO-RS request (PS3.18 10.4) that opens
    before anything else when ``series`` is given; the first instance is decoded
    and shown at once, the rest in a background thread
    (:class:`~viewerlib.volume.progressive.SeriesLoad`): each slice goes where
    its position along the slice normal puts it, and a series that does not
    arrive in order is laid out from its WADO-RS metadata instead. The final
    volume is what :func:`~viewerlib.volume.volume.read_series` builds from the
    same instances; of a series of several stacks, the largest, with the note
    :func:`open_volume` gives naming the others on the alert line. Folder
    sources are read whole first, as :func:`open_volume` does.
    """
    if isinstance(study, Volume):
        return StackViewer.from_volume(study, **viewer_options)
    if datasets_in(study) is not None:
        # A study in memory (a generated phantom, say): shown as its folder
        # would be, the largest stack with notes on the alert line.
        return StackViewer.from_volume(_read_volume(study, source, series, warn=False),
                                       **viewer_options)
    path = path_named(study)
    if path is not None:
        return _open_path(path, source, series, **viewer_options)
    assert not isinstance(study, os.PathLike)
    load: SeriesLoad | None = None
    first: Dataset | None = None
    try:
        if isinstance(study, str | Study) and series is None:
            # The series to show decides the viewer: search for it first.
            source = source if source is not None else _connect()
            study_instance_uid = str(study if isinstance(study, str)
                                     else study.StudyInstanceUID)
            found = source.search_for_series(study_instance_uid=study_instance_uid)
            if found and not any(is_image_series(s) for s in found):
                # Reports only, or nothing to show: say what the study holds.
                return show_study_without_images(study_instance_uid, source, found)
            series = choose_series(found)
        if isinstance(study, str | Study) and isinstance(series, str):
            source = source if source is not None else _connect()
            study_instance_uid = str(study if isinstance(study, str)
                                     else study.StudyInstanceUID)
            if not isinstance(source, FolderSource):
                # Nothing stands before the stream: the series' first instance says
                # what kind of object it is, and is shown alone until a search (left
                # until then, so that the archive serves the stream first) gives
                # the number of slices.
                load = SeriesLoad(source, study_instance_uid, series).start(
                    first_here=True)
                first = load.wait_for_first()
                load.after_first_image(functools.partial(
                    _expect_count, load, study_instance_uid, series))
                series = Series(study_instance_uid, series,
                                Modality=str(first.get("Modality", "")))
        # Documents, reports, photos, videos and objects drawn over images (SEG,
        # RTSTRUCT, GSPS, KOS) get their own viewer, chosen by SOP Class.
        shown = show_object(study, source, series, first=first, **viewer_options)
        if shown is not None:
            if load is not None:
                load.cancel()
            return shown
        source, study_instance_uid, series = _resolve(study, source, series)
        series_instance_uid = (series if isinstance(series, str)
                               else str(series.SeriesInstanceUID))
        if isinstance(source, FolderSource):
            # A folder reads fast and in parallel processes; streaming buys nothing.
            # The viewer's alert line shows what the volume's notes say: no
            # UserWarning besides, so that each problem is told once.
            volume = _read_volume(study_instance_uid, source, series_instance_uid,
                                  warn=False)
            viewer = AnnotatedStackViewer.from_volume(volume, **viewer_options)
            viewer.find_study_objects(source, study_instance_uid, series_instance_uid)
            return viewer
        if load is None:
            load = SeriesLoad(source, study_instance_uid, series_instance_uid).start()
            load.expect(_instance_count(source, study_instance_uid,
                                        series_instance_uid, series))
        plan = load.wait_for_layout()
    except BaseException:
        if load is not None:
            load.cancel()
        raise
    events.series_opened(study_instance_uid, series_instance_uid)
    shown_series = show_loading(load, plan, AnnotatedStackViewer, **viewer_options)
    assert isinstance(shown_series, AnnotatedStackViewer)
    # The study's annotations are looked up once the first image is on screen.
    load.after_first_image(functools.partial(
        shown_series.find_study_objects, load.source, study_instance_uid,
        series_instance_uid))
    return shown_series


def path_named(study: object) -> Path | None:
    """The file or folder `study` names, or None when it names a study.

    Parameters
    ----------
    study : object
        What was given to :func:`open`: an ``os.PathLike`` is a path; a string
        is one unless it is all digits and dots (a UID), when that path exists
        or it looks like one (a slash or backslash, a leading ``~``, a suffix
        such as ``.dcm``). Anything else is not.

    Returns
    -------
    pathlib.Path or None
        The path, with ``~`` expanded.

    Examples
    --------
    >>> path_named("1.2.840.113619.2.1")
    >>> path_named("/tmp/scans/ct.dcm").name
    'ct.dcm'
    """
    if isinstance(study, os.PathLike):
        return Path(study).expanduser()
    if not isinstance(study, str):
        return None
    text = study.strip()
    if not text or _UID_LIKE.fullmatch(text):
        # A UID, even if a file of that name happens to exist.
        return None
    path = Path(text).expanduser()
    if (path.exists() or "/" in text or "\\" in text or text.startswith("~")
            or path.suffix.lower() in _PATH_SUFFIXES):
        return path
    return None


def datasets_in(study: object) -> list[Dataset] | None:
    """The datasets `study` is, when it is a sequence of them; else None.

    Parameters
    ----------
    study : object
        What was given to :func:`open`: a
        :class:`~viewerlib.samples.phantom.PhantomStudy`, or a list or tuple of
        pydicom Datasets, is a study in memory. A string, path, dataset, study
        or volume is not.

    Returns
    -------
    list of pydicom.dataset.Dataset or None
        The datasets, in the order given.

    Raises
    ------
    ValueError
        If the sequence is empty.
    TypeError
        If it holds anything but datasets (paths, say).

    Examples
    --------
    >>> from viewerlib.samples.phantom import ct_head_phantom
    >>> len(datasets_in(ct_head_phantom(rows=8, columns=8, number_of_slices=2)))
    2
    >>> datasets_in("1.2.840.113619.2.1") is None
    True
    """
    if (isinstance(study, str | bytes | os.PathLike | Dataset | Study | Volume)
            or not isinstance(study, Sequence)):
        return None
    datasets = list(study)
    if not datasets:
        raise ValueError("the sequence given holds no datasets: pass the study's "
                         "pydicom Datasets, a folder, or a Study Instance UID")
    others = [item for item in datasets if not isinstance(item, Dataset)]
    if others:
        raise TypeError(
            f"a sequence given as the study must hold pydicom Datasets only; it "
            f"holds a {type(others[0]).__name__} ({len(others)} of {len(datasets)} "
            "items): give the files' folder, viewerlib.open(folder), or read the "
            "files with viewerlib.read_series(paths)")
    return datasets


def _largest_series(datasets: list[Dataset]) -> list[Dataset]:
    """The datasets of the series with the most images, as :func:`choose_series`
    picks a folder's: those of a study without images all, for read_series to
    say why none can be shown."""
    by_series: dict[str, list[Dataset]] = {}
    for ds in datasets:
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    images = [members for members in by_series.values()
              if any(keyword in ds for ds in members for keyword in _PIXEL_KEYWORDS)
              and str(members[0].get("Modality", "")) not in _NON_IMAGE_MODALITIES]
    return max(images, key=len) if images else datasets


def _check_exists(path: Path) -> None:
    """Raise FileNotFoundError, saying what to do, when nothing is at `path`."""
    if not path.exists():
        raise missing_file_error(path, "file or folder", ". A study in an archive is "
                                 "opened by its Study Instance UID, digits and dots")


def _open_path(path: Path, source: Source | None, series: Series | str | None,
               **viewer_options: Any) -> StackViewer | ObjectViewer | ReportPane:
    """Open a file, or the one study of a folder (see :func:`open`)."""
    _check_exists(path)
    if not (path.is_dir() or path.name.upper() == "DICOMDIR"):
        if series is not None:
            raise ValueError(
                f"{path.name} is one file, so series= does not apply: drop it, or "
                "open the file's folder"
            )
        shown = show_object(path, source, **viewer_options)
        assert shown is not None  # a file always gets a viewer, or raises
        return shown
    folder, study = _study_of_folder(path, source)
    viewer = open(study, folder, series, **viewer_options)
    _add_unreadable_note(viewer, folder, stacklevel=4)
    return viewer


def _add_unreadable_note(viewer: object, folder: FolderSource,
                         stacklevel: int) -> None:
    """Tell the reader of the files of `folder` that could not be read, if any.

    `stacklevel` counts from the caller of this function.
    """
    note = _unreadable_note(folder)
    if note:
        # Which series such a file belonged to is unknown: the reader is told,
        # on the viewer's alert line where it has one, else by a warning.
        logger.warning("%d file(s) of the folder could not be read",
                       len(folder.unreadable_outside_series))
        add_note = getattr(viewer, "add_note", None)
        if add_note is not None:
            add_note(note)
        else:
            warnings.warn(note, UserWarning, stacklevel=stacklevel)


def _unreadable_note(folder: FolderSource) -> str:
    """Name the files of a folder that could not be read, or say nothing.

    Each file by its path in the folder, with the cause read_series gives for
    it (:func:`~viewerlib.volume.diagnosis.file_damage`: cut short or
    garbled) where the folder's index could only say what it lacks.
    """
    unreadable = folder.unreadable_outside_series
    if not unreadable:
        return ""
    root = _folder_of(folder)
    listed = "; ".join(
        f"{relative_name(name, root) if root else Path(name).name}: "
        f"{file_damage(name) or why}" for name, why in unreadable[:5])
    more = f"; and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
    return (f"{len(unreadable)} file(s) of the folder could not be read and are not "
            f"shown ({listed}{more}); if one belonged to this series, the series is "
            "incomplete. The full list: FolderSource(folder).unreadable")


def _study_of_folder(path: Path, source: Source | None) -> tuple[FolderSource, Study]:
    """The folder (or DICOMDIR) as a source, and its one study."""
    if source is not None:
        raise ValueError(
            "give a folder or a source, not both: viewerlib.open(folder) reads the "
            "folder as its own source; to open a study of another source, give its "
            "Study Instance UID"
        )
    folder = FolderSource(path)
    studies = folder.search_for_studies()
    if len(studies) != 1:
        raise LookupError(_folder_studies_text(path, folder, studies))
    logger.info("opening the study of a folder")
    return folder, studies[0]


def _folder_studies_text(path: Path, folder: FolderSource,
                         studies: list[Study]) -> str:
    """Why a folder cannot be opened as one study, and what to do."""
    if not studies:
        unreadable = folder.unreadable
        listed = "; ".join(f"{name}: {why}" for name, why in unreadable[:3])
        more = f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
        others = folder.not_dicom
        return (
            f"{str(path)!r} holds no DICOM study"
            + (f"; {len(unreadable)} file{'' if len(unreadable) == 1 else 's'} "
               f"could not be used ({listed}{more})" if unreadable else "")
            + (f"; {len(others)} file(s) are not DICOM ("
               + ", ".join(Path(name).name for name in others[:3])
               + (f" and {len(others) - 3} more" if len(others) > 3 else "") + ")"
               if others else "")
            + ": check the folder, or open a file with viewerlib.open(Path(...))"
        )
    lines = [
        f"  {study.StudyDate or 'no date'} "
        f"{'/'.join(study.ModalitiesInStudy) or '?'} "
        f"{study.StudyDescription!r}: {study.StudyInstanceUID}"
        for study in studies[:10]
    ]
    if len(studies) > 10:
        lines.append(f"  and {len(studies) - 10} more")
    return (
        f"{str(path)!r} holds {len(studies)} studies; open one of them by its Study "
        "Instance UID with the folder as the source:\n"
        + "\n".join(lines)
        + "\n  source = viewerlib.sources.local.FolderSource(folder); "
        "viewerlib.open(uid, source)"
    )


def show_study_without_images(
    study_instance_uid: str, source: Source, found: list[Series]
) -> ReportPane | StudyNotice:
    """What :func:`open` shows for a study without image series.

    Parameters
    ----------
    study_instance_uid : str
        (0020,000D) *Study Instance UID*.
    source : Source
        Where the study's series are.
    found : list of Series
        The study's series, none of them images (:func:`is_image_series`).

    Returns
    -------
    ReportPane or StudyNotice
        The study's newest structured report or Encapsulated PDF, with a menu
        when there are several and a line naming what else the study holds;
        without any report, a notice saying what each series holds (a
        waveform, an RT plan, ...) and where to open it.
    """
    reports, note, failed = study_reports(source, study_instance_uid, found)
    with_report = {str(ds.get("SeriesInstanceUID", "")) for ds in reports} | failed
    others = [s for s in found if str(s.SeriesInstanceUID) not in with_report]
    headers = [
        first_header(source, study_instance_uid, str(s.SeriesInstanceUID))
        if index < _DESCRIBED_WITH_HEADER else None
        for index, s in enumerate(others)
    ]
    lines = [describe_series(s, h) for s, h in zip(others, headers, strict=True)]
    if reports:
        pane = ReportPane(
            reports, notice="This study also holds " + "; ".join(lines) if lines
            else "")
        pane.add_class("lbx-study-reports")
        return pane
    if note:
        lines.insert(0, note)
    header = next((h for h in headers if h is not None), None)
    return StudyNotice(lines, header)


def study_reports(
    source: Source, study_instance_uid: str, found: list[Series]
) -> tuple[list[Dataset], str, set[str]]:
    """The study's SR documents and Encapsulated PDFs, retrieved from `source`.

    Parameters
    ----------
    source : Source
        Where to retrieve.
    study_instance_uid : str
        (0020,000D) *Study Instance UID*.
    found : list of Series
        The study's series; those of :func:`report_series` are retrieved.

    Returns
    -------
    reports : list of pydicom.dataset.Dataset
        Every instance of them that :func:`is_report`.
    note : str
        Empty when a report was found; else, if a series could not be retrieved,
        what went wrong and what to do.
    failed : set of str
        (0020,000E) *Series Instance UID* of the series that could not be
        retrieved.
    """
    note = ""
    reports: list[Dataset] = []
    failed: set[str] = set()
    for series in report_series(found):
        series_instance_uid = str(series.SeriesInstanceUID)
        try:
            datasets = source.retrieve_series(study_instance_uid, series_instance_uid)
        except (ViewerlibError, LookupError, OSError) as err:
            # What can be shown is shown anyway; the note says what went wrong.
            logger.warning("a report series could not be retrieved: %s",
                           type(err).__name__)
            note = (f"The report could not be retrieved ({type(err).__name__}: "
                    f"{err}). Run the cell again to retry.")
            failed.add(series_instance_uid)
            continue
        events.series_opened(study_instance_uid, series_instance_uid)
        reports += [ds for ds in datasets if is_report(ds)]
    return reports, "" if reports else note, failed


def _connect() -> Source:
    from viewerlib.sources.config import connect

    return connect()


def _expect_count(load: SeriesLoad, study_instance_uid: str,
                  series_instance_uid: str) -> None:
    """Tell `load` the series' instance count (a search, in the background)."""
    try:
        count = _instance_count(load.source, study_instance_uid, series_instance_uid,
                                None)
    except SourceError as err:
        logger.info("no instance count from the archive (%s)", type(err).__name__)
        count = None
    load.expect(count)


def _instance_count(
    source: Source,
    study_instance_uid: str,
    series_instance_uid: str,
    series: Series | str | None,
) -> int | None:
    """(0020,1209) *Number of Series Related Instances*, from the search if known."""
    count = getattr(series, "NumberOfSeriesRelatedInstances", None)
    if count:
        return int(count)
    found = source.search_for_series(study_instance_uid,
                                     series_instance_uid=series_instance_uid)
    count = found[0].NumberOfSeriesRelatedInstances if found else None
    return int(count) if count else None


def show_loading(
    load: SeriesLoad,
    plan: Volume,
    viewer_class: type[StackViewer] = StackViewer,
    **viewer_options: Any,
) -> StackViewer:
    """A stack viewer that shows the slices of `load` as they arrive.

    Parameters
    ----------
    load : SeriesLoad
        A started load; `plan` is its layout (:attr:`SeriesLoad.plan`).
    plan : Volume
        The layout the viewer starts with.
    viewer_class : type, optional
        :class:`~viewerlib.widgets.stack.StackViewer` or a subclass.
    **viewer_options
        Passed to the viewer, e.g. ``window``.

    Returns
    -------
    StackViewer
        Filled in from the loading thread; see :func:`open`.
    """
    window_from_data = "window" not in viewer_options and not plan.window_presets
    if plan.datasets:
        # The first instance's header is whole (the layout's may be compact).
        viewer_options.setdefault("overlay", overlay_texts(plan.datasets[0]))
    # The layout cannot change while the viewer is made and subscribed.
    with load.lock:
        plan = load.plan or plan
        viewer = viewer_class.from_volume(plan, **viewer_options)
        # The viewer's alert line shows the volume's notes: no warning besides.
        viewer.begin_loading(functools.partial(load.result, warn=False),
                             window_from_data=window_from_data)

        def laid_out(layout: Volume, moved: bool) -> None:
            viewer.relayout(layout, moved)
            if moved:
                for slot in load.filled_slots():
                    viewer.receive_slice(slot, layout.voxels[slot])

        load.add_layout_listener(laid_out)
        load.add_slice_listener(viewer.receive_slice)
    load.attached()

    def ended(volume: Volume | None, error: BaseException | None) -> None:
        if volume is None:
            viewer.end_loading(None, loading_failure_text(load, error))
            return
        layout = load.plan
        moved = layout is None or volume.voxels is not layout.voxels
        viewer.end_loading(volume, moved=moved)

    load.add_end_listener(ended)
    return viewer


def loading_failure_text(load: SeriesLoad, error: BaseException | None) -> str:
    """What the viewer says when a series stopped arriving, and what to do.

    Examples
    --------
    >>> class _Load:
    ...     received, total = 3, 10
    >>> print(loading_failure_text(_Load(), OSError("pacs: connection reset")))
    Loading stopped after 3 of 10 images: pacs: connection reset
    The images shown are complete; the other slices stay black.
    Run the cell again to retry; if it keeps failing, tell the archive's administrator.
    """
    cause = error.__cause__ if error is not None and error.__cause__ else error
    return (
        f"Loading stopped after {load.received} of {load.total} images: {cause}\n"
        "The images shown are complete; the other slices stay black.\n"
        "Run the cell again to retry; if it keeps failing, tell the archive's "
        "administrator."
    )


def open_with_report(
    study: Study | str | os.PathLike[str],
    source: Source | None = None,
    series: Series | str | None = None,
    **viewer_options: Any,
) -> ImagesWithReport:
    """Open a study's images with its report beside them.

    Parameters
    ----------
    study : Study, str or os.PathLike
        A study from a search, or its (0020,000D) *Study Instance UID*; or a
        folder (or DICOMDIR) holding one study, its images and its reports,
        named as for :func:`open`.
    source : Source, optional
        Where to search and retrieve; the configured archives
        (:func:`viewerlib.connect`) when not given. Not with a folder, which is
        its own source.
    series : Series or str, optional
        The image series to show; by default :func:`choose_series` picks it.
    **viewer_options
        Passed to the images' viewer, as for :func:`open`.

    Returns
    -------
    ImagesWithReport
        An :class:`ipywidgets.HBox`: the viewer :func:`open` gives for the series
        (``.images``) on the left and, on the right, the study's newest structured
        report or Encapsulated PDF (``.report``; ``.reports`` lists every one,
        newest first, and ``.show_report(i)`` or the menu above the report
        switches). A study without a report says so on the right, and so does
        one whose reports could not be retrieved, with the reason.

    Raises
    ------
    LookupError
        If the study has no image series, or no archive holds it, or a folder
        holds no study or several.
    ValueError
        If a single file is given (a report is a file of its own: give the
        folder), or a folder with a ``source``.
    TypeError
        If `study` is a volume, a dataset or a sequence of them: they carry no
        report; :func:`open` shows them.

    Notes
    -----
    The report's series are those whose (0008,0060) *Modality* is SR or DOC;
    each of their instances that is an SR document or an Encapsulated PDF (by
    (0008,0016) *SOP Class UID*) counts. Key object selections (KO) mark images in
    the stack viewer instead. Texts from the report are shown as text, never as
    HTML, and a PDF's pages are drawn in the kernel (the PDF never reaches the
    browser).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from viewerlib.samples.phantom import ct_head_phantom
    >>> from viewerlib.sources.local import FolderSource
    >>> with tempfile.TemporaryDirectory() as name:
    ...     for ds in ct_head_phantom("current", rows=16, columns=16,
    ...                               number_of_slices=4).datasets:
    ...         ds.save_as(Path(name) / f"{ds.SOPInstanceUID}.dcm",
    ...                    enforce_file_format=True)
    ...     source = FolderSource(Path(name))
    ...     shown = open_with_report(source.search_for_studies()[0], source)
    >>> shown.report is None, len(shown.reports)
    (True, 0)
    """
    folder: FolderSource | None = None
    path = path_named(study)
    if path is not None:
        _check_exists(path)
        if not (path.is_dir() or path.name.upper() == "DICOMDIR"):
            raise ValueError(
                f"{path.name} is one file, and a study's report is a file of its "
                "own: give the folder that holds the study's images and report, or "
                "show the file alone with viewerlib.open(path)")
        folder, study = _study_of_folder(path, source)
        source = folder
    elif not isinstance(study, str | Study):
        raise TypeError(
            f"open_with_report() takes a study, its Study Instance UID or a folder, "
            f"not a {type(study).__name__}, which carries no report: show it with "
            "viewerlib.open(), or save the study with its report into a folder and "
            "give the folder")
    if source is None:
        source = _connect()
    study_instance_uid = str(
        study if isinstance(study, str) else study.StudyInstanceUID
    )
    # One search serves both sides: the image series and the report's.
    everything = source.search_for_series(study_instance_uid=study_instance_uid)
    if series is None:
        series = choose_series(everything)
    images = open(study_instance_uid, source, series, **viewer_options)
    if folder is not None:
        _add_unreadable_note(images, folder, stacklevel=3)
    reports, note, _ = study_reports(source, study_instance_uid, everything)
    return ImagesWithReport(images, reports, note)


def open_mpr(
    study: Study | str | Volume | os.PathLike[str] | Sequence[Dataset],
    source: Source | None = None,
    series: Series | str | None = None,
    **viewer_options: Any,
) -> MPRViewer:
    """Open a study (or a volume) in the MPR viewer: three linked planes.

    Parameters are those of :func:`open_volume` (a folder or file too);
    ``viewer_options`` go to :class:`~viewerlib.widgets.mpr.MPRViewer`, e.g.
    ``slab_thickness_mm=10``.

    Warns
    -----
    UserWarning
        As :func:`open_volume`, but for what the viewer's own line above the
        planes shows (every problem a reader must not miss: slices not decoded,
        a series that arrived in part, holes, uneven spacing, a tilt), so that
        each problem is told once.

    Notes
    -----
    A series that arrived in part (the archive stopped half-way) opens with
    what arrived, as :func:`open_volume` gives it, rather than raising
    :class:`~viewerlib.errors.PartialSeriesError`: the line above the planes
    says how many instances are missing, and the resampling onto a uniform grid
    leaves the holes they leave blank instead of interpolating across them.
    """
    volume = study if isinstance(study, Volume) else _read_volume(
        study, source, series, warn=True, stacklevel=3,
        shown_by_viewer=mpr_shows)
    return MPRViewer(volume, **viewer_options)


def open_3d(
    study: Study | str | Volume | os.PathLike[str] | Sequence[Dataset],
    source: Source | None = None,
    series: Series | str | None = None,
    **viewer_options: Any,
) -> VolumeViewer:
    """Open a study (or a volume) in the 3D viewer (volume rendering, presets).

    Parameters are those of :func:`open_volume` (a folder or file too);
    ``viewer_options`` go to :class:`~viewerlib.widgets.volume3d.VolumeViewer`,
    e.g. ``preset="CT bone"``.

    Warns
    -----
    UserWarning
        As :func:`open_volume`: the 3D viewer has no line of its own to show
        them on. A slice not decoded is told once, not again for the slices
        resampled from it; a hole in the series, left blank by the resampling
        rather than interpolated across, is warned by the viewer once.
    """
    volume = study if isinstance(study, Volume) else _read_volume(
        study, source, series, warn=True, stacklevel=3)
    return VolumeViewer(volume, **viewer_options)


def compare(
    current: Any, prior: Any = None, source: Source | None = None, **viewer_options: Any
) -> Comparison:
    """Show a current study beside a prior, scrolled and windowed together.

    ``current`` and ``prior`` are studies, Study Instance UIDs, volumes or stack
    viewers; or, as for :func:`open_volume`, folders (or DICOMDIRs) of one study,
    files, or studies in memory (sequences of pydicom Datasets), each read as
    :func:`open_volume` reads it. Without ``prior`` the patient's latest earlier
    study is found in the archives; that needs ``current`` to be a study or its
    UID. See :func:`viewerlib.widgets.compare.compare`.

    Raises
    ------
    ValueError
        If ``current`` is a folder, file or sequence of datasets and ``prior``
        is not given: there is no history to search from.

    Examples
    --------
    >>> from viewerlib.samples.phantom import ct_head_phantom
    >>> from viewerlib.volume.volume import read_series
    >>> now, then = (read_series(ct_head_phantom(kind, rows=16, columns=16,
    ...              number_of_slices=4).datasets)[0] for kind in ("current", "prior"))
    >>> pair = compare(now, then)
    >>> pair.current.sync_group == pair.prior.sync_group != ""
    True
    """
    if prior is None and (path_named(current) is not None
                          or datasets_in(current) is not None):
        raise ValueError(
            "give the prior too, e.g. compare(current_folder, prior_folder): the "
            "patient's earlier studies are searched for in the archives from a "
            "study found there (or its Study Instance UID), not from a folder, "
            "file or datasets")
    # Folders, files and datasets are read here, each as open_volume reads it:
    # the archives are for studies named by UID.
    current, prior = (
        _read_volume(study, None, None, warn=True, stacklevel=4)
        if path_named(study) is not None or datasets_in(study) is not None
        else study for study in (current, prior))
    return _compare(current, prior, source, **viewer_options)
