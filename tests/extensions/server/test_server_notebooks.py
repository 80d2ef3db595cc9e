"""Viewer notebooks from a template, and the lesson list of a curriculum folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lightbox_extensions.server.notebooks import (
    DEFAULT_TEMPLATE,
    UID_PLACEHOLDER,
    check_study_instance_uid,
    list_lessons,
    read_template,
    viewer_notebook,
)

UID = "1.2.826.0.1.3680043.8.498.1"


def test_viewer_notebook_names_the_study_and_leaves_the_template_alone() -> None:
    notebook = viewer_notebook(DEFAULT_TEMPLATE, UID, app_view=True)

    code = "".join(c["source"] for c in notebook["cells"] if c["cell_type"] == "code")
    assert f'STUDY_INSTANCE_UID = "{UID}"' in code
    assert UID_PLACEHOLDER not in code
    assert notebook["metadata"]["lightbox"]["app_view"] is True
    assert "lightbox" not in DEFAULT_TEMPLATE["metadata"]


def test_viewer_notebook_drops_outputs_of_a_site_template(tmp_path: Path) -> None:
    template = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": 3,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "old"}],
                "source": ["uid = '", UID_PLACEHOLDER, "'"],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "viewer.ipynb"
    path.write_text(json.dumps(template))

    cell = viewer_notebook(read_template(str(path)), UID, app_view=False)["cells"][0]

    assert cell["source"] == f"uid = '{UID}'"
    assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize(
    "value",
    ["", "1", "1.2.a", "1.2.3\n", "1." + "2" * 70, None],
    ids=["empty", "one-component", "letter", "newline", "too-long", "none"],
)
def test_check_study_instance_uid_raises(value: object) -> None:
    with pytest.raises(ValueError, match="must be a UID"):
        check_study_instance_uid(value)


def test_list_lessons_reads_the_first_heading(tmp_path: Path) -> None:
    folder = tmp_path / "radiologist"
    folder.mkdir()
    (folder / "02-b.ipynb").write_text(json.dumps({"cells": []}))
    (folder / "01-a.ipynb").write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "markdown",
                        "source": ["# Your first study\n", "text"],
                    }
                ]
            }
        )
    )

    lessons = list_lessons(folder, tmp_path)

    assert lessons == [
        {"path": "radiologist/01-a.ipynb", "title": "Your first study"},
        {"path": "radiologist/02-b.ipynb", "title": "02 b"},
    ]
