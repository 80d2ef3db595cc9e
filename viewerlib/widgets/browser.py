"""The study browser: search the archives, see each study's archives, open it.

A search form sends its fields to the kernel, which asks the (federated) source; the
results table lists each study with the archive(s) holding it and every archive's
health. Thumbnails are the middle image of the study's main series, windowed in the
kernel and sent as 8-bit binary messages (never base64, never stored). One click opens
the study in a stack viewer below, with a progress bar while its instances arrive.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets
import numpy as np
import traitlets

from viewerlib.errors import ViewerlibError
from viewerlib.widgets._frontend import front_end
from viewerlib.widgets.stack import StackViewer

if TYPE_CHECKING:
    from viewerlib.model import Study
    from viewerlib.sources.base import Source

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
    }


def thumbnail(frame: np.ndarray, side: int = _THUMBNAIL_SIDE) -> np.ndarray:
    """Nearest-neighbour shrink of a uint8 (rows, columns) frame to at most `side`.

    Examples
    --------
    >>> thumbnail(np.zeros((256, 128), np.uint8)).shape
    (64, 32)
    """
    step = max(1, int(np.ceil(max(frame.shape[:2]) / side)))
    return np.ascontiguousarray(frame[::step, ::step])


class _Table(anywidget.AnyWidget):
    _esm = front_end("browser.js")
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
        self.viewer_box = ipywidgets.Box(layout=ipywidgets.Layout(width="100%"))
        self.viewer: StackViewer | None = None
        self._studies: dict[str, Study] = {}
        self.table.on_msg(self._handle_message)
        super().__init__([self.table, self.progress, self.viewer_box])
        self.table.health = self._health()

    def _health(self) -> list[dict[str, str]]:
        by_source = getattr(self.source, "health_by_source", None)
        checks = by_source().values() if by_source else [self.source.health()]
        return [
            {"archive": h.source_name, "state": h.state, "message": h.message}
            for h in checks
        ]

    def search(self, **query: Any) -> list[Study]:
        """Search the archives (the keywords of ``search_for_studies``) and list them."""
        studies = self.source.search_for_studies(**query)
        self._studies = {s.StudyInstanceUID: s for s in studies}
        self.table.results = [_row(s) for s in studies]
        self.table.status = f"{len(studies)} studies"
        logger.info("study search returned %d studies", len(studies))
        for study in studies:
            self._send_thumbnail(study)
        return list(studies)

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

    def open_study(self, study_instance_uid: str) -> StackViewer:
        """Open a listed study in the viewer below the table, showing progress."""
        from viewerlib.viewer import choose_series
        from viewerlib.volume.volume import read_series

        self.progress.layout.visibility = "visible"
        self.progress.value = 0.0
        series = choose_series(
            self.source.search_for_series(study_instance_uid=study_instance_uid)
        )
        expected = max(1, series.NumberOfSeriesRelatedInstances or 1)
        datasets = []
        for ds in self.source.iter_series(study_instance_uid, series.SeriesInstanceUID):
            datasets.append(ds)
            self.progress.value = min(0.95, len(datasets) / expected)
        volumes = read_series(datasets)
        if not volumes:
            raise LookupError(f"series {series.SeriesInstanceUID} holds no images")
        volume = max(volumes, key=lambda v: v.voxels.shape[0])
        if self.viewer is not None:
            # Closing the old viewer frees its frames in the page (pitfall 10).
            self.viewer.close()
        self.viewer = StackViewer.from_volume(volume)
        self.viewer_box.children = (self.viewer,)
        self.progress.value = 1.0
        self.progress.layout.visibility = "hidden"
        return self.viewer

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
        except (ViewerlibError, LookupError, ValueError, OSError) as err:
            # The user sees what failed; the log gets no patient data.
            self.table.status = f"Failed: {type(err).__name__}: {err}"
            logger.error("study browser action failed: %s", type(err).__name__)

    def __repr__(self) -> str:
        return f"StudyBrowser({len(self._studies)} studies)"
