"""The user server's log never holds search terms, study UIDs or request tokens."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from server_fixtures import LightboxServer, free_port, write_archives

# What jupyterhub-singleuser installs as tornado's log_function: every request at
# INFO, and for a 500 every request header (only Authorization and Cookie hidden).
SINGLEUSER_LOG_FUNCTION = """\
from jupyterhub.log import log_request
c.ServerApp.tornado_settings = {"log_function": log_request}
"""


def _log_with(server: LightboxServer, line: str, timeout: float = 10.0) -> str:
    """The server's log once ``line`` is in it: the request is logged after the reply
    has been sent, so the client can read the log before the line is written."""
    deadline = time.monotonic() + timeout
    log = server.log.read_text()
    while line not in log and time.monotonic() < deadline:
        time.sleep(0.1)
        log = server.log.read_text()
    return log


def _phantom_identity(folder: Path) -> tuple[str, str, str]:
    """Patient name, Patient ID and an Accession Number of the phantom archive."""
    dataset = pydicom.dcmread(min(folder.glob("current-*.dcm")))
    return str(dataset.PatientName), dataset.PatientID, dataset.AccessionNumber


@pytest.fixture(scope="module")
def hub_like_server(
    tmp_path_factory: pytest.TempPathFactory, phantom_archive: tuple[Path, list[str]]
) -> Iterator[LightboxServer]:
    folder = tmp_path_factory.mktemp("logged-server")
    archives = write_archives(folder / "archives.toml", phantom_archive[0], None)
    server = LightboxServer(
        folder,
        {"LIGHTBOX_ARCHIVES": str(archives)},
        arguments=("--ServerApp.log_level=DEBUG",),
        config_python=SINGLEUSER_LOG_FUNCTION,
    ).start()
    yield server
    server.stop()


def test_search_terms_and_thumbnail_uids_are_scrubbed_from_the_access_log(
    hub_like_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    name, patient_id, accession = _phantom_identity(phantom_archive[0])
    family = name.split("^")[0]
    search = hub_like_server.request(
        "GET",
        f"/lightbox/api/search?patient_id={patient_id}&patient_name={family}*"
        f"&accession_number={accession}",
    )
    uid = phantom_archive[1][0]
    thumbnail = hub_like_server.request(
        "GET", f"/lightbox/api/thumbnail?study_instance_uid={uid}"
    )

    assert search.status == 200 and len(search.json()["studies"]) == 1
    assert thumbnail.status == 200
    log = _log_with(hub_like_server, "GET /lightbox/api/thumbnail?[scrubbed]")
    # The requests were logged, without their query strings.
    assert "GET /lightbox/api/search?[scrubbed]" in log
    assert "GET /lightbox/api/thumbnail?[scrubbed]" in log
    for secret in (patient_id, family, accession, uid):
        assert secret not in log, secret


def test_a_failed_request_logs_no_token_header_and_no_query(
    hub_like_server: LightboxServer,
) -> None:
    xsrf, cookie = secrets.token_hex(12), secrets.token_hex(12)
    # A notebook whose cells cannot be cleaned: the pre-save hook refuses it (500).
    reply = hub_like_server.request(
        "PUT",
        "/api/contents/broken.ipynb?patient_id=XSS-0001",
        {"type": "notebook", "format": "json", "content": {"cells": 7}},
        headers={
            "X-XSRFToken": xsrf,
            "Cookie": f"_xsrf={cookie}",
            "User-Agent": "lightbox-test",
        },
    )

    assert reply.status == 500
    assert "could not be removed" in reply.json()["message"]
    assert not (hub_like_server.root / "broken.ipynb").exists()
    log = _log_with(hub_like_server, '"User-Agent": "lightbox-test"')
    # The header dump of a 500 ran, with only harmless headers in it.
    assert '"User-Agent": "lightbox-test"' in log
    assert "PUT /api/contents/broken.ipynb?[scrubbed]" in log
    for secret in (xsrf, cookie, hub_like_server.token, "XSS-0001"):
        assert secret not in log, secret


def test_every_archive_down_logs_neither_the_terms_nor_the_headers(
    tmp_path: Path,
) -> None:
    archives = write_archives(tmp_path / "archives.toml", None, free_port())
    server = LightboxServer(
        tmp_path,
        {"LIGHTBOX_ARCHIVES": str(archives)},
        arguments=("--ServerApp.log_level=DEBUG",),
    ).start()
    xsrf = secrets.token_hex(12)
    try:
        reply = server.request(
            "GET",
            "/lightbox/api/search?patient_id=XSS-0001&patient_name=Secret*",
            headers={"X-XSRFToken": xsrf},
        )
    finally:
        server.stop()

    assert reply.status == 503
    log = server.log.read_text()
    assert "GET /lightbox/api/search?[scrubbed]" in log
    for secret in ("XSS-0001", "Secret", xsrf, server.token):
        assert secret not in log, secret
