"""The presenter relay server: sessions of viewer state with long polling.

Protocol (JSON over HTTP, under the service prefix when JupyterHub runs it):

``GET  /sessions/<name>?after=<version>&wait=<s>&attendee=<id>``
    The session's state. Answers at once when its version is newer than ``after``,
    otherwise when it changes or after ``wait`` seconds (at most the relay's long-poll
    limit). A session nobody presented yet has version 0 and an empty state.
``PUT  /sessions/<name>`` with ``{"state": {...}}``
    Publish a new state. The first user to publish presents the session; another
    user gets 403 until the presenter ends it.
``DELETE /sessions/<name>``
    The presenter ends the session (the state is forgotten).
``DELETE /sessions/<name>/attendees/<id>``
    An attendee leaves (only the count of attendees changes).

The relay keeps the state, so an attendee who leaves and rejoins gets the current
slice and window at once. It holds no image data: study and series appear by UID.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from traitlets import Float, Int, TraitError, Unicode, default, validate
from traitlets.config import Application

logger = logging.getLogger(__name__)

_SESSION_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_ATTENDEE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
# The state keys a client may publish; anything else is dropped, never stored.
STATE_KEYS = frozenset(
    {
        "study_instance_uid",
        "series_instance_uid",
        "slice_index",
        "window_center",
        "window_width",
        "window_function",
        "zoom",
        "rotation",
        "flip_horizontal",
        "flip_vertical",
        "invert",
    }
)
_MAX_BODY_BYTES = 16_384
# An attendee not seen for this long no longer counts as present.
_ATTENDEE_STALE_S = 60.0
_HUB_TOKEN_CACHE_S = 60.0
_HUB_TOKEN_CACHE_SIZE = 1024


class RelayError(Exception):
    """A refused request: HTTP status and the message the client shows."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Session:
    version: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    presenter: str | None = None
    attendees: dict[str, float] = field(default_factory=dict)

    def answer(self) -> dict[str, Any]:
        now = time.monotonic()
        present = [
            a for a, seen in self.attendees.items() if now - seen < _ATTENDEE_STALE_S
        ]
        return {
            "version": self.version,
            "state": dict(self.state),
            "presenter": self.presenter,
            "attendees": len(present),
        }


class PresenterRelay:
    """The relay's state and rules, independent of HTTP.

    Parameters
    ----------
    token : str, optional
        A shared secret every request must carry as ``Authorization: token ...``;
        ``None`` accepts any caller (loopback practice sessions and tests).
    hub_api_url : str, optional
        JupyterHub's API URL: the caller's token is then checked with the hub
        (``GET <hub_api_url>/user``) and the user name comes from the hub; a
        token the hub refuses gets 403, as does a hub service's token.
    long_poll_s : float
        Longest time a ``GET`` waits for a change.
    """

    def __init__(
        self,
        token: str | None = None,
        hub_api_url: str | None = None,
        long_poll_s: float = 25.0,
        log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.token = token
        self.hub_api_url = hub_api_url.rstrip("/") if hub_api_url else None
        self.long_poll_s = long_poll_s
        self.log = log or logger
        self._sessions: dict[str, _Session] = {}
        self._changed = threading.Condition()
        self._hub_users: dict[str, tuple[str, float]] = {}

    # -- who is asking -------------------------------------------------------------

    def user_for(self, authorization: str | None, claimed_name: str | None) -> str:
        """The user a request comes from, or :class:`RelayError` 401/403."""
        scheme, _, credential = (authorization or "").partition(" ")
        credential = credential.strip() if scheme.lower() in ("token", "bearer") else ""
        if self.hub_api_url:
            if not credential:
                raise RelayError(
                    HTTPStatus.UNAUTHORIZED,
                    "sign in through the hub: send the kernel's JUPYTERHUB_API_TOKEN",
                )
            return self._hub_user(credential)
        if self.token is not None and not secrets.compare_digest(
            credential.encode(), self.token.encode()
        ):
            raise RelayError(HTTPStatus.FORBIDDEN, "wrong or missing relay token")
        name = (claimed_name or "presenter").strip()
        return name if _ATTENDEE_ID.match(name) else "presenter"

    def _hub_user(self, credential: str) -> str:
        # The cache is keyed by a digest, so no caller's token is kept in memory.
        key = hashlib.sha256(credential.encode()).hexdigest()
        now = time.monotonic()
        cached = self._hub_users.get(key)
        if cached and now - cached[1] < _HUB_TOKEN_CACHE_S:
            return cached[0]

        # Ask the hub who the token belongs to with the caller's own token, as
        # JupyterHub's HubAuth does: every token may identify its owner.
        request = urllib.request.Request(
            f"{self.hub_api_url}/user", headers={"Authorization": f"token {credential}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                owner = json.loads(response.read())
        except urllib.error.HTTPError as err:
            err.close()
            if err.code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
                raise RelayError(
                    HTTPStatus.FORBIDDEN, "the hub did not accept this token"
                ) from err
            self.log.error("the hub answered HTTP %s to a token check", err.code)
            raise RelayError(
                HTTPStatus.SERVICE_UNAVAILABLE, "the hub cannot check the token now"
            ) from err
        except (OSError, ValueError) as err:
            self.log.error("cannot check a token with the hub: %s", type(err).__name__)
            raise RelayError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "the hub cannot be reached to check the token",
            ) from err
        name = self._user_name(owner)

        # Forget expired entries, so tokens of stopped servers do not pile up.
        if len(self._hub_users) >= _HUB_TOKEN_CACHE_SIZE:
            self._hub_users = {
                k: v
                for k, v in self._hub_users.items()
                if now - v[1] < _HUB_TOKEN_CACHE_S
            }
        if len(self._hub_users) < _HUB_TOKEN_CACHE_SIZE:
            self._hub_users[key] = (name, now)
        return name

    @staticmethod
    def _user_name(owner: Any) -> str:
        """The user name in the hub's model of a token's owner; users only.

        A service's token names the service, whose name could equal a user's: only
        users present and follow.
        """
        if not isinstance(owner, dict) or not isinstance(owner.get("name"), str):
            raise RelayError(
                HTTPStatus.SERVICE_UNAVAILABLE, "the hub's answer names no user"
            )
        if owner.get("kind", "user") != "user":
            raise RelayError(
                HTTPStatus.FORBIDDEN,
                "only users present and follow; this token belongs to a hub service",
            )
        return owner["name"]

    # -- sessions ------------------------------------------------------------------

    @staticmethod
    def _check_name(session: str) -> None:
        if not _SESSION_NAME.match(session):
            raise RelayError(
                HTTPStatus.BAD_REQUEST,
                "a session name is 1 to 64 letters, digits, '.', '_' or '-'",
            )

    def get(
        self,
        session: str,
        after: int = -1,
        wait_s: float = 0.0,
        attendee: str | None = None,
    ) -> dict[str, Any]:
        """The session's state once its version exceeds ``after`` (or on timeout)."""
        self._check_name(session)
        deadline = time.monotonic() + min(max(wait_s, 0.0), self.long_poll_s)
        with self._changed:
            current = self._sessions.setdefault(session, _Session())
            if attendee and _ATTENDEE_ID.match(attendee):
                current.attendees[attendee] = time.monotonic()
            while current.version <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
                current = self._sessions.setdefault(session, _Session())
            return current.answer()

    def put(self, session: str, user: str, state: dict[str, Any]) -> dict[str, Any]:
        """Publish ``state`` as ``user``; the first publisher presents the session."""
        self._check_name(session)
        if not isinstance(state, dict):
            raise RelayError(HTTPStatus.BAD_REQUEST, 'send {"state": {...}}')
        clean = {
            k: v
            for k, v in state.items()
            if k in STATE_KEYS and isinstance(v, str | int | float | bool)
        }
        with self._changed:
            current = self._sessions.setdefault(session, _Session())
            if current.presenter not in (None, user):
                raise RelayError(
                    HTTPStatus.FORBIDDEN,
                    f"session {session!r} is presented by {current.presenter}",
                )
            if current.presenter is None:
                self.log.info("session %s is now presented by %s", session, user)
            current.presenter = user
            current.state.update(clean)
            current.version += 1
            self._changed.notify_all()
            return current.answer()

    def end(self, session: str, user: str) -> None:
        """The presenter ends ``session``; its state is forgotten."""
        self._check_name(session)
        with self._changed:
            current = self._sessions.get(session)
            if current is None:
                return
            if current.presenter not in (None, user):
                raise RelayError(
                    HTTPStatus.FORBIDDEN, "only the presenter ends a session"
                )
            # Keep the version growing, so waiting attendees see the end.
            self._sessions[session] = _Session(version=current.version + 1)
            self._changed.notify_all()

    def leave(self, session: str, attendee: str) -> None:
        """Attendee ``attendee`` leaves ``session``."""
        self._check_name(session)
        with self._changed:
            current = self._sessions.get(session)
            if current is not None:
                current.attendees.pop(attendee, None)

    # -- HTTP ----------------------------------------------------------------------

    def serve(
        self, port: int = 0, ip: str = "127.0.0.1", prefix: str = "/"
    ) -> RelayServer:
        """Start serving in a background thread; return the running server."""
        return RelayServer(self, ip, port, prefix).start()


class RelayServer:
    """A :class:`PresenterRelay` behind a threading HTTP server (stdlib)."""

    def __init__(self, relay: PresenterRelay, ip: str, port: int, prefix: str) -> None:
        self.relay = relay
        self.prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
        handler = type("Handler", (_Handler,), {"relay": relay, "prefix": self.prefix})
        self.httpd = ThreadingHTTPServer((ip, port), handler)
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    def start(self) -> RelayServer:
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="presenter-relay", daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.relay._changed:
            self.relay._changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    relay: PresenterRelay
    prefix: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Paths carry only session names; no tokens or patient data.
        self.relay.log.debug("%s %s", self.command, urlsplit(self.path).path)

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # An attendee's kernel stopped during a long poll: nobody to answer.
            self.relay.log.debug(
                "%s %s: the caller has gone", self.command, urlsplit(self.path).path
            )
            self.close_connection = True

    def _route(self) -> tuple[list[str], dict[str, list[str]]]:
        parts = urlsplit(self.path)
        path = parts.path
        if not path.startswith(self.prefix):
            raise RelayError(HTTPStatus.NOT_FOUND, "not a presenter relay path")
        return [p for p in path[len(self.prefix) :].split("/") if p], parse_qs(
            parts.query
        )

    def _handle(self, method: str) -> None:
        try:
            segments, query = self._route()
            if segments == ["health"]:
                self._reply(HTTPStatus.OK, {"ok": True})
                return
            user = self.relay.user_for(
                self.headers.get("Authorization"), self.headers.get("X-Presenter-User")
            )
            if len(segments) == 2 and segments[0] == "sessions" and method == "GET":
                after = int(query.get("after", ["-1"])[0])
                wait = float(query.get("wait", ["0"])[0])
                attendee = query.get("attendee", [None])[0]
                self._reply(
                    HTTPStatus.OK, self.relay.get(segments[1], after, wait, attendee)
                )
            elif len(segments) == 2 and segments[0] == "sessions" and method == "PUT":
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_BODY_BYTES:
                    raise RelayError(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        "a state is a few hundred bytes",
                    )
                body = json.loads(self.rfile.read(length) or b"{}")
                self._reply(
                    HTTPStatus.OK, self.relay.put(segments[1], user, body.get("state"))
                )
            elif (
                len(segments) == 2 and segments[0] == "sessions" and method == "DELETE"
            ):
                self.relay.end(segments[1], user)
                self._reply(HTTPStatus.OK, {"ended": segments[1]})
            elif (
                len(segments) == 4
                and segments[0] == "sessions"
                and segments[2] == "attendees"
                and method == "DELETE"
            ):
                self.relay.leave(segments[1], segments[3])
                self._reply(HTTPStatus.OK, {"left": segments[1]})
            else:
                raise RelayError(HTTPStatus.NOT_FOUND, "unknown relay request")
        except RelayError as err:
            self._reply(err.status, {"error": err.message})
        except (ValueError, TypeError, AttributeError):
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "malformed request"})

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self._handle("GET")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")


class RelayApp(Application):
    """``python -m lightbox_extensions.presenter``: the relay as a hub service."""

    name = "lightbox-presenter"
    description = "Relay a presenter's viewer state to the attendees' viewers."

    ip = Unicode(
        "127.0.0.1",
        help="""Address to listen on (default 127.0.0.1: the
        hub's proxy and the kernels on the same machine reach the service on
        loopback). On Kubernetes the hub pod must be reachable from user pods: set
        0.0.0.0 there (configure_hub reads LIGHTBOX_PRESENTER_IP). Any other address
        is refused unless callers are checked (JupyterHub's API, or the shared token
        named by token_env). Example: c.RelayApp.ip = "0.0.0.0"
        """,
    ).tag(config=True)
    port = Int(
        8765,
        help="""TCP port of the relay (default 8765). Change it when
        the port is taken; the service URL in jupyterhub_config.py must agree.
        Example: c.RelayApp.port = 8766
        """,
    ).tag(config=True)
    long_poll_s = Float(
        25.0,
        help="""Longest wait of an attendee's request for a
        change, in seconds (default 25). Keep it below the proxy's idle timeout.
        Example: c.RelayApp.long_poll_s = 20
        """,
    ).tag(config=True)
    token_env = Unicode(
        "LIGHTBOX_PRESENTER_TOKEN",
        help="""Environment variable with
        a shared secret for running outside the hub. Under JupyterHub the callers'
        hub tokens are checked instead and this is not used. Default
        LIGHTBOX_PRESENTER_TOKEN. Example: c.RelayApp.token_env = "RELAY_SECRET"
        """,
    ).tag(config=True)

    aliases = {"port": "RelayApp.port", "ip": "RelayApp.ip"}

    @default("log_level")
    def _log_level_default(self) -> int:
        # Who presents which session belongs in the hub's log, next to its own.
        return logging.INFO

    @validate("ip")
    def _check_ip(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip()
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if value != "localhost":
                raise TraitError(
                    f"the relay's ip must be an IP address such as "
                    f"127.0.0.1 or 0.0.0.0, not {value!r}"
                ) from None
        return value

    def check_exposure(self, hub_api_url: str | None, token: str | None) -> None:
        """Refuse to listen beyond loopback when nobody's identity is checked.

        Raises
        ------
        ValueError
            If ``ip`` is not a loopback address and neither the hub's API nor a
            shared token authenticates callers.
        """
        if _is_loopback(self.ip) or hub_api_url or token:
            return
        raise ValueError(
            f"the presenter relay would listen on {self.ip} without checking "
            "callers: run it as a JupyterHub service (JUPYTERHUB_API_URL), set "
            f"{self.token_env}, or keep ip at 127.0.0.1"
        )

    def start(self) -> None:
        hub_api_url = os.environ.get("JUPYTERHUB_API_URL")
        token = os.environ.get(self.token_env) or None
        self.check_exposure(hub_api_url, token)
        relay = PresenterRelay(
            token=token,
            hub_api_url=hub_api_url,
            long_poll_s=self.long_poll_s,
            log=self.log,
        )
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        server = RelayServer(relay, self.ip, self.port, prefix)
        self.log.info(
            "presenter relay on %s (%s)",
            server.url,
            "hub tokens"
            if hub_api_url
            else "shared token"
            if relay.token
            else "no authentication: loopback practice",
        )
        try:
            server.httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.httpd.server_close()


# -- JupyterHub configuration ------------------------------------------------------

SERVICE_NAME = "presenter"
# Where the relay listens and how the proxy and kernels reach it: loopback on one
# machine; a deployment names an address its user pods can reach (deploy/README.md).
IP_ENV = "LIGHTBOX_PRESENTER_IP"
SERVICE_URL_ENV = "LIGHTBOX_PRESENTER_SERVICE_URL"


def _is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _service_url(ip: str, port: int, url: str | None) -> str:
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"the presenter service URL must be http(s)://host:port, "
                f"not {url!r} ({SERVICE_URL_ENV})"
            )
        return url.rstrip("/")
    if not _is_loopback(ip):
        raise ValueError(
            f"the presenter relay listens on {ip}: name the URL the "
            f"proxy and the user servers reach it at, e.g. "
            f"http://hub:{port} ({SERVICE_URL_ENV})"
        )
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


def service_definition(
    port: int = 8765, ip: str = "127.0.0.1", url: str | None = None
) -> dict[str, Any]:
    """The JupyterHub service entry that runs the relay.

    Parameters
    ----------
    port : int
        TCP port the relay listens on.
    ip : str
        Address it listens on; loopback (the default) on one machine, ``0.0.0.0``
        in a hub pod that user pods reach through a Kubernetes service.
    url : str, optional
        How the proxy reaches the relay, e.g. ``http://hub:8765``; required when
        ``ip`` is not loopback, else ``http://<ip>:<port>``.

    Raises
    ------
    ValueError
        If ``url`` is not an http(s) URL, or is missing for a non-loopback ``ip``.
    """
    return {
        "name": SERVICE_NAME,
        "url": _service_url(ip, port, url),
        "command": [
            sys.executable,
            "-m",
            "lightbox_extensions.presenter",
            f"--port={port}",
            f"--ip={ip}",
        ],
        "display": False,
    }


def service_role() -> dict[str, Any]:
    """The relay's role: read user names, nothing more.

    The relay checks a caller by sending the caller's own token to
    ``GET /hub/api/user``, which any token may call to identify its owner; the
    relay's token is not used for that. Its role is the narrowest one a hub
    accepts without warning (a role without scopes is logged as suspicious), and
    grants no access to servers, tokens or other services.
    """
    return {
        "name": "presenter-relay",
        "description": "Lightbox presenter relay: identify callers by name",
        "scopes": ["read:users:name"],
        "services": [SERVICE_NAME],
    }


def configure_hub(
    c: Any, port: int = 8765, ip: str | None = None, url: str | None = None
) -> None:
    """Add the relay service, its role and the kernels' relay URL to a hub config.

    ``ip`` and ``url`` default to ``LIGHTBOX_PRESENTER_IP`` (else 127.0.0.1) and
    ``LIGHTBOX_PRESENTER_SERVICE_URL``; see :func:`service_definition`. Kernels
    reach the relay at the same URL the proxy uses.
    """
    ip = ip or os.environ.get(IP_ENV) or "127.0.0.1"
    service = service_definition(port, ip, url or os.environ.get(SERVICE_URL_ENV))
    # Appending works both on a list already set and on traitlets' lazy values.
    c.JupyterHub.services.append(service)
    c.JupyterHub.load_roles.append(service_role())
    c.Spawner.environment.update(
        {"LIGHTBOX_PRESENTER_URL": f"{service['url']}/services/{SERVICE_NAME}/"}
    )
