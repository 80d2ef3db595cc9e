"""The default spawner: local processes with enforced limits, and its start/stop hooks.

``SimpleLocalProcessSpawner`` accepts ``mem_limit`` and ``cpu_limit`` but enforces
neither. :class:`LightboxLocalSpawner` applies them in the child before it runs the
server, so the server and every kernel it starts inherit them:

- ``mem_limit`` becomes ``RLIMIT_AS`` (address space per process, bytes);
- ``cpu_limit`` becomes a CPU affinity of ``ceil(cpu_limit)`` cores.

Both are per process, not per user (a cgroup would cap the sum; KubeSpawner or
SystemdSpawner give that). The spawner is only configuration: set
``c.JupyterHub.spawner_class`` to swap it.
"""
from __future__ import annotations

import math
import os
import resource
import shutil
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode

from lightbox_hub.roles import role_for_groups
from lightbox_hub.settings import forget_kernel_history, prepare_workspace

KERNEL_STARTUP_NAME = "00-lightbox-session.py"
_KERNEL_STARTUP = Path(__file__).with_name("kernel_startup.py")


def apply_limits(mem_limit: int | None, cpu_limit: float | None) -> None:
    """Limit this process (and its future children); called in the child."""
    if mem_limit:
        resource.setrlimit(resource.RLIMIT_AS, (int(mem_limit), int(mem_limit)))
    if cpu_limit:
        available = sorted(os.sched_getaffinity(0))
        count = max(1, min(len(available), math.ceil(cpu_limit)))
        os.sched_setaffinity(0, set(available[:count]))


class LightboxLocalSpawner(SimpleLocalProcessSpawner):
    """Per-user servers as local processes under a data folder, with limits in force."""

    scratch_dir_template = Unicode(
        help="""Per-user scratch folder (TMPDIR of the server and its kernels), wiped
        at every start and stop. {username} is replaced. Default: <home>/../../scratch/
        {username}. Example: c.LightboxLocalSpawner.scratch_dir_template =
        "/var/lib/lightbox/scratch/{username}"
        """).tag(config=True)

    def scratch_dir(self) -> Path:
        template = self.scratch_dir_template or str(
            Path(self.home_dir_template).parent.parent / "scratch" / "{username}")
        return Path(template.format(username=self.user.name))

    async def stop(self, now: bool = False) -> None:
        """Stop with SIGTERM at once.

        Without a terminal, jupyter_server treats SIGINT as a bare interrupt: it exits
        without shutting its kernels down, and orphaned kernels end with ``os._exit``,
        skipping their exit handlers (the purge). SIGTERM makes it shut them down.
        """
        await super().stop(now=True)

    def make_preexec_fn(self, name: str) -> Any:
        prepare = super().make_preexec_fn(name)
        mem_limit, cpu_limit = self.mem_limit, self.cpu_limit

        def preexec() -> None:
            prepare()
            apply_limits(mem_limit, cpu_limit)

        return preexec


def wipe_scratch(spawner: Any) -> bool:
    """Empty the user's scratch folder and the EHR launch notebooks."""
    from lightbox_hub.handlers import LAUNCH_FOLDER

    wiped = False
    folders = []
    if hasattr(spawner, "scratch_dir"):
        folders.append(spawner.scratch_dir())
    home = getattr(spawner, "home_dir_template", "")
    if home:
        folders.append(Path(home.format(username=spawner.user.name)) / LAUNCH_FOLDER)
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        wiped = not folder.exists() or wiped
    return wiped


_AUDIT_READERS = {"security-admin", "project-lead"}


def first_stop_of_run(spawner: Any) -> bool:
    """Whether this post-stop call is the first since the server last started.

    JupyterHub can stop one server twice: its shutdown stops every active server,
    and a server whose stop is still running counts as active, so both stops run
    the post-stop hook. The audit must show one stop per start. The hub runs the
    hooks on one event loop, so the check and the mark cannot interleave.
    """
    if getattr(spawner, "_lightbox_stop_recorded", False):
        return False
    spawner._lightbox_stop_recorded = True
    return True


def make_hooks(settings: Any, audit: Any) -> tuple[Any, Any]:
    """The pre-spawn and post-stop hooks, bound to the hub's settings and audit log."""

    def pre_spawn(spawner: Any) -> None:
        prepare_workspace(spawner)
        role = role_for_groups([group.name for group in spawner.user.groups])
        wipe_scratch(spawner)
        env = dict(spawner.environment)
        if hasattr(spawner, "scratch_dir"):
            scratch = spawner.scratch_dir()
            scratch.mkdir(parents=True, exist_ok=True)
            scratch.chmod(0o700)
            env["TMPDIR"] = str(scratch)

        # The kernel reads only the archives its role may use (outside the home the
        # user browses, so the notebook file browser does not offer it).
        from lightbox_hub.services import write_role_archives

        target = Path(settings.state_dir) / "role-archives" / f"{spawner.user.name}.json"
        allowed = settings.archives_for_role(role.group if role else None)
        if Path(settings.archives_file).expanduser().exists():
            write_role_archives(settings.archives_file, allowed, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text('{"archive": []}')
        env["LIGHTBOX_ARCHIVES"] = str(target)
        # The roles whose lessons read the audit log (security review, adoption
        # figures) are told where it is; no other role gets its path.
        if role is not None and role.group in _AUDIT_READERS:
            env["LIGHTBOX_AUDIT_LOG"] = str(settings.audit_log)

        # Each kernel purges viewerlib's caches at exit and sends the receipt to the
        # audit log; IPython runs this startup file in every kernel.
        home = Path(spawner.home_dir_template.format(username=spawner.user.name))
        startup = home / ".ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_KERNEL_STARTUP, startup / KERNEL_STARTUP_NAME)
        spawner.environment = env
        spawner._lightbox_stop_recorded = False
        audit.record("server-started", spawner.user.name, None,
                     role=role.group if role else "none")

    def post_stop(spawner: Any) -> None:
        wiped = wipe_scratch(spawner)
        forget_kernel_history(
            Path(spawner.home_dir_template.format(username=spawner.user.name)))
        if first_stop_of_run(spawner):
            audit.record("server-stopped", spawner.user.name, None,
                         scratch_wiped=wiped)

    return pre_spawn, post_stop
