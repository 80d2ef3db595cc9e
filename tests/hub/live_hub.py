"""A real hub for the hub tests: start, sign in over HTTP, run code in a user's kernel.

Everything listens on 127.0.0.1. The hub is ``hub/jupyterhub_config.py`` run by
:class:`~lightbox_hub.embedded.hub.EmbeddedHub`; the code sent to a kernel runs in a
kernel that the user's own server started, so it has the environment a notebook has.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import requests
import websocket

from lightbox_hub.embedded.hub import EmbeddedHub


def operator(hub: EmbeddedHub, path: str, method: str = "GET",
             body: Any = None) -> Any:
    """Call the hub's REST API (``/hub/api`` + ``path``) as the operator service."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        hub.url + "/hub/api" + path, method=method, data=data,
        headers={"Authorization": f"token {hub.operator_token}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        raw = reply.read()
    return json.loads(raw) if raw else None


def server_of(hub: EmbeddedHub, user: str) -> dict[str, Any] | None:
    """The user's default server as the API shows it, or ``None``."""
    try:
        return operator(hub, f"/users/{user}")["servers"].get("")
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    """Poll ``condition()`` until it returns something true; fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def wait_until_ready(hub: EmbeddedHub, user: str, timeout: float = 120) -> dict:
    hub.check_alive()
    return wait_for(lambda: (s := server_of(hub, user)) and s.get("ready") and s,
                    timeout, f"{user}'s server ready")


class _Form(HTMLParser):
    """The first ``<form>`` of a page: its action, method and named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self._inside = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done:
            self._inside = True
            self.action = values.get("action", "")
            self.method = values.get("method", "get").lower()
        elif tag == "input" and self._inside and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._inside:
            self._inside, self._done = False, True


def login_form(page: requests.Response) -> tuple[str, str, dict[str, str]]:
    """``(absolute action URL, method, fields)`` of the page's first form."""
    form = _Form()
    form.feed(page.text)
    assert form.action is not None, f"no form on {page.url}: {page.text[:300]}"
    return urljoin(page.url, form.action), form.method, form.fields


def sign_in_with_provider_mock(session: requests.Session, hub: EmbeddedHub,
                               subject: str) -> requests.Response:
    """Sign in at the hub through oidc-provider-mock's form, as a browser would.

    Returns the page the hub answers with at the end of the sign-in.
    """
    authorize = session.get(hub.url + "/hub/oauth_login", timeout=60)
    assert "/oauth2/authorize" in authorize.url, authorize.url
    return session.post(authorize.url, data={"sub": subject}, timeout=120)


class KernelOfUser:
    """A kernel started by the user's own server, driven over its websocket.

    Parameters
    ----------
    hub : EmbeddedHub
        The hub; its operator token may reach every user's server.
    user : str
        Whose server starts the kernel.
    """

    def __init__(self, hub: EmbeddedHub, user: str) -> None:
        self.base = f"{hub.url}/user/{user}/api"
        self.headers = {"Authorization": f"token {hub.operator_token}"}
        reply = requests.post(self.base + "/kernels", json={"name": "python3"},
                              headers=self.headers, timeout=60)
        reply.raise_for_status()
        self.kernel_id = reply.json()["id"]
        url = (self.base.replace("http", "ws", 1)
               + f"/kernels/{self.kernel_id}/channels")
        self.socket = websocket.create_connection(
            url, header=[f"{k}: {v}" for k, v in self.headers.items()], timeout=120)

    def run(self, code: str, timeout: float = 120) -> str:
        """Execute ``code``; return its stdout, or raise with the kernel's error."""
        msg_id = uuid.uuid4().hex
        self.socket.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request",
                       "username": "test", "session": uuid.uuid4().hex,
                       "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False}}))
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream" and content["name"] == "stdout":
                output.append(content["text"])
            elif kind == "error":
                raise AssertionError("the kernel raised "
                                     f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(output)
        raise AssertionError(f"the kernel did not finish within {timeout:.0f} s")

    def close(self) -> None:
        self.socket.close()
        requests.delete(f"{self.base}/kernels/{self.kernel_id}", headers=self.headers,
                        timeout=60)
