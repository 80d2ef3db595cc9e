"""Presenter mode: one viewer leads, the attendees' viewers follow.

The presenter's notebook publishes its viewer's study, slice, window and zoom to a
relay (:mod:`lightbox_extensions.presenter`, a JupyterHub service on loopback); each
attendee's notebook applies them to its own viewer as they change. The relay keeps
the last state, so an attendee who leaves and rejoins is back on the presenter's
image at once. Only UIDs and display settings travel; the pixels stay in each
kernel, read from the archives as usual.

The relay's address comes from ``LIGHTBOX_PRESENTER_URL`` (the hub sets it); under
the hub the kernel's ``JUPYTERHUB_API_TOKEN`` proves who is calling.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from viewerlib.sources.base import Source
    from viewerlib.widgets.stack import StackViewer

logger = logging.getLogger(__name__)

URL_ENV = "LIGHTBOX_PRESENTER_URL"
#: Viewer traits the presenter shares, in the order they are applied.
SHARED_TRAITS = ("slice_index", "window_center", "window_width", "window_function",
                 "zoom", "rotation", "flip_horizontal", "flip_vertical", "invert")
_LONG_POLL_S = 10.0
_RETRY_S = 1.0


class PresenterError(RuntimeError):
    """The relay is unreachable or refused the request; the message says why."""


def relay_url(url: str | None = None) -> str:
    """The relay's base URL: ``url``, else ``LIGHTBOX_PRESENTER_URL``.

    Raises
    ------
    PresenterError
        If neither names a relay.
    """
    url = url or os.environ.get(URL_ENV)
    if not url:
        raise PresenterError(
            f"no presenter relay is configured: {URL_ENV} is not set. Ask the hub "
            "administrator to enable the presenter service, or start a practice "
            "relay with viewerlib.teaching.presenter.start_practice_relay()")
    return url.rstrip("/") + "/"


def _request(method: str, url: str, body: dict[str, Any] | None = None,
             timeout: float = 5.0, user: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("JUPYTERHUB_API_TOKEN") or os.environ.get(
        "LIGHTBOX_PRESENTER_TOKEN")
    if token:
        headers["Authorization"] = f"token {token}"
    if user:
        headers["X-Presenter-User"] = user
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as err:
        try:
            message = json.loads(err.read()).get("error", err.reason)
        except ValueError:
            message = err.reason
        finally:
            err.close()
        raise PresenterError(f"the presenter relay refused: {message} "
                             f"(HTTP {err.code})") from err
    except OSError as err:
        raise PresenterError(f"the presenter relay at {url.split('/sessions')[0]} "
                             f"does not answer ({err}); is the service running?"
                             ) from err


def viewer_state(viewer: StackViewer) -> dict[str, Any]:
    """The shareable state of ``viewer``: its study and series UIDs and its traits."""
    state: dict[str, Any] = {name: getattr(viewer, name) for name in SHARED_TRAITS
                             if hasattr(viewer, name)}
    volume = getattr(viewer, "volume", None)
    datasets = getattr(volume, "datasets", None) or []
    if datasets:
        state["study_instance_uid"] = str(datasets[0].get("StudyInstanceUID", ""))
        state["series_instance_uid"] = str(datasets[0].get("SeriesInstanceUID", ""))
    return state


class Presentation:
    """A viewer being presented: every change of its shared traits is published.

    Made by :func:`present`; :meth:`stop` ends publishing (the relay keeps the last
    state until :meth:`end` or the relay restarts).
    """

    def __init__(self, viewer: StackViewer, session: str, url: str,
                 user: str | None) -> None:
        self.viewer = viewer
        self.session = session
        self.url = url + "sessions/" + session
        self.user = user
        self.version = 0
        self.attendees = 0
        self._pending = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._publish()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"present-{session}")
        self._thread.start()
        viewer.observe(self._changed, names=list(SHARED_TRAITS))

    def _changed(self, _change: Any) -> None:
        self._pending.set()

    def _publish(self) -> None:
        with self._lock:
            answer = _request("PUT", self.url, {"state": viewer_state(self.viewer)},
                              user=self.user)
        self.version = int(answer["version"])
        self.attendees = int(answer.get("attendees", 0))

    def _run(self) -> None:
        while not self._stopped.is_set():
            if not self._pending.wait(0.5):
                continue
            self._pending.clear()
            try:
                self._publish()
            except PresenterError as err:
                logger.warning("could not publish the presenter's view: %s", err)
                self._pending.set()
                self._stopped.wait(_RETRY_S)

    def flush(self, timeout: float = 5.0) -> None:
        """Publish the viewer's current state now (and wait for the relay)."""
        self._publish()

    def stop(self) -> None:
        """Stop publishing changes."""
        self._stopped.set()
        try:
            self.viewer.unobserve(self._changed, names=list(SHARED_TRAITS))
        except ValueError:
            pass

    def end(self) -> None:
        """Stop publishing and end the session on the relay."""
        self.stop()
        _request("DELETE", self.url, user=self.user)

    def __repr__(self) -> str:
        return (f"Presentation(session={self.session!r}, version={self.version}, "
                f"attendees={self.attendees})")


class Following:
    """A viewer following a session: the presenter's changes are applied to it.

    Made by :func:`follow`. :meth:`stop` leaves the session; following again later
    brings the viewer straight to the presenter's current state.
    """

    def __init__(self, viewer: StackViewer, session: str, url: str,
                 user: str | None) -> None:
        self.viewer = viewer
        self.session = session
        self.url = url + "sessions/" + session
        self.user = user
        self.attendee = secrets.token_hex(8)
        self.version = 0
        self.state: dict[str, Any] = {}
        self.presenter: str | None = None
        self.study_mismatch = False
        self._applied = threading.Condition()
        self._stopped = threading.Event()
        # The first answer comes at once: the current state, even after a rejoin.
        self._apply(self._poll(wait_s=0.0))
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"follow-{session}")
        self._thread.start()

    def _poll(self, wait_s: float) -> dict[str, Any]:
        query = f"?after={self.version}&wait={wait_s:g}&attendee={self.attendee}"
        return _request("GET", self.url + query, timeout=wait_s + 10.0,
                        user=self.user)

    def _apply(self, answer: dict[str, Any]) -> None:
        state = dict(answer.get("state") or {})
        self.presenter = answer.get("presenter")
        mine = viewer_state(self.viewer).get("study_instance_uid")
        theirs = state.get("study_instance_uid")
        mismatch = bool(mine and theirs and mine != theirs)
        if mismatch and not self.study_mismatch:
            logger.warning("the presenter shows another study; open it with "
                           "viewerlib.teaching.presenter.join(%r)", self.session)
        self.study_mismatch = mismatch
        if state and not mismatch:
            with self.viewer.hold_trait_notifications():
                for name in SHARED_TRAITS:
                    if name in state and hasattr(self.viewer, name):
                        setattr(self.viewer, name, state[name])
        with self._applied:
            self.state = state
            self.version = int(answer.get("version", self.version))
            self._applied.notify_all()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                answer = self._poll(wait_s=_LONG_POLL_S)
            except PresenterError as err:
                logger.warning("lost the presenter relay, retrying: %s", err)
                self._stopped.wait(_RETRY_S)
                continue
            if not self._stopped.is_set() and answer.get("version", 0) != self.version:
                self._apply(answer)

    def wait_for(self, version: int, timeout: float = 10.0) -> bool:
        """Wait until the state of ``version`` (or later) is applied; True if so."""
        deadline = time.monotonic() + timeout
        with self._applied:
            while self.version < version:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._applied.wait(left)
        return True

    def stop(self) -> None:
        """Leave the session: changes are no longer applied."""
        self._stopped.set()
        try:
            _request("DELETE", f"{self.url}/attendees/{self.attendee}", user=self.user)
        except PresenterError as err:
            logger.info("left the session; the relay did not hear it: %s", err)

    def __repr__(self) -> str:
        return (f"Following(session={self.session!r}, version={self.version}, "
                f"presenter={self.presenter!r})")


def present(viewer: StackViewer, session: str, url: str | None = None,
            user: str | None = None) -> Presentation:
    """Publish ``viewer``'s study, slice, window and zoom to session ``session``.

    Parameters
    ----------
    viewer : StackViewer
        The presenter's viewer.
    session : str
        A name the attendees use too, e.g. ``"lunch-1"`` (letters, digits, ``.-_``).
    url : str, optional
        The relay; ``LIGHTBOX_PRESENTER_URL`` when not given.
    user : str, optional
        Your name, outside the hub only (under the hub the token says who you are).

    Returns
    -------
    Presentation
        Publishing until ``stop()``.

    Raises
    ------
    PresenterError
        If the relay is not configured or not reachable, or another user presents
        the session.
    """
    return Presentation(viewer, session, relay_url(url), user)


def follow(viewer: StackViewer, session: str, url: str | None = None,
           user: str | None = None) -> Following:
    """Make ``viewer`` follow the presenter of ``session``.

    Parameters
    ----------
    viewer : StackViewer
        Your viewer, opened on the presenter's study (see :func:`join`).
    session, url, user
        As for :func:`present`.

    Returns
    -------
    Following
        Applying the presenter's changes until ``stop()``.
    """
    return Following(viewer, session, relay_url(url), user)


def current_state(session: str, url: str | None = None) -> dict[str, Any]:
    """The session's state as the relay keeps it (``{}`` before anyone presents)."""
    answer = _request("GET", relay_url(url) + "sessions/" + session + "?after=-1")
    return dict(answer.get("state") or {})


def join(session: str, source: Source | None = None, url: str | None = None,
         user: str | None = None) -> tuple[StackViewer, Following]:
    """Open the study the presenter shows and follow the session.

    Returns
    -------
    (StackViewer, Following)
        Show the viewer (last expression of a cell); stop following with
        ``following.stop()``.

    Raises
    ------
    PresenterError
        If nobody presents ``session`` yet.
    """
    import viewerlib

    state = current_state(session, url)
    if not state.get("study_instance_uid"):
        raise PresenterError(f"nobody presents session {session!r} yet; wait for the "
                             "presenter and run this cell again")
    viewer = viewerlib.open(state["study_instance_uid"], source=source,
                            series=state.get("series_instance_uid") or None)
    return viewer, follow(viewer, session, url, user)


def start_practice_relay(port: int = 0) -> Any:
    """Run a relay inside this kernel on loopback, for practice without the hub.

    Sets ``LIGHTBOX_PRESENTER_URL`` for this kernel and returns the running server
    (``.url``, ``.stop()``). Attendees in other kernels cannot reach a relay that
    is not a hub service unless they are on the same machine and set the same URL.
    """
    try:
        from lightbox_extensions.presenter.relay import PresenterRelay
    except ImportError as err:
        raise ImportError("the presenter relay needs the package "
                          "lightbox_extensions (pip install -e . in the Lightbox "
                          "repository)") from err

    server = PresenterRelay().serve(port=port)
    os.environ[URL_ENV] = server.url
    logger.info("practice presenter relay on %s", server.url)
    return server
