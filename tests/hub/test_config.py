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


def test_the_launch_clock_skew_is_a_setting_the_link_checks_use(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from lightbox_hub.services import LightboxServices

    assert LightboxHub().launch_clock_skew_s == 30
    monkeypatch.setenv("LIGHTBOX_LAUNCH_CLOCK_SKEW_S", "5")
    assert LightboxHub().launch_clock_skew_s == 5
    config = Config()
    config.LightboxHub.launch_clock_skew_s = 0
    settings = LightboxHub(config=config, state_dir=str(tmp_path),
                           audit_log=str(tmp_path / "audit.jsonl"))
    assert settings.launch_clock_skew_s == 0
    assert LightboxServices(settings).verifier.clock_skew_s == 0


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
        ("role_panels", {"janitor": ["launcher"]}, "unknown roles"),
        ("role_panels", {"radiologist": ["terminal"]}, "unknown panels"),
        ("role_panels", {"radiologist": "launcher"}, "must be a list"),
        ("launch_clock_skew_s", -1, "0..300"),
        ("launch_clock_skew_s", 3600, "0..300"),
    ],
    ids=["public url scheme", "authenticator", "scopes without openid",
         "injected csp", "link lifetime", "unknown role", "zero idle timeout",
         "panels of an unknown role", "unknown panel", "panels not a list",
         "negative clock skew", "clock skew of an hour"],
)
def test_invalid_setting_raises(name: str, value, match: str) -> None:
    with pytest.raises(TraitError, match=match):
        setattr(LightboxHub(), name, value)


@pytest.mark.parametrize(
    ("role_panels", "role", "expected"),
    [
        (None, "radiologist", ["studies", "launcher", "app-view"]),
        (None, "security-admin", ["launcher"]),
        (None, None, []),
        ({"radiologist": ["launcher"]}, "radiologist", ["launcher"]),
        ({"radiologist": ["launcher"]}, "emergency", ["studies", "launcher",
                                                      "app-view"]),
        ({"*": ["studies"], "researcher": []}, "emergency", ["studies"]),
        ({"*": ["studies"], "researcher": []}, "researcher", []),
    ],
    ids=["default clinical role", "default security admin", "no role sees none",
         "configured role", "unlisted role sees all", "fallback", "none at all"],
)
def test_panels_for_role(role_panels, role, expected) -> None:
    config = Config()
    if role_panels is not None:
        config.LightboxHub.role_panels = role_panels
    assert LightboxHub(config=config).panels_for_role(role) == expected


def test_role_panels_come_from_the_environment_as_json(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTBOX_ROLE_PANELS", '{"radiologist": ["launcher"]}')
    assert LightboxHub().panels_for_role("radiologist") == ["launcher"]
    monkeypatch.setenv("LIGHTBOX_ROLE_PANELS", "radiologist=launcher")
    with pytest.raises(TraitError, match="LIGHTBOX_ROLE_PANELS is not JSON"):
        LightboxHub().role_panels  # noqa: B018 (the default is computed here)


@pytest.mark.parametrize(
    ("name", "variable"),
    [("launch_allow_plain_get", "LIGHTBOX_LAUNCH_ALLOW_PLAIN_GET"),
     ("allow_unisolated_spawner", "LIGHTBOX_ALLOW_UNISOLATED_SPAWNER")],
)
def test_safety_overrides_are_off_unless_the_environment_says_so(
        monkeypatch: pytest.MonkeyPatch, name: str, variable: str) -> None:
    monkeypatch.delenv(variable, raising=False)
    assert getattr(LightboxHub(), name) is False
    monkeypatch.setenv(variable, "0")
    assert getattr(LightboxHub(), name) is False
    monkeypatch.setenv(variable, "1")
    assert getattr(LightboxHub(), name) is True
    assert variable in LightboxHub.class_traits()[name].help
