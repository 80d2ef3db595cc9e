"""OpenID Connect sign-in of a user in no job role: a page that says why, and an audit."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from live_hub import sign_in_with_provider_mock

from lightbox_hub.audit import AuditLog
from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import OUTSIDER, EmbeddedIdentityProvider


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[EmbeddedHub]:
    (tmp_path / "empty").mkdir()
    archives = tmp_path / "archives.toml"
    archives.write_text(f'[[archive]]\nname = "Empty"\ntype = "folder"\n'
                        f'path = "{tmp_path / "empty"}"\n')
    idp = EmbeddedIdentityProvider(tmp_path / "idp").start()
    started = EmbeddedHub(tmp_path / "hub", idp.issuer, archives)
    try:
        yield started.start()
    finally:
        started.stop()
        idp.stop()


def test_outsider_reads_why_and_the_refusal_is_audited(hub: EmbeddedHub) -> None:
    with requests.Session() as browser:
        page = sign_in_with_provider_mock(browser, hub, str(OUTSIDER["sub"]))
    assert page.status_code == 403
    assert "in no Lightbox job role (your groups: billing)" in page.text
    refusals = [r for r in AuditLog(hub.directory / "audit.jsonl").read()
                if r["event"] == "sign-in-refused"]
    assert [(r["user"], r["reason"]) for r in refusals] == [("outsider",
                                                            "no-job-role")]
    assert refusals[0]["client_ip"] == "127.0.0.1"
