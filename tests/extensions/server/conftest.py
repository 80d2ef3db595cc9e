"""Fixtures shared by the server extension's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_fixtures import write_phantom_folder


@pytest.fixture(scope="session")
def phantom_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A folder archive with the current and prior CT head phantoms; their UIDs."""
    folder = tmp_path_factory.mktemp("phantom-archive")
    return folder, write_phantom_folder(folder)
