"""Helpers the browser tests import (conftest.py files are not imported by name:
there are several, and the first one imported would shadow the others)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def run_all_and_wait_for_viewer(page: Any) -> Any:
    """Run every cell of the open notebook; return the first painted stack viewer.

    Shift+Enter before the kernel is attached does nothing, so wait for "Idle" first.
    """
    page.wait_for_selector(".jp-NotebookPanel:visible .jp-CodeCell", timeout=60_000)
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(
        timeout=90_000)
    page.get_by_text("Run", exact=True).first.click()
    page.get_by_text("Run All Cells", exact=True).click()
    viewer = page.locator(".lbx-stack[data-painted='true']").first
    viewer.wait_for(timeout=120_000)
    return viewer

