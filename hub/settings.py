"""Hub-side helpers the JupyterHub configuration calls."""
from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lightbox_hub.config import DEFAULT_ROLE_PANELS, PANELS, panels_of
from lightbox_hub.roles import role_for_groups

REPOSITORY = Path(__file__).resolve().parent.parent
NOTEBOOKS = Path(os.environ.get("LIGHTBOX_NOTEBOOKS", REPOSITORY / "notebooks"))

# The JupyterLab panels of each role are c.LightboxHub.role_panels (lightbox_hub.
# config); lightbox_extensions.server reads them from LIGHTBOX_PANELS. These names
# stay for code that wants the built-in default table.
ALL_PANELS = PANELS
ROLE_PANELS: dict[str, tuple[str, ...]] = {
    role: tuple(panels) for role, panels in DEFAULT_ROLE_PANELS.items() if role != "*"}


class HubConfigurationError(RuntimeError):
    """The hub cannot start with this configuration; the message says what to do."""


def discover_identity_provider(issuer: str, timeout: float = 10.0) -> dict[str, Any]:
    """Read the OpenID Connect discovery document of ``issuer``.

    Raises
    ------
    HubConfigurationError
        If the provider does not answer or answers without the endpoints we need.
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise HubConfigurationError(
            f"the identity provider at {issuer} does not answer ({err}); start it or "
            "correct LIGHTBOX_OIDC_ISSUER") from err
    missing = [key for key in ("authorization_endpoint", "token_endpoint",
                               "userinfo_endpoint") if key not in document]
    if missing:
        raise HubConfigurationError(
            f"the discovery document at {url} lacks {', '.join(missing)}")
    return dict(document)


def proxy_command() -> list[str]:
    """configurable-http-proxy: from LIGHTBOX_PROXY_COMMAND, node_modules or PATH."""
    configured = os.environ.get("LIGHTBOX_PROXY_COMMAND")
    if configured:
        return [configured]
    local = REPOSITORY / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return [str(local)]
    found = shutil.which("configurable-http-proxy")
    if found:
        return [found]
    raise HubConfigurationError(
        "configurable-http-proxy is not installed: run 'npm install' in the project "
        "folder (make demo does it)")


def user_home(spawner: Any) -> Path | None:
    """The folder the user's server runs in, as the hub sees it; ``None`` if unknown.

    Local spawners name it with ``home_dir_template``; SystemdSpawner with
    ``dynamic_users`` keeps it in systemd's state folder (``StateDirectory``, under
    /var/lib/private), and otherwise in ``user_workingdir``.
    """
    name = spawner.user.name
    template = getattr(spawner, "home_dir_template", "")
    if template:
        return Path(template.format(username=name))
    if getattr(spawner, "dynamic_users", False):
        return Path("/var/lib/private") / name
    working = getattr(spawner, "user_workingdir", "")
    if working:
        return Path(working.replace("{USERNAME}", name).replace("{username}", name))
    return None


def require_user_home(spawner: Any) -> Path:
    """:func:`user_home`, or a clear error naming the spawner that gives none."""
    home = user_home(spawner)
    if home is None:
        raise HubConfigurationError(
            f"Lightbox cannot tell where {type(spawner).__name__} keeps the user's "
            "folder: set its home_dir_template, dynamic_users or user_workingdir")
    return home


def prepare_workspace(spawner: Any, role_panels: dict[str, Any] | None = None) -> None:
    """Open the user's server on their role's curriculum (a JupyterHub pre-spawn hook).

    The role's notebooks are copied into the user's home when missing, so each job
    starts on its own lessons; a user's edits are kept on later starts. The server
    is told which panels the role sees (``role_panels``, the hub's
    ``c.LightboxHub.role_panels``; the built-in default when not given).
    """
    groups = [group.name for group in spawner.user.groups]
    role = role_for_groups(groups)
    home = require_user_home(spawner)
    home.mkdir(parents=True, exist_ok=True)
    _write_lab_settings(home)
    write_kernel_profile(home)
    panels = panels_of(role.group if role else None, role_panels)
    spawner.environment = {**spawner.environment, "LIGHTBOX_PANELS": ",".join(panels)}
    if role is None:
        return
    source = NOTEBOOKS / role.curriculum
    target = home / role.curriculum
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True,
                        copy_function=_copy_if_missing)
    lessons = sorted(p.name for p in target.glob("*.ipynb"))
    # The first lesson, or the role's (still empty) curriculum folder.
    spawner.default_url = (f"/lab/tree/{role.curriculum}/{lessons[0]}" if lessons
                           else f"/lab/tree/{role.curriculum}")
    spawner.environment = {**spawner.environment, "LIGHTBOX_ROLE": role.group}


def _write_lab_settings(home: Path) -> None:
    # JupyterLab would otherwise offer to fetch news from the internet on first start.
    folder = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True, exist_ok=True)
    settings = folder / "notification.jupyterlab-settings"
    if not settings.exists():
        settings.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


# IPython would keep every executed cell (patient IDs typed into a search among
# them) in ~/.ipython/profile_default/history.sqlite; in memory it lasts the session.
_KERNEL_CONFIG = """# Written by Lightbox at every server start (hub/settings.py).
# No command history on disk: cells can hold patient identifiers.
c.HistoryManager.hist_file = ":memory:"
"""


def write_kernel_profile(home: Path) -> None:
    """Configure the kernels of ``home`` to keep their history in memory only."""
    profile = home / ".ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(_KERNEL_CONFIG)
    forget_kernel_history(home)


def forget_kernel_history(home: Path) -> bool:
    """Delete a history database an older kernel left in ``home``; True if one was."""
    history = home / ".ipython" / "profile_default" / "history.sqlite"
    existed = history.exists()
    history.unlink(missing_ok=True)
    return existed


def _copy_if_missing(source: str, target: str) -> str:
    if not os.path.exists(target):
        shutil.copy2(source, target)
    return target
