"""Notebooks are saved without their outputs: no patient data stays in the home folder.

A viewer's or a lesson's outputs show patient names, IDs, study descriptions and
images; JupyterLab saves (and autosaves) them with the notebook, and the file would
outlive the session. The server extension registers :func:`strip_outputs_before_save`
as a pre-save hook of the contents manager, so every save through Jupyter writes code
and text only; running the cells again brings the outputs back.
"""

from __future__ import annotations

from typing import Any

from tornado import web

# Notebook metadata written from kernel output: the saved state of every widget
# ("Save widget state automatically"), which holds the images a viewer showed.
OUTPUT_METADATA = ("widgets",)


def strip_outputs(notebook: dict[str, Any]) -> int:
    """Remove, in place, every code cell's outputs and execution count.

    Parameters
    ----------
    notebook : dict
        A notebook in the nbformat 4 JSON model.

    Returns
    -------
    int
        How many outputs were removed.

    Examples
    --------
    >>> notebook = {"metadata": {}, "cells": [{"cell_type": "code",
    ...     "execution_count": 3, "outputs": [{"output_type": "stream"}]}]}
    >>> strip_outputs(notebook), notebook["cells"][0]
    (1, {'cell_type': 'code', 'execution_count': None, 'outputs': []})
    """
    removed = 0
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        removed += len(cell.get("outputs") or [])
        cell["outputs"] = []
        cell["execution_count"] = None
    metadata = notebook.get("metadata") or {}
    for key in OUTPUT_METADATA:
        metadata.pop(key, None)
    return removed


def strip_outputs_before_save(model: dict[str, Any], path: str, **_: Any) -> None:
    """Pre-save hook of a Jupyter contents manager: notebooks lose their outputs.

    A notebook that cannot be cleaned is refused (HTTP 500 with the reason) rather
    than written with its outputs; Jupyter saves anyway when a hook fails otherwise.
    """
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    try:
        strip_outputs(model["content"])
    except (AttributeError, TypeError) as err:
        text = (
            f"{path} was not saved: its outputs could not be removed ({err}). "
            "Clear the outputs (Edit > Clear Outputs of All Cells) and save again."
        )
        # Jupyter's API answers with log_message unformatted: no %-arguments.
        raise web.HTTPError(
            500, text.replace("%", "%%"), reason="Outputs not removed"
        ) from err
