"""The study browser: search the archives, see each study's archives, open it.

A search form sends its fields to the kernel, which asks the (federated) source; the
results table lists each study with the archive(s) holding it and every archive's
health (an archive that is down is shown so, and the others' studies are listed).
A study whose patient is known under other identifiers in the results (linked by
(0010,0021) *Issuer of Patient ID* and (0010,1002) *Other Patient IDs Sequence*,
never by name) carries a "same patient as" badge. Thumbnails are the middle image
of the study's main series, windowed in the kernel and sent as 8-bit binary
messages (never base64, never stored). One click opens the study below through
:func:`viewerlib.open`, which shows the first image while the series streams in,
with a progress bar; another opens it beside the patient's prior, found across the
archives (:func:`~viewerlib.widgets.compare.find_prior`).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import ipywidgets
import numpy as np
import traitlets

from viewerlib.errors import IncompleteResultsWarning, ViewerlibError
from viewerlib.sources.federated import not_searched_note
from viewerlib.widgets._frontend import FrontEndWidget, esm_trait, front_end

if TYPE_CHECKING:
    from viewerlib.model import Study
    from viewerlib.sources.base import Source, SourceHealth

logger = logging.getLogger(__name__)

_THUMBNAIL_SIDE = 64
_SEARCH_FIELDS = ("patient_name", "patient_id", "modality", "accession_number")


def _row(study: Study) -> dict[str, Any]:
    return {
        "uid": study.StudyInstanceUID,
        "name": str(study.PatientName).replace("^", " ").strip(),
        "patient_id": study.PatientID,
        "date": study.StudyDate,
        "description": study.StudyDescription,
        "modalities": " ".join(study.ModalitiesInStudy),
        "accession": study.AccessionNumber,
        "archives": list(study.locations),
        # The patient's other identifiers in these results (never the name).
        "linked": [str(identifier) for identifier in study.linked_identifiers],
    }


def _health_rows(checks: Any) -> list[dict[str, str]]:
    return [
        {"archive": h.source_name, "state": h.state, "message": h.message}
        for h in checks
    ]


@contextlib.contextmanager
def _shown_in_the_browser() -> Iterator[None]:
    """Keep IncompleteResultsWarning out of the cell's output: the browser shows
    the archives that were not searched in its health line and status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteResultsWarning)
        yield


def thumbnail(frame: np.ndarray, side: int = _THUMBNAIL_SIDE) -> np.ndarray:
    """Nearest-neighbour shrink of a uint8 (rows, columns) frame to at most `side`.

    Examples
    --------
    >>> thumbnail(np.zeros((256, 128), np.uint8)).shape
    (64, 32)
    """
    step = max(1, int(np.ceil(max(frame.shape[:2]) / side)))
    return np.ascontiguousarray(frame[::step, ::step])


class _Table(FrontEndWidget):
    _esm = esm_trait(front_end("browser.js"))
    results = traitlets.List([]).tag(sync=True)
    health = traitlets.List([]).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)


class StudyBrowser(ipywidgets.VBox):
    """Search form, results with archives and health, thumbnails, one-click open.

    Parameters
    ----------
    source : Source, optional
        The archives; :func:`viewerlib.connect` when not given.
    """

    def __init__(self, source: Source | None = None) -> None:
        if source is None:
            from viewerlib.sources.config import connect

            source = connect()
        self.source = source
        self.table = _Table()
        self.progress = ipywidgets.FloatProgress(
            value=0.0,
            min=0.0,
            max=1.0,
            description="Loading",
            layout=ipywidgets.Layout(visibility="hidden", width="60%"),
        )
        self.progress.add_class("lbx-progress")
        self.viewer_box = ipywidgets.Box(layout=ipywidgets.Layout(width="100%"))
        #: What is shown below the table: a viewer, or a comparison.
        self.viewer: ipywidgets.DOMWidget | None = None
        self._studies: dict[str, Study] = {}
        self.table.on_msg(self._handle_message)
        super().__init__([self.table, self.progress, self.viewer_box])
        self.table.health = self._health()

    def _health(self) -> list[dict[str, str]]:
        by_source = getattr(self.source, "health_by_source", None)
        checks = by_source().values() if by_source else [self.source.health()]
        return _health_rows(checks)

    def search(self, **query: Any) -> list[Study]:
        """Search the archives (the keywords of ``search_for_studies``) and list them.

        An archive that could not be searched is shown as such in the health line
        and named in the status (what it holds is missing from the list); the
        others' studies are listed. Each study's ``linked_identifiers`` become its
        "same patient as" badge.
        """
        with _shown_in_the_browser():
            studies = self.source.search_for_studies(**query)
            self._show_results(studies)
            for study in studies:
                self._send_thumbnail(study)
        return list(studies)

    def _show_results(self, studies: list[Study]) -> None:
        self._studies = {s.StudyInstanceUID: s for s in studies}
        self.table.results = [_row(s) for s in studies]
        health: dict[str, SourceHealth] = getattr(studies, "source_health", {})
        if health:
            self.table.health = _health_rows(health.values())
        note = not_searched_note(studies)
        self.table.status = f"{len(studies)} studies" + (f". {note}" if note else "")
        logger.info("study search returned %d studies", len(studies))

    def _send_thumbnail(self, study: Study) -> None:
        from viewerlib.pipeline.instance import read_instance
        from viewerlib.viewer import choose_series

        try:
            series = choose_series(
                self.source.search_for_series(study_instance_uid=study.StudyInstanceUID)
            )
            instances = self.source.search_for_instances(
                study.StudyInstanceUID, series.SeriesInstanceUID
            )
            middle = sorted(instances, key=lambda i: i.InstanceNumber or 0)[
                len(instances) // 2
            ]
            ds = self.source.retrieve_instance(
                study.StudyInstanceUID, series.SeriesInstanceUID, middle.SOPInstanceUID
            )
            frame = read_instance(ds).display_frame()
        except (ViewerlibError, LookupError, ValueError, OSError) as err:
            # A thumbnail must never break the search.
            logger.warning("no thumbnail for a study: %s", type(err).__name__)
            return
        if frame.ndim == 3:
            frame = frame.mean(axis=2).astype(np.uint8)
        small = thumbnail(frame)
        self.table.send(
            {
                "type": "thumbnail",
                "uid": study.StudyInstanceUID,
                "rows": small.shape[0],
                "columns": small.shape[1],
            },
            buffers=[memoryview(small).cast("B")],
        )

    def open_study(self, study_instance_uid: str) -> ipywidgets.DOMWidget:
        """Open a listed study in the viewer below the table, showing progress.

        Through :func:`viewerlib.open`: the first image is on screen while the
        series still streams in, and the progress bar follows the images as they
        arrive; the viewer lists the study's annotations as toggles.
        """
        from viewerlib.viewer import open as open_viewer

        self._show_progress(0.0, "Opening")
        self.table.status = "Opening…"
        with _shown_in_the_browser():
            viewer = open_viewer(study_instance_uid, self.source)
        self._replace_viewer(viewer)
        loading = getattr(viewer, "loading", None)
        if isinstance(loading, dict) and loading.get("state") == "loading":
            viewer.observe(self._follow_loading, names="loading")
            self._follow_loading({"new": viewer.loading})
        else:
            self._hide_progress()
        self.table.status = "Opened"
        return viewer

    def compare_with_prior(self, study_instance_uid: str) -> ipywidgets.DOMWidget:
        """Open a listed study beside the patient's latest earlier study.

        The prior is searched for across the archives under every identifier of
        the patient (:func:`~viewerlib.widgets.compare.find_prior`), and its
        series is chosen to match the current one (orientation, description).

        Raises
        ------
        LookupError
            If the study is not listed, or the patient has no earlier study.
        """
        from viewerlib.widgets.compare import compare, find_prior

        current = self._studies.get(study_instance_uid)
        if current is None:
            raise LookupError(
                f"study {study_instance_uid} is not in the results; search for it first"
            )
        self._show_progress(0.0, "Prior")
        self.table.status = "Finding the prior…"
        with _shown_in_the_browser():
            prior = find_prior(current, self.source)
            pair = compare(current, prior, self.source)
        self._replace_viewer(pair)
        self._hide_progress()
        self.table.status = (
            f"Compared with the prior of {prior.StudyDate} from "
            + ", ".join(prior.locations)
        )
        return pair

    def _replace_viewer(self, viewer: ipywidgets.DOMWidget) -> None:
        old = self.viewer
        self.viewer = viewer
        self.viewer_box.children = (viewer,)
        if old is not None:
            if "loading" in old.trait_names():
                # Only the viewer shown moves the progress bar.
                with contextlib.suppress(ValueError):
                    old.unobserve(self._follow_loading, names="loading")
            # Closing the old viewer frees its frames in the page (pitfall 10).
            for child in getattr(old, "children", ()):
                child.close()
            old.close()

    def _follow_loading(self, change: dict[str, Any]) -> None:
        state = change["new"] or {}
        total = max(1, int(state.get("total") or 1))
        received = int(state.get("received") or 0)
        if state.get("state") == "loading":
            self._show_progress(received / total, f"{received} of {total}")
        else:
            self._hide_progress()
            if state.get("state") == "failed":
                self.table.status = "Loading stopped: see the viewer"

    def _show_progress(self, value: float, description: str) -> None:
        with self.progress.hold_sync():
            self.progress.value = min(1.0, max(0.0, value))
            self.progress.description = description
            self.progress.layout.visibility = "visible"

    def _hide_progress(self) -> None:
        with self.progress.hold_sync():
            self.progress.value = 1.0
            self.progress.layout.visibility = "hidden"

    def _handle_message(
        self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]
    ) -> None:
        try:
            if content.get("type") == "search":
                query = {k: content[k] or None for k in _SEARCH_FIELDS if k in content}
                dates = (content.get("date_from") or "", content.get("date_to") or "")
                if any(dates):
                    query["study_date"] = f"{dates[0]}-{dates[1]}".replace("--", "-")
                self.search(**query)
            elif content.get("type") == "open":
                self.open_study(str(content["uid"]))
            elif content.get("type") == "compare":
                self.compare_with_prior(str(content["uid"]))
        except (ViewerlibError, LookupError, ValueError, OSError) as err:
            # The user sees what failed; the log gets no patient data.
            self._hide_progress()
            self.table.status = f"Failed: {type(err).__name__}: {err}"
            logger.error("study browser action failed: %s", type(err).__name__)

    def __repr__(self) -> str:
        return f"StudyBrowser({len(self._studies)} studies)"
