"""Signed launch links from the EHR: build them, and check them one rule at a time.

A launch carries ``ctx``, ``sig``, ``alg`` and, when the context is encrypted,
``enc=a256gcm``. The EHR sends them either as a link
(``<hub>/hub/lightbox/launch?ctx=...&sig=...&alg=...&enc=a256gcm``, a GET) or as the
fields of an HTML form it posts to the same address (a POST: nothing in the URL).
The context is JSON with the patient context and the link's own limits:

``pid``   (0010,0020) *Patient ID*, with ``iss``, (0010,0021) *Issuer of Patient ID*
``acc``   (0008,0050) *Accession Number*, or ``suid``, the *Study Instance UID*
``iat``   issued at, ``exp`` expires at (seconds since the epoch)
``nonce`` a random one-time value; the hub remembers it until ``exp`` plus the
          clock-skew allowance

``ctx`` is that JSON in base64url, or, with ``enc=a256gcm``, its AES-256-GCM
encryption (a 12-byte IV, then ciphertext and tag, in base64url) under a key derived
from the shared launch secret with HKDF-SHA256 (:func:`context_key`). A URL is kept
in browser history and proxy and ingress access logs, so the hub refuses a GET whose
context is not encrypted unless ``c.LightboxHub.launch_allow_plain_get`` says
otherwise; an EHR that signs with a public key and has no shared secret posts the
form instead.

The signature covers ``ctx`` exactly as sent (encrypt, then sign): HMAC-SHA256 with
the shared secret (``alg=hs256``), or Ed25519 / RSA-SHA256 (``ed25519`` /
``rs256``) checked with the EHR's public key. A valid link only names a study;
whether the user may open it is decided afterwards by their role and the archives
(:mod:`lightbox_hub.handlers`).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

_UID = re.compile(r"^[0-9]+(\.[0-9]+){1,63}$")
_IDENTIFIER = re.compile(r"^[\x20-\x7e]{1,64}$")  # DICOM LO: printable, <= 64
_NONCE = re.compile(r"^[A-Za-z0-9_\-]{16,128}$")
_BASE64URL = re.compile(r"[A-Za-z0-9_\-]*")
# How far the EHR's clock and the hub's may disagree: a link is accepted this many
# seconds past its exp and before its iat (c.LightboxHub.launch_clock_skew_s).
DEFAULT_CLOCK_SKEW_S = 30
ALGORITHMS = ("hs256", "ed25519", "rs256")
ENCRYPTIONS = ("a256gcm",)
# HKDF's context strings: the encryption key is never the signing key itself.
_HKDF_SALT = b"lightbox launch"
_HKDF_INFO = b"lightbox launch context a256gcm v1"
_AAD = b"lightbox-launch-ctx"
_IV_BYTES = 12


def context_key(secret: bytes) -> bytes:
    """The AES-256 key for launch contexts, derived from the shared launch secret.

    HKDF-SHA256 (RFC 5869) with a fixed salt and info string, so an EHR derives
    the same 32 bytes from the same secret; the HMAC signature uses the secret
    itself, so the two keys differ.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT,
                info=_HKDF_INFO).derive(secret)


def encrypt_context(payload: bytes, secret: bytes) -> str:
    """``payload`` encrypted with AES-256-GCM under :func:`context_key`, base64url."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    iv = os.urandom(_IV_BYTES)
    return _b64encode(iv + AESGCM(context_key(secret)).encrypt(iv, payload, _AAD))


def decrypt_context(ctx: str, secret: bytes) -> bytes:
    """The plaintext of an encrypted ``ctx``.

    Raises
    ------
    ValueError
        If ``ctx`` is not base64url, too short, or fails authentication (another
        key, or changed after encryption).
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = _b64decode(ctx)
    if len(raw) <= _IV_BYTES + 16:
        raise ValueError("encrypted context too short")
    try:
        return AESGCM(context_key(secret)).decrypt(raw[:_IV_BYTES], raw[_IV_BYTES:],
                                                   _AAD)
    except InvalidTag as err:
        raise ValueError("encrypted context does not authenticate") from err


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    """The bytes of base64url ``text``, which must be their one canonical spelling.

    Lenient decoders ignore the unused low bits of the last character, so several
    texts give the same bytes (``...UnUik`` and ``...UnUij``): a changed link would
    pass as unchanged. Here the decoded bytes must encode back to ``text`` exactly
    (without padding, or with exactly the padding base64 asks for).

    Raises
    ------
    ValueError
        If ``text`` holds characters outside base64url, has an impossible length,
        wrong padding or unused bits that are not zero.

    Examples
    --------
    >>> _b64decode("AQI")
    b'\\x01\\x02'
    >>> _b64decode("AQJ")
    Traceback (most recent call last):
    ValueError: not canonical base64url
    """
    unpadded = text.rstrip("=")
    padding = len(text) - len(unpadded)
    if (not _BASE64URL.fullmatch(unpadded) or len(unpadded) % 4 == 1
            or padding not in (0, -len(unpadded) % 4)):
        raise ValueError("not canonical base64url")
    raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    if _b64encode(raw) != unpadded:
        raise ValueError("not canonical base64url")
    return raw


@dataclass(frozen=True)
class LaunchContext:
    """The patient context a verified link carries (never logged)."""

    patient_id: str
    issuer_of_patient_id: str
    accession_number: str | None
    study_instance_uid: str | None
    nonce: str
    expires_at: float


class LaunchRefused(Exception):
    """A launch that is refused.

    ``status`` is the HTTP status, ``reason`` a short label for the audit log,
    ``message`` the text the user reads, and ``detail`` what the hub log gets (never
    patient data). ``link_spent`` says whether a launch that fails after its link
    was used up (:meth:`LaunchVerifier.use`) leaves the one-time nonce used: false
    when the hub could not finish for a reason of its own (an archive or the
    user's server down; by default every status of 500 and above), so the same
    link may be opened again until it expires. Refusals before that point (the
    link changed or expired, another patient, a role that may not open the study)
    use nothing up.
    """

    def __init__(self, status: int, reason: str, message: str, detail: str = "",
                 link_spent: bool | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.detail = detail or reason
        self.link_spent = status < 500 if link_spent is None else link_spent


def sign_launch(context: dict[str, Any], *, secret: bytes | None = None,
                private_key: Any = None, encrypt: bool | bytes | None = None,
                lifetime_s: int = 120, now: float | None = None,
                nonce: str | None = None) -> dict[str, str]:
    """Return the parameters of a signed launch (what an EHR would do).

    Parameters
    ----------
    context : dict
        ``pid``, ``iss`` and ``acc`` or ``suid``.
    secret : bytes, optional
        Shared launch secret: signs with HMAC-SHA256 (``alg=hs256``).
    private_key : cryptography private key, optional
        Ed25519 or RSA private key (``alg=ed25519`` / ``rs256``).
    encrypt : bool or bytes, optional
        Encrypt the context (``enc=a256gcm``) with a key derived from the shared
        launch secret. ``None`` (the default) encrypts links signed with
        ``secret``; public-key links stay plain, to be sent as a form POST
        (:func:`launch_form`). ``True`` encrypts with ``secret``; bytes name the
        shared secret to encrypt with (a public-key link that is also
        encrypted); ``False`` leaves the context plain.

    Returns
    -------
    dict
        ``ctx``, ``sig``, ``alg`` and, when encrypted, ``enc``: the query of
        :func:`launch_url` or the fields of :func:`launch_form`.

    Raises
    ------
    ValueError
        If not exactly one of ``secret`` and ``private_key`` is given, or
        encryption is asked for without a shared secret.

    Examples
    --------
    >>> params = sign_launch({"pid": "P1", "iss": "X", "acc": "A1"},
    ...                      secret=b"s" * 32)
    >>> sorted(params), params["enc"]
    (['alg', 'ctx', 'enc', 'sig'], 'a256gcm')
    >>> b"P1" in _b64decode(params["ctx"])
    False
    """
    if (secret is None) == (private_key is None):
        raise ValueError("sign_launch needs exactly one of secret and private_key")
    encryption_secret: bytes | None
    if encrypt is None:
        encryption_secret = secret
    elif encrypt is True:
        if secret is None:
            raise ValueError("encrypt=True needs the shared secret: pass it as "
                             "encrypt=<secret bytes> for a public-key link")
        encryption_secret = secret
    elif encrypt is False:
        encryption_secret = None
    else:
        encryption_secret = bytes(encrypt)
    issued = time.time() if now is None else now
    payload = dict(context, iat=int(issued), exp=int(issued + lifetime_s),
                   nonce=nonce or secrets.token_urlsafe(18))
    plain = json.dumps(payload, separators=(",", ":")).encode()
    params: dict[str, str] = {}
    if encryption_secret is not None:
        ctx = encrypt_context(plain, encryption_secret)
        params["enc"] = "a256gcm"
    else:
        ctx = _b64encode(plain)
    if secret is not None:
        alg, signature = "hs256", hmac.new(secret, ctx.encode(), hashlib.sha256).digest()
    else:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

        if isinstance(private_key, ed25519.Ed25519PrivateKey):
            alg, signature = "ed25519", private_key.sign(ctx.encode())
        elif isinstance(private_key, rsa.RSAPrivateKey):
            alg, signature = "rs256", private_key.sign(
                ctx.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            raise ValueError(f"unsupported key type {type(private_key).__name__}")
    return {"ctx": ctx, "sig": _b64encode(signature), "alg": alg, **params}


def launch_url(hub_url: str, params: dict[str, str]) -> str:
    """The full link (a GET) for ``params`` from :func:`sign_launch`.

    Send an encrypted context this way; a plain one belongs in :func:`launch_form`.
    """
    return hub_url.rstrip("/") + "/hub/lightbox/launch?" + urlencode(params)


def launch_form(hub_url: str, params: dict[str, str]) -> str:
    """An HTML page that posts ``params`` to the hub at once (what an EHR serves).

    The launch then travels in the request body: no URL, history entry or access
    log line holds it. Without script, the page shows one button.
    """
    action = html.escape(hub_url.rstrip("/") + "/hub/lightbox/launch", quote=True)
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k, quote=True)}" '
        f'value="{html.escape(v, quote=True)}">' for k, v in params.items())
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            "<title>Opening Lightbox</title></head><body>"
            f'<form id="launch" method="post" action="{action}">{fields}'
            '<button type="submit">Open in Lightbox</button></form>'
            "<script>document.getElementById('launch').submit()</script>"
            "</body></html>")


class NonceStore:
    """Nonces already used, in SQLite so a hub restart does not reopen a replay.

    Only a SHA-256 digest of each nonce is stored, with the time after which it
    may be forgotten (the link's expiry plus the clock-skew allowance: by then the
    link is refused as expired anyway).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS nonce "
                       "(value TEXT PRIMARY KEY, expires_at REAL NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5)

    def is_used(self, nonce: str, now: float) -> bool:
        """Whether ``nonce`` was used and is still remembered at ``now``."""
        with self._lock, self._connect() as db:
            row = db.execute("SELECT 1 FROM nonce WHERE value = ? AND "
                             "expires_at >= ?", (_digest(nonce), now)).fetchone()
        return row is not None

    def use(self, nonce: str, forget_after: float, now: float) -> bool:
        """Record ``nonce`` until ``forget_after``; ``False`` if it was used before."""
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM nonce WHERE expires_at < ?", (now,))
            try:
                db.execute("INSERT INTO nonce VALUES (?, ?)",
                           (_digest(nonce), forget_after))
            except sqlite3.IntegrityError:
                return False
        return True

    def release(self, nonce: str) -> None:
        """Forget ``nonce``: its link may be used again (until it expires)."""
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM nonce WHERE value = ?", (_digest(nonce),))


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class LaunchVerifier:
    """Check a launch, one small method per rule, in the order of :meth:`check`.

    :meth:`check` uses nothing up: a link opened before sign-in, by a user who may
    not open its study, or changed on the way, stays usable. :meth:`use` spends
    the link's one-time nonce, when its launch is carried out; :meth:`verify`
    does both.

    Parameters
    ----------
    secret : bytes or None
        The shared launch secret: checks ``hs256`` signatures and, through
        :func:`context_key`, decrypts ``enc=a256gcm`` contexts; ``None`` refuses
        both.
    public_key : cryptography public key or None
        The EHR's Ed25519 or RSA key; ``None`` refuses ``ed25519`` / ``rs256`` links.
    nonces : NonceStore
    max_age_s : int
        Longest lifetime (``exp - iat``) a link may claim.
    allow_plain_get : bool
        Accept a GET whose context is not encrypted (``launch_allow_plain_get``).
    clock_skew_s : int
        Seconds a link is still accepted after its ``exp``, and already before
        its ``iat`` (``launch_clock_skew_s``).
    """

    def __init__(self, secret: bytes | None, public_key: Any, nonces: NonceStore,
                 max_age_s: int = 300, clock: Any = time.time,
                 allow_plain_get: bool = False,
                 clock_skew_s: int = DEFAULT_CLOCK_SKEW_S) -> None:
        self.secret, self.public_key, self.nonces = secret, public_key, nonces
        self.max_age_s, self.clock = max_age_s, clock
        self.allow_plain_get = allow_plain_get
        self.clock_skew_s = clock_skew_s

    def verify(self, arguments: dict[str, str], method: str = "GET") -> LaunchContext:
        """:meth:`check` the launch, then :meth:`use` its nonce; its context."""
        context = self.check(arguments, method)
        self.use(context)
        return context

    def check(self, arguments: dict[str, str], method: str = "GET") -> LaunchContext:
        """Return the context of a valid, unused launch, or raise
        :class:`LaunchRefused`; the link stays unused (see :meth:`use`).

        ``method`` is how it came: ``"GET"`` (a link, its parameters in the URL)
        or ``"POST"`` (a form, its fields in the body).
        """
        ctx, signature, alg, enc = self.check_shape(arguments)
        self.check_transport(ctx, enc, method)
        self.check_signature(ctx, signature, alg)
        payload = self.check_payload(ctx, enc)
        now = self.clock()
        self.check_lifetime(payload, now)
        context = self.check_context(payload)
        self.check_unused(context, now)
        return context

    def check_shape(self, arguments: dict[str, str]) -> tuple[str, bytes, str, str]:
        ctx, sig, alg = (arguments.get(k, "") for k in ("ctx", "sig", "alg"))
        enc = arguments.get("enc", "")
        if not ctx or not sig or not alg:
            raise LaunchRefused(400, "malformed", "This launch link is incomplete: it "
                                "needs ctx, sig and alg. Open it again from the EHR.")
        if alg not in ALGORITHMS:
            # Shown on the page: the EHR's value is not echoed back.
            raise LaunchRefused(400, "malformed", "This launch link is signed with an "
                                "algorithm this hub does not accept (it accepts "
                                f"alg={' or '.join(sorted(ALGORITHMS))}). Ask the EHR "
                                "team.")
        if enc and enc not in ENCRYPTIONS:
            raise LaunchRefused(400, "malformed", "This launch link is encrypted in "
                                "a way this hub does not know (it expects "
                                "enc=a256gcm). Ask the EHR team.",
                                "unknown enc value")
        # Each base64url field must be the one canonical spelling of its bytes: a
        # lenient decoder would take a changed last character for the original.
        try:
            _b64decode(ctx)
            return ctx, _b64decode(sig), alg, enc
        except ValueError as err:
            raise _changed(f"ctx or sig is not canonical base64url (alg={alg})") \
                from err

    def check_transport(self, ctx: str, enc: str, method: str) -> None:
        if enc or method.upper() != "GET" or self.allow_plain_get:
            return
        if _plain_payload(ctx) is None:
            # Not a plain context either: most likely an encrypted one whose enc
            # was cut off. It is damaged (check_payload says so), not plain.
            return
        raise LaunchRefused(403, "plain-context-in-url", "This launch link carries "
                            "the patient's identifiers unencrypted in its address, "
                            "where browser history and proxy logs keep them, so it "
                            "was not opened. Ask the EHR team to encrypt the context "
                            "(enc=a256gcm) or to send the launch as a form POST.",
                            "unencrypted context in a GET")

    def check_signature(self, ctx: str, signature: bytes, alg: str) -> None:
        tampered = _changed(f"signature check failed (alg={alg})")
        if alg == "hs256":
            if self.secret is None:
                raise LaunchRefused(403, "alg-not-configured", "This hub accepts no "
                                    "shared-secret launch links. Ask the Lightbox "
                                    "administrators.", "no launch secret configured")
            expected = hmac.new(self.secret, ctx.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, signature):
                raise tampered
            return
        if self.public_key is None:
            raise LaunchRefused(403, "alg-not-configured", "This hub accepts no "
                                "public-key launch links. Ask the Lightbox "
                                "administrators.", f"no public key for alg={alg}")
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

        try:
            if alg == "ed25519" and isinstance(self.public_key, ed25519.Ed25519PublicKey):
                self.public_key.verify(signature, ctx.encode())
            elif alg == "rs256" and isinstance(self.public_key, rsa.RSAPublicKey):
                self.public_key.verify(signature, ctx.encode(), padding.PKCS1v15(),
                                       hashes.SHA256())
            else:
                raise LaunchRefused(403, "alg-mismatch", "This launch link is signed "
                                    "with a method this hub does not expect.",
                                    f"alg={alg} does not match the configured key")
        except InvalidSignature as err:
            raise tampered from err

    def check_payload(self, ctx: str, enc: str = "") -> dict[str, Any]:
        if enc:
            try:
                payload = json.loads(self.decrypt(ctx))
            except ValueError:
                payload = None
        else:
            payload = _plain_payload(ctx)
        if not isinstance(payload, dict):
            raise LaunchRefused(400, "malformed", "This launch link is damaged. Open "
                                "it again from the EHR.",
                                "context is not JSON" if enc else "context is not "
                                "base64url JSON (was enc=a256gcm cut off?)")
        return payload

    def decrypt(self, ctx: str) -> bytes:
        if self.secret is None:
            raise LaunchRefused(403, "enc-not-configured", "This hub cannot read "
                                "encrypted launch links: it has no shared launch "
                                "secret. Ask the Lightbox administrators.",
                                "enc=a256gcm without a launch secret")
        try:
            return decrypt_context(ctx, self.secret)
        except ValueError as err:
            raise LaunchRefused(403, "undecryptable", "This launch link could not be "
                                "decrypted: it was changed, or encrypted with a key "
                                "this hub does not share. Open the study again from "
                                "the EHR; if it fails again, ask the Lightbox "
                                "administrators.", f"context decryption failed: "
                                f"{err}") from None

    def check_lifetime(self, payload: dict[str, Any], now: float) -> None:
        iat, exp = payload.get("iat"), payload.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise LaunchRefused(400, "malformed", "This launch link has no validity "
                                "period.")
        if exp - iat > self.max_age_s:
            raise LaunchRefused(403, "lifetime-too-long", "This launch link claims to "
                                "be valid for longer than this hub allows.",
                                f"lifetime {exp - iat:.0f} s > {self.max_age_s} s")
        # The allowance is for clocks that disagree, not a longer life: a link is
        # accepted from iat - skew to exp + skew, both ends included.
        if iat > now + self.clock_skew_s:
            raise LaunchRefused(403, "not-yet-valid", "This launch link is dated in "
                                "the future; check the EHR's clock.",
                                f"issued {iat - now:.0f} s in the future")
        if exp < now - self.clock_skew_s:
            raise LaunchRefused(403, "expired", "This launch link has expired. Open "
                                "the study again from the EHR to get a fresh one.",
                                f"expired {now - exp:.0f} s ago")

    def check_context(self, payload: dict[str, Any]) -> LaunchContext:
        pid, iss = payload.get("pid"), payload.get("iss")
        acc, suid, nonce = payload.get("acc"), payload.get("suid"), payload.get("nonce")
        incomplete = LaunchRefused(400, "incomplete-context", "This launch link does "
                                   "not say which patient and study to open.")
        if not all(isinstance(v, str) and _IDENTIFIER.match(v) for v in (pid, iss)):
            raise incomplete
        if acc is None and suid is None:
            raise incomplete
        if acc is not None and not (isinstance(acc, str) and _IDENTIFIER.match(acc)):
            raise incomplete
        if suid is not None and not (isinstance(suid, str) and _UID.match(suid)):
            raise incomplete
        if not (isinstance(nonce, str) and _NONCE.match(nonce)):
            raise LaunchRefused(400, "malformed", "This launch link has no valid "
                                "one-time value.")
        return LaunchContext(str(pid), str(iss), acc, suid, nonce,
                             float(payload["exp"]))

    def check_unused(self, context: LaunchContext, now: float) -> None:
        """Refuse a link already used; use nothing up."""
        if self.nonces.is_used(context.nonce, now):
            raise _replayed()

    def use(self, context: LaunchContext) -> None:
        """Spend the link's one-time nonce: call when its launch is carried out.

        Raises
        ------
        LaunchRefused
            403 ``replayed`` if it was used meanwhile (another tab, another user).
        """
        if not self.nonces.use(context.nonce,
                               context.expires_at + self.clock_skew_s, self.clock()):
            raise _replayed()

    def release(self, context: LaunchContext) -> None:
        """Make a verified link usable again: its launch failed through no fault
        of its own (an archive or the user's server down). It still expires."""
        self.nonces.release(context.nonce)


def _changed(detail: str) -> LaunchRefused:
    """The refusal of a link changed after signing (``detail`` for the hub log)."""
    return LaunchRefused(403, "bad-signature", "This launch link was changed after "
                         "the EHR signed it, so it was not opened. Open the study "
                         "again from the EHR.", detail)


def _replayed() -> LaunchRefused:
    return LaunchRefused(403, "replayed", "This launch link was already used. Each "
                         "link opens once: open the study again from the EHR.")


def _plain_payload(ctx: str) -> Any:
    """The JSON object of a plain (unencrypted) ``ctx``, or ``None``."""
    try:
        payload = json.loads(_b64decode(ctx))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def load_public_key(path: str) -> Any:
    """Read an Ed25519 or RSA public key from a PEM file ('' gives ``None``)."""
    if not path:
        return None
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(Path(path).read_bytes())
