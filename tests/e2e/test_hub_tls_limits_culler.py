"""A hub over HTTPS: headers, enforced server limits, and the idle culler."""
from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lightbox_hub.audit import AuditLog
from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider

MEM_LIMIT = 3 * 1024**3
USER = "emergency"


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHub]:
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "hub.crt", root / "hub.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    archives = root / "archives.toml"
    (root / "empty").mkdir()
    archives.write_text(f'[[archive]]\nname = "Empty"\ntype = "folder"\n'
                        f'path = "{root / "empty"}"\n')
    idp = EmbeddedIdentityProvider(root / "idp").start()
    hub = EmbeddedHub(root / "hub", idp.issuer, archives, tls=(cert, key), extra_env={
        "LIGHTBOX_IDLE_TIMEOUT_S": "10", "LIGHTBOX_CULL_EVERY_S": "3",
        "LIGHTBOX_MEM_LIMIT": "3G", "LIGHTBOX_CPU_LIMIT": "1",
        "LIGHTBOX_FRAME_ANCESTORS": "'self' https://ehr.example.org"})
    try:
        yield hub.start()
    finally:
        hub.stop()
        idp.stop()


def call(hub: EmbeddedHub, path: str, method: str = "GET") -> tuple[Any, Any]:
    assert hub.tls is not None
    context = ssl.create_default_context(cafile=str(hub.tls[0]))
    request = urllib.request.Request(hub.url + path, method=method, headers={
        "Authorization": f"token {hub.operator_token}"})
    with urllib.request.urlopen(request, timeout=30, context=context) as reply:
        raw = reply.read()
        is_json = "json" in reply.headers.get("Content-Type", "")
        return reply.headers, (json.loads(raw) if raw and is_json else None)


HSTS = "max-age=31536000"


def server_policy(hub: EmbeddedHub) -> str:
    """The whole Content-Security-Policy of a user's server behind this hub."""
    return ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' "
            "blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "font-src 'self' data:; worker-src 'self' blob:; "
            f"connect-src 'self' wss://127.0.0.1:{hub.port}; object-src 'none'; "
            "base-uri 'self'; frame-ancestors 'self' https://ehr.example.org")


def test_hub_serves_https_with_the_configured_certificate(tls_hub: EmbeddedHub) -> None:
    headers, body = call(tls_hub, "/hub/api/")
    assert "version" in body
    headers, _ = call(tls_hub, "/hub/login")
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
        "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src "
        "'none'; base-uri 'self'; frame-ancestors 'self' https://ehr.example.org")
    # Over TLS, browsers are told to use nothing else for this host.
    assert headers["Strict-Transport-Security"] == HSTS
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Plain HTTP on the same port gets no page.
    plain = http.client.HTTPConnection("127.0.0.1", tls_hub.port, timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        plain.request("GET", "/hub/api/")
        reply = plain.getresponse()
        assert reply.status == 400  # TLS servers may answer 400 to plain HTTP
        raise ConnectionError(f"plain HTTP refused with {reply.status}")


def test_limits_are_in_force_and_the_idle_culler_stops_the_server(
        tls_hub: EmbeddedHub) -> None:
    try:
        call(tls_hub, f"/hub/api/users/{USER}", "POST")
    except urllib.error.HTTPError as err:
        assert err.code == 409
    call(tls_hub, f"/hub/api/users/{USER}/server", "POST")
    deadline = time.monotonic() + 90
    while not (server := call(tls_hub, f"/hub/api/users/{USER}")[1]["servers"]
               .get("", {})).get("ready"):
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.5)
    started = time.monotonic()

    pid = server["state"]["pid"]
    limits = Path(f"/proc/{pid}/limits").read_text()
    address_space = next(line for line in limits.splitlines()
                         if line.startswith("Max address space"))
    assert address_space.split()[3:5] == [str(MEM_LIMIT), str(MEM_LIMIT)]
    assert len(os.sched_getaffinity(pid)) == 1

    # The user's server marks its responses as not to be stored, sends the whole
    # policy (its JSON API a stricter one still) and HSTS.
    headers, _ = call(tls_hub, f"/user/{USER}/api/status")
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Security-Policy"] == (
        server_policy(tls_hub) + "; default-src 'none'")
    assert headers["Strict-Transport-Security"] == HSTS
    headers, _ = call(tls_hub, f"/user/{USER}/lab")
    assert headers["Content-Security-Policy"] == server_policy(tls_hub)
    assert headers["Strict-Transport-Security"] == HSTS
    assert headers["Cache-Control"] == "no-store"

    while call(tls_hub, f"/hub/api/users/{USER}")[1]["servers"]:
        assert time.monotonic() - started < 60, "idle server was not culled in 60 s"
        time.sleep(1)
    culled_after = time.monotonic() - started
    assert culled_after >= 5, culled_after
    events = [r["event"] for r in AuditLog(tls_hub.directory / "audit.jsonl").read()
              if r["user"] == USER]
    assert events[-1] == "server-stopped", events
