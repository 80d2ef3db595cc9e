"""The user pod's start step, run here as a process: what the hub sent becomes files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lightbox_hub.deployment import ARCHIVES_ENV, SERVER_CONFIG_ENV, _pack

_SHOW = ("import json, os; print(json.dumps({k: os.environ.get(k) for k in "
         "('LIGHTBOX_ARCHIVES', 'TMPDIR', 'JUPYTER_CONFIG_PATH', "
         f"'{ARCHIVES_ENV}', '{SERVER_CONFIG_ENV}')}}))")


def _pod_start(tmp_path: Path, command: list[str], **extra: str
               ) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home),
           "LIGHTBOX_RUNTIME_DIR": str(tmp_path / "run"),
           "LIGHTBOX_ROLE": "radiologist",
           ARCHIVES_ENV: _pack(json.dumps({"archive": [{"name": "Main PACS"}]})),
           SERVER_CONFIG_ENV: _pack('{"ServerApp": {}}'), **extra}
    return subprocess.run([sys.executable, "-m", "lightbox_hub.deployment", "pod-start",
                           "--", *command], capture_output=True, text=True, env=env,
                          timeout=60)


def test_pod_start_writes_files_copies_lessons_and_runs_the_server(tmp_path: Path
                                                                   ) -> None:
    stale = tmp_path / "home" / "ehr-launch"
    stale.mkdir(parents=True)
    (stale / "study-1.ipynb").write_text("{}")
    result = _pod_start(tmp_path, [sys.executable, "-c", _SHOW])
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    run = tmp_path / "run"
    assert json.loads(Path(seen["LIGHTBOX_ARCHIVES"]).read_text())["archive"][0][
        "name"] == "Main PACS"
    assert seen["TMPDIR"] == str(run / "scratch") and (run / "scratch").is_dir()
    assert (run.stat().st_mode & 0o077) == 0
    assert json.loads((Path(seen["JUPYTER_CONFIG_PATH"]) / "jupyter_server_config.json"
                       ).read_text()) == {"ServerApp": {}}
    # The packed values are not passed on to the server and its kernels.
    assert seen[ARCHIVES_ENV] is None and seen[SERVER_CONFIG_ENV] is None
    assert not stale.exists()
    lessons = sorted((tmp_path / "home" / "radiologist").glob("*.ipynb"))
    assert lessons, "the radiologist curriculum was not copied"


def test_pod_start_keeps_a_users_edits(tmp_path: Path) -> None:
    assert _pod_start(tmp_path, ["true"]).returncode == 0
    lesson = sorted((tmp_path / "home" / "radiologist").glob("*.ipynb"))[0]
    lesson.write_text("edited")
    assert _pod_start(tmp_path, ["true"]).returncode == 0
    assert lesson.read_text() == "edited"


def test_pod_start_without_a_command_raises(tmp_path: Path) -> None:
    result = _pod_start(tmp_path, [])
    assert result.returncode != 0 and "usage" in result.stderr


def test_a_kernel_runs_the_startup_file_named_by_pythonstartup(tmp_path: Path) -> None:
    # What the KubeSpawner hook relies on instead of a file in the user's home.
    from jupyter_client.manager import start_new_kernel

    startup = tmp_path / "startup.py"
    startup.write_text("LIGHTBOX_STARTUP_RAN = 'yes'\n")
    env = dict(os.environ, PYTHONSTARTUP=str(startup), HOME=str(tmp_path))
    outputs: list[str] = []
    manager, client = start_new_kernel(kernel_name="python3", env=env,
                                       cwd=str(tmp_path))
    try:
        reply = client.execute_interactive(
            "print(LIGHTBOX_STARTUP_RAN)", timeout=30,
            output_hook=lambda m: outputs.append(m["content"].get("text", "")))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok"
    assert "yes" in "".join(outputs)
