"""Every lesson's solutions, run in place of the learner, make every check say Correct.

This proves, end to end against the demo archive, that each check accepts the right
answer the solution gives; the unit tests in tests/viewerlib/teaching show that
wrong answers are rejected. Like the run tests, with the demo's TOML archives file and
with the JSON file of the role's archives that the hub gives the kernel.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from lesson_files import lesson_id, lesson_paths, role_archives_file
from nbclient import NotebookClient

_PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def solved(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with each solution's code run just before its check cells."""
    cells = list(notebook.cells)
    index = 0
    while index < len(cells):
        cell = cells[index]
        if cell.cell_type == "markdown" and cell.source.startswith("<details>"):
            blocks = _PYTHON_BLOCK.findall(cell.source)
            first_check = index
            while first_check > 0 and cells[first_check - 1].cell_type == "code" and \
                    cells[first_check - 1].source.startswith("check"):
                first_check -= 1
            if blocks and first_check < index:
                cells.insert(first_check, nbformat.v4.new_code_cell("\n".join(blocks)))
                index += 1
        index += 1
    notebook.cells = cells
    return notebook


@pytest.mark.orthanc
@pytest.mark.parametrize("archives", ["archives-toml", "hub-role-json"])
@pytest.mark.parametrize("path", lesson_paths(), ids=lesson_id)
def test_solutions_pass_every_check(path: Path, archives: str, demo_archives_file: Path,
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    if archives == "hub-role-json":
        role_file = role_archives_file(demo_archives_file, path.parent.name, tmp_path)
        monkeypatch.setenv("LIGHTBOX_ARCHIVES", str(role_file))
    notebook = solved(nbformat.read(str(path), as_version=4))
    for cell in notebook.cells:
        cell.pop("id", None)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    verdicts = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.startswith("check"):
            text = "".join(str(o.get("data", {}).get("text/plain", o.get("text", "")))
                           for o in cell.outputs)
            verdicts.append((cell.source, text))
    assert verdicts, f"{path.name} has no check cells"
    wrong = [(source, text) for source, text in verdicts if "correct=True" not in text]
    assert not wrong, f"{path.name}: solutions did not pass {wrong}"
