"""Settings of the Lightbox server extension: panels from the hub, checked values."""

from __future__ import annotations

import pytest
from lightbox_extensions.server.app import PANELS, LightboxServerExtension
from traitlets import TraitError


@pytest.mark.parametrize(
    "environment, panels",
    [
        (None, list(PANELS)),
        ("launcher", ["launcher"]),
        ("studies, app-view,", ["studies", "app-view"]),
        ("", []),
    ],
    ids=["unset-all", "one", "spaces-and-trailing-comma", "empty-none"],
)
def test_panels_default_to_the_hub_environment(
    monkeypatch: pytest.MonkeyPatch, environment: str | None, panels: list[str]
) -> None:
    if environment is None:
        monkeypatch.delenv("LIGHTBOX_PANELS", raising=False)
    else:
        monkeypatch.setenv("LIGHTBOX_PANELS", environment)

    assert LightboxServerExtension().panels == panels


def test_unknown_panel_raises() -> None:
    with pytest.raises(TraitError, match="unknown Lightbox panel"):
        LightboxServerExtension(panels=["studies", "dashboards"])


@pytest.mark.parametrize(
    "folder", ["", "/", "../outside"], ids=["empty", "root", "parent"]
)
def test_launch_folder_outside_the_root_raises(folder: str) -> None:
    with pytest.raises(TraitError, match="below the server's root"):
        LightboxServerExtension(launch_folder=folder)


@pytest.mark.parametrize(
    "panels, view",
    [
        (["studies", "launcher", "app-view"], "app"),
        (["studies", "launcher"], "notebook"),
        ([], "notebook"),
    ],
    ids=["with-app-view-app", "without-app-view-notebook", "none-notebook"],
)
def test_default_view_follows_the_panels_of_the_role(
    panels: list[str], view: str
) -> None:
    assert LightboxServerExtension(panels=panels).default_view == view
