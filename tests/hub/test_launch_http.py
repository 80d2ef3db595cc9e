"""Launches as the hub receives them: links (GET) and the EHR's form (POST).

A real hub with a shared launch secret and an EHR's Ed25519 public key. Every
refusal is a page that says why; the patient context reaches neither the hub's
log nor its audit log. A launch that fails for the hub's own sake (an archive down)
leaves the link usable; one that opened its study leaves it used.
"""
from __future__ import annotations

import json
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pydicom.data
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from live_hub import sign_in_with_provider_mock, wait_for, wait_until_ready

from lightbox_hub.audit import AuditLog
from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider
from lightbox_hub.launch import _b64decode, _b64encode, launch_url, sign_launch

EHR_KEY = ed25519.Ed25519PrivateKey.generate()
_CT_SMALL = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
CONTEXT = {"pid": str(_CT_SMALL.PatientID), "iss": "PYDICOM",
           "suid": str(_CT_SMALL.StudyInstanceUID)}
ELSEWHERE = {"pid": "LBX-0001", "iss": "LIGHTBOX-DEMO", "acc": "LBXACC01"}
# An empty folder: the only archive the researcher role sees.
_TEACHING = '[[archive]]\nname = "Teaching folder"\ntype = "folder"\npath = "{}"\n'


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHub]:
    root = tmp_path_factory.mktemp("launch-http")
    folder = root / "ct-small"
    folder.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    teaching = root / "teaching"
    teaching.mkdir()
    archives = root / "archives.toml"
    archives.write_text(f'[[archive]]\nname = "Test folder"\ntype = "folder"\n'
                        f'path = "{folder}"\n\n' + _TEACHING.format(teaching))
    public_key = root / "ehr.pem"
    public_key.write_bytes(EHR_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    idp = EmbeddedIdentityProvider(root / "idp").start()
    started = EmbeddedHub(root / "hub", idp.issuer, archives, extra_env={
        "LIGHTBOX_LAUNCH_PUBLIC_KEY": str(public_key),
        "LIGHTBOX_ROLE_ARCHIVES": json.dumps({"researcher": ["Teaching folder"],
                                              "*": ["Test folder"]})})
    try:
        yield started.start()
    finally:
        started.stop()
        idp.stop()


def _secret(hub: EmbeddedHub) -> bytes:
    return hub.launch_secret.encode()


def _flipped(params: dict[str, str], sign_again: bool) -> dict[str, str]:
    raw = bytearray(_b64decode(params["ctx"]))
    raw[20] ^= 0x01
    ctx = _b64encode(bytes(raw))
    if not sign_again:
        return dict(params, ctx=ctx)
    return dict(params, ctx=ctx, sig=_b64encode(EHR_KEY.sign(ctx.encode())))


# (case, parameters of the launch, how it comes, reason, what the page says)
CASES = [
    ("plain context in a link",
     lambda hub: sign_launch(ELSEWHERE, secret=_secret(hub), encrypt=False), "GET",
     "plain-context-in-url", "unencrypted in its address"),
    ("plain public-key link in a link",
     lambda hub: sign_launch(ELSEWHERE, private_key=EHR_KEY), "GET",
     "plain-context-in-url", "send the launch as a form POST"),
    ("tampered ciphertext",
     lambda hub: _flipped(sign_launch(ELSEWHERE, secret=_secret(hub)), False), "GET",
     "bad-signature", "changed after the EHR signed it"),
    ("tampered ciphertext, signed again by the EHR's key",
     lambda hub: _flipped(sign_launch(ELSEWHERE, private_key=EHR_KEY,
                                      encrypt=_secret(hub)), True), "POST",
     "undecryptable", "could not be decrypted"),
    ("encrypted with the wrong key",
     lambda hub: sign_launch(ELSEWHERE, private_key=EHR_KEY, encrypt=b"w" * 32),
     "POST", "undecryptable", "could not be decrypted"),
    ("signed with the wrong secret",
     lambda hub: sign_launch(ELSEWHERE, secret=b"w" * 32), "GET", "bad-signature",
     "changed after the EHR signed it"),
    ("expired",
     lambda hub: sign_launch(ELSEWHERE, secret=_secret(hub), now=time.time() - 600),
     "GET", "expired", "has expired"),
]


def _send(session: requests.Session, hub: EmbeddedHub, params: dict[str, str],
          method: str) -> requests.Response:
    if method == "GET":
        return session.get(launch_url(hub.url, params), allow_redirects=False,
                           timeout=60)
    return session.post(hub.url + "/hub/lightbox/launch", data=params,
                        allow_redirects=False, timeout=60)


@pytest.mark.parametrize(("make", "method", "reason", "says"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_launch_is_refused_with_a_403_that_says_why(
        hub: EmbeddedHub, make: Any, method: str, reason: str, says: str) -> None:
    audit = AuditLog(hub.directory / "audit.jsonl")
    before = len(audit.read())

    reply = _send(requests.Session(), hub, make(hub), method)

    assert reply.status_code == 403
    assert says in reply.text
    assert reply.headers["Cache-Control"] == "no-store"
    records = audit.read()[before:]
    assert [(r["event"], r["reason"]) for r in records] == [("launch-refused",
                                                            reason)]


def _last_char_changed(text: str) -> str:
    """``text`` with the unused low bits of its last base64url character set: a
    lenient decoder reads the same bytes (``...UnUik`` -> ``...UnUij``)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 0b1111, 3: 0b11}[len(text) % 4]
    return text[:-1] + alphabet[alphabet.index(text[-1]) ^ unused]


def _opens_study(reply: requests.Response, user: str) -> bool:
    return bool(re.search(rf"/user/{user}/lab/tree/ehr-launch/study-\w+\.ipynb$",
                          reply.headers.get("Location", "")))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_link_opened_before_sign_in_is_used_only_when_its_study_opens(
        hub: EmbeddedHub, method: str) -> None:
    params = sign_launch(CONTEXT, secret=_secret(hub))
    redirect = 302 if method == "GET" else 303
    # Opened signed out, and the sign-in never finished: twice, from two browsers.
    for _ in range(2):
        first = _send(requests.Session(), hub, params, method)
        assert first.status_code == redirect, first.text[:300]
        assert first.headers["Location"].startswith("/hub/oauth_login?next=")

    # Signed in now: the very same link opens the study ...
    opened = _send(_signed_in(hub, "radiologist"), hub, params, method)
    assert opened.status_code == redirect, opened.text[:300]
    assert _opens_study(opened, "radiologist"), opened.headers["Location"]

    # ... once: signed in or not, it is used now.
    for session in (_signed_in(hub, "radiologist"), requests.Session()):
        again = _send(session, hub, params, method)
        assert again.status_code == 403 and "already used" in again.text


def test_a_user_without_a_role_leaves_the_link_to_the_clinician(
        hub: EmbeddedHub) -> None:
    params = sign_launch(CONTEXT, secret=_secret(hub))
    audit = AuditLog(hub.directory / "audit.jsonl")
    before = len(audit.read())
    with requests.Session() as outsider:
        reply = _send(outsider, hub, params, "GET")
        assert reply.status_code == 302
        authorize = outsider.get(urljoin(hub.url, reply.headers["Location"]),
                                 timeout=60)
        refused = outsider.post(authorize.url, data={"sub": "outsider"}, timeout=60)
    assert refused.status_code == 403
    assert "in no Lightbox job role" in refused.text
    assert 'href="/hub/logout"' in refused.text

    opened = _send(_signed_in(hub, "radiologist"), hub, params, "GET")

    assert _opens_study(opened, "radiologist"), opened.text[:300]
    assert [(r["event"], r.get("outcome")) for r in audit.read()[before:]
            if r["event"] in {"sign-in-refused", "launch", "launch-refused"}] == [
        ("sign-in-refused", None), ("launch", "opened")]
    again = _send(_signed_in(hub, "radiologist"), hub, params, "GET")
    assert again.status_code == 403 and "already used" in again.text


@pytest.mark.parametrize("field", ["sig", "ctx"])
def test_a_link_with_its_last_character_changed_is_refused_and_not_used_up(
        hub: EmbeddedHub, field: str) -> None:
    session = _signed_in(hub, "radiologist")
    audit = AuditLog(hub.directory / "audit.jsonl")
    # A nonce of the length that leaves unused bits in ctx's last character.
    params = next(p for p in (sign_launch(CONTEXT, secret=_secret(hub),
                                          nonce=secrets.token_urlsafe(18) + "x" * n)
                              for n in range(3)) if len(p["ctx"]) % 4)
    before = len(audit.read())

    changed = _send(session, hub, dict(params, **{field: _last_char_changed(
        params[field])}), "GET")

    assert changed.status_code == 403
    assert "changed after the EHR signed it" in changed.text
    assert [(r["event"], r["reason"]) for r in audit.read()[before:]
            if r["event"].startswith("launch")] == [("launch-refused", "bad-signature")]
    opened = _send(session, hub, params, "GET")
    assert _opens_study(opened, "radiologist"), opened.text[:300]


def test_a_link_without_its_enc_is_refused_as_damaged(hub: EmbeddedHub) -> None:
    params = sign_launch(ELSEWHERE, secret=_secret(hub))
    del params["enc"]

    reply = _send(requests.Session(), hub, params, "GET")

    assert reply.status_code == 400
    assert "This launch link is damaged" in reply.text
    assert "unencrypted" not in reply.text


def test_form_post_launch_signs_on_and_opens_the_study(hub: EmbeddedHub) -> None:
    """The EHR's page posts a public-key signed, plain context: nothing in a URL."""
    session = requests.Session()
    reply = _send(session, hub, sign_launch(CONTEXT, private_key=EHR_KEY), "POST")
    assert reply.status_code == 303
    # Signed out: to the sign-on, with only an opaque id of the parked launch.
    assert reply.headers["Location"].startswith(
        "/hub/oauth_login?next=%2Fhub%2Flightbox%2Flaunch%2Fresume%2F")
    authorize = session.get(urljoin(hub.url, reply.headers["Location"]), timeout=60)
    assert "/oauth2/authorize" in authorize.url, authorize.url
    landed = session.post(authorize.url, data={"sub": "emergency"}, timeout=180)

    assert re.search(r"/user/emergency/lab/tree/ehr-launch/study-\w+\.ipynb$",
                     landed.url), landed.url
    # Every address the browser went through is free of the patient context.
    for step in [*landed.history, landed]:
        for value in CONTEXT.values():
            assert value not in step.url, step.url
    audit = AuditLog(hub.directory / "audit.jsonl")
    opened = wait_for(lambda: [r for r in audit.read() if r["event"] == "launch"
                               and r.get("outcome") == "opened"], 10, "launch opened")
    assert opened[-1]["study_instance_uid"] == CONTEXT["suid"]
    requests.delete(f"{hub.url}/hub/api/users/emergency/server", timeout=60,
                    headers={"Authorization": f"token {hub.operator_token}"})


_SESSIONS: dict[str, requests.Session] = {}


def _signed_in(hub: EmbeddedHub, user: str) -> requests.Session:
    """A browser session of ``user`` (signed in once per module; the server runs)."""
    if user not in _SESSIONS:
        session = requests.Session()
        sign_in_with_provider_mock(session, hub, user)
        wait_until_ready(hub, user)
        _SESSIONS[user] = session
    return _SESSIONS[user]


def _stop_server(hub: EmbeddedHub, user: str) -> None:
    requests.delete(f"{hub.url}/hub/api/users/{user}/server", timeout=60,
                    headers={"Authorization": f"token {hub.operator_token}"})


# (case, user, the link's context, reason, what the page says)
STUDY_REFUSALS = [
    ("another patient than the study's", "radiologist", dict(CONTEXT, pid="TEST-0002"),
     "patient-mismatch", "belongs to another patient than the link names"),
    ("no such study", "radiologist", dict(CONTEXT, suid="1.2.826.0.1.3680043.2.1"),
     "study-not-found", "No archive holds a study with this Study Instance UID"),
    ("an archive the role may not open", "researcher", CONTEXT,
     "study-not-in-role-archives", "your role may not open (Test folder)"),
]


@pytest.mark.parametrize(("user", "context", "reason", "says"),
                         [case[1:] for case in STUDY_REFUSALS],
                         ids=[case[0] for case in STUDY_REFUSALS])
def test_a_link_to_a_study_the_user_may_not_open_says_which_reason(
        hub: EmbeddedHub, user: str, context: dict[str, str], reason: str,
        says: str) -> None:
    audit = AuditLog(hub.directory / "audit.jsonl")
    session = _signed_in(hub, user)
    before = len(audit.read())

    reply = session.get(launch_url(hub.url, sign_launch(context,
                                                        secret=_secret(hub))),
                        allow_redirects=False, timeout=60)

    assert reply.status_code == 403
    assert says in reply.text
    for value in context.values():
        assert value not in reply.text, value
    records = [r for r in audit.read()[before:] if r["event"] == "launch"]
    assert [(r["outcome"], r["reason"]) for r in records] == [("refused", reason)]


def test_a_link_whose_archive_was_down_opens_when_it_is_back_and_only_once(
        hub: EmbeddedHub) -> None:
    user = "neurologist"
    session = _signed_in(hub, user)
    params = sign_launch(CONTEXT, secret=_secret(hub))
    everything = hub.archives_file.read_text()
    # The role's archive is down: a DICOMweb address nobody serves, same name.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    hub.archives_file.write_text(
        f'[[archive]]\nname = "Test folder"\ntype = "dicomweb"\n'
        f'url = "http://127.0.0.1:{closed}/dicom-web"\ntimeout_s = 2\nretries = 0\n')
    try:
        down = _send(session, hub, params, "GET")
    finally:
        hub.archives_file.write_text(everything)
    assert down.status_code == 503
    assert "Open the link again in a few minutes" in down.text

    # The archive is back: the very same link opens the study ...
    opened = _send(session, hub, params, "GET")
    assert opened.status_code == 302, opened.text[:300]
    assert re.search(rf"/user/{user}/lab/tree/ehr-launch/study-\w+\.ipynb$",
                     opened.headers["Location"]), opened.headers["Location"]

    # ... once: after a launch that opened its study, the link stays used.
    again = _send(session, hub, params, "GET")
    assert again.status_code == 403 and "already used" in again.text
    _stop_server(hub, user)


def test_no_launch_puts_the_patient_context_in_a_log(hub: EmbeddedHub) -> None:
    # Runs last in this module: every launch above has been logged by now.
    log = (hub.directory / "jupyterhub.log").read_text()
    audit = (hub.directory / "audit.jsonl").read_text()
    for value in [*ELSEWHERE.values(), CONTEXT["pid"], "ctx="]:
        assert value not in log, value
        assert value not in audit, value
    assert Path(hub.directory / "audit.jsonl").exists()
