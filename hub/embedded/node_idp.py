"""An identity provider with passwords and login sessions: npm ``oidc-provider``.

The single sign-on promise (a second sign-in while the provider's session lives asks
for nothing) cannot be shown with oidc-provider-mock, which keeps no session. This
runs the certified Node package ``oidc-provider`` (``hub/idp_node``) on 127.0.0.1 with
one user per job role, each with a random password made at start.
"""
from __future__ import annotations

import json
import secrets
import shutil
import urllib.request
from pathlib import Path

from lightbox_hub.embedded.idp import OUTSIDER, test_users
from lightbox_hub.embedded.ports import free_port
from lightbox_hub.embedded.process import EmbeddedServiceError, ManagedProcess

NODE_FOLDER = Path(__file__).resolve().parent.parent / "idp_node"
CLIENT_ID = "lightbox"


def node_idp_missing() -> str | None:
    """Say what is missing to run the Node provider, or ``None``."""
    if shutil.which("node") is None:
        return "Node.js is not installed (Debian package 'nodejs', version 20 or later)"
    if not (NODE_FOLDER / "node_modules" / "oidc-provider").is_dir():
        return (f"the npm package oidc-provider is not installed in {NODE_FOLDER}: "
                "run 'make setup' (or npm ci --prefix hub/idp_node)")
    return None


class EmbeddedNodeIdentityProvider:
    """``oidc-provider`` on 127.0.0.1 with password users for every job role.

    Parameters
    ----------
    state_directory : Path
        Its configuration and log.
    access_token_ttl_s : int
        Lifetime of access tokens in seconds; short values exercise the refresh.
    """

    def __init__(self, state_directory: Path, access_token_ttl_s: int = 300,
                 port: int | None = None) -> None:
        self.directory = Path(state_directory)
        self.port = port or free_port()
        self.access_token_ttl_s = access_token_ttl_s
        self.client_secret = secrets.token_urlsafe(24)
        self.passwords = {str(user["sub"]): secrets.token_urlsafe(12)
                          for user in test_users()}
        self.process: ManagedProcess | None = None
        self.redirect_uris: list[str] = []
        self.post_logout_redirect_uris: list[str] = []

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def register_hub(self, public_url: str) -> None:
        """Allow a hub at ``public_url`` as a redirect target (before :meth:`start`)."""
        self.redirect_uris.append(public_url.rstrip("/") + "/hub/oauth_callback")
        self.post_logout_redirect_uris.append(public_url.rstrip("/") + "/hub/login")

    def start(self, timeout: float = 30.0) -> EmbeddedNodeIdentityProvider:
        missing = node_idp_missing()
        if missing:
            raise EmbeddedServiceError(missing)
        self.directory.mkdir(parents=True, exist_ok=True)
        users = [dict(user, password=self.passwords[str(user["sub"])])
                 for user in test_users()]
        config = {
            "port": self.port, "issuer": self.issuer,
            "accessTokenTtl": self.access_token_ttl_s,
            "cookieKeys": [secrets.token_urlsafe(32)],
            "users": users,
            "clients": [{
                "client_id": CLIENT_ID, "client_secret": self.client_secret,
                "redirect_uris": self.redirect_uris,
                "post_logout_redirect_uris": self.post_logout_redirect_uris,
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            }],
        }
        config_file = self.directory / "provider.json"
        config_file.write_text(json.dumps(config))
        config_file.chmod(0o600)
        self.process = ManagedProcess(
            "identity provider (oidc-provider)",
            ["node", str(NODE_FOLDER / "provider.mjs"), str(config_file)],
            self.directory / "idp.log", cwd=NODE_FOLDER)
        self.process.start()

        def answers() -> bool:
            url = self.issuer + "/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200

        self.process.wait_until(answers, timeout, "discovery document answering")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()


__all__ = ["CLIENT_ID", "OUTSIDER", "EmbeddedNodeIdentityProvider", "node_idp_missing"]
