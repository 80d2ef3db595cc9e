"""Groups from the identity provider decide the job role and its workspace."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lightbox_hub.roles import JOB_ROLES, role_for_groups
from lightbox_hub.settings import prepare_workspace


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["radiologist"], "radiologist"),
        (["billing", "neurologist"], "neurologist"),
        (["researcher", "radiologist"], "radiologist"),  # table order decides
        (["billing"], None),
        ([], None),
    ],
    ids=["one role", "role among others", "two roles", "no role", "no groups"],
)
def test_role_for_groups(groups: list[str], expected: str | None) -> None:
    role = role_for_groups(groups)
    assert (role.group if role else None) == expected


def test_every_role_has_its_own_curriculum_folder() -> None:
    assert len({role.curriculum for role in JOB_ROLES}) == len(JOB_ROLES)


def _spawner(tmp_path: Path, groups: list[str]) -> SimpleNamespace:
    user = SimpleNamespace(name="radiologist",
                           groups=[SimpleNamespace(name=g) for g in groups])
    return SimpleNamespace(user=user, home_dir_template=str(tmp_path / "{username}"),
                           default_url="/lab", environment={"PATH": "/bin"})


def test_radiologist_workspace_opens_on_the_first_lesson(tmp_path: Path) -> None:
    spawner = _spawner(tmp_path, ["radiologist"])
    prepare_workspace(spawner)
    assert spawner.default_url == "/lab/tree/radiologist/01-first-study.ipynb"
    assert (tmp_path / "radiologist" / "radiologist" / "01-first-study.ipynb").exists()
    assert spawner.environment["LIGHTBOX_ROLE"] == "radiologist"


def test_workspace_keeps_the_learners_edits(tmp_path: Path) -> None:
    spawner = _spawner(tmp_path, ["radiologist"])
    prepare_workspace(spawner)
    lesson = tmp_path / "radiologist" / "radiologist" / "01-first-study.ipynb"
    lesson.write_text("edited")
    prepare_workspace(spawner)
    assert lesson.read_text() == "edited"
