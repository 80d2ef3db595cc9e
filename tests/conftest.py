"""Fixtures shared by the whole suite: real services on loopback, and test data."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lightbox_hub.embedded.orthanc import EmbeddedOrthanc, orthanc_missing


def extra_data_directory() -> Path | None:
    """The real DICOM corpus named by ``LIGHTBOX_EXTRA_DATA``, if it is there."""
    value = os.environ.get("LIGHTBOX_EXTRA_DATA")
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def extra_data() -> Path:
    path = extra_data_directory()
    if path is None:
        pytest.skip("LIGHTBOX_EXTRA_DATA does not name a folder: the real DICOM corpus "
                    "is absent (CI sets it to ../shared/data/dicom)")
    return path


def _require_orthanc() -> None:
    missing = orthanc_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must install it (.ci/run)")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def orthanc_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        type[EmbeddedOrthanc]]:
    """Start extra Orthanc servers in a test; all are stopped at the end of the run."""
    _require_orthanc()
    started: list[EmbeddedOrthanc] = []
    root = tmp_path_factory.mktemp("orthanc")

    class _Factory(EmbeddedOrthanc):
        def __init__(self, name: str = "archive", credentials: tuple[str, str] | None = None,
                     http_port: int | None = None) -> None:
            # A folder per server: two tests may each start an archive of one name.
            super().__init__(root / str(len(started)), name, credentials, http_port)
            started.append(self)

    yield _Factory
    # Orthanc takes about 3.5 s to stop (its HTTP and DICOM servers poll for the
    # end): the servers of the whole run stop side by side, not one by one.
    with ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
        list(pool.map(EmbeddedOrthanc.stop, started))


CHROMIUM = os.environ.get("LIGHTBOX_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, and this
# machine's closed network refuses it many times a second.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"]


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what}; CI must install it (.ci/run)")
    pytest.skip(what)


# One Playwright (and one Chromium) for the whole run: its sync API cannot run twice
# at once in one process.
@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _missing(f"Chromium is not at {CHROMIUM} (Debian package 'chromium')")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()
