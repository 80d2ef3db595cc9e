"""Every lesson follows the lesson outline and is committed without outputs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from lesson_files import NOTEBOOKS, lesson_id, lesson_paths, read_lesson

REQUIRED_SECTIONS = ("## Overview", "## Prerequisites", "## Imports", "## Summary",
                     "## What's next", "## Further resources", "## Data")
# Job roles of hub/roles.py; each has a curriculum folder of 1-3 lessons.
CURRICULA = ("radiologist", "emergency", "neurologist", "orthopaedics", "researcher",
             "pacs-admin", "security-admin", "network-admin", "project-lead")


def _markdown(notebook) -> list[str]:
    return [c.source for c in notebook.cells if c.cell_type == "markdown"]


def test_every_role_has_a_curriculum_of_one_to_three_lessons() -> None:
    for folder in CURRICULA:
        lessons = list((NOTEBOOKS / folder).glob("*.ipynb"))
        assert 1 <= len(lessons) <= 3, folder


def test_curricula_match_the_hub_roles() -> None:
    from lightbox_hub.roles import JOB_ROLES

    assert {role.curriculum for role in JOB_ROLES} == set(CURRICULA)


@pytest.mark.parametrize("path", lesson_paths(), ids=lesson_id)
def test_lesson_has_every_required_section(path: Path) -> None:
    text = "\n".join(_markdown(read_lesson(path)))
    assert text.startswith("# "), "a lesson starts with its title"
    missing = [s for s in REQUIRED_SECTIONS if not re.search(
        rf"^{re.escape(s)}\s*$", text, re.MULTILINE)]
    assert not missing, f"{path.name} lacks {missing}"
    assert re.search(r"Time to learn\**: \d+ minutes", text)
    minutes = int(re.search(r"Time to learn\**: (\d+)", text).group(1))
    assert 20 <= minutes <= 45
    overview = text.split("## Overview", 1)[1].split("## ", 1)[0]
    objectives = re.findall(r"^\d+\. ", overview, re.MULTILINE)
    sections = re.findall(r"^## \d+\. ", text, re.MULTILINE)
    assert objectives and len(objectives) == len(sections), \
        "one numbered ## section per objective"
    assert "licence" in text.split("## Data", 1)[1].lower()


@pytest.mark.parametrize("path", lesson_paths(), ids=lesson_id)
def test_every_objective_ends_with_an_exercise_check_and_solution(path: Path) -> None:
    cells = read_lesson(path).cells
    starts = [i for i, c in enumerate(cells) if c.cell_type == "markdown"
              and re.match(r"## \d+\. ", c.source)]
    ends = starts[1:] + [next(i for i, c in enumerate(cells) if c.cell_type ==
                              "markdown" and c.source.startswith("## Summary"))]
    for start, end in zip(starts, ends):
        section = cells[start:end]
        title = section[0].source.splitlines()[0]
        assert any(c.cell_type == "markdown" and "### Exercise" in c.source
                   for c in section), f"{title}: no exercise"
        assert any(c.cell_type == "code" and c.source.startswith("check")
                   for c in section), f"{title}: no check cell"
        assert any(c.cell_type == "markdown" and c.source.startswith(
            "<details><summary>Solution") for c in section), f"{title}: no solution"


@pytest.mark.parametrize("path", lesson_paths(), ids=lesson_id)
def test_lesson_is_committed_without_outputs(path: Path) -> None:
    for cell in read_lesson(path).cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, \
                f"{path.name}: clear the outputs before committing"


@pytest.mark.parametrize("path", lesson_paths(), ids=lesson_id)
def test_lesson_uses_only_fake_patients(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    names = set(re.findall(r"Test\^\w+", text))
    assert names <= {"Test^Case", "Test^Stroke", "Test^Fracture"}
