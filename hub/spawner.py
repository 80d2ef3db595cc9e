"""The default spawner: local processes with enforced limits, and its start/stop hooks.

``SimpleLocalProcessSpawner`` accepts ``mem_limit`` and ``cpu_limit`` but enforces
neither. :class:`LightboxLocalSpawner` applies them in the child before it runs the
server, so the server and every kernel it starts inherit them:

- ``mem_limit`` becomes ``RLIMIT_AS`` (address space per process, bytes);
- ``cpu_limit`` becomes a CPU affinity of ``ceil(cpu_limit)`` cores.

Both are per process, not per user (a cgroup would cap the sum; KubeSpawner or
SystemdSpawner give that). The spawner is only configuration: set
``c.JupyterHub.spawner_class`` to swap it.

What it does not do is separate users: every server runs as the hub's own system
account. :func:`check_spawner_isolation` therefore refuses a hub that listens on a
network address with it, unless the administrator says otherwise, and the start hook
keeps the hub's secrets out of every server's environment, whatever the spawner
(:func:`strip_hub_secrets`).
"""
from __future__ import annotations

import getpass
import importlib
import ipaddress
import math
import os
import resource
import shutil
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode

from lightbox_hub.roles import role_for_groups
from lightbox_hub.settings import (
    HubConfigurationError,
    forget_kernel_history,
    prepare_workspace,
    require_user_home,
    user_home,
)

KERNEL_STARTUP_NAME = "00-lightbox-session.py"
_KERNEL_STARTUP = Path(__file__).with_name("kernel_startup.py")
# Environment of the hub that no user server may inherit, whatever the spawner: the
# encryption key of the auth state, cookie and proxy secrets, the operator's token,
# and the defaults of the client and launch secrets (their configured names are
# added from the settings, see hub_secret_names).
_HUB_SECRET_ENV = frozenset({
    "JUPYTERHUB_CRYPT_KEY", "JPY_COOKIE_SECRET", "CONFIGPROXY_AUTH_TOKEN",
    "LIGHTBOX_OPERATOR_TOKEN", "LIGHTBOX_OIDC_CLIENT_SECRET", "LIGHTBOX_LAUNCH_SECRET",
})
_LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name) is reachable from this machine only.

    An empty host means every interface, so it is not loopback.
    """
    host = host.strip().strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _spawner_class(spawner_class: str | type) -> type | None:
    """The class a ``c.JupyterHub.spawner_class`` value names, ``None`` if unknown."""
    if isinstance(spawner_class, type):
        return spawner_class
    name = str(spawner_class)
    for entry in entry_points(group="jupyterhub.spawners"):
        if entry.name == name:
            name = entry.value.replace(":", ".")
            break
    module, _, attribute = name.rpartition(".")
    if not module:
        return None
    try:
        found = getattr(importlib.import_module(module), attribute, None)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


def shares_the_hub_account(spawner_class: str | type) -> bool:
    """Whether ``spawner_class`` runs users' servers as the hub's own account.

    True for JupyterHub's ``SimpleLocalProcessSpawner`` and its subclasses, such
    as :class:`LightboxLocalSpawner`; a class that cannot be imported is left to
    JupyterHub to report.
    """
    found = _spawner_class(spawner_class)
    return found is not None and issubclass(found, SimpleLocalProcessSpawner)


def check_spawner_isolation(spawner_class: str | type, ip: str,
                            allowed: bool) -> None:
    """Refuse a hub on a network address whose spawner does not separate users.

    Parameters
    ----------
    spawner_class : str or type
        ``c.JupyterHub.spawner_class``.
    ip : str
        The address the proxy listens on (``LIGHTBOX_HUB_IP``).
    allowed : bool
        ``c.LightboxHub.allow_unisolated_spawner``, the administrator's explicit
        acceptance of the risk.

    Raises
    ------
    HubConfigurationError
        If ``ip`` is not loopback, the spawner shares the hub's account and
        ``allowed`` is false; the message says why and what to use instead.
    """
    if allowed or is_loopback(ip) or not shares_the_hub_account(spawner_class):
        return
    account = getpass.getuser()
    raise HubConfigurationError(
        f"the hub would listen on {ip or 'every interface'} (LIGHTBOX_HUB_IP), but "
        f"its spawner runs every user's server as the hub's own account "
        f"({account}): any user's code could read the hub's encryption key, cookie "
        "secret and database, other users' homes, the whole archives file and the "
        "audit log. Use a spawner that separates users, SystemdSpawner "
        "(LIGHTBOX_SPAWNER=systemdspawner.SystemdSpawner) or KubeSpawner (README, "
        '"Spawner and limits"); or, for a training room on a machine that holds '
        "nothing else, accept the risk with LIGHTBOX_ALLOW_UNISOLATED_SPAWNER=1 "
        "(c.LightboxHub.allow_unisolated_spawner = True).")


def hub_secret_names(settings: Any) -> set[str]:
    """Names of the hub's environment variables that hold secrets."""
    names = set(_HUB_SECRET_ENV)
    names.update(filter(None, (settings.launch_secret_env,
                               settings.oidc_client_secret_env)))
    return names


def strip_hub_secrets(spawner: Any, names: set[str], log: Any = None) -> list[str]:
    """Keep the hub's secrets out of the environment ``spawner`` will pass on.

    Removes from ``spawner.environment`` and ``spawner.env_keep`` every variable
    named in ``names``, and every variable whose value is the value of one of
    them (a secret copied under another name). Returns the names removed.
    """
    values = {os.environ[name] for name in names if os.environ.get(name)}

    def secret(name: str, value: str | None) -> bool:
        return name in names or (value is not None and value in values)

    removed = sorted(
        {k for k, v in dict(spawner.environment).items()
         if secret(k, v if isinstance(v, str) else None)}
        | {k for k in spawner.env_keep if secret(k, os.environ.get(k))})
    if removed:
        spawner.environment = {k: v for k, v in spawner.environment.items()
                               if k not in removed}
        spawner.env_keep = [k for k in spawner.env_keep if k not in removed]
        if log is not None:
            log.warning("Lightbox: not passing the hub's secret(s) %s to the server "
                        "of %s", ", ".join(removed), spawner.user.name)
    spawner._lightbox_secret_names = set(names) | set(removed)
    return removed


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

    def get_env(self) -> dict[str, str]:
        """The server's environment, never with one of the hub's secrets.

        The start hook already took them out of ``environment`` and ``env_keep``
        (:func:`strip_hub_secrets`); this is the last check before the process
        starts, for whatever a later hook added.
        """
        env = super().get_env()
        names = getattr(self, "_lightbox_secret_names", None) or _HUB_SECRET_ENV
        values = {os.environ[name] for name in names if os.environ.get(name)}
        return {key: value for key, value in env.items()
                if key not in names and value not in values}

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
    """Empty the user's scratch folder and the EHR launch notebooks.

    Returns True only if every one of them is gone afterwards; a file that could
    not be deleted in any of them makes it False.
    """
    from lightbox_hub.handlers import LAUNCH_FOLDER

    folders = []
    if hasattr(spawner, "scratch_dir"):
        folders.append(spawner.scratch_dir())
    home = user_home(spawner)
    if home is not None:
        folders.append(home / LAUNCH_FOLDER)
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    return bool(folders) and all(not folder.exists() for folder in folders)


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


_OPENED_EVENTS = {"study-opened", "series-opened"}


def note_kernel_report(spawner: Any, event: str, fields: dict[str, Any]) -> None:
    """Remember which kernel sessions of this run opened series and which purged.

    Kernels name their session (a random label made at kernel start) in each
    report (``kernel_startup.py``); :func:`record_missing_purges` compares the two
    sets when the server stops.
    """
    session = fields.get("session")
    if not isinstance(session, str) or not session:
        return
    if event in _OPENED_EVENTS:
        spawner._lightbox_opened_sessions = (
            getattr(spawner, "_lightbox_opened_sessions", set()) | {session})
    elif event == "purge":
        spawner._lightbox_purged_sessions = (
            getattr(spawner, "_lightbox_purged_sessions", set()) | {session})


def record_missing_purges(spawner: Any, audit: Any) -> int:
    """Record ``purge-missing`` for kernels that opened series and sent no receipt.

    A kernel killed (out of memory, SIGKILL at the end of the stop timeout) never
    runs its exit handler, so its caches were not purged by viewerlib and no
    receipt came; the audit says so instead of staying silent. Returns how many.
    """
    opened = getattr(spawner, "_lightbox_opened_sessions", set())
    purged = getattr(spawner, "_lightbox_purged_sessions", set())
    missing = len(opened - purged)
    if missing:
        audit.record("purge-missing", spawner.user.name, None, kernels=missing)
    spawner._lightbox_opened_sessions, spawner._lightbox_purged_sessions = set(), set()
    return missing


def make_hooks(settings: Any, audit: Any) -> tuple[Any, Any]:
    """The pre-spawn and post-stop hooks, bound to the hub's settings and audit log."""

    secret_names = hub_secret_names(settings)

    def pre_spawn(spawner: Any) -> None:
        prepare_workspace(spawner, settings.role_panels)
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
        home = require_user_home(spawner)
        startup = home / ".ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_KERNEL_STARTUP, startup / KERNEL_STARTUP_NAME)
        spawner.environment = env
        strip_hub_secrets(spawner, secret_names, spawner.log)
        spawner._lightbox_stop_recorded = False
        spawner._lightbox_opened_sessions = set()
        spawner._lightbox_purged_sessions = set()
        audit.record("server-started", spawner.user.name, None,
                     role=role.group if role else "none")

    def post_stop(spawner: Any) -> None:
        wiped = wipe_scratch(spawner)
        home = user_home(spawner)
        if home is not None:
            forget_kernel_history(home)
        if first_stop_of_run(spawner):
            record_missing_purges(spawner, audit)
            audit.record("server-stopped", spawner.user.name, None,
                         scratch_wiped=wiped)

    return pre_spawn, post_stop
