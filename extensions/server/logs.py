"""The user server's logs never hold search terms, study UIDs or request tokens.

The Studies panel sends what a user types (patient name and ID, accession number) as
a query string, and thumbnails name their study there; Jupyter's access log would
write every URI, and a failed request's headers (``X-XSRFToken`` among them). The
same scrubbing as the hub's (:mod:`lightbox_hub.logs`) is applied here: query strings
become ``?[scrubbed]`` and only harmless headers are left for the error dump.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from lightbox_hub.logs import scrub_query_strings, strip_query
from tornado.httputil import HTTPHeaders

# Headers an error log may show: none of them carries a token, cookie or search term.
LOGGED_HEADERS = ("Host", "Accept", "User-Agent", "Referer")

# Loggers tornado writes request summaries to ("400 GET /path?query (ip): ...").
TORNADO_LOGGERS = ("tornado.access", "tornado.general", "tornado.application")


def loggable_headers(headers: HTTPHeaders) -> HTTPHeaders:
    """The subset of ``headers`` safe to log, with the Referer's query removed.

    Examples
    --------
    >>> headers = HTTPHeaders({"Referer": "http://h/lab?token=t", "X-XSRFToken": "x"})
    >>> dict(loggable_headers(headers))
    {'Referer': 'http://h/lab?[scrubbed]'}
    """
    kept = HTTPHeaders()
    for name in LOGGED_HEADERS:
        if name in headers:
            value = headers[name]
            kept[name] = strip_query(value) if name == "Referer" else value
    return kept


def scrubbed_log_function(
    log_function: Callable[[Any], None],
) -> Callable[[Any], None]:
    """Wrap a tornado ``log_function``: it sees the URI without query, few headers.

    The request is changed only while ``log_function`` runs (after the response).
    """
    if getattr(log_function, "lightbox_scrubbed", False):
        return log_function

    @functools.wraps(log_function)
    def log_request(handler: Any) -> None:
        request = handler.request
        uri, headers = request.uri, request.headers
        request.uri = strip_query(uri or "")
        request.headers = loggable_headers(headers)
        try:
            log_function(handler)
        finally:
            request.uri, request.headers = uri, headers

    log_request.lightbox_scrubbed = True  # type: ignore[attr-defined]
    return log_request


def scrub_server_logs(web_app: Any, server_logger: logging.Logger) -> None:
    """Scrub the access log of ``web_app`` and the query strings of every log line.

    Parameters
    ----------
    web_app : tornado.web.Application
        The Jupyter server's application; its ``log_function`` (Jupyter's, or
        jupyterhub-singleuser's) is wrapped.
    server_logger : logging.Logger
        The server's own logger, where Jupyter writes its access log.
    """
    from jupyter_server.log import log_request

    current = web_app.settings.get("log_function") or log_request
    web_app.settings["log_function"] = scrubbed_log_function(current)
    scrub_query_strings(*TORNADO_LOGGERS, server_logger.name)
