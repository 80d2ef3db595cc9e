"""Where the lessons are, and how to read them (shared by the notebook tests)."""
from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def lesson_paths() -> list[Path]:
    """Every lesson notebook, one folder per job role."""
    return sorted(NOTEBOOKS.glob("*/*.ipynb"))


def lesson_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def read_lesson(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)
