"""Launch links: each rule of the verifier, as a table of link -> outcome."""
from __future__ import annotations

import asyncio
import base64
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from lightbox_hub.launch import (
    LaunchRefused,
    LaunchVerifier,
    NonceStore,
    _b64decode,
    _b64encode,
    context_key,
    launch_form,
    launch_url,
    sign_launch,
)

SECRET = b"s" * 32
NOW = 1_800_000_000.0
ED_KEY = ed25519.Ed25519PrivateKey.generate()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CONTEXT = {"pid": "LBX-0001", "iss": "LIGHTBOX-DEMO", "acc": "LBXACC01"}


def _run(coroutine: Any) -> Any:
    """asyncio.run in a thread of its own: the suite's shared Playwright browser
    keeps an event loop running in the main thread, where asyncio.run refuses."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def _signed(**options: Any) -> dict[str, str]:
    options.setdefault("now", NOW)
    context = options.pop("context", CONTEXT)
    if "private_key" not in options:
        options.setdefault("secret", SECRET)
    return sign_launch(context, **options)


def _tamper(params: dict[str, str]) -> dict[str, str]:
    other = _signed(context=dict(CONTEXT, acc="LBXACC00"), secret=b"x" * 32)
    return dict(params, ctx=other["ctx"])


def _flip_ciphertext(params: dict[str, str], key: Any = None) -> dict[str, str]:
    """One bit of the ciphertext changed; signed again when ``key`` is given (a
    party holding the signing key but not the encryption key)."""
    raw = bytearray(_b64decode(params["ctx"]))
    raw[20] ^= 0x01
    ctx = _b64encode(bytes(raw))
    if key is None:
        return dict(params, ctx=ctx)
    return dict(params, ctx=ctx, sig=_b64encode(key.sign(ctx.encode())))


# (case, link, verifier settings, how it comes, refusal)
CASES = [
    ("hmac link, encrypted", lambda: _signed(), {}, "GET", None),
    ("ed25519 link posted", lambda: _signed(private_key=ED_KEY), {"key": ED_KEY},
     "POST", None),
    ("rsa link posted", lambda: _signed(private_key=RSA_KEY), {"key": RSA_KEY},
     "POST", None),
    ("ed25519 link, encrypted with the shared secret",
     lambda: _signed(private_key=ED_KEY, encrypt=SECRET), {"key": ED_KEY}, "GET",
     None),
    ("study uid instead of accession",
     lambda: _signed(context={"pid": "P1", "iss": "X", "suid": "1.2.3.4"}), {},
     "GET", None),
    ("plain context in a link", lambda: _signed(encrypt=False), {}, "GET",
     "plain-context-in-url"),
    ("plain public-key link in a link", lambda: _signed(private_key=ED_KEY),
     {"key": ED_KEY}, "GET", "plain-context-in-url"),
    ("plain context in a link, allowed by the setting",
     lambda: _signed(encrypt=False), {"allow_plain_get": True}, "GET", None),
    ("plain context posted", lambda: _signed(encrypt=False), {}, "POST", None),
    ("payload changed", lambda: _tamper(_signed()), {}, "GET", "bad-signature"),
    ("ciphertext changed", lambda: _flip_ciphertext(_signed()), {}, "GET",
     "bad-signature"),
    ("ciphertext changed and signed again",
     lambda: _flip_ciphertext(_signed(private_key=ED_KEY, encrypt=SECRET), ED_KEY),
     {"key": ED_KEY}, "POST", "undecryptable"),
    ("encrypted with another key",
     lambda: _signed(private_key=ED_KEY, encrypt=b"y" * 32), {"key": ED_KEY},
     "GET", "undecryptable"),
    ("signed with another secret", lambda: _signed(secret=b"y" * 32), {}, "GET",
     "bad-signature"),
    ("encrypted, hub without a shared secret",
     lambda: _signed(private_key=ED_KEY, encrypt=SECRET),
     {"key": ED_KEY, "secret": None}, "GET", "enc-not-configured"),
    ("encrypted and expired", lambda: _signed(now=NOW - 600), {}, "GET", "expired"),
    ("signature of another key", lambda: _signed(private_key=ed25519.
     Ed25519PrivateKey.generate()), {"key": ED_KEY}, "POST", "bad-signature"),
    ("dated in the future", lambda: _signed(now=NOW + 600), {}, "GET",
     "not-yet-valid"),
    ("lifetime above the maximum", lambda: _signed(lifetime_s=3600), {}, "GET",
     "lifetime-too-long"),
    ("no secret configured", lambda: _signed(), {"secret": None}, "GET",
     "alg-not-configured"),
    ("public key link without a key", lambda: _signed(private_key=ED_KEY), {},
     "POST", "alg-not-configured"),
    ("rsa link, ed25519 key configured", lambda: _signed(private_key=RSA_KEY),
     {"key": ED_KEY}, "POST", "alg-mismatch"),
    ("no study named", lambda: _signed(context={"pid": "P1", "iss": "X"}), {},
     "GET", "incomplete-context"),
    ("no issuer", lambda: _signed(context={"pid": "P1", "acc": "A"}), {}, "GET",
     "incomplete-context"),
    ("malformed study uid",
     lambda: _signed(context={"pid": "P1", "iss": "X", "suid": "1.2.x"}), {},
     "GET", "incomplete-context"),
    ("unknown algorithm", lambda: dict(_signed(), alg="none"), {}, "GET",
     "malformed"),
    ("unknown encryption", lambda: dict(_signed(), enc="a128cbc"), {}, "GET",
     "malformed"),
    ("no signature", lambda: dict(_signed(), sig=""), {}, "GET", "malformed"),
    # An encrypted context with enc=a256gcm cut off is damaged, not "plain".
    ("encrypted, enc cut off", lambda: _without_enc(_signed()), {}, "GET",
     "malformed"),
    ("encrypted, enc cut off, posted", lambda: _without_enc(_signed()), {}, "POST",
     "malformed"),
    ("encrypted public-key link, enc cut off",
     lambda: _without_enc(_signed(private_key=ED_KEY, encrypt=SECRET)),
     {"key": ED_KEY}, "GET", "malformed"),
    ("signature not base64url", lambda: dict(_signed(), sig="!" * 43), {}, "GET",
     "bad-signature"),
]


def _without_enc(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != "enc"}


@pytest.mark.parametrize(("link", "config", "method", "refusal"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_launch_link_policy(tmp_path: Path, link, config: dict[str, Any],
                            method: str, refusal: str | None) -> None:
    key = config.get("key")
    verifier = LaunchVerifier(config.get("secret", SECRET),
                              key.public_key() if key is not None else None,
                              NonceStore(tmp_path / "n.sqlite"), max_age_s=300,
                              clock=lambda: NOW,
                              allow_plain_get=config.get("allow_plain_get", False))
    if refusal is None:
        context = verifier.verify(link(), method)
        assert context.patient_id in {"LBX-0001", "P1"} and context.nonce
    else:
        with pytest.raises(LaunchRefused) as raised:
            verifier.verify(link(), method)
        assert raised.value.reason == refusal
        assert raised.value.status in {400, 403}


def test_a_link_without_enc_names_damage_not_unencrypted_identifiers(
        tmp_path: Path) -> None:
    verifier = LaunchVerifier(SECRET, None, NonceStore(tmp_path / "n.sqlite"),
                              clock=lambda: NOW)
    params = _signed()

    with pytest.raises(LaunchRefused) as raised:
        verifier.check(_without_enc(params))

    assert raised.value.reason == "malformed"
    assert "damaged" in raised.value.message
    assert "unencrypted" not in raised.value.message
    assert verifier.verify(params).patient_id == "LBX-0001"


def _unused_bits_changed(text: str) -> str:
    """``text`` with the unused low bits of its last base64url character set:
    another spelling of the same bytes to a lenient decoder."""
    alphabet = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    unused = {2: 0b1111, 3: 0b11}[len(text) % 4]
    changed = text[:-1] + alphabet[alphabet.index(text[-1]) ^ unused]
    assert changed != text and base64.urlsafe_b64decode(
        changed + "=" * (-len(changed) % 4)) == _b64decode(text)
    return changed


def _with_slack(**options: Any) -> dict[str, str]:
    """A link whose ctx and sig both end in a character with unused bits."""
    for pad in range(3):
        params = _signed(context=dict(CONTEXT, acc="LBXACC01" + "0" * pad), **options)
        if len(params["ctx"]) % 4 and len(params["sig"]) % 4:
            return params
    raise AssertionError("no link with unused bits in ctx and sig")


@pytest.mark.parametrize("field", ["sig", "ctx"])
@pytest.mark.parametrize(("options", "method"), [
    ({}, "GET"), ({"private_key": ED_KEY, "encrypt": SECRET}, "GET"),
    ({"private_key": RSA_KEY}, "POST"), ({"secret": SECRET, "encrypt": False}, "POST"),
], ids=["hs256", "ed25519 encrypted", "rs256", "hs256 plain"])
def test_a_changed_last_character_is_refused_and_uses_nothing_up(
        tmp_path: Path, field: str, options: dict[str, Any], method: str) -> None:
    key = options.get("private_key")
    verifier = LaunchVerifier(SECRET, key.public_key() if key else None,
                              NonceStore(tmp_path / "n.sqlite"), clock=lambda: NOW)
    params = _with_slack(**options)
    changed = dict(params, **{field: _unused_bits_changed(params[field])})

    with pytest.raises(LaunchRefused) as raised:
        verifier.verify(changed, method)

    assert (raised.value.status, raised.value.reason) == (403, "bad-signature")
    assert "changed after the EHR signed it" in raised.value.message
    # The untouched link was not used up by the attempt: it opens, once.
    assert verifier.verify(params, method).patient_id == "LBX-0001"
    with pytest.raises(LaunchRefused, match="already used"):
        verifier.verify(params, method)


@pytest.mark.parametrize(("text", "canonical"), [
    ("AQI", True), ("AQI=", True), ("AQ", True), ("AQ==", True), ("", True),
    ("AQJ", False), ("AR", False), ("AQ=", False), ("AQI==", False), ("A", False),
    ("AQ I", False), ("AQI\n", False), ("+/8", False), ("AQ%3D", False),
])
def test_only_the_canonical_base64url_spelling_decodes(text: str,
                                                       canonical: bool) -> None:
    if canonical:
        assert _b64encode(_b64decode(text)) == text.rstrip("=")
    else:
        with pytest.raises(ValueError, match="not canonical"):
            _b64decode(text)


def test_checking_a_link_uses_nothing_up_only_use_does(tmp_path: Path) -> None:
    verifier = LaunchVerifier(SECRET, None, NonceStore(tmp_path / "n.sqlite"),
                              clock=lambda: NOW)
    params = _signed()
    context = verifier.check(params)
    assert verifier.check(params) == context

    verifier.use(context)

    for attempt in (verifier.check, verifier.verify):
        with pytest.raises(LaunchRefused, match="already used"):
            attempt(params)
    with pytest.raises(LaunchRefused, match="already used"):
        verifier.use(context)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_encrypted_link_opens_once_raises(tmp_path: Path, method: str) -> None:
    verifier = LaunchVerifier(SECRET, None, NonceStore(tmp_path / "n.sqlite"),
                              clock=lambda: NOW)
    params = _signed()
    verifier.verify(params, method)
    with pytest.raises(LaunchRefused) as replayed:
        verifier.verify(params, method)
    assert (replayed.value.status, replayed.value.reason) == (403, "replayed")


def test_decoding_an_encrypted_link_reveals_no_patient_context() -> None:
    params = _signed(context={"pid": "LBX-0001", "iss": "LIGHTBOX-DEMO",
                              "acc": "LBXACC01"})
    url = launch_url("http://127.0.0.1:8000", params)
    decoded = _b64decode(parse_qs(urlsplit(url).query)["ctx"][0])
    for identifier in (b"LBX-0001", b"LIGHTBOX-DEMO", b"LBXACC01", b'"pid"',
                       b'"nonce"'):
        assert identifier not in decoded
        assert identifier.decode() not in url
    # Two links to the same study look unrelated (a fresh IV and nonce each).
    assert _signed()["ctx"] != _signed()["ctx"]


def test_the_context_key_is_derived_with_hkdf_not_the_secret_itself() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = context_key(SECRET)
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lightbox launch",
                    info=b"lightbox launch context a256gcm v1").derive(SECRET)
    assert key == expected and len(key) == 32 and key != SECRET


def test_launch_form_posts_the_fields_and_names_no_patient_in_its_action() -> None:
    params = _signed(private_key=ED_KEY)
    page = launch_form("http://127.0.0.1:8000/", params)
    assert '<form id="launch" method="post" action="http://127.0.0.1:8000/hub/' \
        'lightbox/launch">' in page
    for name, value in params.items():
        assert f'name="{name}" value="{value}"' in page


def test_encrypt_true_without_a_shared_secret_raises() -> None:
    with pytest.raises(ValueError, match="encrypt=True needs the shared secret"):
        sign_launch(CONTEXT, private_key=ED_KEY, encrypt=True)


def test_a_link_opens_once_even_after_a_restart_raises(tmp_path: Path) -> None:
    params = _signed()
    first = LaunchVerifier(SECRET, None, NonceStore(tmp_path / "n.sqlite"),
                           clock=lambda: NOW)
    first.verify(params)
    restarted = LaunchVerifier(SECRET, None, NonceStore(tmp_path / "n.sqlite"),
                               clock=lambda: NOW)
    with pytest.raises(LaunchRefused, match="already used"):
        restarted.verify(params)


def test_refusal_keeps_user_text_and_log_detail_apart() -> None:
    verifier = LaunchVerifier(SECRET, None, NonceStore(":memory:"),
                              clock=lambda: time.time())
    with pytest.raises(LaunchRefused) as raised:
        verifier.verify(_signed(now=time.time() - 900))
    assert "Open the study again from the EHR" in raised.value.message
    assert raised.value.detail.startswith("expired") and "LBX" not in raised.value.detail


def test_sign_launch_with_both_secret_and_key_raises() -> None:
    with pytest.raises(ValueError, match="exactly one of secret and private_key"):
        sign_launch(CONTEXT, secret=SECRET, private_key=ED_KEY)


# -- The hub opens a launched study through the user's server extension -------------

_SERVER_FIXTURES = Path(__file__).resolve().parents[1] / "extensions" / "server"


class _HubUser:
    """The parts of JupyterHub's ``User`` the launch uses, around a real server.

    The server is a real Jupyter server with the Lightbox extension; only the hub's
    database of tokens is this small stand-in, so the token's removal can be seen.
    """

    def __init__(self, server_url: str, server_token: str) -> None:
        self.name = "ana"
        self.spawner = SimpleNamespace(server=SimpleNamespace(url=server_url))
        self.orm_user = SimpleNamespace(api_tokens=[])
        self.db = SimpleNamespace(delete=self.orm_user.api_tokens.remove,
                                  commit=lambda: None)
        self._server_token = server_token
        self.scopes: list[list[str]] = []

    def new_api_token(self, scopes: list[str], expires_in: int, note: str) -> str:
        assert expires_in <= 120
        self.scopes.append(scopes)
        self.orm_user.api_tokens.append(SimpleNamespace(note=note))
        return self._server_token


@pytest.fixture(scope="module")
def user_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sys.path.insert(0, str(_SERVER_FIXTURES))
    try:
        from server_fixtures import LightboxServer, write_archives, write_phantom_folder
    finally:
        sys.path.remove(str(_SERVER_FIXTURES))
    folder = tmp_path_factory.mktemp("launch-server")
    uids = write_phantom_folder(folder / "phantoms")
    archives = write_archives(folder / "archives.toml", folder / "phantoms", None)
    server = LightboxServer(folder / "server", {
        "LIGHTBOX_ARCHIVES": str(archives), "LIGHTBOX_ROLE": "radiologist",
        "LIGHTBOX_PANELS": "studies,launcher,app-view"}).start()
    server.uids = uids
    yield server
    server.stop()


def test_launch_opens_the_study_through_the_server_extension(user_server) -> None:
    from lightbox_hub.handlers import _open_in_server

    user = _HubUser(user_server.url + "/", user_server.token)
    first, second = user_server.uids

    earlier = _run(_open_in_server(user, first))
    later = _run(_open_in_server(user, second))

    # The extension's template, as an app (the role has the app view); one launch
    # at a time, and nothing but the UID reached the server.
    assert earlier.startswith("ehr-launch/study-") and later != earlier
    assert not (user_server.root / earlier).exists()
    notebook = json.loads((user_server.root / later).read_text())
    assert notebook["metadata"]["lightbox"] == {"app_view": True,
                                                "kind": "study-viewer"}
    assert any(second in "".join(cell["source"]) for cell in notebook["cells"])
    # The short-lived token reached only this user's server and is gone again.
    assert user.scopes == [["access:servers!user=ana"]] * 2
    assert user.orm_user.api_tokens == []
    assert "LBX-0001" not in user_server.log.read_text()


@pytest.mark.parametrize(
    ("where", "reason"),
    [("wrong-prefix", "no-server-extension"), ("closed-port", "server-unreachable")],
    ids=["no extension at that address", "server down"],
)
def test_launch_to_a_server_that_cannot_open_it_raises(
        user_server, where: str, reason: str) -> None:
    from lightbox_hub.handlers import _open_in_server

    if where == "wrong-prefix":
        url = user_server.url + "/not-lightbox/"
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    user = _HubUser(url, user_server.token)

    with pytest.raises(LaunchRefused) as raised:
        _run(_open_in_server(user, user_server.uids[0]))

    assert raised.value.reason == reason and raised.value.status == 502
    assert "ask the lightbox administrators" in raised.value.message.lower()
    assert user.orm_user.api_tokens == []


# -- The clock-skew allowance, at its boundaries ------------------------------------

# (case, seconds of allowance (None: the default), link's iat and exp, refusal)
SKEW_CASES = [
    ("expired exactly the allowance ago", None, (-330, -30), None),
    ("expired a second more than the allowance ago", None, (-331, -31), "expired"),
    ("issued exactly the allowance ahead", None, (30, 330), None),
    ("issued a second more than the allowance ahead", None, (31, 331),
     "not-yet-valid"),
    ("no allowance, expires now", 0, (-300, 0), None),
    ("no allowance, expired a second ago", 0, (-301, -1), "expired"),
    ("5 s allowance, expired 5 s ago", 5, (-305, -5), None),
    ("5 s allowance, expired 6 s ago", 5, (-306, -6), "expired"),
]


@pytest.mark.parametrize(("skew", "times", "refusal"), [c[1:] for c in SKEW_CASES],
                         ids=[c[0] for c in SKEW_CASES])
def test_the_clock_skew_allowance_ends_where_it_says(
        tmp_path: Path, skew: int | None, times: tuple[int, int],
        refusal: str | None) -> None:
    options = {} if skew is None else {"clock_skew_s": skew}
    verifier = LaunchVerifier(SECRET, None, NonceStore(tmp_path / "n.sqlite"),
                              clock=lambda: NOW, **options)
    iat, exp = times
    params = _signed(now=NOW + iat, lifetime_s=exp - iat)

    if refusal is None:
        assert verifier.verify(params).nonce
        # Accepted inside the allowance, it still opens once only.
        with pytest.raises(LaunchRefused, match="already used"):
            verifier.verify(params)
    else:
        with pytest.raises(LaunchRefused) as raised:
            verifier.verify(params)
        assert raised.value.reason == refusal


def test_a_nonce_is_remembered_until_the_allowance_ends(tmp_path: Path) -> None:
    clock = [NOW]
    store = NonceStore(tmp_path / "n.sqlite")
    verifier = LaunchVerifier(SECRET, None, store, clock=lambda: clock[0],
                              clock_skew_s=30)
    params = _signed(lifetime_s=60)
    verifier.verify(params)

    # Another link's check, just inside the allowance, forgets nothing yet.
    clock[0] = NOW + 60 + 30
    verifier.verify(_signed(now=clock[0]))
    with pytest.raises(LaunchRefused, match="already used"):
        verifier.verify(params)


# -- A launch that failed through no fault of the link leaves it usable -------------

def test_a_released_link_opens_again_and_then_only_once(tmp_path: Path) -> None:
    verifier = LaunchVerifier(SECRET, None, NonceStore(tmp_path / "n.sqlite"),
                              clock=lambda: NOW)
    params = _signed()
    context = verifier.verify(params)

    verifier.release(context)

    assert verifier.verify(params) == context
    with pytest.raises(LaunchRefused, match="already used"):
        verifier.verify(params)


@pytest.mark.parametrize(("status", "spent"), [(403, True), (400, True), (502, False),
                                               (503, False)])
def test_only_the_hubs_own_failures_give_the_link_back(status: int,
                                                        spent: bool) -> None:
    assert LaunchRefused(status, "x", "y").link_spent is spent


class _Handler:
    """The parts of the hub's request handler a launch uses."""

    def __init__(self, services: Any, spawn_fails: bool) -> None:
        self.settings = {"lightbox": services}
        self.request = SimpleNamespace(remote_ip="127.0.0.1")
        self.spawn_fails = spawn_fails
        self.redirected_to: str | None = None

    async def spawn_single_user(self, user: Any) -> None:
        from tornado import web

        if self.spawn_fails:
            raise web.HTTPError(500, "the spawner failed")
        user.spawner.ready = True

    def redirect(self, url: str, status: int = 302) -> None:
        self.redirected_to = url


@pytest.fixture
def launch_services(tmp_path: Path, user_server) -> Any:
    """The hub's services over the phantom folder, with a verifier of our own."""
    from lightbox_hub.config import LightboxHub
    from lightbox_hub.services import LightboxServices

    archives = tmp_path / "archives.json"
    archives.write_text(json.dumps({"archive": [
        {"name": "Phantoms", "type": "folder",
         "path": str(user_server.folder.parent / "phantoms")}]}))
    services = LightboxServices(LightboxHub(
        state_dir=str(tmp_path / "state"), archives_file=str(archives),
        audit_log=str(tmp_path / "audit.jsonl"),
        role_archives={"researcher": [], "*": ["*"]}))
    services.verifier = LaunchVerifier(SECRET, None, NonceStore(tmp_path / "n.sqlite"))
    return services


def _phantom_link(user_server: Any) -> dict[str, str]:
    from viewerlib.samples.phantom import ISSUER_OF_PATIENT_ID, PATIENT_ID

    return sign_launch({"pid": PATIENT_ID, "iss": ISSUER_OF_PATIENT_ID,
                        "suid": user_server.uids[0]}, secret=SECRET)


def _radiologist(user_server: Any) -> _HubUser:
    """A radiologist whose server runs and opens studies."""
    user = _HubUser(user_server.url + "/", user_server.token)
    user.groups = [SimpleNamespace(name="radiologist")]
    user.url = "/user/ana/"
    user.spawner.ready = True
    return user


# (case, group of the user, the server: "fails to start" or its address, status)
LAUNCH_FAILURES = [
    ("server does not start", "radiologist", "fails to start", 503),
    ("server does not answer", "radiologist", "closed port", 502),
    ("role may open no archive", "researcher", "running", 403),
    ("no job role", "billing", "running", 403),
]


@pytest.mark.parametrize(("role", "server", "status"),
                         [case[1:] for case in LAUNCH_FAILURES],
                         ids=[case[0] for case in LAUNCH_FAILURES])
def test_a_launch_that_failed_or_was_refused_leaves_the_link_usable(
        launch_services: Any, user_server: Any, role: str, server: str,
        status: int) -> None:
    """Neither the hub's own failure nor a user who may not open the study uses
    the link up: the radiologist it was made for still opens it, once."""
    from lightbox_hub.handlers import open_launch
    from tornado import web

    if server == "closed port":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    else:
        url = user_server.url + "/"
    user = _HubUser(url, user_server.token)
    user.groups = [SimpleNamespace(name=role)]
    user.url = "/user/ana/"
    user.spawner.ready = server != "fails to start"
    user.spawner.active = user.spawner.ready
    user.spawner.start_timeout = 5
    params = _phantom_link(user_server)
    context = launch_services.verifier.check(params)

    with pytest.raises(web.HTTPError) as failed:
        _run(open_launch(_Handler(launch_services, server == "fails to start"),
                         user, context))

    assert failed.value.status_code == status
    assert launch_services.verifier.check(params) == context
    handler = _Handler(launch_services, spawn_fails=False)
    _run(open_launch(handler, _radiologist(user_server),
                     launch_services.verifier.check(params)))
    assert handler.redirected_to is not None
    with pytest.raises(LaunchRefused, match="already used"):
        launch_services.verifier.check(params)


def test_a_launch_that_opened_its_study_stays_used(launch_services: Any,
                                                   user_server: Any) -> None:
    from lightbox_hub.handlers import open_launch
    from tornado import web

    user = _radiologist(user_server)
    params = _phantom_link(user_server)
    handler = _Handler(launch_services, spawn_fails=False)
    # Checked (before sign-in, say) as often as it likes: not used up yet.
    context = launch_services.verifier.check(params)
    assert launch_services.verifier.check(params) == context

    _run(open_launch(handler, user, context))

    assert handler.redirected_to is not None
    assert handler.redirected_to.startswith("/user/ana/lab/tree/ehr-launch/study-")
    with pytest.raises(LaunchRefused, match="already used"):
        launch_services.verifier.check(params)
    # A second tab (or a second sign-in round trip) checked before the first
    # opened it is refused when it comes to opening.
    with pytest.raises(web.HTTPError) as again:
        _run(open_launch(_Handler(launch_services, spawn_fails=False), user, context))
    assert again.value.status_code == 403
    assert "already used" in again.value.jupyterhub_message


def test_an_unknown_algorithm_is_named_as_such_not_as_a_missing_part(
        tmp_path: Path) -> None:
    verifier = LaunchVerifier(SECRET, None, NonceStore(tmp_path / "n.sqlite"),
                              clock=lambda: NOW)

    with pytest.raises(LaunchRefused) as raised:
        verifier.verify(dict(_signed(), alg="none"), "GET")

    message = str(raised.value)
    assert "incomplete" not in message
    assert "algorithm this hub does not accept" in message
    assert "hs256" in message and "'none'" not in message
