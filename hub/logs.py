"""Access-log scrubbing: no query string (where launch context travels) in any log."""
from __future__ import annotations

import logging
import re
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


# A request line or URL inside a log message: the query part up to white space/quote.
_QUERY = re.compile(r"(/[^\s?\"']*)\?[^\s\"']+")


class QueryStringScrubber(logging.Filter):
    """Remove query strings from every record of a logger (warnings included).

    Tornado logs a refused request as ``403 GET /hub/oauth_callback?code=...``; the
    OAuth code and state, or a launch context, must not reach the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg = _QUERY.sub(r"\1?[scrubbed]", message)
            record.args = ()
        return True


def scrub_query_strings(*logger_names: str) -> None:
    """Attach :class:`QueryStringScrubber` to the named loggers (once each)."""
    for name in logger_names:
        target = logging.getLogger(name)
        if not any(isinstance(f, QueryStringScrubber) for f in target.filters):
            target.addFilter(QueryStringScrubber())
