"""The prebuilt JupyterLab extension: built by make setup, enabled, versions agreed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE = REPOSITORY / "extensions" / "labextension"
DIST = SOURCE / "dist"


def test_built_assets_exist_and_name_their_entry_point() -> None:
    manifest = json.loads((DIST / "package.json").read_text())

    assert manifest["name"] == "@lightbox/lab"
    assert (DIST / manifest["jupyterlab"]["_build"]["load"]).is_file()
    assert list((DIST / "static").glob("remoteEntry.*.js"))


def test_jupyter_lists_the_extension_as_enabled() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, NO_COLOR="1"),
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)

    assert re.search(r"@lightbox/lab v\S+ enabled\s+OK", text), text


def test_jupyter_lists_the_server_extension_as_enabled() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)

    assert re.search(r"lightbox_extensions\.server\s+enabled", text), text
    assert re.search(r"lightbox_extensions\.server\s+OK", text), text


def test_python_and_javascript_versions_agree() -> None:
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    source = json.loads((SOURCE / "package.json").read_text())
    built = json.loads((DIST / "package.json").read_text())

    assert source["version"] == built["version"] == project["version"]
