"""Credentials for archives: bearer tokens that stay fresh, from env, file or service.

HTTP basic auth and TLS client certificates need nothing beyond requests; they are
set up by :class:`~viewerlib.sources.dicomweb.DICOMwebSource` directly.
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

import requests

from viewerlib.errors import SourceAuthenticationError

logger = logging.getLogger(__name__)


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
            answer = self._fetch()
            token = answer if isinstance(answer, AccessToken) else AccessToken(answer)
        elif self.env_var is not None:
            value = os.environ.get(self.env_var, "").strip()
            if not value:
                raise SourceAuthenticationError(
                    "token provider", f"the environment variable {self.env_var} that "
                    "should hold the access token is empty or unset; set it, or "
                    "change token_env in the archives configuration")
            token = AccessToken(value)
        else:
            try:
                value = Path(str(self.path)).read_text().strip()
            except OSError as err:
                raise SourceAuthenticationError(
                    "token provider", f"could not read the access token file "
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


class BearerAuth(requests.auth.AuthBase):
    """Put ``Authorization: Bearer <token>`` on every request.

    Parameters
    ----------
    token : str or callable
        A fixed token, or a callable (e.g. :class:`AccessTokenProvider`) asked
        for a token before each request.
    """

    def __init__(self, token: str | Callable[[], str]) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self._token() if callable(self._token) else self._token
        request.headers["Authorization"] = f"Bearer {token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<token hidden>)"
