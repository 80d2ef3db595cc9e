"""Hub pages and API endpoints of Lightbox, mounted with ``c.JupyterHub.extra_handlers``.

``/hub/lightbox/launch``            a signed EHR launch (link or posted form): verify,
                                    then open the study
``/hub/lightbox/launch/resume/<id>`` the same launch, after the sign-on round trip
``/hub/api/lightbox/audit``         kernels report studies opened and purges
``/hub/api/lightbox/access-token``  a kernel fetches its user's fresh access token
"""
from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any
from urllib.parse import quote

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from lightbox_hub.launch import LaunchContext, LaunchRefused
from lightbox_hub.roles import role_for_groups
from lightbox_hub.services import LightboxServices
from lightbox_hub.spawner import note_kernel_report

# Where the server extension keeps launch notebooks (its launch_folder); the stop
# hooks delete the folder.
LAUNCH_FOLDER = "ehr-launch"
_LAUNCH_TOKEN_NOTE = "lightbox launch"
_PENDING_TTL_S = 300
_KERNEL_EVENTS = {"study-opened", "series-opened", "purge"}


def _services(handler: Any) -> LightboxServices:
    return handler.settings["lightbox"]


class _Refusal(web.HTTPError):
    """An HTTP error whose page text (for the user) differs from its log text."""

    def __init__(self, refused: LaunchRefused) -> None:
        super().__init__(refused.status, "launch refused: %s", refused.detail)
        self.jupyterhub_message = refused.message
        self.reason = "Launch refused"


class LaunchHandler(BaseHandler):
    """Verify a signed launch (a link, or a form the EHR posts) and open its study."""

    _FIELDS = ("ctx", "sig", "alg", "enc")

    def check_xsrf_cookie(self) -> None:
        """The EHR's form comes from another site and carries no XSRF token.

        Its own signature, lifetime and one-time nonce stand in for one: a forged
        or replayed post is refused by the verifier.
        """

    async def get(self) -> None:
        arguments = {k: self.get_query_argument(k, "") for k in self._FIELDS}
        await self._launch(arguments, "GET")

    async def post(self) -> None:
        arguments = {k: self.get_body_argument(k, "") for k in self._FIELDS}
        await self._launch(arguments, "POST")

    async def _launch(self, arguments: dict[str, str], method: str) -> None:
        services = _services(self)
        user = self.current_user
        try:
            # Checked, not used up: the link is spent only when its study is
            # opened (open_launch), not by a sign-in that never finishes or a user
            # who may not open it.
            context = services.verifier.check(arguments, method)
        except LaunchRefused as refused:
            services.audit.record("launch-refused", user.name if user else None,
                                  self.request.remote_ip, reason=refused.reason)
            raise _Refusal(refused) from None
        # After a POST the browser must GET the next page (RFC 9110 15.4.4).
        status = 303 if method == "POST" else 302
        if user is None:
            # Park the verified context here; only an opaque id goes through the
            # sign-on round trip, so the provider never sees the patient context.
            pending = services.park(context)
            resume = f"{self.hub.base_url}lightbox/launch/resume/{pending}"
            login = self.authenticator.login_url(self.hub.base_url)
            self.redirect(f"{login}?next={quote(resume, safe='')}", status=status)
            return
        await open_launch(self, user, context, status)


class LaunchResumeHandler(BaseHandler):
    """Finish a launch that waited for the user to sign in."""

    @web.authenticated
    async def get(self, pending: str) -> None:
        context = _services(self).unpark(pending)
        if context is None:
            raise _Refusal(LaunchRefused(
                403, "resume-expired", "This launch waited too long for the sign-in "
                "or was already opened. Open the study again from the EHR."))
        await open_launch(self, self.current_user, context)


async def open_launch(handler: BaseHandler, user: Any, context: LaunchContext,
                      status: int = 302) -> None:
    """Check the user's role may see the study, then show it in their server.

    ``status`` is the redirect's: 303 answers a POST. The link's one-time nonce
    is used up only once the study is found in an archive the user's role may
    open, as the launch is carried out: a user refused for the role or the study
    leaves the link to the clinician it was made for. A launch that then fails
    for the hub's own sake (the server not starting or not answering) gives the
    nonce back, so the same link works again until it expires.
    """
    services = _services(handler)
    ip = handler.request.remote_ip
    role = role_for_groups([group.name for group in user.groups])
    try:
        study_instance_uid, archive = await asyncio.get_running_loop().run_in_executor(
            None, services.resolve_study, role.group if role else None, context)
    except LaunchRefused as refused:
        services.audit.record("launch", user.name, ip, outcome="refused",
                              reason=refused.reason)
        raise _Refusal(refused) from None
    try:
        services.verifier.use(context)
    except LaunchRefused as refused:
        # Opened meanwhile (another tab, another user, a second resume).
        services.audit.record("launch-refused", user.name, ip, reason=refused.reason)
        raise _Refusal(refused) from None
    try:
        await _open_launch(handler, user, study_instance_uid, archive, status)
    except LaunchRefused as refused:
        if not refused.link_spent:
            services.verifier.release(context)
        raise _Refusal(refused) from None
    except Exception:
        # Unexpected, so not the link's fault either.
        services.verifier.release(context)
        raise


async def _open_launch(handler: BaseHandler, user: Any, study_instance_uid: str,
                       archive: str, status: int) -> None:
    services = _services(handler)
    ip = handler.request.remote_ip
    try:
        await _ready_server(handler, user)
        # Only the UID goes to the server, in a request body: not in its start
        # options (they would come back at the next start) and not in any URL or
        # log line.
        path = await _open_in_server(user, study_instance_uid)
    except LaunchRefused as refused:
        services.audit.record("launch", user.name, ip, outcome="failed",
                              reason=refused.reason,
                              study_instance_uid=study_instance_uid, archive=archive)
        raise
    services.audit.record("launch", user.name, ip, outcome="opened",
                          study_instance_uid=study_instance_uid, archive=archive)
    handler.redirect(f"{user.url}lab/tree/{quote(path)}", status=status)


async def _ready_server(handler: BaseHandler, user: Any) -> None:
    """Start the user's server if it is stopped, and wait until it is ready.

    Raises
    ------
    LaunchRefused
        503 ``server-not-started`` if it fails to start or is not ready within
        the spawner's ``start_timeout``.
    """
    spawner = user.spawner
    if spawner.ready:
        return
    not_started = LaunchRefused(503, "server-not-started", "Your Lightbox server "
                                "did not start. Open the link again in a few "
                                "minutes; if it fails again, ask the Lightbox "
                                "administrators.")
    try:
        if not spawner.active:
            await handler.spawn_single_user(user)
        started = time.monotonic()
        while not spawner.ready:
            if not spawner.active or time.monotonic() - started > spawner.start_timeout:
                not_started.detail = f"server of {user.name} did not start"
                raise not_started
            await asyncio.sleep(0.5)
    except LaunchRefused:
        raise
    except Exception as err:
        # Whatever the spawner raised (its own error, a timeout, an HTTP error):
        # the hub log gets its kind, the user the page above.
        not_started.detail = (f"server of {user.name} did not start "
                              f"({type(err).__name__})")
        raise not_started from err


async def _open_in_server(user: Any, study_instance_uid: str) -> str:
    """Ask the user's running server to open the study; the notebook's path.

    Calls ``POST /lightbox/api/open`` of the server extension
    (:mod:`lightbox_extensions.server`), which makes the viewer from its template,
    in the app view when the role has it, and replaces the previous launch without
    a restart. The token may only reach this user's server and expires in two
    minutes, so this works with any spawner.

    Raises
    ------
    LaunchRefused
        With status 502 if the server has no Lightbox extension, refuses, or
        answers without a path; its message is the page the user reads.
    """
    token = user.new_api_token(scopes=[f"access:servers!user={user.name}"],
                               expires_in=120, note=_LAUNCH_TOKEN_NOTE)
    url = user.spawner.server.url.rstrip("/") + "/lightbox/api/open"
    request = HTTPRequest(
        url, method="POST", request_timeout=30,
        headers={"Authorization": f"token {token}",
                 "Content-Type": "application/json"},
        body=json.dumps({"study_instance_uid": study_instance_uid}))
    try:
        reply = await AsyncHTTPClient().fetch(request)
        return str(json.loads(reply.body)["path"])
    except HTTPClientError as err:
        raise _server_refusal(err) from None
    except OSError as err:
        raise LaunchRefused(502, "server-unreachable", "Your Lightbox server does "
                            "not answer. Open the link again in a minute; if it "
                            "fails again, ask the Lightbox administrators.",
                            f"user server unreachable: {err}") from err
    except (ValueError, KeyError, TypeError) as err:
        raise LaunchRefused(502, "server-refused", "Your Lightbox server gave no "
                            "viewer for the study. Open the link again; if it fails "
                            "again, ask the Lightbox administrators.",
                            "user server answered the launch without a path") from err
    finally:
        for orm_token in list(user.orm_user.api_tokens):
            if orm_token.note == _LAUNCH_TOKEN_NOTE:
                user.db.delete(orm_token)
        user.db.commit()


def _server_refusal(err: HTTPClientError) -> LaunchRefused:
    """The page for a user server that did not open the study (no patient data)."""
    if err.code == 404:
        return LaunchRefused(502, "no-server-extension", "Your Lightbox server "
                             "cannot open studies: its Lightbox extension is not "
                             "enabled. Ask the Lightbox administrators.",
                             "user server has no /lightbox/api/open (HTTP 404)")
    try:
        message = json.loads(err.response.body)["message"] if err.response else ""
    except (ValueError, KeyError, TypeError):
        message = ""
    return LaunchRefused(502, "server-refused", "Your Lightbox server could not "
                         f"open the study{': ' + message if message else ''}. Open "
                         "the link again; if it fails again, ask the Lightbox "
                         "administrators.", f"user server answered HTTP {err.code}")


class _KernelAPIHandler(APIHandler):
    """Endpoints for kernels: only the user's own server token is accepted."""

    def kernel_user(self) -> Any:
        user = self.current_user
        token = self.get_auth_token() or ""
        spawner = getattr(user, "spawner", None) if user is not None else None
        own = getattr(spawner, "api_token", None) or ""
        if not (own and token and hmac.compare_digest(token, own)):
            raise web.HTTPError(403, "only a user's own server may call this")
        return user


class AuditReportHandler(_KernelAPIHandler):
    """``POST {"event": ..., "fields": {...}}`` from a kernel into the audit log."""

    async def post(self) -> None:
        user = self.kernel_user()
        try:
            body = json.loads(self.request.body or b"{}")
            event, fields = body["event"], dict(body.get("fields", {}))
        except (ValueError, KeyError, TypeError) as err:
            raise web.HTTPError(400, "body must be {event, fields}") from err
        if event not in _KERNEL_EVENTS:
            raise web.HTTPError(400, "kernels may report only %s", sorted(_KERNEL_EVENTS))
        try:
            _services(self).audit.record(event, user.name, self.request.remote_ip,
                                         **fields)
        except ValueError as err:
            raise web.HTTPError(400, "audit record refused: %s", err) from err
        note_kernel_report(user.spawner, event, fields)
        self.set_status(204)


class AccessTokenHandler(_KernelAPIHandler):
    """Give a kernel its user's OAuth access token, refreshed when near expiry."""

    async def get(self) -> None:
        user = self.kernel_user()
        refreshed = await self.refresh_auth(user, force=True)
        if refreshed is None:
            raise web.HTTPError(401, "sign-on expired for %s; sign in again", user.name)
        auth_state = await user.get_auth_state() or {}
        token = usable_access_token(auth_state, user.name, time.time())
        self.set_header("Cache-Control", "no-store")
        self.finish({"access_token": token,
                     "expires_at": auth_state.get("lightbox_expires_at")})


def usable_access_token(auth_state: dict[str, Any], user_name: str, now: float) -> str:
    """The access token of ``auth_state`` if it is still valid at ``now``.

    Raises
    ------
    tornado.web.HTTPError
        404 when there is no token (auth state off, or LDAP sign-on); 401 when the
        token has expired, which happens when the identity provider refused to
        renew it: an archive would refuse it too, so the kernel is told to have
        the user sign in again rather than handed a dead token.
    """
    token = auth_state.get("access_token")
    if not token:
        raise web.HTTPError(404, "no access token for %s (auth state off?)", user_name)
    expires_at = auth_state.get("lightbox_expires_at")
    if expires_at is not None and float(expires_at) <= now:
        raise web.HTTPError(401, "the access token of %s expired and could not be "
                            "renewed; sign in to Lightbox again", user_name)
    return token


def extra_handlers() -> list[tuple[str, type]]:
    """The handlers for ``c.JupyterHub.extra_handlers`` (paths under /hub/)."""
    return [
        (r"lightbox/launch", LaunchHandler),
        (r"lightbox/launch/resume/([A-Za-z0-9_\-]+)", LaunchResumeHandler),
        (r"api/lightbox/audit", AuditReportHandler),
        (r"api/lightbox/access-token", AccessTokenHandler),
    ]


__all__ = ["LAUNCH_FOLDER", "_PENDING_TTL_S", "extra_handlers"]
