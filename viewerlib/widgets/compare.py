"""Side-by-side comparison of a current and a prior study, scrolled together.

Two stack viewers share a sync group. Their front ends link through an in-page event
bus (no kernel round trip, nothing stored): within one (0020,0052) *Frame of
Reference UID* they follow each other by patient position along the slice normal,
otherwise by slice number plus a manual offset (Shift + wheel scrolls one viewer alone
and keeps the new offset). Window and level are linked. A basic hanging protocol picks
the prior's series that matches the current one by modality, orientation and
description.
"""

from __future__ import annotations

import difflib
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets
import numpy as np

from viewerlib.errors import ViewerlibError
from viewerlib.model import PatientIdentifier, Series, Study
from viewerlib.objects.sop import NON_IMAGE_MODALITIES
from viewerlib.sources.federated import not_searched_note
from viewerlib.widgets.notice import WAVEFORM_MODALITIES
from viewerlib.widgets.stack import StackViewer

if TYPE_CHECKING:
    from viewerlib.sources.base import Source
    from viewerlib.volume.volume import Volume

logger = logging.getLogger(__name__)

Openable = Study | str
# Series that never hang opposite images: reports, annotations, waveforms.
_NON_IMAGE = NON_IMAGE_MODALITIES | frozenset(WAVEFORM_MODALITIES)


def plane_of(image_orientation: Sequence[float] | None) -> str:
    """``'AXIAL'``, ``'CORONAL'``, ``'SAGITTAL'`` or ``''`` from (0020,0037).

    Examples
    --------
    >>> plane_of([1, 0, 0, 0, 1, 0])
    'AXIAL'
    >>> plane_of([0, 1, 0, 0, 0, -1])
    'SAGITTAL'
    """
    if not image_orientation or len(image_orientation) != 6:
        return ""
    values = [float(v) for v in image_orientation]
    normal = np.abs(np.cross(values[:3], values[3:]))
    return ("SAGITTAL", "CORONAL", "AXIAL")[int(np.argmax(normal))]


def series_match_score(
    reference: Series,
    candidate: Series,
    reference_plane: str = "",
    candidate_plane: str = "",
) -> float:
    """How well `candidate` hangs opposite `reference`: higher is better.

    Same (0008,0060) *Modality* counts most, then the same plane (from (0020,0037)
    *Image Orientation (Patient)*), then the likeness of (0008,103E) *Series
    Description*; non-image series never match.

    Examples
    --------
    >>> a = Series("1", "1.1", "CT", SeriesDescription="Axial head 4 mm")
    >>> b = Series("2", "2.1", "CT", SeriesDescription="Axial head 5 mm")
    >>> c = Series("2", "2.2", "CT", SeriesDescription="Scout")
    >>> series_match_score(a, b) > series_match_score(a, c)
    True
    """
    if candidate.Modality in _NON_IMAGE:
        return -1.0
    score = 4.0 if candidate.Modality == reference.Modality else 0.0
    if reference_plane and candidate_plane:
        score += 2.0 if reference_plane == candidate_plane else -2.0
    score += (
        2.0
        * difflib.SequenceMatcher(
            None,
            reference.SeriesDescription.lower(),
            candidate.SeriesDescription.lower(),
        ).ratio()
    )
    return score


def _series_plane(source: Source, series: Series) -> str:
    try:
        instances = source.search_for_instances(
            series.StudyInstanceUID, series.SeriesInstanceUID, limit=1
        )
        if not instances:
            return ""
        header = source.retrieve_instance_metadata(
            series.StudyInstanceUID,
            series.SeriesInstanceUID,
            instances[0].SOPInstanceUID,
        )
        return plane_of(header.get("ImageOrientationPatient"))
    except (ViewerlibError, LookupError, ValueError, OSError) as err:
        # An archive's failure must not stop the hanging protocol.
        logger.warning("orientation of a series unavailable: %s", type(err).__name__)
        return ""


def match_series(
    reference: Series, candidates: Sequence[Series], source: Source | None = None
) -> Series:
    """The candidate series that best matches `reference` (a basic hanging protocol).

    Raises
    ------
    LookupError
        If no candidate is an image series.
    """
    images = [s for s in candidates if s.Modality not in _NON_IMAGE]
    if not images:
        raise LookupError("the prior study holds no image series to compare with")
    planes: dict[str, str] = {}
    if source is not None:
        planes = {
            s.SeriesInstanceUID: _series_plane(source, s) for s in [reference, *images]
        }
    return max(
        images,
        key=lambda s: series_match_score(
            reference,
            s,
            planes.get(reference.SeriesInstanceUID, ""),
            planes.get(s.SeriesInstanceUID, ""),
        ),
    )


def _same_identifier(a: PatientIdentifier, b: PatientIdentifier) -> bool:
    # An identifier without an issuer is taken at its word, as the archive gave it.
    return a.PatientID == b.PatientID and (
        not a.IssuerOfPatientID
        or not b.IssuerOfPatientID
        or a.IssuerOfPatientID == b.IssuerOfPatientID
    )


def patient_identifiers(study: Study) -> list[PatientIdentifier]:
    """Every identifier a study knows its patient by, never the name.

    Its own (0010,0020) *Patient ID* with (0010,0021) *Issuer of Patient ID*, those
    of its (0010,1002) *Other Patient IDs Sequence*, and those a federated search
    linked to it (``linked_identifiers``).

    Examples
    --------
    >>> study = Study("1.2", PatientID="A-1", IssuerOfPatientID="HOSP-A",
    ...               other_patient_identifiers=[PatientIdentifier("B-9", "HOSP-B")])
    >>> [str(i) for i in patient_identifiers(study)]
    ['A-1 (HOSP-A)', 'B-9 (HOSP-B)']
    """
    found: list[PatientIdentifier] = []
    for identifier in [
        study.patient_identifier,
        *study.other_patient_identifiers,
        *study.linked_identifiers,
    ]:
        if identifier.PatientID and identifier not in found:
            found.append(identifier)
    return found


def find_prior(current: Study, source: Source) -> Study:
    """The patient's latest study before `current`, searched across the archives.

    The patient is searched for under each of their identifiers
    (:func:`patient_identifiers`), so a prior kept in another archive under that
    archive's Patient ID is found when the identifiers are linked (issuer and
    Other Patient IDs); a study of another patient with the same name never is.

    Raises
    ------
    LookupError
        If the patient has no earlier study; the message names the identifiers
        and archives searched.
    """
    identifiers = patient_identifiers(current)
    if not identifiers:
        raise LookupError(
            "the study has no (0010,0020) Patient ID, so the patient's history "
            "cannot be searched; pass the prior to compare() yourself"
        )
    candidates: dict[str, Study] = {}
    notes: list[str] = []
    for patient_id in dict.fromkeys(i.PatientID for i in identifiers):
        found = source.search_for_studies(patient_id=patient_id)
        note = not_searched_note(found)
        if note and note not in notes:
            notes.append(note)
        for study in found:
            candidates.setdefault(study.StudyInstanceUID, study)
    earlier = [
        s
        for s in candidates.values()
        if s.StudyInstanceUID != current.StudyInstanceUID
        and any(
            _same_identifier(mine, theirs)
            for mine in identifiers
            for theirs in patient_identifiers(s)
        )
        and s.StudyDate
        and (not current.StudyDate or s.StudyDate <= current.StudyDate)
    ]
    if not earlier:
        searched = ", ".join(str(i) for i in identifiers)
        raise LookupError(
            f"no earlier study of this patient (searched as {searched}) in "
            f"{_archive_names(source)}; pass the prior to compare() if it is "
            "kept elsewhere" + "".join(f". {note}" for note in notes)
        )
    return max(earlier, key=lambda s: (s.StudyDate, s.StudyTime))


def _archive_names(source: Source) -> str:
    """The archives a source searches, by name, for messages."""
    members = getattr(source, "sources", None)
    names = [m.name for m in members] if members else [source.name]
    quoted = [f"'{name}'" for name in names]
    return (
        "archive " + quoted[0]
        if len(quoted) == 1
        else "archives " + ", ".join(quoted[:-1]) + " and " + quoted[-1]
    )


def find_study(study_instance_uid: str, source: Source) -> Study:
    """The study with this (0020,000D) *Study Instance UID*, from the archives.

    Raises
    ------
    LookupError
        If no archive holds it; the message names the UID, the archives
        searched, those that could not be searched, and what to do.
    """
    found = source.search_for_studies(study_instance_uid=study_instance_uid)
    if found:
        return found[0]
    note = not_searched_note(found)
    raise LookupError(
        f"no study with (0020,000D) Study Instance UID {study_instance_uid} in "
        f"{_archive_names(source)}. Check the UID (copy it from the study "
        "browser), or ask whether your role may use the archive that holds it"
        + (f". {note}" if note else "")
    )


class Comparison(ipywidgets.HBox):
    """Two stack viewers side by side, scrolled and windowed together.

    Attributes
    ----------
    current, prior : StackViewer
        The two viewers; their ``volume`` attributes hold the voxels.
    """

    def __init__(self, current: StackViewer, prior: StackViewer) -> None:
        group = uuid.uuid4().hex
        current.sync_group = prior.sync_group = group
        # Both start on the same anatomy: the prior follows the current's position.
        if (
            current.frame_of_reference_uid
            and current.frame_of_reference_uid == prior.frame_of_reference_uid
            and current.slice_positions_mm
            and prior.slice_positions_mm
        ):
            here = current.slice_positions_mm[current.slice_index]
            prior.slice_index = int(
                np.argmin(np.abs(np.asarray(prior.slice_positions_mm) - here))
            )
        else:
            prior.slice_index = current.slice_index
        prior.window_center, prior.window_width = (
            current.window_center,
            current.window_width,
        )
        for viewer in (current, prior):
            # Equal halves that may shrink below their content (stack.js styles
            # the class), set by a class rather than `layout` so that nothing
            # depends on the viewer's own traits.
            viewer.add_class("lbx-compare-pane")

        def keep_warning_room(_change: Any = None) -> None:
            # One scale for both images: a pane without alerts or missing
            # slices keeps the room the other's take, so both image areas match.
            keep = any(v.alerts or v.missing_slices for v in (current, prior))
            current.keep_warning_room = prior.keep_warning_room = keep

        keep_warning_room()
        for viewer in (current, prior):
            # A viewer still loading learns these when its series is whole.
            viewer.observe(keep_warning_room, names=["alerts", "missing_slices"])
        super().__init__([current, prior], layout=ipywidgets.Layout(width="100%"))
        self.current = current
        self.prior = prior

    def __repr__(self) -> str:
        return f"Comparison({self.current!r}, {self.prior!r})"


def _viewer_of(item: Volume | StackViewer) -> StackViewer:
    if isinstance(item, StackViewer):
        return item
    return StackViewer.from_volume(item)


def compare(
    current: Openable | Volume | StackViewer,
    prior: Openable | Volume | StackViewer | None = None,
    source: Source | None = None,
    **viewer_options: Any,
) -> Comparison:
    """Show a current study beside a prior one, scrolled together.

    Parameters
    ----------
    current : Study, str, Volume or StackViewer
        A study (or its (0020,000D) *Study Instance UID*) to open, or a volume or
        viewer already open.
    prior : Study, str, Volume or StackViewer, optional
        The study to compare with; by default the patient's latest earlier study
        in the archives (:func:`find_prior`). Its series is chosen to match the
        current one (:func:`match_series`).
    source : Source, optional
        Where studies are searched and retrieved; the configured archives
        (:func:`viewerlib.connect`) when needed and not given.
    **viewer_options
        Passed to both :class:`StackViewer` objects.

    Returns
    -------
    Comparison
        With ``current`` and ``prior`` viewers.

    Raises
    ------
    LookupError
        If the current study is not in the archives (the message names the UID
        and the archives searched), or no prior is given and the patient has no
        earlier study.
    """
    from viewerlib.viewer import choose_series, open_volume
    from viewerlib.volume.volume import Volume

    if prior is None and isinstance(current, Volume | StackViewer):
        raise ValueError(
            "give the prior, or pass the current study (not a volume) "
            "so that its patient's history can be searched"
        )
    needs_source = not isinstance(current, Volume | StackViewer) or not isinstance(
        prior, Volume | StackViewer
    )
    if source is None and needs_source:
        from viewerlib.sources.config import connect

        source = connect()

    current_series: Series | None = None
    current_study: Study | None = None
    if isinstance(current, Volume | StackViewer):
        current_viewer = _viewer_of(current)
    else:
        assert source is not None
        # A UID is looked up first: a study no archive holds is named as such.
        current_study = (
            current if isinstance(current, Study) else find_study(current, source)
        )
        study_uid = current_study.StudyInstanceUID
        current_series = choose_series(
            source.search_for_series(study_instance_uid=study_uid)
        )
        current_viewer = StackViewer.from_volume(
            open_volume(study_uid, source, current_series), **viewer_options
        )

    if prior is None:
        assert source is not None and current_study is not None
        prior = find_prior(current_study, source)

    if isinstance(prior, Volume | StackViewer):
        prior_viewer = _viewer_of(prior)
    else:
        assert source is not None
        prior_uid = prior if isinstance(prior, str) else prior.StudyInstanceUID
        candidates = source.search_for_series(study_instance_uid=prior_uid)
        chosen = (
            match_series(current_series, candidates, source)
            if current_series is not None
            else choose_series(candidates)
        )
        prior_viewer = StackViewer.from_volume(
            open_volume(prior_uid, source, chosen), **viewer_options
        )
    logger.info("comparison opened")
    return Comparison(current_viewer, prior_viewer)
