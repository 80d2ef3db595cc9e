"""Browser fixtures: Debian's Chromium driven by Playwright, and the embedded default."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightbox_hub.demo import EmbeddedDefault
from lightbox_hub.embedded.orthanc import orthanc_missing
from widget_fixtures import jupyter_lab  # noqa: F401  (the widget tests' lab)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what}; CI must install it (.ci/run)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def embedded_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    missing = orthanc_missing()
    if missing:
        _missing(missing)
    demo = EmbeddedDefault(tmp_path_factory.mktemp("demo")).start()
    yield demo
    demo.stop()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


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

