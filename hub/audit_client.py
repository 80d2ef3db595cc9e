"""Kernel side: report to the hub's audit log, and fetch the user's access token.

Both calls use the server's own ``JUPYTERHUB_API_TOKEN`` (which the kernel inherits)
against ``JUPYTERHUB_API_URL``; the hub accepts only that token for its user. Nothing
is written to disk. The kernel start-up file (``kernel_startup.py``) connects
:func:`report` to viewerlib's events, so every series opened is reported by UID.
"""
from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)


def _hub_request(path: str, body: dict[str, Any] | None = None,
                 timeout: float = 5.0) -> Any:
    api_url = os.environ.get("JUPYTERHUB_API_URL")
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if not api_url or not token:
        raise RuntimeError("not running under JupyterHub (JUPYTERHUB_API_URL or "
                           "JUPYTERHUB_API_TOKEN unset)")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        api_url.rstrip("/") + path, data=data, method="POST" if data else "GET",
        headers={"Authorization": f"token {token}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        raw = reply.read()
    return json.loads(raw) if raw else None


def report(event: str, **fields: Any) -> bool:
    """Send one audit event (``study-opened``, ``series-opened``, ``purge``).

    Returns ``False`` (and logs a warning without the fields) when the hub cannot be
    reached, so a notebook never fails because of the audit.
    """
    try:
        _hub_request("/lightbox/audit", {"event": event, "fields": fields})
    except (OSError, RuntimeError, urllib.error.URLError) as err:
        logger.warning("audit event %s not delivered: %s", event,
                       type(err).__name__)
        return False
    return True


def fetch_access_token() -> Any:
    """The user's current OAuth access token, for ``AccessTokenProvider(fetch=...)``.

    The hub refreshes it with the refresh token shortly before it expires. Example::

        from viewerlib.sources.auth import AccessTokenProvider
        provider = AccessTokenProvider(fetch=fetch_access_token)
    """
    from viewerlib.sources.auth import AccessToken

    answer = _hub_request("/lightbox/access-token")
    return AccessToken(answer["access_token"], answer.get("expires_at"))
