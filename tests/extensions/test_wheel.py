"""The wheel carries the prebuilt JupyterLab extension, so users need no Node.

The wheel is built from the checkout (after ``make setup`` built the extension) and
installed, without dependencies, into a virtual environment of its own; Jupyter then finds the
extension and the server extension there, from the wheel's files alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
LABEXTENSION = "share/jupyter/labextensions/@lightbox/lab"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--wheel-dir", str(out), str(REPOSITORY)],
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    (path,) = out.glob("lightbox-*.whl")
    return path, build


@pytest.fixture(scope="module")
def wheel(built: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    return built[0]


def test_the_build_finds_no_folder_it_does_not_know_how_to_ship(
        built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    path, build = built
    # setuptools warns of a folder inside a package that is no package, but holds a
    # file it was told to ship (here, as data-files): make setup and pip print it.
    assert "absent from the `packages` configuration" not in build.stderr, build.stderr
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    # Those files ship once, where Jupyter reads them; none inside the packages.
    assert not [n for n in names if n.startswith(("lightbox_extensions/server/etc/",
                                                  "lightbox_extensions/labextension/"))]


def test_wheel_holds_the_built_extension_and_the_server_config(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()

    data = [n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n]
    assert f"{LABEXTENSION}/package.json" in data
    assert any(re.fullmatch(rf"{LABEXTENSION}/static/remoteEntry\.\w+\.js", n)
               for n in data), data
    assert ("etc/jupyter/jupyter_server_config.d/lightbox_extensions.json"
            in data)
    assert "viewerlib/widgets/stack.js" in names


def test_jupyter_finds_the_extensions_installed_from_the_wheel(
        wheel: Path, tmp_path: Path) -> None:
    # A virtual environment of its own: pip install --prefix would first uninstall
    # the checkout's editable install from the running one.
    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)],
                   check=True, timeout=120)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(prefix / "bin" / "python"),
         "install", "--no-deps", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    (site,) = prefix.glob("lib/python*/site-packages")
    # Only the wheel's copy of our packages, and only its data folders, are seen.
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(site),
               JUPYTER_PATH=str(prefix / "share" / "jupyter"))

    lab = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True, text=True, timeout=120, env=env)
    located = subprocess.run(
        [sys.executable, "-c", "import lightbox_extensions; "
         "print(lightbox_extensions.__file__); "
         "import lightbox_extensions.server as s; "
         "print(s._jupyter_server_extension_points())"],
        capture_output=True, text=True, timeout=60, env=env)

    lab_text = re.sub(r"\x1b\[[0-9;]*m", "", lab.stdout + lab.stderr)
    section = lab_text.split(str(prefix / "share" / "jupyter" / "labextensions"))
    assert len(section) == 2, lab_text
    assert re.match(r"\s+@lightbox/lab v\S+ enabled\s+OK", section[1]), lab_text
    # jupyter_server reads the enabling file from <prefix>/etc/jupyter.
    enabling = json.loads((prefix / "etc" / "jupyter" / "jupyter_server_config.d"
                           / "lightbox_extensions.json").read_text())
    assert enabling["ServerApp"]["jpserver_extensions"] == {
        "lightbox_extensions.server": True}
    assert located.stdout.startswith(str(site)), located.stdout + located.stderr
    assert "lightbox_extensions.server" in located.stdout
