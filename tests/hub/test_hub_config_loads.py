"""hub/jupyterhub_config.py loads, and every authenticator setting it makes is a trait."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightbox_hub.embedded.idp import EmbeddedIdentityProvider

CONFIG = Path(__file__).resolve().parents[2] / "hub" / "jupyterhub_config.py"
_PROBE = f"""
import json, sys
from jupyterhub.app import JupyterHub
app = JupyterHub()
app.load_config_file({str(CONFIG)!r})
cls = app.config.JupyterHub.authenticator_class
section = {{}}
for klass in cls.__mro__:  # settings made on a parent class apply as well
    if klass.__name__ in app.config:
        section.update(app.config[klass.__name__])
accepted = set(cls.class_trait_names(config=True))
authenticator = cls(config=app.config)
print(json.dumps({{"class": cls.__name__, "keys": sorted(section),
                   "unknown": sorted(set(section) - accepted),
                   "allowed_groups": sorted(
                       getattr(authenticator, "allowed_group_names", None)
                       or authenticator.allowed_groups),
                   "admin_group": getattr(authenticator, "admin_group_name", None),
                   "enable_auth_state": authenticator.enable_auth_state,
                   "refresh_pre_spawn": authenticator.refresh_pre_spawn,
                   "crypt_key": bool(__import__("os").environ.get("JUPYTERHUB_CRYPT_KEY")),
                   "handlers": [h[0] for h in app.config.JupyterHub.extra_handlers]}}))
"""


def _load(tmp_path: Path, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTBOX_")
                   and k != "JUPYTERHUB_CRYPT_KEY"}
    environment.update(LIGHTBOX_STATE_DIR=str(tmp_path / "state"), **env)
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True,
                            text=True, env=environment, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ldap_switch_loads_and_every_setting_is_accepted(tmp_path: Path) -> None:
    site = tmp_path / "site_config.py"
    site.write_text(
        'c.LDAPAuthenticator.server_address = "ldaps://ad.example.org"\n'
        'c.LDAPAuthenticator.lookup_dn = True\n'
        'c.LDAPAuthenticator.user_search_base = "ou=people,dc=example,dc=org"\n'
        'c.LDAPAuthenticator.user_attribute = "sAMAccountName"\n'
        'c.LDAPAuthenticator.lookup_dn_search_user = "cn=lightbox,dc=example,dc=org"\n'
        'c.LDAPAuthenticator.lookup_dn_search_password = "from-a-secret-store"\n'
        'c.LightboxLDAPAuthenticator.member_of_attribute = "memberOf"\n'
        'c.LightboxLDAPAuthenticator.group_search_base = "ou=groups,dc=example,dc=org"'
        '\n')
    loaded = _load(tmp_path, LIGHTBOX_AUTHENTICATOR="ldap",
                   LIGHTBOX_HUB_CONFIG=str(site))
    assert loaded["class"] == "LightboxLDAPAuthenticator"
    assert loaded["unknown"] == []
    assert {"server_address", "manage_groups", "allowed_group_names",
            "admin_group_name", "enable_auth_state", "post_auth_hook",
            "member_of_attribute", "group_search_base"} <= set(loaded["keys"])
    assert "radiologist" in loaded["allowed_groups"]
    assert loaded["admin_group"] == "lightbox-admins"
    assert (tmp_path / "state" / "jupyterhub_crypt_key").stat().st_mode & 0o077 == 0


@pytest.fixture
def identity_provider(tmp_path: Path):
    provider = EmbeddedIdentityProvider(tmp_path / "idp").start()
    yield provider
    provider.stop()


def test_oidc_config_loads_with_refresh_and_auth_state(tmp_path: Path,
                                                       identity_provider) -> None:
    loaded = _load(tmp_path, LIGHTBOX_OIDC_ISSUER=identity_provider.issuer,
                   LIGHTBOX_OIDC_CLIENT_SECRET="test-only")
    assert loaded["class"] == "LightboxOIDCAuthenticator"
    assert loaded["unknown"] == []
    assert loaded["enable_auth_state"] and loaded["refresh_pre_spawn"]
    assert loaded["crypt_key"]
    assert "lightbox/launch" in loaded["handlers"]
