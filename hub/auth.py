"""Sign-on: the authenticators Lightbox configures, with audit and token refresh.

``LightboxOIDCAuthenticator`` is oauthenticator's GenericOAuthenticator; oauthenticator
refreshes an access token only after the provider has refused it, so
:func:`refresh_before_expiry` renews it with the refresh token ``margin`` seconds before
it expires. ``LightboxLDAPAuthenticator`` is jupyterhub-ldapauthenticator's, for LDAP
or Active Directory. Both write sign-in and sign-out to the audit log.
"""
from __future__ import annotations

import time
from typing import Any

from jupyterhub.handlers.login import LogoutHandler
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLogoutHandler
from tornado import web

from lightbox_hub.roles import role_for_groups

REFRESH_MARGIN_S = 60


def _audit(handler: Any) -> Any:
    return handler.settings["lightbox"].audit


def audited_logout(base: type) -> type:
    """A subclass of logout handler ``base`` that records the sign-out first."""

    class AuditedLogoutHandler(base):  # type: ignore[misc, valid-type]
        async def default_handle_logout(self) -> None:
            user = self.current_user
            if user is not None:
                _audit(self).record("sign-out", user.name, self.request.remote_ip)
            await super().default_handle_logout()

    AuditedLogoutHandler.__name__ = f"Audited{base.__name__}"
    return AuditedLogoutHandler


def record_sign_in(authenticator: Any, handler: Any, auth_model: dict[str, Any]
                   ) -> dict[str, Any]:
    """``post_auth_hook``: write the sign-in (groups and role, no personal data)."""
    if auth_model is None:
        return auth_model
    groups = sorted(str(g) for g in auth_model.get("groups") or [])
    role = role_for_groups(groups)
    _audit(handler).record("sign-in", auth_model["name"], handler.request.remote_ip,
                           groups=groups, role=role.group if role else "none")
    return auth_model


def stamp_expiry(authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
    """``modify_auth_state_hook``: remember when the access token expires."""
    expires_in = (auth_state.get("token_response") or {}).get("expires_in")
    if expires_in:
        auth_state["lightbox_expires_at"] = time.time() + float(expires_in)
    return auth_state


async def refresh_before_expiry(authenticator: Any, user: Any,
                                auth_state: dict[str, Any] | None) -> Any:
    """``refresh_user_hook``: renew the access token shortly before it expires.

    Returns ``None`` (oauthenticator's own check follows) while the token has more
    than :data:`REFRESH_MARGIN_S` seconds left, a fresh auth model after a refresh,
    and ``False`` (sign in again) when the provider refuses the refresh token.
    """
    if not auth_state:
        return None
    expires_at = auth_state.get("lightbox_expires_at")
    refresh_token = auth_state.get("refresh_token")
    if not expires_at or not refresh_token:
        return None
    if float(expires_at) - time.time() > REFRESH_MARGIN_S:
        return None
    params = authenticator.build_refresh_token_request_params(refresh_token)
    try:
        token_info = await authenticator.get_token_info(None, params)
    except Exception as err:  # the provider said no: sign in again
        authenticator.log.info("refresh token for %s refused (%s); sign-in needed",
                               user.name, type(err).__name__)
        return False
    token_info.setdefault("refresh_token", refresh_token)
    authenticator.log.info("access token of %s renewed before expiry", user.name)
    return await authenticator._token_to_auth_model(token_info)


class LightboxOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator whose logout is audited and whose refusals say why."""

    logout_handler = audited_logout(OAuthLogoutHandler)

    async def check_allowed(self, username: str, auth_model: dict[str, Any]) -> bool:
        if await super().check_allowed(username, auth_model):
            return True
        # The hub's own page only says "not authorized"; a clinician needs the reason
        # and the way out. Group names are roles, not patient data.
        groups = sorted(auth_model.get("groups") or [])
        refusal = web.HTTPError(403, "no Lightbox job role")
        refusal.jupyterhub_message = (  # type: ignore[attr-defined]
            "You are signed in at the hospital, but your account is in no Lightbox job "
            f"role (your groups: {', '.join(groups) or 'none'}). Lightbox is open to "
            f"the groups {', '.join(sorted(self.allowed_groups))}. Ask your Lightbox "
            "administrator to add you to the group of your role, then sign in again.")
        raise refusal


def ldap_authenticator_class() -> type:
    """LDAPAuthenticator with audited logout (import deferred: it is optional).

    Raises
    ------
    ImportError
        If jupyterhub-ldapauthenticator is not installed.
    """
    try:
        from ldapauthenticator import LDAPAuthenticator
    except ImportError as err:
        raise ImportError("LightboxHub.authenticator = 'ldap' needs the package "
                          "jupyterhub-ldapauthenticator (pip install "
                          "'lightbox[hub]')") from err

    class LightboxLDAPAuthenticator(LDAPAuthenticator):  # type: ignore[misc]
        """LDAPAuthenticator whose logout is written to the audit log."""

        def get_handlers(self, app: Any) -> list[tuple[str, type]]:
            return [*super().get_handlers(app), ("/logout", audited_logout(LogoutHandler))]

    return LightboxLDAPAuthenticator
