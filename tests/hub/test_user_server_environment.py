"""What the hub hands a user's server: its role's panels, headers, none of its secrets.

A real hub whose site file asks the spawner to keep the hub's secret variables (a
plausible slip when copying an ``env_keep`` list); a user signs in through the
provider mock, and the server process, a kernel it started, and the server's
Lightbox extension are asked what they got.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from live_hub import (
    KernelOfUser,
    operator,
    sign_in_with_provider_mock,
    wait_until_ready,
)

from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider

USER = "radiologist"
CLIENT_SECRET = "client-secret-of-this-test-" + "c" * 16
_SECRET_VARIABLES = ["LIGHTBOX_LAUNCH_SECRET", "LIGHTBOX_OIDC_CLIENT_SECRET",
                     "JUPYTERHUB_CRYPT_KEY", "LIGHTBOX_OPERATOR_TOKEN"]
_ENVIRONMENT = """
import json, os
print(json.dumps({"kernel": dict(os.environ),
                  "server": open(f"/proc/{os.getppid()}/environ", "rb").read()
                  .decode(errors="replace")}))
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHub]:
    root = tmp_path_factory.mktemp("user-server-environment")
    (root / "empty").mkdir()
    archives = root / "archives.toml"
    archives.write_text(f'[[archive]]\nname = "Empty"\ntype = "folder"\n'
                        f'path = "{root / "empty"}"\n')
    site = root / "site.py"
    # The more specific class wins over the hub file's c.Spawner.env_keep.
    site.write_text("c.LightboxLocalSpawner.env_keep = "
                    f"{['PATH', 'LANG', *_SECRET_VARIABLES]!r}\n")
    idp = EmbeddedIdentityProvider(root / "idp").start()
    started = EmbeddedHub(root / "hub", idp.issuer, archives, extra_env={
        "LIGHTBOX_HUB_CONFIG": str(site),
        "LIGHTBOX_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        # The radiologist's panels, changed from the default (all three).
        "LIGHTBOX_ROLE_PANELS": json.dumps({"radiologist": ["launcher"],
                                            "*": ["studies", "launcher",
                                                  "app-view"]})})
    try:
        started.start()
        sign_in_with_provider_mock(requests.Session(), started, USER)
        wait_until_ready(started, USER)
        yield started
    finally:
        started.stop()
        idp.stop()


def _secrets(hub: EmbeddedHub) -> dict[str, str]:
    return {
        "launch secret": hub.launch_secret,
        "client secret": CLIENT_SECRET,
        "crypt key": (hub.directory / "jupyterhub_crypt_key").read_text().strip(),
        "cookie secret": (hub.directory / "jupyterhub_cookie_secret").read_bytes()
        .hex(),
        "operator token": hub.operator_token,
    }


def test_user_server_and_kernel_get_none_of_the_hubs_secrets(hub: EmbeddedHub) -> None:
    kernel = KernelOfUser(hub, USER)
    try:
        seen = json.loads(kernel.run(_ENVIRONMENT))
    finally:
        kernel.close()

    kernel_environment = "\n".join(f"{k}={v}" for k, v in seen["kernel"].items())
    for what, value in _secrets(hub).items():
        assert value not in kernel_environment, what
        assert value not in seen["server"], what
    for name in _SECRET_VARIABLES:
        assert name not in seen["kernel"], name
        assert f"{name}=" not in seen["server"], name
    # What the server needs is still there: its own token, and the role's panels.
    assert seen["kernel"]["JUPYTERHUB_API_TOKEN"]
    assert seen["kernel"]["LIGHTBOX_PANELS"] == "launcher"
    log = (hub.directory / "jupyterhub.log").read_text()
    assert "not passing the hub's secret(s)" in log


def test_configured_role_sees_the_changed_panels(hub: EmbeddedHub) -> None:
    reply = requests.get(f"{hub.url}/user/{USER}/lightbox/api/config", timeout=30,
                         headers={"Authorization": f"token {hub.operator_token}"})
    reply.raise_for_status()
    config = reply.json()
    assert config["role"] == USER
    assert config["panels"] == ["launcher"]


def test_user_server_sends_the_whole_policy_and_no_hsts_over_plain_http(
        hub: EmbeddedHub) -> None:
    policy = (
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "font-src 'self' data:; worker-src 'self' blob:; "
        f"connect-src 'self' ws://127.0.0.1:{hub.port}; object-src 'none'; "
        "base-uri 'self'; frame-ancestors 'self'")
    headers = {"Authorization": f"token {hub.operator_token}"}
    page = requests.get(f"{hub.url}/user/{USER}/lab", timeout=60, headers=headers)
    api = requests.get(f"{hub.url}/user/{USER}/api/status", timeout=30,
                       headers=headers)
    assert page.status_code == api.status_code == 200
    assert page.headers["Content-Security-Policy"] == policy
    # jupyter_server makes its JSON API stricter still.
    assert api.headers["Content-Security-Policy"] == policy + "; default-src 'none'"
    for reply in (page, api):
        assert reply.headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in reply.headers
    assert "Strict-Transport-Security" not in requests.get(
        hub.url + "/hub/login", timeout=30).headers
    assert operator(hub, f"/users/{USER}")["servers"][""]["ready"]


def test_site_file_is_where_the_slip_was_made(hub: EmbeddedHub) -> None:
    # The hub did run with the env_keep of the site file (else the first test
    # would prove nothing): the hub's log names the variables it left out.
    log = (hub.directory / "jupyterhub.log").read_text()
    line = next(x for x in log.splitlines() if "not passing the hub's secret" in x)
    for name in _SECRET_VARIABLES:
        assert name in line, line
    assert Path(hub.directory / "jupyterhub.sqlite").exists()
