"""Sign-on: the authenticators Lightbox configures, with audit and token refresh.

``LightboxOIDCAuthenticator`` is oauthenticator's GenericOAuthenticator; oauthenticator
refreshes an access token only after the provider has refused it, so
:func:`refresh_before_expiry` renews it with the refresh token ``margin`` seconds before
it expires. ``LightboxLDAPAuthenticator`` is jupyterhub-ldapauthenticator's, for LDAP
or Active Directory, with the user's directory groups mapped to the job-role groups by
name as the OpenID Connect groups claim is. Both refuse a user in no allowed group with
a page that says why, and write sign-ins, refusals and sign-outs to the audit log.
"""
from __future__ import annotations

import html
import time
import warnings
from typing import Any
from urllib.parse import urlencode

from jupyterhub.handlers.login import LogoutHandler
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLogoutHandler
from tornado import web
from traitlets import Set, Unicode

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
    """``modify_auth_state_hook``: remember when the access token expires.

    oauthenticator calls this hook for a fresh token response and again whenever it
    rebuilds the auth state from the stored one (a refresh that kept the token). The
    response is stamped with the time it arrived the first time, so the expiry stays
    that of the token rather than moving forward at every check.
    """
    response = auth_state.get("token_response") or {}
    expires_in = response.get("expires_in")
    if expires_in:
        received_at = float(response.setdefault("lightbox_received_at", time.time()))
        auth_state["lightbox_expires_at"] = received_at + float(expires_in)
    return auth_state


def make_refresh_hook(margin_s: float = REFRESH_MARGIN_S) -> Any:
    """A ``refresh_user_hook`` that renews the token ``margin_s`` seconds early."""

    async def hook(authenticator: Any, user: Any, auth_state: dict[str, Any] | None
                   ) -> Any:
        return await refresh_before_expiry(authenticator, user, auth_state, margin_s)

    return hook


async def refresh_before_expiry(authenticator: Any, user: Any,
                                auth_state: dict[str, Any] | None,
                                margin_s: float = REFRESH_MARGIN_S) -> Any:
    """``refresh_user_hook``: renew the access token shortly before it expires.

    Returns ``None`` (oauthenticator's own check follows) while the token has more
    than ``margin_s`` seconds left, a fresh auth model after a refresh, and
    ``False`` (sign in again) when the provider refuses the refresh token.
    """
    if not auth_state:
        return None
    expires_at = auth_state.get("lightbox_expires_at")
    refresh_token = auth_state.get("refresh_token")
    if not expires_at or not refresh_token:
        return None
    if float(expires_at) - time.time() > margin_s:
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


def no_role_refusal(groups: list[str], allowed: set[str] | list[str]) -> web.HTTPError:
    """The 403 for a signed-in user in none of the allowed groups, saying the way out.

    The hub's own page only says "not authorized"; a clinician needs the reason and
    what to do. Group names are roles, not patient data.
    """
    refusal = web.HTTPError(403, "no Lightbox job role")
    refusal.lightbox_reason = "no-job-role"  # type: ignore[attr-defined]
    refusal.jupyterhub_message = (  # type: ignore[attr-defined]
        "You are signed in at the hospital, but your account is in no Lightbox job "
        f"role (your groups: {', '.join(sorted(groups)) or 'none'}). Lightbox is open "
        f"to the groups {', '.join(sorted(allowed))}. Ask your Lightbox administrator "
        "to add you to the group of your role, then sign in again.")
    return refusal


def with_sign_out_link(refusal: web.HTTPError, logout_url: str) -> web.HTTPError:
    """Give the page of ``refusal`` a link to the hub's sign-out at ``logout_url``.

    "Sign in again" needs a way out of the session that was refused: the hub's
    logout also ends the provider's session (:class:`OIDCLogoutHandler`).
    """
    message = getattr(refusal, "jupyterhub_message", "") or refusal.log_message or ""
    refusal.jupyterhub_html_message = (  # type: ignore[attr-defined]
        f'{html.escape(message)} <a href="{html.escape(logout_url, quote=True)}" '
        'class="lightbox-sign-out">Sign out</a>, then sign in again (or with '
        'another account).')
    return refusal


async def audited_sign_in(authenticate: Any, handler: Any, data: Any) -> Any:
    """Run ``authenticate(handler, data)``; write a refusal for want of a role.

    Only refusals of an identity the provider or directory confirmed are written:
    a failed password proves nothing about who typed the name. The page of a
    refusal for want of a role gets a sign-out link (:func:`with_sign_out_link`).
    """
    try:
        return await authenticate(handler, data)
    except web.HTTPError as err:
        reason = getattr(err, "lightbox_reason", None)
        user = getattr(err, "lightbox_user", None)
        if reason:
            _audit(handler).record("sign-in-refused", user, handler.request.remote_ip,
                                   reason=reason)
        if reason == "no-job-role":
            with_sign_out_link(err, handler.authenticator.logout_url(
                handler.hub.base_url))
        raise


class OIDCLogoutHandler(audited_logout(OAuthLogoutHandler)):  # type: ignore[misc]
    """Audited logout that ends the provider's session too (RP-initiated logout).

    The provider's end-session endpoint gets the ID token as ``id_token_hint``, so
    it knows whose session to end without asking the user to confirm.
    """

    async def default_handle_logout(self) -> None:
        user = self.current_user
        state = (await user.get_auth_state() or {}) if user is not None else {}
        self._id_token_hint = state.get("id_token")  # read before the user is gone
        await super().default_handle_logout()

    async def render_logout_page(self) -> None:
        url = self.authenticator.logout_redirect_url
        hint = getattr(self, "_id_token_hint", None)
        if url and hint:
            separator = "&" if "?" in url else "?"
            self.redirect(f"{url}{separator}{urlencode({'id_token_hint': hint})}")
            return
        await super().render_logout_page()


class LightboxOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator whose logout is audited and whose refusals say why."""

    logout_handler = OIDCLogoutHandler

    async def check_allowed(self, username: str, auth_model: dict[str, Any]) -> bool:
        if await super().check_allowed(username, auth_model):
            return True
        refusal = no_role_refusal(list(auth_model.get("groups") or []),
                                  self.allowed_groups)
        refusal.lightbox_user = username  # type: ignore[attr-defined]
        raise refusal

    async def get_authenticated_user(self, handler: Any, data: Any) -> Any:
        return await audited_sign_in(super().get_authenticated_user, handler, data)


def group_name_of(dn: str) -> str:
    """The name of an LDAP group: the value of the first part of its DN.

    >>> group_name_of("cn=radiologist,ou=groups,dc=example,dc=org")
    'radiologist'
    >>> group_name_of("CN=pacs-admin,OU=Lightbox,DC=hospital,DC=local")
    'pacs-admin'
    """
    _import_ldap3()
    from ldap3.utils.dn import parse_dn

    return str(parse_dn(dn, escape=False)[0][1])


def _import_ldap3() -> Any:
    with warnings.catch_warnings():
        # ldap3 2.9 still uses pyasn1 names that pyasn1 has deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        import ldap3
    return ldap3


_GROUP_DNS = "lightbox_group_dns"


def ldap_authenticator_class() -> type:
    """LDAPAuthenticator with job-role groups, clear refusals and audited logout.

    The import is deferred: jupyterhub-ldapauthenticator is optional.

    Raises
    ------
    ImportError
        If jupyterhub-ldapauthenticator is not installed.
    """
    try:
        ldap3 = _import_ldap3()
        from ldap3.utils.conv import escape_filter_chars
        from ldapauthenticator import LDAPAuthenticator
    except ImportError as err:
        raise ImportError("LightboxHub.authenticator = 'ldap' needs the package "
                          "jupyterhub-ldapauthenticator (pip install "
                          "'lightbox[hub]')") from err

    class LightboxLDAPAuthenticator(LDAPAuthenticator):  # type: ignore[misc]
        """LDAP / Active Directory sign-in whose groups become the job-role groups.

        After the user's bind, their groups are read the way the directory keeps
        them: the ``memberOf`` attribute of the user (Active Directory, OpenLDAP
        with the memberof overlay) and/or a search for groups that list the user
        under ``group_search_base``. Each group's name is the value of the first
        part of its DN (``cn=radiologist,ou=groups,...`` gives ``radiologist``);
        as with the OpenID Connect groups claim, the names are the role names of
        hub/roles.py and the admin group, and become JupyterHub groups at every
        sign-in.
        """

        member_of_attribute = Unicode(
            "memberOf",
            help="""Attribute of the user's entry that lists the DNs of their groups
            (Active Directory and OpenLDAP's memberof overlay: memberOf). Empty: do
            not read it. Example: c.LightboxLDAPAuthenticator.member_of_attribute =
            "isMemberOf"
            """).tag(config=True)

        group_search_base = Unicode(
            "",
            help="""Where to search for groups that list the user (group_search_filter
            says how; by default member, uniqueMember or memberUid), for directories
            without memberOf. Empty: no search. Example:
            c.LightboxLDAPAuthenticator.group_search_base =
            "ou=groups,dc=example,dc=org"
            """).tag(config=True)

        allowed_group_names = Set(
            Unicode(),
            help="""Names of the groups whose members may sign in (the job roles and
            the admin group; c.LightboxHub.allowed_groups fills it). A member of
            none of them gets a page that says why. Example:
            c.LightboxLDAPAuthenticator.allowed_group_names = {"radiologist"}
            """).tag(config=True, allow_config=True)

        admin_group_name = Unicode(
            "",
            help="""Name of the group whose members are hub administrators
            (c.LightboxHub.admin_group fills it).
            """).tag(config=True)

        def get_handlers(self, app: Any) -> list[tuple[str, type]]:
            logout = audited_logout(LogoutHandler)
            return [*super().get_handlers(app), ("/logout", logout)]

        def get_user_attributes(self, conn: Any, userdn: str) -> dict[str, Any]:
            # Called with the connection bound as the user: read the groups here.
            attributes = dict(super().get_user_attributes(conn, userdn))
            attributes[_GROUP_DNS] = self.group_dns(conn, userdn)
            return attributes

        def group_dns(self, conn: Any, userdn: str) -> list[str]:
            """The DNs of the user's groups, from memberOf and the group search."""
            found: set[str] = set()
            if self.member_of_attribute:
                conn.search(search_base=userdn, search_scope=ldap3.BASE,
                            search_filter="(objectClass=*)",
                            attributes=[self.member_of_attribute])
                for entry in conn.entries:
                    values = entry.entry_attributes_as_dict.get(
                        self.member_of_attribute, [])
                    found.update(str(value) for value in values)
            if self.group_search_base:
                uid = group_name_of(userdn)
                conn.search(search_base=self.group_search_base,
                            search_scope=ldap3.SUBTREE,
                            search_filter=self.group_search_filter.format(
                                userdn=escape_filter_chars(userdn),
                                uid=escape_filter_chars(uid)),
                            attributes=[])
                found.update(str(entry.entry_dn) for entry in conn.entries)
            return sorted(found)

        async def authenticate(self, handler: Any, data: dict[str, Any]) -> Any:
            model = await super().authenticate(handler, data)
            if not model:
                return model
            attributes = model["auth_state"]["user_attributes"]
            dns = attributes.pop(_GROUP_DNS, [])
            groups = sorted({group_name_of(dn) for dn in dns})
            model["groups"] = groups
            # JupyterHub sets the admin flag from the model at every sign-in.
            model["admin"] = bool(self.admin_group_name
                                  and self.admin_group_name in groups)
            return model

        async def check_allowed(self, username: str, auth_model: dict[str, Any]
                                ) -> bool:
            groups = list(auth_model.get("groups") or [])
            if self.allowed_group_names & set(groups):
                return True
            if await super().check_allowed(username, auth_model):
                return True
            refusal = no_role_refusal(groups, self.allowed_group_names)
            refusal.lightbox_user = username  # type: ignore[attr-defined]
            raise refusal

        async def get_authenticated_user(self, handler: Any, data: Any) -> Any:
            return await audited_sign_in(super().get_authenticated_user, handler, data)

    return LightboxLDAPAuthenticator
