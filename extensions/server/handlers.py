"""HTTP handlers of the Lightbox server extension (paths below the server's base URL).

Search and health run viewerlib in the server process, in a thread, so a slow archive
never blocks the server; responses carry patient data and are never cached.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import secrets
from typing import TYPE_CHECKING, Any

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from lightbox_extensions.server.notebooks import (
    check_study_instance_uid,
    list_lessons,
    read_template,
    viewer_notebook,
)
from tornado import web

if TYPE_CHECKING:
    from lightbox_extensions.server.app import LightboxServerExtension

_SEARCH_KEYS = (
    "patient_name",
    "patient_id",
    "modality",
    "study_date",
    "accession_number",
)
_VIEWS = ("app", "notebook")
# (0008,0061) Modalities in Study is CS: upper-case letters, digits, space and
# underscore, 16 characters at most (PS3.5 6.2).
_MODALITY = re.compile(r"^[A-Z0-9_]{1,16}$")
# How people type several: DICOM's backslash, QIDO's comma, the panel's "CT/MR".
_MODALITY_SEPARATORS = re.compile(r"[\\,/\s]+")


def modality_values(text: str) -> list[str]:
    r"""The modalities of a search field, upper case, each once, in order.

    Several may be separated by a backslash (DICOM multi-value, ``CT\MR``), a
    comma (the QIDO-RS list, PS3.18 8.3.4.1), a slash or spaces.

    Raises
    ------
    ValueError
        If a value is not a modality code, naming it.

    Examples
    --------
    >>> modality_values("ct\\MR")
    ['CT', 'MR']
    >>> modality_values(" CT, MR,CT ")
    ['CT', 'MR']
    """
    values = [v for v in _MODALITY_SEPARATORS.split(text.strip().upper()) if v]
    for value in values:
        if not _MODALITY.match(value):
            # Echoed only when harmless: the text becomes an HTTP reason phrase.
            shown = repr(value) if re.fullmatch(r"[\w*?.\-]{1,32}", value) else "It"
            raise ValueError(
                f"{shown} is not a modality: use codes such as CT or MR, several "
                "separated by commas (CT,MR)"
            )
    return list(dict.fromkeys(values))


def _health_row(name: str, health: Any) -> dict[str, Any]:
    return {
        "name": name,
        "state": health.state,
        "latency_ms": health.latency_ms,
        "message": health.message,
    }


def archives_notice(rows: list[dict[str, Any]]) -> str:
    """One sentence on the archives that are down or slow, for the panel; or "".

    Examples
    --------
    >>> print(archives_notice([{"name": "North", "state": "ok"},
    ...                        {"name": "Closed", "state": "down"}]))
    ... # doctest: +ELLIPSIS
    Not reachable now: Closed; studies held only there are missing. Search again...
    """
    down = [row["name"] for row in rows if row["state"] == "down"]
    slow = [row["name"] for row in rows if row["state"] == "slow"]
    parts = []
    if down:
        parts.append(
            f"Not reachable now: {', '.join(down)}; studies held only there are "
            "missing. Search again later; if it stays down, tell the archive's "
            "administrator."
        )
    if slow:
        parts.append(f"Answering slowly: {', '.join(slow)}.")
    return " ".join(parts)


def _study_row(study: Any) -> dict[str, Any]:
    # The viewer's own formatting ("Family, Given"), so the panel and the viewer's
    # overlay show one name the same way.
    from viewerlib.widgets.stack import display_person_name

    return {
        "study_instance_uid": study.StudyInstanceUID,
        "patient_name": display_person_name(str(study.PatientName)),
        "patient_id": study.PatientID,
        "study_date": study.StudyDate,
        "study_time": study.StudyTime,
        "study_description": study.StudyDescription,
        "accession_number": study.AccessionNumber,
        "modalities": list(study.ModalitiesInStudy),
        # (0020,1206) and (0020,1208); None when the archive does not say.
        "number_of_series": study.NumberOfStudyRelatedSeries,
        "number_of_instances": study.NumberOfStudyRelatedInstances,
        "locations": list(study.locations),
    }


class _LightboxHandler(APIHandler):
    """Common ground: the extension's settings, no caching, readable errors."""

    extension: LightboxServerExtension

    def initialize(self, extension: LightboxServerExtension) -> None:
        self.extension = extension

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def connect(self) -> Any:
        """The archives of ``LIGHTBOX_ARCHIVES``; HTTP 503 with the fix if unusable."""
        from viewerlib.sources import ArchivesConfigError, connect

        try:
            return connect(timeout_s=self.extension.archive_timeout_s)
        except ArchivesConfigError as err:
            self.log.warning("Lightbox: archives configuration unusable: %s", err)
            text = " ".join(str(err).split())
            raise web.HTTPError(
                503,
                reason=f"No archives are configured: {text}",
                log_message="archives configuration unusable",
            ) from err

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # The reason phrase is the user's text; the log gets log_message. An
        # unexpected failure says where to look rather than "Internal Server Error".
        error = kwargs.get("exc_info", (None, None))[1]
        message = self._reason
        if status_code == 500 and not isinstance(error, web.HTTPError):
            message = (
                "Lightbox's server extension failed on this request; the server "
                "log has the details. Try again; if it keeps failing, tell your "
                "administrator."
            )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message, "status": status_code}))

    async def in_thread(self, function: Any, *arguments: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            None, function, *arguments
        )


class HealthHandler(_LightboxHandler):
    """``GET``: every archive's state (ok, slow, down) and latency in milliseconds."""

    @web.authenticated
    async def get(self) -> None:
        try:
            source = self.connect()
        except web.HTTPError as err:
            # The panel shows the reason in place of the archive list.
            self.finish({"archives": [], "message": err.reason})
            return
        by_source = await self.in_thread(source.health_by_source)
        rows = [_health_row(name, health) for name, health in by_source.items()]
        self.finish({"archives": rows, "message": "", "notice": archives_notice(rows)})


class SearchHandler(_LightboxHandler):
    """``GET ?patient_name=&patient_id=&modality=&study_date=&accession_number=``.

    A federated search. ``modality`` may name several (``CT\\MR``, ``CT,MR``):
    studies with any of them. With some archives down, the others' studies and a
    ``notice`` naming the down ones; with every archive down, HTTP 503 whose
    ``message`` names them and says what to do.
    """

    @web.authenticated
    async def get(self) -> None:
        from viewerlib.errors import SourceAuthenticationError, SourceError

        query = {
            key: self.get_argument(key)
            for key in _SEARCH_KEYS
            if self.get_argument(key, "")
        }
        try:
            modalities = modality_values(query.pop("modality", ""))
        except ValueError as err:
            raise web.HTTPError(400, reason=str(err)) from err
        source = self.connect()

        def search() -> Any:
            return search_modalities(
                source, modalities, limit=self.extension.search_limit, **query
            )

        try:
            results = await self.in_thread(search)
        except ValueError as err:
            raise web.HTTPError(400, reason=str(err)) from err
        except SourceError as err:
            # No archive could be searched (viewerlib says so rather than answer
            # "none"); each archive's own failure is on the error.
            failures = dict(getattr(err, "failures", None) or {})
            names = list(failures) or [archive.name for archive in source.sources]
            refused = bool(failures) and all(
                isinstance(e, SourceAuthenticationError) for e in failures.values()
            )
            self.log.warning(
                "Lightbox: study search: no archive answered (%s)", ", ".join(names)
            )
            self.set_status(503)
            rows = [
                {"name": name, "state": "refused" if refused else "down",
                 "latency_ms": None, "message": ""}
                for name in names
            ]
            if refused:
                message = (
                    f"Nothing could be searched: {_listing(names)} refused your "
                    "credentials. Sign out of Lightbox and sign in again; if it "
                    "keeps happening, ask the archive's administrator to check "
                    "your access."
                )
            else:
                message = (
                    f"Nothing could be searched: {_listing(names)} "
                    f"{'is' if len(names) == 1 else 'are'} not reachable now. "
                    "Press Check to see each archive's state, and search again "
                    "in a few minutes; if it stays down, tell the archive's "
                    "administrator."
                )
            self.finish(
                {
                    "message": message,
                    "status": 503,
                    "archives": rows,
                    "studies": [],
                    "complete": False,
                }
            )
            return
        self.log.info("Lightbox: study search returned %d studies", len(results))
        health = results.source_health
        rows = [_health_row(name, health[name]) for name in health]
        self.finish(
            {
                "studies": [_study_row(study) for study in results],
                "archives": rows,
                "complete": results.complete,
                "notice": archives_notice(rows),
            }
        )


def search_modalities(
    source: Any, modalities: list[str], limit: int | None, **query: Any
) -> Any:
    """A federated study search for any of ``modalities`` (none: every modality).

    DICOMweb archives get one QIDO-RS search with the modalities as a comma
    separated list (PS3.18 8.3.4.1: any of them matches). A folder archive
    matches one modality at a time, so with one among the archives there is a
    search per modality, merged by Study Instance UID, newest first.
    """
    from viewerlib.sources.dicomweb import DICOMwebSource
    from viewerlib.sources.federated import FederatedResults

    if len(modalities) <= 1 or all(
        isinstance(archive, DICOMwebSource) for archive in source.sources
    ):
        return source.search_for_studies(
            limit=limit, modality=",".join(modalities) or None, **query
        )
    merged: dict[str, Any] = {}
    health: dict[str, Any] = {}
    for modality in modalities:
        results = source.search_for_studies(limit=limit, modality=modality, **query)
        for study in results:
            merged.setdefault(study.StudyInstanceUID, study)
        # An archive that failed one of the searches counts as failed.
        for name, state in results.source_health.items():
            if name not in health or not state.answered:
                health[name] = state
    studies = sorted(
        merged.values(), key=lambda s: (s.StudyDate, s.StudyTime), reverse=True
    )
    return FederatedResults(studies[:limit] if limit else studies, health)


def _listing(names: list[str]) -> str:
    """``"A"``, ``"A and B"``, ``"A, B and C"``."""
    if len(names) <= 1:
        return "".join(names) or "no archive"
    return f"{', '.join(names[:-1])} and {names[-1]}"


class ThumbnailHandler(_LightboxHandler):
    """``GET ?study_instance_uid=``: a PNG of the middle image of the first series."""

    @web.authenticated
    async def get(self) -> None:
        try:
            uid = check_study_instance_uid(self.get_argument("study_instance_uid", ""))
        except ValueError as err:
            raise web.HTTPError(400, reason=str(err)) from err
        source = self.connect()
        png = await self.in_thread(_thumbnail_png, source, uid)
        if png is None:
            raise web.HTTPError(404, reason="No image to show for this study")
        self.set_header("Content-Type", "image/png")
        # APIHandler.finish would label the PNG as JSON.
        JupyterHandler.finish(self, png)


def _thumbnail_png(source: Any, study_instance_uid: str) -> bytes | None:
    import numpy as np
    from PIL import Image

    from viewerlib.errors import ViewerlibError
    from viewerlib.pipeline.instance import read_instance
    from viewerlib.viewer import choose_series
    from viewerlib.widgets.browser import thumbnail

    try:
        series = choose_series(
            source.search_for_series(study_instance_uid=study_instance_uid)
        )
        instances = sorted(
            source.search_for_instances(study_instance_uid, series.SeriesInstanceUID),
            key=lambda instance: instance.InstanceNumber or 0,
        )
        middle = instances[len(instances) // 2]
        dataset = source.retrieve_instance(
            study_instance_uid, series.SeriesInstanceUID, middle.SOPInstanceUID
        )
        frame = read_instance(dataset).display_frame()
    except (ViewerlibError, LookupError, ValueError, OSError):
        return None
    if frame.ndim == 3:
        frame = frame.mean(axis=2).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(thumbnail(frame)).save(buffer, format="PNG")
    return buffer.getvalue()


class OpenHandler(_LightboxHandler):
    """``POST {"study_instance_uid", "view": "app"|"notebook"}``: a viewer notebook.

    The hub's EHR launch calls this with a short-lived token for the user's server,
    then sends the browser to the ``url`` it returns; the Studies panel calls it on
    "Open". Without ``view``, the notebook opens as an app when the role has the
    app view (``panels``), else as a notebook. The body names the study by UID
    only: patient IDs and accession numbers never reach the user's server.

    One study at a time: the earlier viewer notebooks are deleted and their kernels
    shut down gracefully (so each purges its caches), while the server keeps running.
    """

    @web.authenticated
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
            uid = check_study_instance_uid(body.get("study_instance_uid"))
            view = body.get("view") or self.extension.default_view
            if view not in _VIEWS:
                raise ValueError(
                    f"view must be one of {', '.join(_VIEWS)}, not {view!r}"
                )
        except (ValueError, AttributeError) as err:
            raise web.HTTPError(400, reason=str(err)) from err
        extension = self.extension
        try:
            template = read_template(extension.notebook_template)
        except (OSError, ValueError) as err:
            self.log.error(
                "Lightbox: notebook template %s unusable: %s",
                extension.notebook_template,
                err,
            )
            raise web.HTTPError(
                500, reason="The viewer template is unusable; ask your administrator"
            ) from err
        notebook = viewer_notebook(template, uid, app_view=view == "app")
        path = await self.save(notebook)
        self.log.info(
            "Lightbox: wrote a viewer notebook in %s/", extension.launch_folder
        )
        base = extension.serverapp.base_url
        self.finish({"path": path, "url": f"{base}lab/tree/{path}"})

    async def save(self, notebook: dict[str, Any]) -> str:
        import nbformat

        manager = self.contents_manager
        folder = self.extension.launch_folder
        if not await ensure_async(manager.dir_exists(folder)):
            await ensure_async(manager.save({"type": "directory"}, folder))
        else:
            # One study at a time: older viewer notebooks and their kernels go.
            listing = await ensure_async(manager.get(folder, content=True))
            replaced = [
                item["path"]
                for item in listing["content"]
                if item["type"] == "notebook" and item["name"].startswith("study-")
            ]
            for old_path in replaced:
                await ensure_async(manager.delete(old_path))
            await self.close_sessions(replaced)
        path = f"{folder}/study-{secrets.token_hex(4)}.ipynb"
        model = {
            "type": "notebook",
            "format": "json",
            "content": nbformat.from_dict(notebook),
        }
        await ensure_async(manager.save(model, path))
        return path

    async def close_sessions(self, paths: list[str]) -> None:
        """Shut down, in the background, the kernels of the notebooks at ``paths``.

        A graceful shutdown runs the kernel's purge; waiting for it would hold up
        the launch that replaced the notebook.
        """
        manager = self.session_manager
        sessions = await ensure_async(manager.list_sessions())
        doomed = [s["id"] for s in sessions if s.get("path") in set(paths)]
        if doomed:
            self.extension.run_in_background(
                self._delete_sessions(manager, doomed), "shut down replaced viewers"
            )

    async def _delete_sessions(self, manager: Any, session_ids: list[str]) -> None:
        for session_id in session_ids:
            try:
                await manager.delete_session(session_id)
            except web.HTTPError as err:
                # 404: the user closed it meanwhile, which is what we wanted.
                if err.status_code != 404:
                    raise
        self.log.info(
            "Lightbox: shut down %d kernel(s) of replaced viewers", len(session_ids)
        )


class ConfigHandler(_LightboxHandler):
    """``GET``: the role, the panels it sees and its lessons, for JupyterLab."""

    @web.authenticated
    async def get(self) -> None:
        from lightbox_extensions.server.app import ROLE_ENV
        from lightbox_hub.roles import ROLE_BY_GROUP

        extension = self.extension
        role = ROLE_BY_GROUP.get(os.environ.get(ROLE_ENV, ""))
        lessons: list[dict[str, str]] = []
        if role is not None:
            folder = extension.root_dir / role.curriculum
            if folder.is_dir():
                lessons = list_lessons(folder, extension.root_dir)
        self.finish(
            {
                "role": role.group if role else None,
                "role_title": role.title if role else None,
                "panels": list(extension.panels),
                "lessons": lessons,
                "autorun_paths": (
                    [extension.launch_folder + "/"]
                    if extension.autorun_launch_notebooks
                    else []
                ),
                "simple_interface": extension.simple_interface,
            }
        )


ROUTES: list[tuple[str, type]] = [
    (r"/lightbox/api/health", HealthHandler),
    (r"/lightbox/api/search", SearchHandler),
    (r"/lightbox/api/thumbnail", ThumbnailHandler),
    (r"/lightbox/api/open", OpenHandler),
    (r"/lightbox/api/config", ConfigHandler),
]
