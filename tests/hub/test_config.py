"""LightboxHub settings: environment defaults, validation, role archives."""
from __future__ import annotations

import pytest
from traitlets import TraitError
from traitlets.config import Config

from lightbox_hub.config import LightboxHub


def test_every_setting_is_configurable_with_help() -> None:
    traits = LightboxHub.class_traits(config=True)
    assert len(traits) >= 20
    for name, trait in traits.items():
        assert len(trait.help.split()) >= 8, name


def test_environment_fills_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTBOX_IDLE_TIMEOUT_S", "120")
    monkeypatch.setenv("LIGHTBOX_FRAME_ANCESTORS", "'self' https://ehr.example.org")
    monkeypatch.setenv("LIGHTBOX_ROLE_ARCHIVES", '{"researcher": ["Teaching"]}')
    settings = LightboxHub()
    assert settings.idle_timeout_s == 120 and settings.cull_every_s == 60
    assert settings.frame_ancestors == ["'self'", "https://ehr.example.org"]
    assert settings.archives_for_role("researcher") == ["Teaching"]


def test_config_file_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTBOX_IDLE_TIMEOUT_S", "120")
    config = Config()
    config.LightboxHub.idle_timeout_s = 900
    assert LightboxHub(config=config).idle_timeout_s == 900


@pytest.mark.parametrize(
    ("role_archives", "role", "expected"),
    [
        ({"*": ["*"]}, "radiologist", ["*"]),
        ({"researcher": ["Teaching archive"], "*": ["Demo archive"]}, "researcher",
         ["Teaching archive"]),
        ({"researcher": ["Teaching archive"], "*": ["Demo archive"]}, "emergency",
         ["Demo archive"]),
        ({"researcher": ["Teaching archive"]}, "emergency", []),
        ({"*": ["*"]}, None, []),
    ],
    ids=["all see all", "researcher teaching only", "others clinical",
         "unlisted role sees none", "no role sees none"],
)
def test_archives_for_role(role_archives, role, expected) -> None:
    config = Config()
    config.LightboxHub.role_archives = role_archives
    assert LightboxHub(config=config).archives_for_role(role) == expected


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("public_url", "ftp://x", "http"),
        ("authenticator", "saml", "oidc' or 'ldap"),
        ("oidc_scopes", ["profile"], "openid"),
        ("frame_ancestors", ["https://ehr.example.org; script-src *"], "origins"),
        ("launch_max_age_s", 86400, "10..3600"),
        ("role_archives", {"janitor": ["*"]}, "unknown roles"),
        ("idle_timeout_s", 0, "at least 1"),
    ],
    ids=["public url scheme", "authenticator", "scopes without openid",
         "injected csp", "link lifetime", "unknown role", "zero idle timeout"],
)
def test_invalid_setting_raises(name: str, value, match: str) -> None:
    with pytest.raises(TraitError, match=match):
        setattr(LightboxHub(), name, value)
