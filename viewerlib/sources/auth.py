"""Credentials for archives: bearer tokens that stay fresh, from env, file or service.

HTTP basic auth and TLS client certificates need nothing beyond requests; they are
set up by :class:`~viewerlib.sources.dicomweb.DICOMwebSource` directly. Inside
Lightbox's JupyterHub, :func:`fetch_hub_access_token` asks the hub for the user's
single sign-on access token (``auth = "hub-token"`` in the archives file).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from viewerlib.errors import SourceAuthenticationError

logger = logging.getLogger(__name__)

TOKEN_PROVIDER = "token provider"
"""The source name token errors carry until a source names its archive."""
REFRESHED_NOT_RESENT = "lightbox_token_refreshed_not_resent"
"""Attribute set on a 401 response whose streamed request could not be re-sent."""
HUB_ACCESS_TOKEN_PATH = "/lightbox/access-token"
"""Below ``$JUPYTERHUB_API_URL``: the hub's endpoint that hands out the token."""


@dataclass
class AccessToken:
    """A bearer token and when it stops being valid (seconds since the epoch)."""

    value: str
    expires_at: float | None = None


def _jwt_expiry(token: str) -> float | None:
    """Read the ``exp`` claim of a JSON Web Token without checking its signature."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded))
        return float(payload["exp"])
    except (ValueError, KeyError, TypeError):
        return None


def _hub_refusal(status: int, api_url: str) -> str:
    """What the hub's refusal of the token request means, and what to do."""
    if status == 401:
        return ("the hub says your sign-on has ended. Sign in to the hub again "
                "(log out and in), then run the cell again.")
    if status == 403:
        return ("the hub refused this kernel's JUPYTERHUB_API_TOKEN (only your own "
                "server's token may ask for your access token). Restart your "
                "server from the hub's control panel.")
    if status == 404:
        return ("the hub holds no access token for you: its single sign-on keeps "
                "no tokens (auth state off), or this hub is too old to hand them "
                f"out at {api_url}{HUB_ACCESS_TOKEN_PATH}. Ask the hub's "
                "administrator.")
    return (f"the hub answered HTTP {status}. Try again; if it keeps happening, "
            "ask the hub's administrator.")


def fetch_hub_access_token(timeout: float = 5.0) -> AccessToken:
    """Ask the JupyterHub that started this kernel for the user's access token.

    ``GET $JUPYTERHUB_API_URL/lightbox/access-token`` with the server's own
    ``JUPYTERHUB_API_TOKEN`` (which a kernel inherits); the hub answers
    ``{"access_token": ..., "expires_at": ...}``, refreshing the token first when
    it is near expiry. Meant as ``AccessTokenProvider(fetch=...)``, which the
    archives setting ``auth = "hub-token"`` builds.

    Parameters
    ----------
    timeout : float
        Seconds to wait for the hub.

    Returns
    -------
    AccessToken
        With ``expires_at`` when the hub knows it.

    Raises
    ------
    viewerlib.errors.SourceAuthenticationError
        Outside a hub (the two environment variables unset), when the hub cannot
        be reached, or when it refuses; the message says what to do.
    """
    api_url = os.environ.get("JUPYTERHUB_API_URL", "").strip().rstrip("/")
    server_token = os.environ.get("JUPYTERHUB_API_TOKEN", "").strip()
    if not api_url or not server_token:
        unset = [name for name, value in (("JUPYTERHUB_API_URL", api_url),
                                          ("JUPYTERHUB_API_TOKEN", server_token))
                 if not value]
        raise SourceAuthenticationError(
            TOKEN_PROVIDER, f"auth = \"hub-token\" takes the access token from the "
            f"JupyterHub that started this kernel, but {' and '.join(unset)} "
            f"{'is' if len(unset) == 1 else 'are'} not set: this Python does not "
            "run under a hub. Open the notebook from the Lightbox hub, or give "
            "this archive auth = \"bearer\" with token_env or token_file in the "
            "archives configuration.")
    url = api_url + HUB_ACCESS_TOKEN_PATH
    try:
        reply = requests.get(url, timeout=timeout, headers={
            "Authorization": f"token {server_token}", "Accept": "application/json"})
    except requests.RequestException as err:
        raise SourceAuthenticationError(
            TOKEN_PROVIDER, f"could not reach the hub at {api_url} for an access "
            f"token ({type(err).__name__}). Check that the hub is running; if it "
            "is, restart your server from its control panel.") from err
    if reply.status_code != 200:
        raise SourceAuthenticationError(
            TOKEN_PROVIDER, f"no access token from the hub: "
            f"{_hub_refusal(reply.status_code, api_url)}")
    try:
        answer = reply.json()
        value = answer["access_token"]
        expires_at = answer.get("expires_at")
        if not isinstance(value, str) or not value:
            raise TypeError("access_token is not a non-empty string")
        token = AccessToken(value, float(expires_at) if expires_at else None)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise SourceAuthenticationError(
            TOKEN_PROVIDER, f"the hub's answer at {url} holds no usable access "
            f"token ({type(err).__name__}); ask the hub's administrator.") from err
    logger.debug("access token fetched from the hub")
    return token


class AccessTokenProvider:
    """Supply a fresh bearer token, fetching a new one shortly before expiry.

    Parameters
    ----------
    env_var : str, optional
        Environment variable holding the token (JupyterHub puts one in
        ``JUPYTERHUB_API_TOKEN``, or an OAuth access token in
        ``LIGHTBOX_ACCESS_TOKEN``). Read again on every refresh.
    path : str or Path, optional
        File holding the token (a sidecar that rewrites it keeps it fresh).
    fetch : callable, optional
        ``fetch() -> AccessToken | str`` for any other token service.
    refresh_margin_s : float
        Fetch a new token when the current one expires within this many
        seconds. Default 60.
    max_age_s : float
        How long to keep a token whose expiry is unknown (not a JWT and not given
        by ``fetch``) before reading it again. Default 300.
    clock : callable
        Returns the time in seconds since the epoch; for tests.

    Raises
    ------
    ValueError
        If not exactly one of ``env_var``, ``path`` and ``fetch`` is given.
    """

    def __init__(self, env_var: str | None = None, path: str | Path | None = None,
                 fetch: Callable[[], AccessToken | str] | None = None,
                 refresh_margin_s: float = 60.0, max_age_s: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        if sum(x is not None for x in (env_var, path, fetch)) != 1:
            raise ValueError("AccessTokenProvider needs exactly one of env_var, path "
                             "or fetch")
        self.env_var, self.path, self._fetch = env_var, path, fetch
        self.refresh_margin_s, self.max_age_s, self._clock = (
            refresh_margin_s, max_age_s, clock)
        self._current: AccessToken | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _read(self) -> AccessToken:
        if self._fetch is not None:
            try:
                answer = self._fetch()
            except SourceAuthenticationError:
                raise
            except Exception as err:
                # Any failure of the token service (the hub unreachable, sign-on
                # ended) means no request can be authorised; say so in one type.
                raise SourceAuthenticationError(
                    TOKEN_PROVIDER, f"could not get a fresh access token "
                    f"({type(err).__name__}: {err}). Sign in to the hub again; if "
                    "that does not help, ask its administrator.") from err
            token = answer if isinstance(answer, AccessToken) else AccessToken(answer)
        elif self.env_var is not None:
            value = os.environ.get(self.env_var, "").strip()
            if not value:
                raise SourceAuthenticationError(
                    TOKEN_PROVIDER, f"the environment variable {self.env_var} that "
                    "should hold the access token is empty or unset; set it, or "
                    "change token_env in the archives configuration")
            token = AccessToken(value)
        else:
            try:
                value = Path(str(self.path)).read_text().strip()
            except OSError as err:
                raise SourceAuthenticationError(
                    TOKEN_PROVIDER, f"could not read the access token file "
                    f"{self.path} ({err.strerror}); check token_file in the archives "
                    "configuration") from err
            token = AccessToken(value)
        if token.expires_at is None:
            token.expires_at = _jwt_expiry(token.value)
        return token

    def __call__(self) -> str:
        """Return a token valid for at least ``refresh_margin_s`` more seconds."""
        with self._lock:
            now = self._clock()
            current = self._current
            stale = (current is None
                     or (current.expires_at is not None
                         and current.expires_at - now < self.refresh_margin_s)
                     or (current.expires_at is None
                         and now - self._fetched_at > self.max_age_s))
            if stale:
                self._current, self._fetched_at = self._read(), now
                logger.debug("access token refreshed")
            assert self._current is not None
            return self._current.value

    def refresh(self, rejected: str | None = None) -> str:
        """Fetch a new token now, e.g. after an archive answered HTTP 401.

        Parameters
        ----------
        rejected : str, optional
            The token the archive refused. When another thread has already
            replaced it, that newer token is returned without a second fetch.

        Returns
        -------
        str
            The token to try next.
        """
        with self._lock:
            current = self._current
            if rejected is None or current is None or current.value == rejected:
                self._current, self._fetched_at = self._read(), self._clock()
                logger.debug("access token refreshed after a refusal")
            assert self._current is not None
            return self._current.value


class BearerAuth(requests.auth.AuthBase):
    """Put ``Authorization: Bearer <token>`` on every request.

    When the token comes from a provider with a ``refresh`` method (such as
    :class:`AccessTokenProvider`) and the archive answers HTTP 401, a fresh token
    is fetched once and the request is sent again with it (RFC 6750 3.1: an
    expired or revoked token is answered with 401). A second 401 is returned to
    the caller, which raises.

    Parameters
    ----------
    token : str or callable
        A fixed token, or a callable (e.g. :class:`AccessTokenProvider`) asked
        for a token before each request.
    """

    def __init__(self, token: str | Callable[[], str]) -> None:
        self._token = token

    @property
    def refreshable(self) -> bool:
        """``True`` when a refused token can be replaced by a fresh one."""
        return callable(getattr(self._token, "refresh", None))

    def refresh(self, rejected: str | None = None) -> None:
        """Ask the provider for a new token (no-op for a fixed token)."""
        if self.refreshable:
            self._token.refresh(rejected)  # type: ignore[union-attr]

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self._token() if callable(self._token) else self._token
        request.headers["Authorization"] = f"Bearer {token}"
        if self.refreshable:
            request.register_hook("response", self._retry_with_fresh_token)
        return request

    def _retry_with_fresh_token(self, response: requests.Response,
                                **kwargs: Any) -> requests.Response:
        if response.status_code != 401 or response.request is None:
            return response
        request = response.request
        rejected = str(request.headers.get("Authorization", ""))
        self.refresh(rejected.removeprefix("Bearer "))
        if request.body is not None and not isinstance(request.body, bytes | str):
            # A streamed body (chunked STOW-RS) cannot be sent twice; the caller
            # sees the 401, marked, and may send again with the fresh token.
            setattr(response, REFRESHED_NOT_RESENT, True)
            return response
        # Read the refusal so the connection can carry the retry.
        response.content  # noqa: B018
        response.close()
        retry = request.copy()
        retry.headers["Authorization"] = f"Bearer {self._token()}"  # type: ignore[operator]
        # Sent through the adapter, not the session: response hooks do not run
        # again, so a second 401 goes back to the caller instead of looping.
        answer = response.connection.send(retry, **kwargs)
        answer.history.append(response)
        answer.request = retry
        logger.info("archive refused the access token; sent again with a fresh one "
                    "(HTTP %d)", answer.status_code)
        return answer

    def __repr__(self) -> str:
        return "BearerAuth(<token hidden>)"
