"""The image installs Lightbox with the steps CI runs (Makefile, target $(STAMP))."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def makefile_install_steps(text: str) -> list[list[str]]:
    """The commands of the $(STAMP) recipe, variables expanded, bookkeeping dropped."""
    variables = dict(re.findall(r"^(\w+)\s*[?:]?=\s*(.*?)\s*$", text, re.M))

    def expand(value: str) -> str:
        while (found := re.search(r"\$\((\w+)\)", value)):
            value = value.replace(found.group(0), variables[found.group(1)])
        return value

    recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", text, re.M)
    assert recipe, "Makefile has no $(STAMP) recipe"
    steps = []
    for line in recipe.group(1).splitlines():
        command = expand(line.strip().lstrip("@"))
        if command.startswith("touch "):
            continue
        # `test -x .venv/bin/python || python3 -m venv .venv`: the venv step.
        command = command.split("||")[-1].strip()
        steps.append(shlex.split(command))
    return steps


def dockerfile_install_steps(text: str) -> list[list[str]]:
    """The RUN lines that make the venv or call its pip (shell form)."""
    runs = [shlex.split(line[4:]) for line in text.splitlines()
            if line.startswith("RUN ")]
    return [run for run in runs if "venv" in run or "pip" in run]


def test_dockerfile_runs_the_makefile_install_steps() -> None:
    makefile = makefile_install_steps((ROOT / "Makefile").read_text())
    dockerfile = dockerfile_install_steps((ROOT / "deploy" / "Dockerfile").read_text())
    assert makefile, "no install steps found in the Makefile"
    assert dockerfile == makefile


@pytest.mark.parametrize("changed", [
    ("-e '.[test]'", "'.[hub]'"), ("--upgrade pip", "pip==24.0"),
    ("RUN python3 -m venv .venv\n", ""),
], ids=["other-extra", "pinned-pip", "no-venv"])
def test_a_diverging_dockerfile_is_caught(changed: tuple[str, str]) -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert changed[0] in text
    steps = dockerfile_install_steps(text.replace(*changed))
    assert steps != makefile_install_steps((ROOT / "Makefile").read_text())


def test_image_holds_the_curricula_and_the_kernel_startup_file() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    ignored = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().split()
    assert "COPY . /opt/lightbox" in text and "WORKDIR /opt/lightbox" in text
    assert not {"notebooks", "hub", "viewerlib", "extensions"} & set(ignored)
    # The hub names the startup file by its path in the same image.
    from lightbox_hub.deployment import KERNEL_STARTUP

    assert KERNEL_STARTUP.relative_to(ROOT) == Path("hub/kernel_startup.py")
