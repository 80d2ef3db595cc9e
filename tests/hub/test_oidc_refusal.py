"""OpenID Connect sign-in of a user in no job role: a page that says why, and an audit."""
from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from jupyterhub.auth import Authenticator
from live_hub import sign_in_with_provider_mock
from tornado import web

from lightbox_hub.audit import AuditLog
from lightbox_hub.auth import audited_sign_in, no_role_refusal
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
        # "... then sign in again": the page offers the way out of this session.
        link = re.search(r'<a href="(/hub/logout)"[^>]*>Sign out</a>', page.text)
        assert link, page.text
        signed_out = browser.get(urljoin(page.url, link.group(1)), timeout=60)
        # The hub's sign-out ends the provider's session too, then comes back.
        assert signed_out.ok, signed_out.text[:300]
        assert "/end_session?" in signed_out.url, signed_out.url
        assert "post_logout_redirect_uri=" in signed_out.url
    refusals = [r for r in AuditLog(hub.directory / "audit.jsonl").read()
                if r["event"] == "sign-in-refused"]
    assert [(r["user"], r["reason"]) for r in refusals] == [("outsider",
                                                            "no-job-role")]
    assert refusals[0]["client_ip"] == "127.0.0.1"


def test_the_no_role_page_links_to_the_sign_out_under_the_hubs_base_url(
        tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    handler = SimpleNamespace(
        settings={"lightbox": SimpleNamespace(audit=audit)},
        request=SimpleNamespace(remote_ip="127.0.0.1"),
        hub=SimpleNamespace(base_url="/lightbox/hub/"),
        authenticator=SimpleNamespace(logout_url=Authenticator().logout_url))

    async def refuse(handler: Any, data: Any) -> Any:
        refusal = no_role_refusal(["billing & <co>"], {"radiologist"})
        refusal.lightbox_user = "outsider"  # type: ignore[attr-defined]
        raise refusal

    with pytest.raises(web.HTTPError) as raised, ThreadPoolExecutor(1) as thread:
        # In a thread of its own: the suite's Playwright browser may keep an
        # event loop running in the main thread, where asyncio.run refuses.
        thread.submit(asyncio.run, audited_sign_in(refuse, handler, {})).result()

    page = raised.value.jupyterhub_html_message  # type: ignore[attr-defined]
    assert '<a href="/lightbox/hub/logout" class="lightbox-sign-out">Sign out</a>' \
        in page
    # The message around it is escaped, as the plain message would be.
    assert "your groups: billing &amp; &lt;co&gt;" in page
    assert "Ask your Lightbox administrator" in page
    assert [r["reason"] for r in audit.read()] == ["no-job-role"]
