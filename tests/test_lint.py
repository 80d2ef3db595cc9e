"""The whole tree is free of the mistakes a linter finds for certain.

Syntax errors, undefined names and unused imports or variables (ruff's E9, F63, F7,
F82, F401, F811, F841), in the packages, tests, benchmarks and notebooks alike. A
lesson's imports cell may import what only its hidden solutions use, so F401 is not
applied to notebooks.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = "E9,F63,F7,F82,F401,F811,F841"


def test_no_certain_mistakes() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    result = subprocess.run(
        [ruff, "check", "--select", RULES, "--output-format", "concise",
         "--per-file-ignores", "*.ipynb:F401",
         "--exclude", ".venv,node_modules,build", str(ROOT)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
