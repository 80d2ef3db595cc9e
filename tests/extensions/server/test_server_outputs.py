"""Notebooks saved through a real server with the extension keep no outputs on disk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import LightboxServer

PATIENT_ID = "LBX-0001"
# A tiny PNG signature plus text, standing in for an image output.
IMAGE = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAA"
         "BJRU5ErkJggg==")


def _notebook_with_outputs() -> dict[str, Any]:
    """What JupyterLab saves after a viewer ran: outputs, counts, widget state."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "widgets": {
                "application/vnd.jupyter.widget-state+json": {
                    "state": {"m": {"state": {"value": IMAGE}}},
                    "version_major": 2,
                    "version_minor": 0,
                }
            },
        },
        "cells": [
            {
                "cell_type": "markdown",
                "id": "intro",
                "metadata": {},
                "source": "# Lesson",
            },
            {
                "cell_type": "code",
                "id": "search",
                "metadata": {},
                "execution_count": 4,
                "source": "studies = source.search_for_studies(modality='CT')",
                "outputs": [
                    {
                        "output_type": "stream",
                        "name": "stdout",
                        "text": f"Test, Case ({PATIENT_ID}) CT HEAD\n",
                    },
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"image/png": IMAGE, "text/plain": PATIENT_ID},
                    },
                ],
            },
        ],
    }


def _save(server: LightboxServer, path: str) -> Path:
    reply = server.request(
        "PUT",
        f"/api/contents/{path}",
        {"type": "notebook", "format": "json", "content": _notebook_with_outputs()},
    )
    assert reply.status in (200, 201), reply.body
    return server.root / path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LightboxServer]:
    server = LightboxServer(tmp_path_factory.mktemp("outputs-server"), {}).start()
    yield server
    server.stop()


def test_a_saved_notebook_has_no_outputs_counts_or_widget_state_on_disk(
    server: LightboxServer,
) -> None:
    written = _save(server, "lesson.ipynb")

    text = written.read_text()
    for trace in (PATIENT_ID, IMAGE, "Test, Case"):
        assert trace not in text, trace
    notebook = json.loads(text)
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code[0]["outputs"] == []
    assert code[0]["execution_count"] is None
    # The code and the text stay: running the cells again brings the outputs back.
    assert "".join(code[0]["source"]) == (
        "studies = source.search_for_studies(modality='CT')"
    )
    assert "".join(notebook["cells"][0]["source"]) == "# Lesson"
    assert "widgets" not in notebook["metadata"]
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


def test_the_checkpoint_has_no_outputs_either(server: LightboxServer) -> None:
    _save(server, "checked.ipynb")
    reply = server.request("POST", "/api/contents/checked.ipynb/checkpoints")
    assert reply.status == 201

    checkpoints = list((server.root / ".ipynb_checkpoints").glob("checked-*.ipynb"))
    assert checkpoints
    assert all(PATIENT_ID not in path.read_text() for path in checkpoints)


def test_the_documented_setting_keeps_outputs_for_de_identified_work(
    tmp_path: Path,
) -> None:
    server = LightboxServer(
        tmp_path,
        {},
        arguments=("--LightboxServerExtension.save_notebook_outputs=True",),
    ).start()
    try:
        written = _save(server, "research.ipynb")
    finally:
        server.stop()

    code = json.loads(written.read_text())["cells"][1]
    assert code["execution_count"] == 4
    assert len(code["outputs"]) == 2
    assert "saved WITH their outputs" in server.log.read_text()
