"""Browser fixtures: Debian's Chromium driven by Playwright, and the embedded default."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightbox_hub.demo import EmbeddedDefault
from lightbox_hub.embedded.orthanc import orthanc_missing
from e2e_support import ARTIFACTS
from widget_fixtures import jupyter_lab  # noqa: F401  (the widget tests' lab)



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
