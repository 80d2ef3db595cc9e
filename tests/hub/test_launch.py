"""Launch links: each rule of the verifier, as a table of link -> outcome."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from lightbox_hub.launch import LaunchRefused, LaunchVerifier, NonceStore, sign_launch

SECRET = b"s" * 32
NOW = 1_800_000_000.0
ED_KEY = ed25519.Ed25519PrivateKey.generate()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CONTEXT = {"pid": "LBX-0001", "iss": "LIGHTBOX-DEMO", "acc": "LBXACC01"}


def _signed(**options: Any) -> dict[str, str]:
    options.setdefault("now", NOW)
    context = options.pop("context", CONTEXT)
    if "private_key" not in options:
        options.setdefault("secret", SECRET)
    return sign_launch(context, **options)


def _tamper(params: dict[str, str]) -> dict[str, str]:
    other = _signed(context=dict(CONTEXT, acc="LBXACC00"), secret=b"x" * 32)
    return dict(params, ctx=other["ctx"])


CASES = [
    ("hmac link", lambda: _signed(), {}, None),
    ("ed25519 link", lambda: _signed(private_key=ED_KEY), {"key": ED_KEY}, None),
    ("rsa link", lambda: _signed(private_key=RSA_KEY), {"key": RSA_KEY}, None),
    ("study uid instead of accession",
     lambda: _signed(context={"pid": "P1", "iss": "X", "suid": "1.2.3.4"}), {}, None),
    ("payload changed", lambda: _tamper(_signed()), {}, "bad-signature"),
    ("signature of another key", lambda: _signed(private_key=ed25519.
     Ed25519PrivateKey.generate()), {"key": ED_KEY}, "bad-signature"),
    ("expired", lambda: _signed(now=NOW - 600), {}, "expired"),
    ("dated in the future", lambda: _signed(now=NOW + 600), {}, "not-yet-valid"),
    ("lifetime above the maximum", lambda: _signed(lifetime_s=3600), {},
     "lifetime-too-long"),
    ("no secret configured", lambda: _signed(), {"secret": None}, "alg-not-configured"),
    ("public key link without a key", lambda: _signed(private_key=ED_KEY), {},
     "alg-not-configured"),
    ("rsa link, ed25519 key configured", lambda: _signed(private_key=RSA_KEY),
     {"key": ED_KEY}, "alg-mismatch"),
    ("no study named", lambda: _signed(context={"pid": "P1", "iss": "X"}), {},
     "incomplete-context"),
    ("no issuer", lambda: _signed(context={"pid": "P1", "acc": "A"}), {},
     "incomplete-context"),
    ("malformed study uid",
     lambda: _signed(context={"pid": "P1", "iss": "X", "suid": "1.2.x"}), {},
     "incomplete-context"),
    ("unknown algorithm", lambda: dict(_signed(), alg="none"), {}, "malformed"),
    ("no signature", lambda: dict(_signed(), sig=""), {}, "malformed"),
]


@pytest.mark.parametrize(("link", "config", "refusal"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_launch_link_policy(tmp_path: Path, link, config: dict[str, Any],
                            refusal: str | None) -> None:
    key = config.get("key")
    verifier = LaunchVerifier(config.get("secret", SECRET),
                              key.public_key() if key is not None else None,
                              NonceStore(tmp_path / "n.sqlite"), max_age_s=300,
                              clock=lambda: NOW)
    if refusal is None:
        context = verifier.verify(link())
        assert context.patient_id in {"LBX-0001", "P1"} and context.nonce
    else:
        with pytest.raises(LaunchRefused) as raised:
            verifier.verify(link())
        assert raised.value.reason == refusal
        assert raised.value.status in {400, 403}


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
