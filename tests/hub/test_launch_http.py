"""Launches as the hub receives them: links (GET) and the EHR's form (POST).

A real hub with a shared launch secret and an EHR's Ed25519 public key. Every
refusal is a 403 page that says why; the patient context reaches neither the hub's
log nor its audit log.
"""
from __future__ import annotations

import re
import shutil
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
from live_hub import wait_for

from lightbox_hub.audit import AuditLog
from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider
from lightbox_hub.launch import _b64decode, _b64encode, launch_url, sign_launch

EHR_KEY = ed25519.Ed25519PrivateKey.generate()
_CT_SMALL = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
CONTEXT = {"pid": str(_CT_SMALL.PatientID), "iss": "PYDICOM",
           "suid": str(_CT_SMALL.StudyInstanceUID)}
ELSEWHERE = {"pid": "LBX-0001", "iss": "LIGHTBOX-DEMO", "acc": "LBXACC01"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHub]:
    root = tmp_path_factory.mktemp("launch-http")
    folder = root / "ct-small"
    folder.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    archives = root / "archives.toml"
    archives.write_text(f'[[archive]]\nname = "Test folder"\ntype = "folder"\n'
                        f'path = "{folder}"\n')
    public_key = root / "ehr.pem"
    public_key.write_bytes(EHR_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    idp = EmbeddedIdentityProvider(root / "idp").start()
    started = EmbeddedHub(root / "hub", idp.issuer, archives, extra_env={
        "LIGHTBOX_LAUNCH_PUBLIC_KEY": str(public_key)})
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


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_replayed_launch_is_refused(hub: EmbeddedHub, method: str) -> None:
    params = sign_launch(ELSEWHERE, secret=_secret(hub))
    first = _send(requests.Session(), hub, params, method)
    assert first.status_code == (302 if method == "GET" else 303)
    assert first.headers["Location"].startswith("/hub/oauth_login?next=")

    again = _send(requests.Session(), hub, params, method)

    assert again.status_code == 403 and "already used" in again.text


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


def test_no_launch_puts_the_patient_context_in_a_log(hub: EmbeddedHub) -> None:
    # Runs last in this module: every launch above has been logged by now.
    log = (hub.directory / "jupyterhub.log").read_text()
    audit = (hub.directory / "audit.jsonl").read_text()
    for value in [*ELSEWHERE.values(), CONTEXT["pid"], "ctx="]:
        assert value not in log, value
        assert value not in audit, value
    assert Path(hub.directory / "audit.jsonl").exists()
