"""``auth = "hub-token"``: the archive's bearer token comes from the hub.

A loopback HTTP server plays the one hub endpoint a kernel calls, as
``hub/handlers.py`` defines it: ``GET /hub/api/lightbox/access-token`` with
``Authorization: token <the server's JUPYTERHUB_API_TOKEN>``, answered with
``{"access_token", "expires_at"}``, 401 when the sign-on ended, 403 for another
token, 404 when the hub keeps no tokens. The archive is a real Orthanc behind
:class:`BearerTokenGateway`, which issues the tokens and checks them.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pydicom
import pytest
from lightbox_source_testing import BearerTokenGateway, ManualClock

from viewerlib.errors import SourceAuthenticationError
from viewerlib.sources.config import connect

pytestmark = pytest.mark.orthanc

CT = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"),
                     stop_before_pixels=True)
SERVER_TOKEN = "test-server-api-token"


class HubTokenEndpoint:
    """The hub's access-token endpoint on loopback, handing out gateway tokens.

    Attributes
    ----------
    requests : list of tuple of str
        ``(path, Authorization header)`` of every request.
    status : int
        Answer with this status instead of a token when not 200.
    """

    def __init__(self, gateway: BearerTokenGateway) -> None:
        self.requests: list[tuple[str, str]] = []
        self.status = 200
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization", "")
                outer.requests.append((self.path, authorization))
                status = outer.status
                if self.path != "/hub/api/lightbox/access-token":
                    status = 404
                elif authorization != f"token {SERVER_TOKEN}":
                    status = 403
                body = b""
                if status == 200:
                    token = gateway.fetch_token()
                    body = json.dumps({"access_token": token.value,
                                       "expires_at": time.time() + 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"

    def __enter__(self) -> HubTokenEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway(archives):
    port = int(archives.a.url.rsplit(":", 1)[1])
    with BearerTokenGateway(port, ManualClock(), ttl_s=300) as gateway:
        yield gateway


@pytest.fixture
def hub(gateway, monkeypatch):
    with HubTokenEndpoint(gateway) as hub:
        monkeypatch.setenv("JUPYTERHUB_API_URL", hub.api_url)
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVER_TOKEN)
        yield hub


@pytest.fixture
def archives_file(gateway, tmp_path):
    path = tmp_path / "archives.toml"
    path.write_text(f'[[archive]]\nname = "regional"\ntype = "dicomweb"\n'
                    f'url = "{gateway.url()}"\nquirks = "orthanc-1.10"\n'
                    'auth = "hub-token"\nretries = 0\n')
    return path


def _search(archives_file):
    return connect(archives_file).search_for_studies(
        study_instance_uid=str(CT.StudyInstanceUID))


def test_archive_is_searched_with_the_token_the_hub_hands_out(hub, gateway,
                                                               archives_file):
    found = _search(archives_file)
    assert [s.locations for s in found] == [["regional"]]
    assert hub.requests == [("/hub/api/lightbox/access-token",
                             f"token {SERVER_TOKEN}")]
    # The archive saw only the token the hub handed out, and let it through.
    assert gateway.seen and set(gateway.seen) == {(gateway.issued[0], 200)}


def test_a_token_the_archive_refuses_is_fetched_again_from_the_hub(hub, gateway,
                                                                    archives_file):
    federation = connect(archives_file)
    query = {"study_instance_uid": str(CT.StudyInstanceUID)}
    assert len(federation.search_for_studies(**query)) == 1
    gateway.revoked.add(gateway.issued[0])  # the identity provider revoked it
    seen_before = len(gateway.seen)
    assert len(federation.search_for_studies(**query)) == 1
    assert len(hub.requests) == 2 and len(gateway.issued) == 2
    # The old token is refused once; every request after it (the page sent
    # again, the empty page that ends the results) carries the new one.
    refused, *after = gateway.seen[seen_before:]
    assert refused == (gateway.issued[0], 401)
    assert after and set(after) == {(gateway.issued[1], 200)}


def test_outside_a_hub_the_file_loads_and_the_archive_says_why_it_fails(
        gateway, archives_file, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    federation = connect(archives_file)
    with pytest.raises(SourceAuthenticationError) as caught:
        federation.search_for_studies()
    message = str(caught.value)
    assert message.startswith("all archives: 'regional' refused the credentials "
                              "(or none could be sent)")
    assert "JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN are not set" in message
    assert "does not run under a hub" in message
    assert 'auth = "bearer" with token_env or token_file' in message
    assert gateway.seen == []  # nothing was sent without a token


@pytest.mark.parametrize(("status", "server_token", "says"), [
    (401, SERVER_TOKEN, "the hub says your sign-on has ended. Sign in to the hub "
                        "again"),
    (404, SERVER_TOKEN, "the hub holds no access token for you"),
    (200, "another-server-token", "the hub refused this kernel's "
                                  "JUPYTERHUB_API_TOKEN"),
], ids=["sign-on-ended", "no-token-kept", "not-own-server"])
def test_hub_refusal_says_what_to_do_raises(hub, gateway, archives_file, monkeypatch,
                                            status, server_token, says):
    hub.status = status
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", server_token)
    with pytest.raises(SourceAuthenticationError, match="no access token from the "
                       "hub") as caught:
        _search(archives_file)
    assert says in str(caught.value)
    assert server_token not in str(caught.value)
    assert gateway.seen == []


def test_hub_not_answering_says_so_raises(gateway, archives_file, monkeypatch):
    with HubTokenEndpoint(gateway) as stopped:
        api_url = stopped.api_url
    monkeypatch.setenv("JUPYTERHUB_API_URL", api_url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVER_TOKEN)
    with pytest.raises(SourceAuthenticationError,
                       match=f"could not reach the hub at {api_url}"):
        _search(archives_file)
