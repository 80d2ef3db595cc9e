"""Where the presenter relay listens, and how the hub, proxy and kernels reach it.

On one machine everything stays on loopback; a Kubernetes hub pod listens on all its
addresses and names the in-cluster URL the proxy and the user pods use.
"""

from __future__ import annotations

import pytest
from lightbox_extensions.presenter import RelayApp, configure_hub, service_definition
from lightbox_extensions.presenter.relay import IP_ENV, SERVICE_URL_ENV
from traitlets import TraitError
from traitlets.config import Config


@pytest.fixture(autouse=True)
def _no_site_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (IP_ENV, SERVICE_URL_ENV, "LIGHTBOX_PRESENTER_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("arguments", "url", "ip"),
    [
        ({}, "http://127.0.0.1:8765", "127.0.0.1"),
        ({"port": 8799, "ip": "::1"}, "http://[::1]:8799", "::1"),
        (
            {"ip": "0.0.0.0", "url": "http://hub:8765/"},
            "http://hub:8765",
            "0.0.0.0",
        ),
    ],
    ids=["default-loopback", "ipv6-loopback", "kubernetes-hub-pod"],
)
def test_service_definition_listens_where_told(
    arguments: dict[str, object], url: str, ip: str
) -> None:
    service = service_definition(**arguments)  # type: ignore[arg-type]

    assert service["url"] == url
    assert f"--ip={ip}" in service["command"]
    assert f"--port={arguments.get('port', 8765)}" in service["command"]


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"ip": "0.0.0.0"}, "name the URL the proxy and the user servers"),
        ({"url": "hub:8765"}, "must be http"),
    ],
    ids=["all-addresses-without-url", "url-without-scheme"],
)
def test_service_definition_without_a_reachable_url_raises(
    arguments: dict[str, str], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        service_definition(**arguments)  # type: ignore[arg-type]


def test_configure_hub_reads_the_deployment_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(IP_ENV, "0.0.0.0")
    monkeypatch.setenv(SERVICE_URL_ENV, "http://hub:8765")
    c = Config()
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    c.Spawner.environment = {"PATH": "/bin"}

    configure_hub(c, port=8765)

    (service,) = c.JupyterHub.services
    assert service["url"] == "http://hub:8765"
    assert "--ip=0.0.0.0" in service["command"]
    # Kernels in user pods use the same in-cluster address as the proxy.
    assert c.Spawner.environment == {
        "PATH": "/bin",
        "LIGHTBOX_PRESENTER_URL": "http://hub:8765/services/presenter/",
    }


def test_configure_hub_stays_on_loopback_by_default() -> None:
    c = Config()
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    c.Spawner.environment = {}

    configure_hub(c, port=8801)

    assert c.JupyterHub.services[0]["url"] == "http://127.0.0.1:8801"
    assert c.Spawner.environment["LIGHTBOX_PRESENTER_URL"] == (
        "http://127.0.0.1:8801/services/presenter/"
    )


def test_relay_ip_that_is_no_address_raises() -> None:
    with pytest.raises(TraitError, match="must be an IP address"):
        RelayApp(ip="hub.example.org")


@pytest.mark.parametrize(
    ("ip", "hub_api_url", "token", "refused"),
    [
        ("127.0.0.1", None, None, False),
        ("0.0.0.0", "http://hub:8081/hub/api", None, False),
        ("0.0.0.0", None, "shared-secret", False),
        ("0.0.0.0", None, None, True),
    ],
    ids=[
        "loopback-unchecked-ok",
        "all-addresses-hub-tokens-ok",
        "all-addresses-shared-token-ok",
        "all-addresses-unchecked-refused",
    ],
)
def test_relay_beyond_loopback_needs_callers_checked(
    ip: str, hub_api_url: str | None, token: str | None, refused: bool
) -> None:
    app = RelayApp(ip=ip)
    if refused:
        with pytest.raises(ValueError, match="without checking callers"):
            app.check_exposure(hub_api_url, token)
    else:
        app.check_exposure(hub_api_url, token)
