"""Access-log scrubbing: no query string (where launch context travels) in any log."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jupyterhub.log import log_request


def strip_query(uri: str) -> str:
    """``uri`` without its query string and fragment (``?[scrubbed]`` marks one)."""
    parts = urlsplit(uri)
    scrubbed = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return scrubbed + ("?[scrubbed]" if parts.query else "")


def scrubbed_log_request(handler: Any) -> None:
    """JupyterHub's access log line, with the request URI and redirect target stripped.

    Used as ``c.JupyterHub.tornado_settings["log_function"]``.
    """
    request = handler.request
    original_uri = request.uri
    headers = getattr(handler, "_headers", None)
    location = headers.get("Location") if headers is not None else None
    request.uri = strip_query(original_uri or "")
    if location:
        headers["Location"] = strip_query(location)
    try:
        log_request(handler)
    finally:
        request.uri = original_uri
        if location:
            headers["Location"] = location
