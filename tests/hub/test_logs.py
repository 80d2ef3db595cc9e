"""The access log never shows a query string (where launch context travels)."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from lightbox_hub.logs import scrubbed_log_request, strip_query


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/hub/lightbox/launch?ctx=abc&sig=def", "/hub/lightbox/launch?[scrubbed]"),
        ("/hub/login", "/hub/login"),
        ("http://idp/auth?state=x#frag", "http://idp/auth?[scrubbed]"),
    ],
    ids=["launch link", "no query", "absolute with fragment"],
)
def test_strip_query(uri: str, expected: str) -> None:
    assert strip_query(uri) == expected


def test_access_log_line_has_no_query(caplog: pytest.LogCaptureFixture) -> None:
    request = SimpleNamespace(uri="/hub/lightbox/launch?ctx=LBX-0001", method="GET",
                              remote_ip="127.0.0.1", headers={},
                              request_time=lambda: 0.01)
    handler = SimpleNamespace(request=request, get_status=lambda: 302,
                              current_user=None,
                              _headers={"Location": "/hub/login?next=LBX-0001"})
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        scrubbed_log_request(handler)
    assert "LBX-0001" not in caplog.text
    assert "/hub/lightbox/launch?[scrubbed]" in caplog.text
    assert request.uri == "/hub/lightbox/launch?ctx=LBX-0001"  # restored


def test_a_refused_request_warning_keeps_no_query_string(caplog) -> None:
    import logging

    from lightbox_hub.logs import scrub_query_strings

    scrub_query_strings("lightbox-test.general")
    logger = logging.getLogger("lightbox-test.general")
    with caplog.at_level(logging.WARNING, logger="lightbox-test.general"):
        logger.warning("%d %s: %s", 403, "GET /hub/oauth_callback?code=SECRET&state=S2 "
                       "(127.0.0.1)", "Forbidden")
    assert "SECRET" not in caplog.text and "S2" not in caplog.text
    assert "GET /hub/oauth_callback?[scrubbed] (127.0.0.1): Forbidden" in caplog.text
