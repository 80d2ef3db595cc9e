"""The default spawner shares the hub's account: so it may not face a network.

Each case loads ``hub/jupyterhub_config.py`` as ``jupyterhub`` does first, before it
binds anything, so a refused configuration never listens; nothing here opens a port
beyond loopback.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from lightbox_hub.spawner import strip_hub_secrets

CONFIG = Path(__file__).resolve().parents[2] / "hub" / "jupyterhub_config.py"
_PROBE = f"""
import json
from jupyterhub.app import JupyterHub
app = JupyterHub()
app.load_config_file({str(CONFIG)!r})
print(json.dumps({{"ip": app.config.JupyterHub.ip,
                   "spawner": str(app.config.JupyterHub.spawner_class)}}))
"""


def _load(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBOX_")
                   and k != "JUPYTERHUB_CRYPT_KEY"}
    # LDAP sign-on: the configuration loads without an identity provider to ask.
    environment.update(LIGHTBOX_STATE_DIR=str(tmp_path / "state"),
                       LIGHTBOX_AUTHENTICATOR="ldap", **env)
    return subprocess.run([sys.executable, "-c", _PROBE], capture_output=True,
                          text=True, env=environment, timeout=120, cwd=tmp_path)


# (case, environment, site file, refused)
CASES = [
    ("loopback, default spawner", {"LIGHTBOX_HUB_IP": "127.0.0.1"}, "", False),
    ("ipv6 loopback, default spawner", {"LIGHTBOX_HUB_IP": "::1"}, "", False),
    ("localhost, default spawner", {"LIGHTBOX_HUB_IP": "localhost"}, "", False),
    ("every interface, default spawner", {"LIGHTBOX_HUB_IP": "0.0.0.0"}, "", True),
    ("empty address means every interface", {"LIGHTBOX_HUB_IP": ""}, "", True),
    ("a LAN address, default spawner", {"LIGHTBOX_HUB_IP": "192.0.2.10"}, "", True),
    ("JupyterHub's simple spawner by its short name",
     {"LIGHTBOX_HUB_IP": "0.0.0.0", "LIGHTBOX_SPAWNER": "simple"}, "", True),
    ("every interface, override in the environment",
     {"LIGHTBOX_HUB_IP": "0.0.0.0", "LIGHTBOX_ALLOW_UNISOLATED_SPAWNER": "1"}, "",
     False),
    ("every interface, override in the site file", {"LIGHTBOX_HUB_IP": "0.0.0.0"},
     "c.LightboxHub.allow_unisolated_spawner = True\n", False),
    ("every interface, KubeSpawner",
     {"LIGHTBOX_HUB_IP": "0.0.0.0", "LIGHTBOX_SPAWNER": "kubespawner.KubeSpawner"},
     "", False),
    ("every interface, system users (LocalProcessSpawner) in the site file",
     {"LIGHTBOX_HUB_IP": "0.0.0.0"},
     'c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"\n',
     False),
]


@pytest.mark.parametrize(("env", "site", "refused"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_hub_start_policy_for_the_shared_account_spawner(
        tmp_path: Path, env: dict[str, str], site: str, refused: bool) -> None:
    if site:
        (tmp_path / "site.py").write_text(site)
        env = dict(env, LIGHTBOX_HUB_CONFIG=str(tmp_path / "site.py"))

    result = _load(tmp_path, **env)

    if not refused:
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads(result.stdout.strip().splitlines()[-1])["ip"] == env[
            "LIGHTBOX_HUB_IP"]
        return
    assert result.returncode != 0
    # Why, and what to do instead, in the error itself.
    message = result.stderr.strip().splitlines()[-1]
    assert "HubConfigurationError" in message
    for words in ("(LIGHTBOX_HUB_IP)", "runs every user's server as the hub's own "
                  "account", "encryption key", "SystemdSpawner", "KubeSpawner",
                  "LIGHTBOX_ALLOW_UNISOLATED_SPAWNER=1",
                  "c.LightboxHub.allow_unisolated_spawner"):
        assert words in message, message


def _spawner(environment: dict[str, object], env_keep: list[str]) -> SimpleNamespace:
    return SimpleNamespace(user=SimpleNamespace(name="ana"), environment=environment,
                           env_keep=env_keep)


def test_strip_hub_secrets_drops_them_by_name_and_by_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTBOX_LAUNCH_SECRET", "launch-" + "s" * 32)
    monkeypatch.setenv("SITE_LAUNCH_SECRET", "site-" + "t" * 32)
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "c" * 64)
    spawner = _spawner(
        {"PATH": "/bin", "COPIED": "launch-" + "s" * 32, "LIGHTBOX_ROLE": "radiologist",
         "SITE_LAUNCH_SECRET": "x", "HOOK": lambda spawner: "computed"},
        ["PATH", "LANG", "JUPYTERHUB_CRYPT_KEY", "ALIAS_OF_CRYPT_KEY"])
    monkeypatch.setenv("ALIAS_OF_CRYPT_KEY", "c" * 64)

    removed = strip_hub_secrets(
        spawner, {"LIGHTBOX_LAUNCH_SECRET", "SITE_LAUNCH_SECRET",
                  "JUPYTERHUB_CRYPT_KEY"})

    assert removed == ["ALIAS_OF_CRYPT_KEY", "COPIED", "JUPYTERHUB_CRYPT_KEY",
                       "SITE_LAUNCH_SECRET"]
    assert set(spawner.environment) == {"PATH", "LIGHTBOX_ROLE", "HOOK"}
    assert spawner.env_keep == ["PATH", "LANG"]
