"""The user's access token reaches the kernel, stays fresh, and stays in memory.

Real parts only: oidc-provider-mock issues short-lived tokens, the hub is
``hub/jupyterhub_config.py``, the user signs in through the provider's form, and the
archive is Orthanc whose request filter accepts a request only when the identity
provider accepts its bearer token (it asks the provider's userinfo endpoint, as a
resource server introspects a token). The kernel is started by the user's own server
and gets the token as the README says a notebook does: ``AccessTokenProvider`` with
``fetch=lightbox_hub.audit_client.fetch_access_token``.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom.data
import pytest
import requests
from live_hub import KernelOfUser, sign_in_with_provider_mock, wait_until_ready

from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider
from lightbox_hub.embedded.orthanc import EmbeddedOrthanc, orthanc_missing

pytestmark = pytest.mark.orthanc

TOKEN_LIFETIME_S = 60
REFRESH_MARGIN_S = 30
USER = "radiologist"

# Orthanc calls IncomingHttpRequestFilter before it answers any request, DICOMweb
# included. Its HttpGet returns an empty string when the provider refuses the token
# (an expired, withdrawn or unknown one), and the user's claims when it accepts it.
# The loader key lets the test store the study.
_FILTER = """
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  if httpHeaders['x-lightbox-loader'] == '{loader_key}' then
    return true
  end
  local authorization = httpHeaders['authorization']
  if authorization == nil or string.sub(authorization, 1, 7) ~= 'Bearer ' then
    return false
  end
  local claims = HttpGet('{userinfo}', {{ ['Authorization'] = authorization }})
  return claims ~= nil and string.find(claims, '"sub"', 1, true) ~= nil
end
"""


class TokenCheckingOrthanc(EmbeddedOrthanc):
    """Orthanc that serves only requests whose bearer token the provider accepts."""

    def __init__(self, state_directory: Path, userinfo_url: str) -> None:
        super().__init__(state_directory, "token-archive")
        self.userinfo_url = userinfo_url
        self.loader_key = secrets.token_hex(16)

    def _write_configuration(self) -> Path:
        path = super()._write_configuration()
        script = self.directory / "bearer_filter.lua"
        script.write_text(_FILTER.format(loader_key=self.loader_key,
                                         userinfo=self.userinfo_url))
        configuration = json.loads(path.read_text())
        configuration["LuaScripts"] = [str(script)]
        path.write_text(json.dumps(configuration))
        return path

    def _session(self) -> requests.Session:
        session = super()._session()
        session.headers["X-Lightbox-Loader"] = self.loader_key
        return session


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[tuple[EmbeddedHub, TokenCheckingOrthanc]]:
    missing = orthanc_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must install it (.ci/run)")
        pytest.skip(missing)
    idp = EmbeddedIdentityProvider(tmp_path / "idp", token_max_age_s=TOKEN_LIFETIME_S)
    archive = TokenCheckingOrthanc(tmp_path / "archive", "")
    hub: EmbeddedHub | None = None
    try:
        idp.start()
        archive.userinfo_url = idp.issuer + "/userinfo"
        archive.start()
        stored = archive.load_files([pydicom.data.get_testdata_file("CT_small.dcm")])
        assert stored.stored == 1, stored.rejected
        archives = tmp_path / "archives.toml"
        archives.write_text(f'[[archive]]\nname = "Token archive"\ntype = "dicomweb"\n'
                            f'url = "{archive.dicomweb_url}"\nauth = "none"\n')
        hub = EmbeddedHub(tmp_path / "hub", idp.issuer, archives, extra_env={
            "LIGHTBOX_TOKEN_REFRESH_MARGIN_S": str(REFRESH_MARGIN_S)})
        hub.start()
        yield hub, archive
    finally:
        if hub is not None:
            hub.stop()
        archive.stop()
        idp.stop()


_SET_UP = """
import json, time, requests
from lightbox_hub.audit_client import fetch_access_token
from viewerlib.sources.auth import AccessTokenProvider
from viewerlib.sources.dicomweb import DICOMwebSource

URL = {url!r}
first = fetch_access_token()
provider = AccessTokenProvider(fetch=fetch_access_token, refresh_margin_s={margin})
archive = DICOMwebSource(URL, name="Token archive", auth=provider)

def status_with(token):
    headers = {{"Authorization": "Bearer " + token}} if token else {{}}
    return requests.get(URL + "/studies", headers=headers, timeout=30).status_code

def step():
    studies = archive.search_for_studies()
    return {{"studies": len(studies), "token": provider(), "at": time.time()}}

print(json.dumps(dict(step(), first=first.value, expires_at=first.expires_at,
                      unauthenticated=status_with(None),
                      forged=status_with("not-a-token"))))
"""
_STEP = "print(json.dumps(dict(step(), first_now=status_with(first.value))))"


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _files_holding(folder: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(path) for path in folder.rglob("*")
            if path.is_file() and needle in path.read_bytes()]


def test_kernel_token_works_is_renewed_before_expiry_and_never_touches_disk(
        setting) -> None:
    hub, archive = setting
    signed_in_from = time.time()
    with requests.Session() as browser:
        sign_in_with_provider_mock(browser, hub, USER)
    signed_in_by = time.time()
    wait_until_ready(hub, USER)
    kernel = KernelOfUser(hub, USER)
    try:
        first = json.loads(kernel.run(_SET_UP.format(url=archive.dicomweb_url,
                                                     margin=REFRESH_MARGIN_S)))

        # The archive checks: no token or a made-up one is refused (Orthanc: 403),
        # the user's token is accepted and finds the one stored study.
        assert first["unauthenticated"] == 403 and first["forged"] == 403
        assert first["studies"] == 1
        assert first["token"] == first["first"]
        # The expiry handed to the kernel is the token's own, from the sign-in: it
        # does not move forward each time the hub checks the token.
        assert (signed_in_from + TOKEN_LIFETIME_S - 1 <= first["expires_at"]
                <= signed_in_by + TOKEN_LIFETIME_S + 1), (first, signed_in_by)
        assert first["at"] < first["expires_at"] - REFRESH_MARGIN_S, (
            "the kernel's first request came too late to see the token before its "
            "renewal; the machine is too loaded for this timing")

        # Inside the margin but before the expiry: the next request gets a renewed
        # token from the hub; the provider has withdrawn the old one.
        _sleep_until(first["expires_at"] - REFRESH_MARGIN_S + 2)
        renewed = json.loads(kernel.run(_STEP))
        assert renewed["at"] < first["expires_at"]
        assert renewed["token"] != first["token"]
        assert renewed["studies"] == 1
        assert renewed["first_now"] == 403

        # After the first token's expiry the kernel keeps working with the new one.
        _sleep_until(first["expires_at"] + 1)
        later = json.loads(kernel.run(_STEP))
        assert later["studies"] == 1 and later["first_now"] == 403
        tokens = {first["token"], renewed["token"], later["token"]}
    finally:
        kernel.close()

    # Neither token was written anywhere: not in the home, the scratch folder, the
    # hub database (auth state is encrypted), the logs or the audit.
    for token in tokens:
        assert _files_holding(hub.directory, token) == []
