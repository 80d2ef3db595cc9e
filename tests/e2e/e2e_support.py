"""Helpers the browser tests import (conftest.py files are not imported by name:
there are several, and the first one imported would shadow the others)."""
from __future__ import annotations

import os
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



# The flags of the suite's shared browser (tests/conftest.py), for browsers a test
# launches itself: a persistent profile cannot be opened in the shared one.
CHROMIUM = os.environ.get("LIGHTBOX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"]


def persistent_context(browser: Any, user_data_dir: Path, **options: Any) -> Any:
    """A Chromium context that keeps its profile (disk cache, storage) in a folder.

    A context of the shared browser lives in memory only, so a test could never
    find what it left behind; this one writes where a user's browser writes.
    """
    return browser.browser_type.launch_persistent_context(
        str(user_data_dir), executable_path=CHROMIUM, headless=True,
        args=CHROMIUM_FLAGS, **options)


def cache_entry_keys(user_data_dir: Path) -> list[str]:
    """The URLs of the entries in the profile's HTTP disk cache.

    Chromium's simple cache keeps one file per entry (``<hash>_0``): a 24-byte
    header (magic, version, key length as a little-endian uint32 at byte 12, key
    hash, padding), then the key, whose last space-separated part is the URL (the
    parts before it name the site the cache is partitioned by).
    """
    keys = []
    for path in sorted(user_data_dir.glob("**/Cache/Cache_Data/*_0")):
        data = path.read_bytes()
        if len(data) < 24:
            continue
        length = int.from_bytes(data[12:16], "little")
        key = data[24:24 + length].decode("ascii", "replace")
        keys.append(key.split(" ")[-1])
    return keys


def files_holding(user_data_dir: Path, needles: list[bytes]) -> dict[str, list[str]]:
    """Which files of the profile hold which of ``needles`` (as given, and in
    UTF-16, the encoding of browser storage strings)."""
    found: dict[str, list[str]] = {}
    variants = {needle: [needle, needle.decode("latin-1").encode("utf-16-le")]
                for needle in needles}
    for path in user_data_dir.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        hits = [needle.decode("latin-1")[:40] for needle, forms in variants.items()
                if any(form in data for form in forms)]
        if hits:
            found[str(path.relative_to(user_data_dir))] = hits
    return found
