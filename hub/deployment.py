"""The hub on Kubernetes (Zero to JupyterHub): the local configuration, carried over.

``hub.extraConfig`` of ``deploy/kubernetes/values.yaml`` calls
:func:`configure_kubernetes`. It loads ``hub/jupyterhub_config.py`` (the one-machine
configuration) into a scratch config and copies into the chart's config only the
settings :data:`CARRIED` names: sign-on, groups to roles, headers, the EHR launch and
audit handlers. Network, proxy, database and spawner belong to the chart. So both
deployments read one source, and a setting added to the local file is refused by the
tests until it is classified here.

What changes for KubeSpawner: the hub writes nothing into a user's home. The hooks of
:func:`make_kube_hooks` pass the role, the role's archives and the single-user server
headers to the pod as environment; the pod's command (``python -m
lightbox_hub.deployment pod-start -- jupyterhub-singleuser``) writes them to files
inside the pod, copies the role's curriculum from the image and then runs the server.
Kernels run the purge and audit start-up file through ``PYTHONSTARTUP`` and report to
the hub API, as on one machine.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlets.config import Config, PyFileConfigLoader

from lightbox_hub.roles import ROLE_BY_GROUP, role_for_groups

LOCAL_CONFIG = Path(__file__).with_name("jupyterhub_config.py")
KERNEL_STARTUP = Path(__file__).with_name("kernel_startup.py")
# Environment the hub hands to the pod (read by pod_start).
ARCHIVES_ENV = "LIGHTBOX_ROLE_ARCHIVES_CONTENT"
SERVER_CONFIG_ENV = "LIGHTBOX_SERVER_CONFIG_CONTENT"
# Inside the pod, outside the home the user browses; gone with the pod.
RUNTIME_DIR_ENV, RUNTIME_DIR = "LIGHTBOX_RUNTIME_DIR", "/tmp/lightbox"
# Services of the local file that the chart replaces: its own culler (cull.*) runs
# instead of "idle-culler". The presenter relay is carried: the values make it listen
# on the hub pod's port 8765, behind the "hub" Kubernetes service (deploy/generate.py).
NOT_CARRIED_SERVICES = frozenset({"idle-culler"})
# Entries of the local Spawner.environment that kernels need in their pod too
# (Spawner.environment itself is machine-only: it holds local paths).
CARRIED_KERNEL_ENV = ("LIGHTBOX_PRESENTER_URL",)

# One table: every setting the local file makes, and whether it carries over.
CARRIED: dict[str, frozenset[str] | str] = {
    "JupyterHub": frozenset({"authenticator_class", "template_vars",
                             "shutdown_on_logout", "tornado_settings",
                             "extra_handlers", "services", "load_roles"}),
    "LightboxOIDCAuthenticator": "*",
    "LDAPAuthenticator": "*",
    "LightboxLDAPAuthenticator": "*",
    "LightboxHub": "*",
}
MACHINE_ONLY: dict[str, frozenset[str] | str] = {
    "JupyterHub": frozenset({"ip", "port", "hub_ip", "hub_port", "db_url",
                             "cookie_secret_file", "ssl_cert", "ssl_key",
                             "spawner_class"}),
    "ConfigurableHTTPProxy": "*",
    "SimpleLocalProcessSpawner": "*",
    "LocalProcessSpawner": "*",
    # Spawner.* hold local paths, limits and hooks; KubeSpawner gets its own.
    "Spawner": "*",
}


def _listed(table: dict[str, frozenset[str] | str], section: str, key: str) -> bool:
    names = table.get(section)
    return names == "*" or (isinstance(names, frozenset) and key in names)


def load_local_config(path: Path = LOCAL_CONFIG) -> Config:
    """Run the one-machine configuration file into a fresh config and return it."""
    return PyFileConfigLoader(path.name, str(path.parent)).load_config()


def unclassified(local: Config) -> list[str]:
    """Settings of ``local`` that neither :data:`CARRIED` nor MACHINE_ONLY names."""
    return sorted(f"{section}.{key}" for section, values in local.items()
                  if isinstance(values, Config) for key in values
                  if not (_listed(CARRIED, section, key)
                          or _listed(MACHINE_ONLY, section, key)))


def carried_settings(local: Config) -> Config:
    """The part of ``local`` that Kubernetes takes unchanged (services filtered)."""
    carried = Config()
    for section, values in local.items():
        if not isinstance(values, Config):
            continue
        for key, value in values.items():
            if _listed(CARRIED, section, key):
                carried[section][key] = value
    hub = carried.JupyterHub
    hub.services = [s for s in local.JupyterHub.get("services", [])
                    if s["name"] not in NOT_CARRIED_SERVICES]
    hub.load_roles = [r for r in local.JupyterHub.get("load_roles", [])
                      if not set(r.get("services", [])) & NOT_CARRIED_SERVICES]
    return carried


def server_config_content(local: Config) -> str:
    """The single-user server's jupyter_server_config.json the local file wrote."""
    folder = local.Spawner.environment["JUPYTER_CONFIG_PATH"]
    return (Path(folder) / "jupyter_server_config.json").read_text()


def _pack(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unpack(value: str) -> str:
    """The text of an environment value that :func:`make_kube_hooks` packed."""
    return base64.b64decode(value.encode()).decode()


def make_kube_hooks(settings: Any, audit: Any, server_config: str,
                    kernel_env: dict[str, str] | None = None
                    ) -> tuple[Callable[[Any], None], Callable[[Any], None]]:
    """Pre-spawn and post-stop hooks for KubeSpawner (nothing on the hub's disk).

    ``settings`` is the hub's ``LightboxHub``; ``audit`` its audit log;
    ``kernel_env`` the local environment entries pods get as well
    (:data:`CARRIED_KERNEL_ENV`).
    """
    from lightbox_hub.services import filter_archives, read_archives
    from lightbox_hub.settings import NOTEBOOKS
    from lightbox_hub.spawner import (
        first_stop_of_run,
        hub_secret_names,
        record_missing_purges,
        strip_hub_secrets,
    )

    secret_names = hub_secret_names(settings)

    def pre_spawn(spawner: Any) -> None:
        role = role_for_groups([group.name for group in spawner.user.groups])
        allowed = settings.archives_for_role(role.group if role else None)
        archives_file = Path(settings.archives_file).expanduser()
        tables = (filter_archives(read_archives(archives_file), allowed)
                  if archives_file.exists() else [])
        env = dict(spawner.environment)
        env.update(kernel_env or {})
        # Base64: KubeSpawner expands {braces} in environment values as templates.
        env.update({ARCHIVES_ENV: _pack(json.dumps({"archive": tables})),
                    SERVER_CONFIG_ENV: _pack(server_config),
                    "PYTHONSTARTUP": str(KERNEL_STARTUP)})
        # The audit file lives on the hub's volume, which pods do not mount: the
        # audit-reading lessons fall back to their explanation (README, Audit).
        env.pop("LIGHTBOX_AUDIT_LOG", None)
        env["LIGHTBOX_PANELS"] = ",".join(
            settings.panels_for_role(role.group if role else None))
        if role is not None:
            env["LIGHTBOX_ROLE"] = role.group
            folder = NOTEBOOKS / role.curriculum
            lessons = sorted(p.name for p in folder.glob("*.ipynb"))
            spawner.default_url = (f"/lab/tree/{role.curriculum}/{lessons[0]}"
                                   if lessons else f"/lab/tree/{role.curriculum}")
        spawner.environment = env
        strip_hub_secrets(spawner, secret_names, spawner.log)
        spawner._lightbox_stop_recorded = False
        spawner._lightbox_opened_sessions = set()
        spawner._lightbox_purged_sessions = set()
        audit.record("server-started", spawner.user.name, None,
                     role=role.group if role else "none")

    def post_stop(spawner: Any) -> None:
        # The pod's file system (scratch, archives file) goes with the pod; the
        # launch notebooks on the home volume are removed by the preStop hook.
        if first_stop_of_run(spawner):
            record_missing_purges(spawner, audit)
            audit.record("server-stopped", spawner.user.name, None,
                         scratch_wiped=True)

    return pre_spawn, post_stop


def role_profiles(profiles: list[dict[str, Any]]
                  ) -> Callable[[Any], list[dict[str, Any]]]:
    """A KubeSpawner ``profile_list`` callable: only the profile of the user's role.

    Profiles carry their role in ``slug``; one left means no choice form. A user
    without a job role gets the profile whose slug is ``"none"``.
    """
    def for_user(spawner: Any) -> list[dict[str, Any]]:
        role = role_for_groups([group.name for group in spawner.user.groups])
        slug = role.group if role else "none"
        chosen = [dict(p, default=True) for p in profiles if p.get("slug") == slug]
        if not chosen:
            raise ValueError(f"no KubeSpawner profile has slug {slug!r}; the values "
                             "file needs one per role (python -m deploy.generate)")
        return chosen

    return for_user


def configure_kubernetes(c: Config, local_file: Path = LOCAL_CONFIG) -> Config:
    """Apply Lightbox's hub settings to the chart's config ``c``; return the local."""
    local = load_local_config(local_file)
    missing = unclassified(local)
    if missing:
        raise RuntimeError(f"settings {missing} of {local_file.name} are not "
                           "classified in lightbox_hub.deployment (CARRIED or "
                           "MACHINE_ONLY)")
    c.merge(carried_settings(local))
    services = local.JupyterHub.tornado_settings["lightbox"]
    local_env = local.Spawner.get("environment", {})
    kernel_env = {key: local_env[key] for key in CARRIED_KERNEL_ENV if key in local_env}
    pre_spawn, post_stop = make_kube_hooks(services.settings, services.audit,
                                           server_config_content(local), kernel_env)
    kube = c.KubeSpawner
    kube.pre_spawn_hook, kube.post_stop_hook = pre_spawn, post_stop
    if isinstance(kube.get("profile_list"), list):
        kube.profile_list = role_profiles(kube.profile_list)
    # Kernels purge and report as the server stops: the local stop timeout.
    kube.delete_grace_period = int(local.LocalProcessSpawner.term_timeout) + 1
    for key in ("start_timeout", "http_timeout", "default_url"):
        if key in local.Spawner:
            kube[key] = local.Spawner[key]
    # The pod runs as an ordinary user: no --allow-root, whoever runs the hub.
    kube.args = [a for a in local.Spawner.get("args", []) if a != "--allow-root"]
    return local


def pod_start(argv: list[str]) -> None:
    """In the user's pod: write what the hub sent, copy the curriculum, run the server.

    ``argv`` is ``["--", command, ...]``; the command replaces this process.
    """
    from lightbox_hub.handlers import LAUNCH_FOLDER
    from lightbox_hub.settings import (
        NOTEBOOKS,
        _write_lab_settings,
        write_kernel_profile,
    )

    if not argv or argv[0] != "--" or len(argv) < 2:
        raise SystemExit("usage: python -m lightbox_hub.deployment pod-start -- "
                         "<server command>")
    runtime = Path(os.environ.get(RUNTIME_DIR_ENV) or RUNTIME_DIR)
    (runtime / "scratch").mkdir(parents=True, exist_ok=True, mode=0o700)
    runtime.chmod(0o700)
    (runtime / "archives.json").write_text(unpack(os.environ.get(ARCHIVES_ENV, ""))
                                           or '{"archive": []}')
    config = runtime / "config"
    config.mkdir(exist_ok=True)
    (config / "jupyter_server_config.json").write_text(
        unpack(os.environ.get(SERVER_CONFIG_ENV, "")) or "{}")
    home = Path.home()
    _write_lab_settings(home)
    write_kernel_profile(home)
    shutil.rmtree(home / LAUNCH_FOLDER, ignore_errors=True)
    role = ROLE_BY_GROUP.get(os.environ.get("LIGHTBOX_ROLE", ""))
    curriculum = role.curriculum if role else ""
    if curriculum and (NOTEBOOKS / curriculum).is_dir():
        # The lessons are copied when missing; a user's edits stay (home volume).
        for source in (NOTEBOOKS / curriculum).rglob("*"):
            target = home / curriculum / source.relative_to(NOTEBOOKS / curriculum)
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    environment = {key: value for key, value in os.environ.items()
                   if key not in {ARCHIVES_ENV, SERVER_CONFIG_ENV}}
    environment.update(JUPYTER_CONFIG_PATH=str(config), TMPDIR=str(runtime / "scratch"),
                       LIGHTBOX_ARCHIVES=str(runtime / "archives.json"))
    os.execvpe(argv[1], argv[1:], environment)


if __name__ == "__main__":
    if sys.argv[1:2] != ["pod-start"]:
        raise SystemExit("usage: python -m lightbox_hub.deployment pod-start -- <cmd>")
    pod_start(sys.argv[2:])
