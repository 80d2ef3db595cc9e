"""The notebooks the server extension writes (viewer launches) and lists (lessons)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

# The template's code names the study with this placeholder, replaced by a literal.
UID_PLACEHOLDER = "__STUDY_INSTANCE_UID__"
_UID = re.compile(r"^[0-9]+(\.[0-9]+){1,63}$")
_HEADING = re.compile(r"^#\s+(.+)$", re.MULTILINE)

DEFAULT_TEMPLATE: dict[str, Any] = {
    "cells": [
        {
            "cell_type": "markdown",
            "id": "title",
            "metadata": {},
            "source": (
                "# Study viewer\n\nThe study opens below. Only archives your role "
                "may use are searched."
            ),
        },
        {
            "cell_type": "code",
            "id": "viewer",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": (
                "import viewerlib\n\n"
                f'STUDY_INSTANCE_UID = "{UID_PLACEHOLDER}"\n'
                "viewer = viewerlib.open(STUDY_INSTANCE_UID, "
                "source=viewerlib.connect())\n"
                "viewer"
            ),
        },
    ],
    "metadata": {
        "kernelspec": {
            "name": "python3",
            "language": "python",
            "display_name": "Python 3 (ipykernel)",
        }
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def check_study_instance_uid(value: object) -> str:
    """Return ``value`` if it is a valid (0020,000D) *Study Instance UID*.

    Raises
    ------
    ValueError
        If it is not a string of dot-separated digits (PS3.5 9.1).
    """
    if not isinstance(value, str) or len(value) > 64 or not _UID.fullmatch(value):
        raise ValueError(
            "study_instance_uid must be a UID: digits and dots, at most "
            "64 characters (PS3.5 9.1)"
        )
    return value


def read_template(path: str) -> dict[str, Any]:
    """The notebook template at ``path``, or the built-in one when ``path`` is empty."""
    if not path:
        return copy.deepcopy(DEFAULT_TEMPLATE)
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))


def viewer_notebook(
    template: dict[str, Any], study_instance_uid: str, app_view: bool
) -> dict[str, Any]:
    """A copy of ``template`` that opens ``study_instance_uid`` (UID only).

    ``app_view`` marks the notebook so the JupyterLab extension hides its code and
    runs it as soon as it opens.
    """
    uid = check_study_instance_uid(study_instance_uid)
    notebook = copy.deepcopy(template)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        cell["source"] = text.replace(UID_PLACEHOLDER, uid)
        cell["outputs"], cell["execution_count"] = [], None
    metadata = notebook.setdefault("metadata", {})
    metadata["lightbox"] = {"app_view": bool(app_view), "kind": "study-viewer"}
    return notebook


def list_lessons(folder: Path, relative_to: Path) -> list[dict[str, str]]:
    """The notebooks in ``folder``, in name order, titled by their first heading.

    Paths are relative to ``relative_to`` (the server's root), with ``/`` separators.
    """
    lessons = []
    for path in sorted(folder.glob("*.ipynb")):
        title = path.stem.replace("-", " ").replace("_", " ")
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            cells = []
        for cell in cells:
            if cell.get("cell_type") == "markdown":
                source = cell.get("source", "")
                match = _HEADING.search(
                    "".join(source) if isinstance(source, list) else source
                )
                if match:
                    title = match.group(1).strip()
                break
        lessons.append(
            {"path": path.relative_to(relative_to).as_posix(), "title": title}
        )
    return lessons
