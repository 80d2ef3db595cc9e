"""The embedded identity provider: a real OpenID Connect server with one user per role.

It is the PyPI package oidc-provider-mock: authorization code flow with PKCE, signed ID
tokens, userinfo and end-session, on loopback. It asks for no password (the sign-in form
takes the user name), so it is for the demo and tests only.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import urllib.request
from pathlib import Path

from lightbox_hub.embedded.ports import free_port
from lightbox_hub.embedded.process import EmbeddedServiceError, ManagedProcess
from lightbox_hub.roles import ADMIN_GROUP, JOB_ROLES

logger = logging.getLogger(__name__)

# A user no role admits, to show what an outsider sees.
OUTSIDER = {"sub": "outsider", "preferred_username": "outsider",
            "name": "Test Outsider", "email": "outsider@example.org",
            "groups": ["billing"]}


def test_users() -> list[dict[str, object]]:
    """The sign-ins of the demo: one per job role, named after the role."""
    users: list[dict[str, object]] = []
    for role in JOB_ROLES:
        groups = [role.group] + ([ADMIN_GROUP] if role.group == "project-lead" else [])
        users.append({"sub": role.group, "preferred_username": role.group,
                      "name": f"Test {role.title}", "email": f"{role.group}@example.org",
                      "groups": groups})
    users.append(OUTSIDER)
    return users


class EmbeddedIdentityProvider:
    """oidc-provider-mock on 127.0.0.1 with :func:`test_users`.

    Parameters
    ----------
    state_directory : Path
        Its log.
    port : int, optional
        A free one when not given.
    token_max_age_s : int, optional
        Lifetime of access and ID tokens in seconds (the provider's default, one
        hour, when not given); short values exercise the hub's token refresh.
    """

    def __init__(self, state_directory: Path, port: int | None = None,
                 token_max_age_s: int | None = None) -> None:
        self.directory = Path(state_directory)
        self.port = port or free_port()
        self.token_max_age_s = token_max_age_s
        self.process: ManagedProcess | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedIdentityProvider:
        program = shutil.which("oidc-provider-mock",
                               path=os.path.dirname(sys.executable))
        if program is None:
            raise EmbeddedServiceError(
                "oidc-provider-mock is not installed in this environment: run 'make demo'"
                " (or pip install -e '.[hub]')")
        argv = [program, "--host", "127.0.0.1", "--port", str(self.port)]
        if self.token_max_age_s is not None:
            argv += ["--token-max-age", str(int(self.token_max_age_s))]
        for user in test_users():
            argv += ["--user-claims", json.dumps(user)]
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        self.process = ManagedProcess("identity provider", argv,
                                      self.directory / "idp.log", env=env)
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
