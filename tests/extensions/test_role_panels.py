"""The hub tells each user's server which Lightbox panels the role sees."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from lightbox_extensions.server.app import PANELS
from lightbox_hub.config import DEFAULT_ROLE_PANELS
from lightbox_hub.config import PANELS as HUB_PANELS
from lightbox_hub.settings import prepare_workspace


@pytest.mark.parametrize(
    "groups, panels",
    [
        (["radiologist"], "studies,launcher,app-view"),
        (["security-admin"], "launcher"),
        (["network-admin"], "launcher"),
        (["billing"], ""),
    ],
    ids=[
        "radiologist-all",
        "security-admin-lessons",
        "network-admin-lessons",
        "no-role-none",
    ],
)
def test_prepare_workspace_sets_the_panels_of_the_role(
    tmp_path: Path, groups: list[str], panels: str
) -> None:
    user = SimpleNamespace(name="ana", groups=[SimpleNamespace(name=g) for g in groups])
    spawner = SimpleNamespace(
        user=user,
        home_dir_template=str(tmp_path / "{username}"),
        default_url="/lab",
        environment={"PATH": "/bin"},
    )

    prepare_workspace(spawner)

    assert spawner.environment["LIGHTBOX_PANELS"] == panels
    assert spawner.environment["PATH"] == "/bin"


def test_prepare_workspace_follows_the_configured_table(tmp_path: Path) -> None:
    user = SimpleNamespace(name="ana", groups=[SimpleNamespace(name="radiologist")])
    spawner = SimpleNamespace(user=user, home_dir_template=str(tmp_path / "{username}"),
                              default_url="/lab", environment={})

    prepare_workspace(spawner, {"radiologist": ["launcher", "app-view"]})

    assert spawner.environment["LIGHTBOX_PANELS"] == "launcher,app-view"


def test_hub_and_server_extension_agree_on_the_panel_names() -> None:
    assert HUB_PANELS == PANELS
    assert all(set(panels) <= set(PANELS) for panels in DEFAULT_ROLE_PANELS.values())
