"""Where the lessons are, how to read them, and the archives the hub gives their kernels."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat

from lightbox_hub.config import LightboxHub
from lightbox_hub.demo import DEMO_ROLE_ARCHIVES
from lightbox_hub.roles import JOB_ROLES
from lightbox_hub.services import write_role_archives

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def lesson_paths() -> list[Path]:
    """Every lesson notebook, one folder per job role."""
    return sorted(NOTEBOOKS.glob("*/*.ipynb"))


def lesson_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def read_lesson(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def role_archives_file(demo_archives_file: Path, curriculum: str, folder: Path) -> Path:
    """The JSON file a kernel of the role whose curriculum this is gets from the hub.

    The hub's own function writes it, from the demo's role-to-archives table, as the
    spawner does before each server starts (``<state>/role-archives/<user>.json``).
    """
    role = next(r for r in JOB_ROLES if r.curriculum == curriculum)
    settings = LightboxHub(role_archives=json.loads(DEMO_ROLE_ARCHIVES))
    allowed = settings.archives_for_role(role.group)
    target = folder / "role-archives" / f"{role.group}.json"
    assert write_role_archives(demo_archives_file, allowed, target), (
        f"the demo gives the role {role.group} no archive")
    return target
