"""Hub pages and API endpoints of Lightbox, mounted with ``c.JupyterHub.extra_handlers``.

``/hub/lightbox/launch``            a signed EHR link: verify, then open the study
``/hub/lightbox/launch/resume/<id>`` the same launch, after the sign-on round trip
``/hub/api/lightbox/audit``         kernels report studies opened and purges
``/hub/api/lightbox/access-token``  a kernel fetches its user's fresh access token
"""
from __future__ import annotations

import asyncio
import hmac
import json
import secrets
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

LAUNCH_FOLDER = "ehr-launch"
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
    """Verify a signed launch link and open its study in the user's server."""

    async def get(self) -> None:
        services = _services(self)
        arguments = {k: self.get_argument(k, "") for k in ("ctx", "sig", "alg")}
        user = self.current_user
        try:
            context = services.verifier.verify(arguments)
        except LaunchRefused as refused:
            services.audit.record("launch-refused", user.name if user else None,
                                  self.request.remote_ip, reason=refused.reason)
            raise _Refusal(refused) from None
        if user is None:
            # Park the verified context here; only an opaque id goes through the
            # sign-on round trip, so the provider never sees the patient context.
            pending = services.park(context)
            resume = f"{self.hub.base_url}lightbox/launch/resume/{pending}"
            login = self.authenticator.login_url(self.hub.base_url)
            self.redirect(f"{login}?next={quote(resume, safe='')}")
            return
        await open_launch(self, user, context)


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


async def open_launch(handler: BaseHandler, user: Any, context: LaunchContext) -> None:
    """Check the user's role may see the study, then show it in their server."""
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

    spawner = user.spawner
    if not spawner.ready:
        if not spawner.active:
            await handler.spawn_single_user(user)
        started = time.monotonic()
        while not spawner.ready:
            if time.monotonic() - started > spawner.start_timeout:
                raise web.HTTPError(503, "server of %s did not start", user.name)
            await asyncio.sleep(0.5)
    path = await _write_launch_notebook(user, study_instance_uid)
    services.audit.record("launch", user.name, ip, outcome="opened",
                          study_instance_uid=study_instance_uid, archive=archive)
    handler.redirect(f"{user.url}lab/tree/{path}")


async def _write_launch_notebook(user: Any, study_instance_uid: str) -> str:
    """Replace the launch notebooks in the user's server with one for this study.

    Uses the server's contents API with a token that may only reach this user's
    server and expires in two minutes, so it works with any spawner.
    """
    token = user.new_api_token(scopes=[f"access:servers!user={user.name}"],
                               expires_in=120, note="lightbox launch")
    base = user.spawner.server.url.rstrip("/") + "/api/contents/" + LAUNCH_FOLDER
    client = AsyncHTTPClient()
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}

    async def call(url: str, method: str, body: dict[str, Any] | None = None) -> Any:
        request = HTTPRequest(url, method=method, headers=headers,
                              body=json.dumps(body) if body is not None else None,
                              request_timeout=30)
        reply = await client.fetch(request)
        return json.loads(reply.body) if reply.body else None

    try:
        try:
            folder = await call(base + "?content=1", "GET")
            for item in folder.get("content", []):
                await call(base + "/" + quote(item["name"]), "DELETE")
        except HTTPClientError as err:
            if err.code != 404:
                raise
            await call(base, "PUT", {"type": "directory"})
        name = f"study-{secrets.token_hex(4)}.ipynb"
        await call(f"{base}/{name}", "PUT", {"type": "notebook", "format": "json",
                                             "content": launch_notebook(
                                                 study_instance_uid)})
    finally:
        for orm_token in list(user.orm_user.api_tokens):
            if orm_token.note == "lightbox launch":
                user.db.delete(orm_token)
        user.db.commit()
    return f"{LAUNCH_FOLDER}/{name}"


def launch_notebook(study_instance_uid: str) -> dict[str, Any]:
    """A notebook that opens one study (by UID only: no name or patient ID in it)."""
    code = (
        "import viewerlib\n\n"
        f"STUDY_INSTANCE_UID = {study_instance_uid!r}\n"
        "# The kernel reports the study and series to the audit log (UIDs only).\n"
        "viewer = viewerlib.open(STUDY_INSTANCE_UID, source=viewerlib.connect())\n"
        "viewer")
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source":
             "# Study from the EHR\n\nRun the cell (Run > Run All Cells) to show the "
             "study the EHR asked for. Only archives your role may use are searched."},
            {"cell_type": "code", "metadata": {}, "execution_count": None,
             "outputs": [], "source": code},
        ],
        "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                    "display_name": "Python 3 (ipykernel)"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


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
        self.set_status(204)


class AccessTokenHandler(_KernelAPIHandler):
    """Give a kernel its user's OAuth access token, refreshed when near expiry."""

    async def get(self) -> None:
        user = self.kernel_user()
        refreshed = await self.refresh_auth(user, force=True)
        if refreshed is None:
            raise web.HTTPError(401, "sign-on expired for %s; sign in again", user.name)
        auth_state = await user.get_auth_state() or {}
        token = auth_state.get("access_token")
        if not token:
            raise web.HTTPError(404, "no access token for %s (auth state off?)",
                                user.name)
        self.set_header("Cache-Control", "no-store")
        self.finish({"access_token": token,
                     "expires_at": auth_state.get("lightbox_expires_at")})


def extra_handlers() -> list[tuple[str, type]]:
    """The handlers for ``c.JupyterHub.extra_handlers`` (paths under /hub/)."""
    return [
        (r"lightbox/launch", LaunchHandler),
        (r"lightbox/launch/resume/([A-Za-z0-9_\-]+)", LaunchResumeHandler),
        (r"api/lightbox/audit", AuditReportHandler),
        (r"api/lightbox/access-token", AccessTokenHandler),
    ]


__all__ = ["LAUNCH_FOLDER", "extra_handlers", "launch_notebook", "_PENDING_TTL_S"]
