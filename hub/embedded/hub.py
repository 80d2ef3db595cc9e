"""JupyterHub started as a child process with Lightbox's configuration."""
from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from lightbox_hub.embedded.ports import free_port
from lightbox_hub.embedded.process import EmbeddedServiceError, ManagedProcess
from lightbox_hub.settings import proxy_command

CONFIG_FILE = Path(__file__).resolve().parent.parent / "jupyterhub_config.py"


class EmbeddedHub:
    """JupyterHub on 127.0.0.1, signing in through ``issuer``.

    Parameters
    ----------
    state_directory : Path
        Database, cookie secret, logs and the users' homes.
    issuer : str
        OpenID Connect issuer URL of the identity provider.
    archives_file : Path
        The archives configuration every user's kernel reads.
    port : int, optional
        Public port of the proxy; a free one when not given.
    extra_env : dict, optional
        More environment for the hub, e.g. ``LIGHTBOX_IDLE_TIMEOUT_S``.
    tls : tuple of Path, optional
        ``(certificate, key)``: the proxy then serves HTTPS (the demo does not).

    Attributes
    ----------
    launch_secret : str
        The HMAC secret for EHR launch links, made at random for this hub.
    operator_token : str
        API token of the ``lightbox-operator`` service, made at random.
    """

    def __init__(self, state_directory: Path, issuer: str, archives_file: Path,
                 port: int | None = None, extra_env: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.directory = Path(state_directory)
        self.issuer = issuer
        self.archives_file = Path(archives_file)
        self.port = port or free_port()
        self.extra_env = dict(extra_env or {})
        self.tls = tls
        self.launch_secret = secrets.token_urlsafe(32)
        self.operator_token = secrets.token_hex(32)
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> EmbeddedHub:
        proxy_command()  # fails with what to do when the proxy is missing
        self.directory.mkdir(parents=True, exist_ok=True)
        env = dict(
            os.environ,
            LIGHTBOX_STATE_DIR=str(self.directory),
            LIGHTBOX_PUBLIC_URL=self.url,
            LIGHTBOX_HUB_PORT=str(self.port),
            LIGHTBOX_HUB_INTERNAL_PORT=str(free_port()),
            LIGHTBOX_PROXY_API_PORT=str(free_port()),
            LIGHTBOX_OIDC_ISSUER=self.issuer,
            LIGHTBOX_OIDC_CLIENT_ID="lightbox",
            # The embedded provider accepts any secret; a real one needs its own.
            LIGHTBOX_OIDC_CLIENT_SECRET=os.environ.get("LIGHTBOX_OIDC_CLIENT_SECRET",
                                                       "embedded-demo"),
            LIGHTBOX_LOGIN_SERVICE="Lightbox demo sign-on",
            LIGHTBOX_ARCHIVES=str(self.archives_file),
            LIGHTBOX_LAUNCH_SECRET=self.launch_secret,
            LIGHTBOX_OPERATOR_TOKEN=self.operator_token,
        )
        env.update(self.extra_env)
        if self.tls:
            env.update(LIGHTBOX_TLS_CERT=str(self.tls[0]), LIGHTBOX_TLS_KEY=str(self.tls[1]))
        executable = os.path.join(os.path.dirname(sys.executable), "jupyterhub")
        self.process = ManagedProcess(
            "JupyterHub", [executable, "-f", str(CONFIG_FILE)],
            self.directory / "jupyterhub.log", env=env, cwd=self.directory)
        self.process.start()

        context = ssl.create_default_context(cafile=str(self.tls[0])) if self.tls else None

        def answers() -> bool:
            try:
                with urllib.request.urlopen(self.url + "/hub/api/", timeout=2,
                                            context=context) as reply:
                    return reply.status == 200
            except urllib.error.HTTPError:
                return False

        self.process.wait_until(answers, timeout, "/hub/api/ answering")
        return self

    def stop(self, timeout: float = 40.0) -> None:
        """Stop the hub and every process it started.

        SIGTERM, and SIGKILL after ``timeout`` seconds; then the proxy, the
        services and the users' servers that are left (JupyterHub starts each in
        a session of its own, so they outlive a killed hub and keep its ports) are
        ended too: those seen descending from the hub (:class:`ManagedProcess`),
        and the user servers its database names, for a hub that died on its own.
        """
        servers = self._user_server_pids()
        if self.process:
            self.process.stop(timeout=timeout)
        for pid in servers:
            _end_user_server(pid)

    def _user_server_pids(self) -> list[int]:
        database = self.directory / "jupyterhub.sqlite"
        if not database.exists():
            return []
        try:
            connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True,
                                         timeout=2)
            try:
                rows = connection.execute("SELECT state FROM spawners").fetchall()
            finally:
                connection.close()
        except sqlite3.Error:
            return []
        pids = []
        for (state,) in rows:
            try:
                pid = json.loads(state or "{}").get("pid")
            except (TypeError, ValueError):
                continue
            if isinstance(pid, int) and pid > 0:
                pids.append(pid)
        return pids

    def check_alive(self) -> None:
        """Raise if the hub has stopped; else note the processes it runs now, so a
        stop after the hub dies can still end them."""
        if self.process:
            self.process.note_descendants()
        if self.process and self.process.process and self.process.process.poll() is not None:
            raise EmbeddedServiceError(
                f"JupyterHub stopped; its log is {self.process.log_path}")


def _end_user_server(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM a user server this hub started, if it still runs; SIGKILL if it stays."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return  # already gone
    if b"jupyterhub-singleuser" not in command:
        return  # the PID was reused by something that is not ours
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
