"""The Lightbox server extension: its settings, its handlers, the purge at shutdown."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar

from jupyter_core.utils import ensure_async
from jupyter_server.extension.application import ExtensionApp
from lightbox_extensions.server import handlers
from lightbox_extensions.server.logs import scrub_server_logs
from lightbox_extensions.server.outputs import strip_outputs_before_save
from tornado.web import OutputTransform
from traitlets import (
    Bool,
    Float,
    Int,
    List,
    TraitError,
    Unicode,
    default,
    observe,
    validate,
)

PANELS = ("studies", "launcher", "app-view")
PANELS_ENV = "LIGHTBOX_PANELS"
ROLE_ENV = "LIGHTBOX_ROLE"
SCRATCH_ENV = "LIGHTBOX_SCRATCH_DIR"
# Set by JupyterHub for a user's server: where the audit receipt goes.
HUB_API_ENV = "JUPYTERHUB_API_URL"


def _report_purge(receipt: Any) -> bool:
    """Send the server's purge receipt to the hub's audit log; False if not sent."""
    try:
        from lightbox_hub.audit_client import report
    except ImportError:
        return False
    return report(
        "purge",
        kinds=list(receipt.kinds),
        items=int(receipt.items),
        bytes=int(receipt.bytes),
        where="server",
    )


class LightboxServerExtension(ExtensionApp):
    """Study search, archive health and viewer launches inside the user's server."""

    name = "lightbox"
    load_other_extensions = True
    # Tasks of run_in_background, kept so they are not collected while they run.
    _background: ClassVar[set[asyncio.Future[None]]] = set()

    panels = List(
        Unicode(),
        help="""Which parts of the JupyterLab extension this user sees: any of
        'studies' (the side panel), 'launcher' (cards for the role's lessons) and
        'app-view' (launch notebooks open with their code hidden and run). Default:
        the comma-separated list in LIGHTBOX_PANELS, which the hub sets per role
        from c.LightboxHub.role_panels, else all three. Example:
        c.LightboxServerExtension.panels = ["launcher"]""",
    ).tag(config=True)

    launch_folder = Unicode(
        "ehr-launch",
        help="""Folder under the server's root for viewer notebooks (the hub's EHR
        launches and this extension's); its notebooks are served with
        Cache-Control: no-store and wiped at shutdown. Default 'ehr-launch'; keep
        it equal to lightbox_hub.handlers.LAUNCH_FOLDER. Example:
        c.LightboxServerExtension.launch_folder = "ehr-launch" """,
    ).tag(config=True)

    notebook_template = Unicode(
        "",
        help="""A .ipynb file the viewer notebooks are made from; its code cells
        name the study as "__STUDY_INSTANCE_UID__". Empty (the default) uses the
        built-in template: one cell that opens the study with viewerlib.open.
        Example: c.LightboxServerExtension.notebook_template =
        "/etc/lightbox/viewer.ipynb" """,
    ).tag(config=True)

    scratch_dir = Unicode(
        help="""A folder emptied at shutdown along with the launch notebooks.
        Default: LIGHTBOX_SCRATCH_DIR, else none (TMPDIR is never wiped unasked,
        because it may be shared). Example:
        c.LightboxServerExtension.scratch_dir = "/var/lib/lightbox/scratch/ana" """,
    ).tag(config=True)

    archive_timeout_s = Float(
        10.0,
        help="""Longest wait, in seconds, for any one archive in a search or health
        check; an archive that takes longer is reported 'slow'. Default 10.
        Example: c.LightboxServerExtension.archive_timeout_s = 5""",
    ).tag(config=True)

    search_limit = Int(
        100,
        help="""Most studies one search of the Studies panel returns. Default 100.
        Example: c.LightboxServerExtension.search_limit = 50""",
    ).tag(config=True)

    simple_interface = Bool(
        True,
        help="""Switch JupyterLab to its simple (single-document) interface when a
        notebook opens as an app. Default True. Example:
        c.LightboxServerExtension.simple_interface = False""",
    ).tag(config=True)

    autorun_launch_notebooks = Bool(
        True,
        help="""Run the notebooks of the launch folder as soon as JupyterLab opens
        them (the hub's EHR launches), so the study shows without Run All. Viewer
        notebooks marked as apps (metadata lightbox.app_view) always run, with
        their code hidden. Default True. Example:
        c.LightboxServerExtension.autorun_launch_notebooks = False""",
    ).tag(config=True)

    shut_down_kernels = Bool(
        True,
        help="""At server shutdown, shut every kernel down gracefully before the
        launch notebooks are wiped, so each kernel's startup file purges
        viewerlib's caches. Default True; turn off only when another component
        shuts the kernels down. Example:
        c.LightboxServerExtension.shut_down_kernels = True""",
    ).tag(config=True)

    save_notebook_outputs = Bool(
        False,
        help="""Write notebooks to disk with their outputs. Default False: every
        save (autosave included) drops outputs and execution counts, because they
        show patient names, IDs and images that would stay in the home folder
        after the session; users run the cells again. Turn on only for a server
        that holds de-identified research data alone. Example:
        c.LightboxServerExtension.save_notebook_outputs = True""",
    ).tag(config=True)

    @default("panels")
    def _panels_from_environment(self) -> list[str]:
        value = os.environ.get(PANELS_ENV)
        if value is None:
            return list(PANELS)
        return [part.strip() for part in value.split(",") if part.strip()]

    @default("scratch_dir")
    def _scratch_from_environment(self) -> str:
        return os.environ.get(SCRATCH_ENV, "")

    @validate("panels")
    def _check_panels(self, proposal: Any) -> list[str]:
        unknown = [panel for panel in proposal.value if panel not in PANELS]
        if unknown:
            raise TraitError(
                f"unknown Lightbox panel(s) {', '.join(unknown)}; choose "
                f"from {', '.join(PANELS)} (c.LightboxServerExtension."
                f"panels or {PANELS_ENV})"
            )
        return list(dict.fromkeys(proposal.value))

    @validate("launch_folder")
    def _check_launch_folder(self, proposal: Any) -> str:
        folder = str(proposal.value).strip("/")
        if not folder or ".." in folder.split("/"):
            raise TraitError(
                f"launch_folder {proposal.value!r} must be a folder "
                "below the server's root, e.g. 'ehr-launch'"
            )
        return folder

    @observe("scratch_dir")
    def _warn_about_shared_scratch(self, change: Any) -> None:
        resolved = Path(change.new).resolve() if change.new else None
        if resolved is not None and resolved in {
            Path("/"),
            Path("/tmp"),
            Path("/var/tmp"),
            Path.home(),
        }:
            self.log.warning(
                "scratch_dir %s is shared with other programs; it is "
                "not wiped at shutdown",
                resolved,
            )

    @property
    def default_view(self) -> str:
        """How a viewer notebook opens when the caller does not say: the app view
        when the role has it (``panels``), else as a notebook."""
        return "app" if "app-view" in self.panels else "notebook"

    def run_in_background(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``work`` after the current request; a failure is logged as ``what``."""
        task = asyncio.ensure_future(work)
        self._background.add(task)

        def finished(done: asyncio.Future[None]) -> None:
            self._background.discard(done)
            if not done.cancelled() and done.exception() is not None:
                self.log.error("Lightbox: could not %s: %s", what, done.exception())

        task.add_done_callback(finished)

    # -- paths ------------------------------------------------------------------------

    @property
    def root_dir(self) -> Path:
        return Path(self.serverapp.root_dir).resolve()

    @property
    def launch_path(self) -> Path:
        return self.root_dir / self.launch_folder

    def no_store_prefixes(self) -> tuple[str, ...]:
        """URL paths whose responses may carry patient data or images."""
        base = self.serverapp.base_url.rstrip("/")
        folder = self.launch_folder
        return (
            f"{base}/lightbox/",
            f"{base}/api/contents/{folder}",
            f"{base}/files/{folder}/",
            f"{base}/lab/tree/{folder}/",
        )

    # -- extension hooks ---------------------------------------------------------------

    def initialize_handlers(self) -> None:
        arguments = {"extension": self}
        self.handlers.extend(
            (pattern, handler, arguments) for pattern, handler in handlers.ROUTES
        )
        prefixes = self.no_store_prefixes()

        class NoStore(OutputTransform):
            def __init__(self, request: Any) -> None:
                super().__init__(request)
                path = request.path
                self.applies = any(
                    path == p.rstrip("/") or path.startswith(p) for p in prefixes
                )

            def transform_first_chunk(
                self, status_code: int, headers: Any, chunk: bytes, finishing: bool
            ) -> Any:
                if self.applies:
                    headers["Cache-Control"] = "no-store"
                    headers.pop("Etag", None)
                return status_code, headers, chunk

        self.serverapp.web_app.add_transform(NoStore)
        scrub_server_logs(self.serverapp.web_app, self.serverapp.log)
        if self.save_notebook_outputs:
            self.log.warning(
                "Lightbox: notebooks are saved WITH their outputs "
                "(save_notebook_outputs); only for de-identified data"
            )
        else:
            self.serverapp.contents_manager.register_pre_save_hook(
                strip_outputs_before_save
            )
        self.log.info(
            "Lightbox: panels %s; launch notebooks in %s/; notebook outputs %s",
            ", ".join(self.panels) or "none",
            self.launch_folder,
            "saved" if self.save_notebook_outputs else "never saved",
        )

    async def stop_extension(self) -> None:
        """Shut kernels down gracefully, wipe launch notebooks and scratch, purge.

        The server's own purge receipt (its search and thumbnail caches) goes to
        the hub's audit log with ``where="server"``, so every stop leaves one,
        even when a kernel was killed before it could send its own.
        """
        if self.shut_down_kernels:
            manager = self.serverapp.kernel_manager
            count = len(manager.list_kernel_ids())
            # A graceful shutdown runs each kernel's atexit handlers, where the
            # Lightbox startup file purges viewerlib's caches; SIGKILL would not.
            await ensure_async(manager.shutdown_all(now=False))
            self.log.info("Lightbox: shut down %d kernel(s) gracefully", count)
        receipt = self.wipe()
        if receipt is not None and os.environ.get(HUB_API_ENV):
            # urllib blocks: in a thread, so the server's loop goes on shutting down.
            delivered = await asyncio.get_running_loop().run_in_executor(
                None, _report_purge, receipt
            )
            if not delivered:
                self.log.warning("Lightbox: the server's purge receipt did not "
                                 "reach the hub's audit log")

    def wipe(self) -> Any:
        """Delete the launch notebooks, empty the scratch folder, purge the caches.

        Returns viewerlib's purge receipt, or ``None`` without viewerlib.
        """
        for folder in filter(None, [self.launch_path, self._safe_scratch()]):
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                self.log.info("Lightbox: wiped %s", folder)
        try:
            import viewerlib.cache
        except ImportError:
            return None
        receipt = viewerlib.cache.purge()
        self.log.info(
            "Lightbox: purged the server's viewerlib caches (%d items)", receipt.items
        )
        return receipt

    def _safe_scratch(self) -> Path | None:
        if not self.scratch_dir:
            return None
        folder = Path(self.scratch_dir).resolve()
        if folder in {
            Path("/"),
            Path("/tmp"),
            Path("/var/tmp"),
            Path.home(),
            self.root_dir,
        }:
            return None
        return folder
