"""Every lesson runs from top to bottom against a real demo archive (Orthanc).

Twice: with the demo's TOML archives file (as ``LIGHTBOX_ARCHIVES`` on a laptop), and
with the JSON file of the role's archives that the hub's spawner gives the kernel.
"""
from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from lesson_files import lesson_id, lesson_paths, role_archives_file
from nbclient import NotebookClient

CELL_TIMEOUT_S = 300


@pytest.mark.orthanc
@pytest.mark.parametrize("archives", ["archives-toml", "hub-role-json"])
@pytest.mark.parametrize("path", lesson_paths(), ids=lesson_id)
def test_lesson_runs_top_to_bottom(path: Path, archives: str, demo_archives_file: Path,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    if archives == "hub-role-json":
        role_file = role_archives_file(demo_archives_file, path.parent.name, tmp_path)
        monkeypatch.setenv("LIGHTBOX_ARCHIVES", str(role_file))
    notebook = nbformat.read(str(path), as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    client.execute()
    elapsed = time.monotonic() - started

    # A check cell must give feedback, never a traceback (errors only where tagged).
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if "raises-exception" not in tags:
            assert not errors, f"{path.name}: {cell.source[:60]!r} raised"
    # Unanswered exercises say so, in the learner's words.
    feedback = [o for cell in notebook.cells if cell.cell_type == "code"
                and cell.source.startswith("check_") for o in cell.outputs]
    assert feedback, f"{path.name} shows no check feedback"
    assert elapsed < CELL_TIMEOUT_S
