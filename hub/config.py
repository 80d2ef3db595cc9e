"""Lightbox's own hub settings: one traitlets Configurable, filled from the environment.

Every setting is ``c.LightboxHub.<name>`` in a JupyterHub configuration file; when a
file does not set it, the environment variable named in its help gives the default.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from traitlets import (
    Bool,
    Dict,
    Int,
    List,
    TraitError,
    Unicode,
    default,
    observe,
    validate,
)
from traitlets.config import Configurable

from lightbox_hub.launch import DEFAULT_CLOCK_SKEW_S
from lightbox_hub.roles import ADMIN_GROUP, JOB_ROLES

# The parts of the JupyterLab extension a user can be shown (the server extension's
# LightboxServerExtension.panels takes the same names).
PANELS = ("studies", "launcher", "app-view")
# Roles that do not read images get their lessons only; "*" is every other role.
DEFAULT_ROLE_PANELS: dict[str, list[str]] = {
    "security-admin": ["launcher"],
    "network-admin": ["launcher"],
    "*": list(PANELS),
}
_TRUE = {"1", "true", "yes", "on"}

_ORIGIN = re.compile(r"^(https?://[A-Za-z0-9.\-\[\]:*]+|'self'|'none')$")


def _env(name: str, fallback: str = "") -> str:
    return os.environ.get(name, fallback)


def _env_flag(name: str) -> bool:
    return _env(name).strip().lower() in _TRUE


def panels_of(role: str | None, role_panels: dict[str, Any] | None = None
              ) -> list[str]:
    """The panels ``role`` sees in ``role_panels`` (``c.LightboxHub.role_panels``).

    Without a table, the built-in default. A role neither listed nor covered by
    ``"*"`` sees every panel; no role sees none.
    """
    if role is None:
        return []
    table = DEFAULT_ROLE_PANELS if role_panels is None else role_panels
    return list(table.get(role, table.get("*", PANELS)))


class LightboxHub(Configurable):
    """Settings of the Lightbox hub that JupyterHub itself has no trait for."""

    state_dir = Unicode(
        help="""Folder for the hub database, cookie secret, encryption key, audit log
        and user homes; created if missing. Default: $LIGHTBOX_STATE_DIR, else
        .lightbox/hub. Example: c.LightboxHub.state_dir = "/var/lib/lightbox"
        """).tag(config=True)

    @default("state_dir")
    def _state_dir_default(self) -> str:
        return str(Path(_env("LIGHTBOX_STATE_DIR", ".lightbox/hub")).resolve())

    public_url = Unicode(
        help="""Address where users reach the hub, without a trailing slash; the OAuth
        redirect URI is derived from it. Default: $LIGHTBOX_PUBLIC_URL, else
        http://127.0.0.1:8000. Example: c.LightboxHub.public_url =
        "https://lightbox.example.org"
        """).tag(config=True)

    @default("public_url")
    def _public_url_default(self) -> str:
        return _env("LIGHTBOX_PUBLIC_URL", "http://127.0.0.1:8000")

    @validate("public_url")
    def _check_public_url(self, proposal: dict[str, Any]) -> str:
        url = str(proposal["value"]).rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise TraitError(f"public_url must be an http(s) address, got {url!r}")
        return url

    authenticator = Unicode(
        help="""How users sign in: "oidc" (OpenID Connect through oauthenticator's
        GenericOAuthenticator, the default) or "ldap" (LDAP / Active Directory through
        jupyterhub-ldapauthenticator; configure c.LDAPAuthenticator as its docs say).
        Default: $LIGHTBOX_AUTHENTICATOR, else "oidc".
        Example: c.LightboxHub.authenticator = "ldap"
        """).tag(config=True)

    @default("authenticator")
    def _authenticator_default(self) -> str:
        return _env("LIGHTBOX_AUTHENTICATOR", "oidc")

    @validate("authenticator")
    def _check_authenticator(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip().lower()
        if value not in {"oidc", "ldap"}:
            raise TraitError(f"authenticator must be 'oidc' or 'ldap', got {value!r}")
        return value

    oidc_issuer = Unicode(
        help="""Issuer URL of the OpenID Connect provider; its discovery document
        (/.well-known/openid-configuration) supplies the endpoints. Default:
        $LIGHTBOX_OIDC_ISSUER. Example for Keycloak: c.LightboxHub.oidc_issuer =
        "https://sso.example.org/realms/hospital"
        """).tag(config=True)

    @default("oidc_issuer")
    def _oidc_issuer_default(self) -> str:
        return _env("LIGHTBOX_OIDC_ISSUER")

    oidc_client_id = Unicode(
        help="""This hub's client id at the provider. Default: $LIGHTBOX_OIDC_CLIENT_ID,
        else "lightbox".
        """).tag(config=True)

    @default("oidc_client_id")
    def _oidc_client_id_default(self) -> str:
        return _env("LIGHTBOX_OIDC_CLIENT_ID", "lightbox")

    oidc_client_secret_env = Unicode(
        help="""Name of the environment variable that holds the client secret (the
        secret itself is never a setting). Default: $LIGHTBOX_OIDC_CLIENT_SECRET_ENV,
        else LIGHTBOX_OIDC_CLIENT_SECRET.
        """).tag(config=True)

    @default("oidc_client_secret_env")
    def _oidc_client_secret_env_default(self) -> str:
        return _env("LIGHTBOX_OIDC_CLIENT_SECRET_ENV", "LIGHTBOX_OIDC_CLIENT_SECRET")

    oidc_scopes = List(
        Unicode(),
        help="""Scopes asked for at sign-in. "offline_access" asks for a refresh
        token, which keeps the archives' access token fresh. Default: $LIGHTBOX_OIDC_
        SCOPES (space separated), else openid profile email offline_access.
        Entra ID also wants "api://<archive app>/.default" for archive tokens.
        """).tag(config=True)

    @default("oidc_scopes")
    def _oidc_scopes_default(self) -> list[str]:
        return _env("LIGHTBOX_OIDC_SCOPES", "openid profile email offline_access").split()

    @validate("oidc_scopes")
    def _check_scopes(self, proposal: dict[str, Any]) -> list[str]:
        scopes = [str(s) for s in proposal["value"]]
        if "openid" not in scopes:
            raise TraitError(f"oidc_scopes must include 'openid', got {scopes}")
        return scopes

    username_claim = Unicode(
        help="""Claim that names the user. Default: $LIGHTBOX_OIDC_USERNAME_CLAIM,
        else preferred_username (Entra ID: "preferred_username" or "upn").
        """).tag(config=True)

    @default("username_claim")
    def _username_claim_default(self) -> str:
        return _env("LIGHTBOX_OIDC_USERNAME_CLAIM", "preferred_username")

    groups_claim = Unicode(
        help="""Claim that lists the user's groups; they become JupyterHub groups at
        every sign-in. Default: $LIGHTBOX_OIDC_GROUPS_CLAIM, else "groups" (Okta and
        Keycloak need a groups mapper, Entra ID sends object ids unless the app
        registration emits group names).
        """).tag(config=True)

    @default("groups_claim")
    def _groups_claim_default(self) -> str:
        return _env("LIGHTBOX_OIDC_GROUPS_CLAIM", "groups")

    access_token_refresh_margin_s = Int(
        help="""Seconds before its expiry that the hub renews a user's access token
        (with the refresh token) when a kernel asks for it. Keep it at least as long as
        the longest archive request, and at most the provider's token lifetime.
        Default: $LIGHTBOX_TOKEN_REFRESH_MARGIN_S, else 60. Example:
        c.LightboxHub.access_token_refresh_margin_s = 120
        """).tag(config=True)

    @default("access_token_refresh_margin_s")
    def _refresh_margin_default(self) -> int:
        return int(_env("LIGHTBOX_TOKEN_REFRESH_MARGIN_S", "60"))

    @validate("access_token_refresh_margin_s")
    def _check_refresh_margin(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 0 <= value <= 3600:
            raise TraitError("access_token_refresh_margin_s must be 0..3600 seconds, "
                             f"got {value}")
        return value

    admin_group = Unicode(
        ADMIN_GROUP,
        help=f"""Group whose members are hub administrators. Default "{ADMIN_GROUP}".
        """).tag(config=True)

    allowed_groups = List(
        Unicode(),
        help="""Groups allowed to sign in at all. Default: every job role of
        hub/roles.py plus admin_group. Example: c.LightboxHub.allowed_groups =
        ["radiologist", "lightbox-admins"]
        """).tag(config=True)

    @default("allowed_groups")
    def _allowed_groups_default(self) -> list[str]:
        return [role.group for role in JOB_ROLES] + [self.admin_group]

    audit_log = Unicode(
        help="""Append-only JSON-lines audit log (sign-ins, sign-outs, launches, studies
        and series opened by UID, purges). Default: $LIGHTBOX_AUDIT_LOG, else
        <state_dir>/audit.jsonl. Example: c.LightboxHub.audit_log =
        "/var/log/lightbox/audit.jsonl"
        """).tag(config=True)

    @default("audit_log")
    def _audit_log_default(self) -> str:
        return _env("LIGHTBOX_AUDIT_LOG", str(Path(self.state_dir) / "audit.jsonl"))

    launch_secret_env = Unicode(
        help="""Name of the environment variable holding the HMAC-SHA256 secret shared
        with the EHR for signed launch links (at least 32 bytes). Unset or empty
        variable: HMAC links are refused. Default: LIGHTBOX_LAUNCH_SECRET.
        """).tag(config=True)

    @default("launch_secret_env")
    def _launch_secret_env_default(self) -> str:
        return "LIGHTBOX_LAUNCH_SECRET"

    launch_public_key_file = Unicode(
        help="""PEM file with the EHR's Ed25519 or RSA public key; links signed with
        the matching private key (alg=ed25519 / rs256) are accepted too. Default:
        $LIGHTBOX_LAUNCH_PUBLIC_KEY, else none.
        """).tag(config=True)

    @default("launch_public_key_file")
    def _launch_public_key_file_default(self) -> str:
        return _env("LIGHTBOX_LAUNCH_PUBLIC_KEY")

    launch_max_age_s = Int(
        help="""Longest lifetime, in seconds, that a launch link may claim (from its
        iat to its exp); links that claim more are refused. Default: 300, from
        $LIGHTBOX_LAUNCH_MAX_AGE_S.
        """).tag(config=True)

    @default("launch_max_age_s")
    def _launch_max_age_default(self) -> int:
        return int(_env("LIGHTBOX_LAUNCH_MAX_AGE_S", "300"))

    @validate("launch_max_age_s")
    def _check_max_age(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 10 <= value <= 3600:
            raise TraitError(f"launch_max_age_s must be 10..3600 seconds, got {value}")
        return value

    launch_clock_skew_s = Int(
        help="""Seconds by which the EHR's clock and the hub's may disagree: a launch
        link is still accepted this long after its expiry (exp), and already this
        long before its issue time (iat). The link's one-time nonce is remembered
        until exp plus this allowance, so a replay stays refused. So a link that
        says it lasts 300 s opens for up to 300 s plus this allowance. Set 0 when
        both clocks follow NTP; raise it only for an EHR whose clock you know
        drifts. Default: $LIGHTBOX_LAUNCH_CLOCK_SKEW_S, else 30 (0..300). Example:
        c.LightboxHub.launch_clock_skew_s = 5
        """).tag(config=True)

    @default("launch_clock_skew_s")
    def _launch_clock_skew_default(self) -> int:
        return int(_env("LIGHTBOX_LAUNCH_CLOCK_SKEW_S", str(DEFAULT_CLOCK_SKEW_S)))

    @validate("launch_clock_skew_s")
    def _check_clock_skew(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 0 <= value <= 300:
            raise TraitError(f"launch_clock_skew_s must be 0..300 seconds, got {value}")
        return value

    launch_allow_plain_get = Bool(
        help="""Accept launch links whose patient context is not encrypted when they
        come as a plain link (GET). Off by default: such a link carries the Patient
        ID and accession number in its address, which browser history and every
        proxy or ingress access log keep, so the hub answers it with a 403 page
        that asks for an encrypted context (enc=a256gcm) or a form POST. Turn on
        only for an EHR that can do neither, and only while it is being fixed.
        Default: $LIGHTBOX_LAUNCH_ALLOW_PLAIN_GET ("1" or "true"), else False.
        Example: c.LightboxHub.launch_allow_plain_get = False
        """).tag(config=True)

    @default("launch_allow_plain_get")
    def _launch_allow_plain_get_default(self) -> bool:
        return _env_flag("LIGHTBOX_LAUNCH_ALLOW_PLAIN_GET")

    @observe("launch_allow_plain_get")
    def _warn_plain_get(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.log.warning("launch_allow_plain_get is on: unencrypted patient "
                             "context in launch URLs reaches browser history and "
                             "proxy access logs")

    allow_unisolated_spawner = Bool(
        help="""Let the hub listen on a network address (LIGHTBOX_HUB_IP other than
        loopback) while user servers run with the default local spawner
        (lightbox_hub.spawner.LightboxLocalSpawner). That spawner runs every user's
        server as the hub's own system account: a user's code can read the hub's
        state folder (encryption key, cookie secret, database), other users' homes,
        the full archives file and the audit log. Off by default, so such a hub
        refuses to start; use SystemdSpawner or KubeSpawner instead (README,
        "Spawner and limits"). Turn on only for a training room whose machine holds
        nothing else. Default: $LIGHTBOX_ALLOW_UNISOLATED_SPAWNER ("1" or "true"),
        else False. Example: c.LightboxHub.allow_unisolated_spawner = True
        """).tag(config=True)

    @default("allow_unisolated_spawner")
    def _allow_unisolated_spawner_default(self) -> bool:
        return _env_flag("LIGHTBOX_ALLOW_UNISOLATED_SPAWNER")

    frame_ancestors = List(
        Unicode(),
        help="""Origins allowed to embed Lightbox in a frame (the EHR), for the
        Content-Security-Policy frame-ancestors directive. Default: $LIGHTBOX_FRAME_
        ANCESTORS (space separated), else 'self'. Example:
        c.LightboxHub.frame_ancestors = ["'self'", "https://ehr.example.org"]
        """).tag(config=True)

    @default("frame_ancestors")
    def _frame_ancestors_default(self) -> list[str]:
        return _env("LIGHTBOX_FRAME_ANCESTORS", "'self'").split()

    @validate("frame_ancestors")
    def _check_frame_ancestors(self, proposal: dict[str, Any]) -> list[str]:
        values = [str(v) for v in proposal["value"]]
        for value in values:
            if not _ORIGIN.match(value) or ";" in value:
                raise TraitError(f"frame_ancestors entries must be origins such as "
                                 f"https://ehr.example.org or 'self', got {value!r}")
        return values

    @observe("frame_ancestors")
    def _warn_wildcard(self, change: dict[str, Any]) -> None:
        if any("*" in value for value in change["new"]):
            self.log.warning("frame_ancestors contains a wildcard: any matching site "
                             "may embed Lightbox")

    idle_timeout_s = Int(
        help="""Seconds without activity after which jupyterhub-idle-culler stops a
        user's server. Default: $LIGHTBOX_IDLE_TIMEOUT_S, else 3600.
        """).tag(config=True)

    @default("idle_timeout_s")
    def _idle_timeout_default(self) -> int:
        return int(_env("LIGHTBOX_IDLE_TIMEOUT_S", "3600"))

    cull_every_s = Int(
        help="""Seconds between two checks of the idle culler. Default:
        $LIGHTBOX_CULL_EVERY_S, else min(300, idle_timeout_s / 2).
        """).tag(config=True)

    @default("cull_every_s")
    def _cull_every_default(self) -> int:
        return int(_env("LIGHTBOX_CULL_EVERY_S", str(max(1, min(300,
                                                                 self.idle_timeout_s // 2)))))

    @validate("idle_timeout_s", "cull_every_s")
    def _check_positive(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1 s, got {value}")
        return value

    archives_file = Unicode(
        help="""The archives file of the whole hospital (viewerlib format). Each kernel
        gets a copy filtered to its role's archives (role_archives). Default:
        $LIGHTBOX_ARCHIVES, else ~/.config/lightbox/archives.toml.
        """).tag(config=True)

    @default("archives_file")
    def _archives_file_default(self) -> str:
        return _env("LIGHTBOX_ARCHIVES", str(Path("~/.config/lightbox/archives.toml")
                                            .expanduser()))

    role_archives = Dict(
        value_trait=List(Unicode()),
        help="""Which archives (by name) each role may open; "*" as a role is the
        fallback for roles not listed, "*" as an archive means all. A launch link for
        a study outside these is refused. Default: $LIGHTBOX_ROLE_ARCHIVES (JSON),
        else every role sees every archive. Example: c.LightboxHub.role_archives =
        {"researcher": ["Teaching archive"], "*": ["*"]}
        """).tag(config=True)

    @default("role_archives")
    def _role_archives_default(self) -> dict[str, list[str]]:
        raw = _env("LIGHTBOX_ROLE_ARCHIVES")
        return json.loads(raw) if raw else {"*": ["*"]}

    @validate("role_archives")
    def _check_role_archives(self, proposal: dict[str, Any]) -> dict[str, list[str]]:
        value = {str(k): [str(a) for a in v] for k, v in proposal["value"].items()}
        known = {role.group for role in JOB_ROLES} | {"*"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise TraitError(f"role_archives names unknown roles {unknown}; roles are "
                             f"{sorted(known)}")
        return value

    role_panels = Dict(
        help="""Which parts of the JupyterLab extension each role sees: any of
        "studies" (the Studies side panel), "launcher" (cards for the role's
        lessons) and "app-view" (viewer notebooks open with their code hidden).
        "*" as a role is the fallback for roles not listed; a user without a job
        role sees none. The hub passes the list to the user's server
        (LIGHTBOX_PANELS, read by c.LightboxServerExtension.panels). Default:
        $LIGHTBOX_ROLE_PANELS (JSON), else security-admin and network-admin get
        ["launcher"] and every other role all three. Example:
        c.LightboxHub.role_panels = {"researcher": ["studies", "launcher"],
        "*": ["studies", "launcher", "app-view"]}
        """).tag(config=True)

    @default("role_panels")
    def _role_panels_default(self) -> dict[str, list[str]]:
        raw = _env("LIGHTBOX_ROLE_PANELS")
        if not raw:
            return {role: list(panels) for role, panels in DEFAULT_ROLE_PANELS.items()}
        try:
            return json.loads(raw)
        except ValueError as err:
            raise TraitError(f"LIGHTBOX_ROLE_PANELS is not JSON ({err}); write e.g. "
                             '{"researcher": ["launcher"]}') from err

    @validate("role_panels")
    def _check_role_panels(self, proposal: dict[str, Any]) -> dict[str, list[str]]:
        raw = proposal["value"]
        if not isinstance(raw, dict):
            raise TraitError(f"role_panels must map roles to lists of panels, got "
                             f"{type(raw).__name__}")
        known_roles = {role.group for role in JOB_ROLES} | {"*"}
        unknown_roles = sorted(set(raw) - known_roles)
        if unknown_roles:
            raise TraitError(f"role_panels names unknown roles {unknown_roles}; "
                             f"roles are {sorted(known_roles)}")
        value: dict[str, list[str]] = {}
        for role, panels in raw.items():
            if isinstance(panels, str) or not isinstance(panels, list | tuple):
                raise TraitError(f"role_panels[{role!r}] must be a list of panels, "
                                 f"got {panels!r}")
            unknown = [str(p) for p in panels if p not in PANELS]
            if unknown:
                raise TraitError(f"role_panels[{role!r}] names unknown panels "
                                 f"{unknown}; panels are {list(PANELS)}")
            value[str(role)] = list(dict.fromkeys(str(p) for p in panels))
        return value

    def panels_for_role(self, role: str | None) -> list[str]:
        """The panels ``role`` sees (``role_panels``); none for no role."""
        return panels_of(role, self.role_panels)

    def archives_for_role(self, role: str | None) -> list[str]:
        """Archive names ``role`` may open (``["*"]`` means all); none for no role."""
        if role is None:
            return []
        return list(self.role_archives.get(role, self.role_archives.get("*", [])))

    def launch_secret(self) -> bytes | None:
        """The HMAC secret from the environment, or ``None`` when not configured."""
        value = os.environ.get(self.launch_secret_env, "")
        return value.encode() if value else None

    def client_secret(self) -> str:
        """The OIDC client secret from the environment variable ``oidc_client_secret_env``."""
        return os.environ.get(self.oidc_client_secret_env, "")
