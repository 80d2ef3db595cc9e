"""The demo command fails with one clear line, not a traceback."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from lightbox_hub.settings import HubConfigurationError, discover_identity_provider


def test_port_in_use_gives_one_clear_line(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "lightbox_hub.cli", "demo", "--port", str(port),
             "--state-dir", str(tmp_path / "state")],
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists()


def test_identity_provider_that_does_not_answer_raises() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(HubConfigurationError,
                       match=r"does not answer .*correct LIGHTBOX_OIDC_ISSUER"):
        discover_identity_provider(f"http://127.0.0.1:{port}", timeout=2)


def _demo(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lightbox_hub.cli", "demo", *arguments],
                          capture_output=True, text=True, timeout=60)


def test_a_folder_that_is_not_a_demos_is_never_deleted(tmp_path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]
    result = _demo("--port", str(port), "--state-dir", str(precious))
    assert result.returncode == 2
    assert "not a Lightbox demo's" in result.stderr
    assert (precious / "keep.txt").read_text() == "mine"


def test_a_running_demos_folder_survives_a_second_start(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / ".lightbox-demo").write_text(str(os.getpid()))  # this test is "running"
    (state / "jupyterhub.sqlite").write_text("live")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]
    result = _demo("--port", str(port), "--state-dir", str(state))
    assert result.returncode == 2
    assert f"a demo (pid {os.getpid()}) is running" in result.stderr
    assert (state / "jupyterhub.sqlite").read_text() == "live"


def test_port_in_use_deletes_nothing(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / ".lightbox-demo").write_text("999999999")
    (state / "db").write_text("kept")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = _demo("--port", str(busy.getsockname()[1]), "--state-dir", str(state))
    assert result.returncode == 2 and "already in use" in result.stderr
    assert (state / "db").read_text() == "kept"


@pytest.mark.parametrize("port", ["70000", "0", "http"])
def test_a_port_out_of_range_is_a_usage_error(port: str, tmp_path) -> None:
    result = _demo("--port", port, "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--port" in result.stderr


def test_a_port_left_in_time_wait_counts_as_free() -> None:
    from lightbox_hub.embedded.ports import port_is_free

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME-WAIT
        client.close()
    assert port_is_free(port)


def _launch_link(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lightbox_hub.cli", "launch-link", *arguments],
        capture_output=True, text=True, timeout=60)


def _running_demo_folder(tmp_path, secret: str, url: str):
    """A folder as a running demo leaves it: marker (this process), secret, address."""
    state = tmp_path / "demo"
    state.mkdir()
    (state / ".lightbox-demo").write_text(str(os.getpid()))
    (state / "launch-secret").write_text(secret)
    (state / "hub-url").write_text(url)
    return state


def test_launch_link_is_signed_with_the_running_demos_secret(tmp_path) -> None:
    from urllib.parse import parse_qsl, urlsplit

    from lightbox_hub.launch import (
        LaunchRefused,
        LaunchVerifier,
        NonceStore,
        _b64decode,
    )

    secret = "s3cret-of-this-demo-" + "x" * 20
    state = _running_demo_folder(tmp_path, secret, "http://127.0.0.1:8123")
    result = _launch_link("--patient-id", "LBX-0001", "--issuer", "LIGHTBOX-DEMO",
                          "--accession", "LBXACC01", "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    url = urlsplit(result.stdout.strip())
    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:8123",
                                                   "/hub/lightbox/launch")
    params = dict(parse_qsl(url.query))
    # The context is encrypted: neither the link nor its decoded ctx names the
    # patient or the order (browser history and proxy logs keep the link).
    assert params["enc"] == "a256gcm"
    decoded = _b64decode(params["ctx"])
    for identifier in ("LBX-0001", "LIGHTBOX-DEMO", "LBXACC01"):
        assert identifier not in result.stdout
        assert identifier.encode() not in decoded

    # The hub's own verifier, with the demo's secret, accepts it once.
    verifier = LaunchVerifier(secret.encode(), None, NonceStore(tmp_path / "n.sqlite"))
    context = verifier.verify(params)
    assert (context.patient_id, context.issuer_of_patient_id,
            context.accession_number) == ("LBX-0001", "LIGHTBOX-DEMO", "LBXACC01")
    with pytest.raises(LaunchRefused, match="already"):
        verifier.verify(params)
    # Another secret (another demo) refuses it.
    other = LaunchVerifier(b"another-secret", None, NonceStore(tmp_path / "o.sqlite"))
    with pytest.raises(LaunchRefused) as refused:
        other.verify(params)
    assert refused.value.reason == "bad-signature"


def test_launch_link_without_a_running_demo_says_what_to_do(tmp_path) -> None:
    state = _running_demo_folder(tmp_path, "secret", "http://127.0.0.1:8123")
    (state / ".lightbox-demo").write_text("999999999")  # that demo has ended
    result = _launch_link("--patient-id", "P", "--issuer", "I", "--accession", "A",
                          "--state-dir", str(state))
    assert result.returncode == 2 and not result.stdout
    assert f"no demo is running with {state}" in result.stderr
    assert "lightbox demo" in result.stderr and "Traceback" not in result.stderr


def test_launch_link_refuses_a_lifetime_the_hub_would_refuse(tmp_path) -> None:
    state = _running_demo_folder(tmp_path, "secret", "http://127.0.0.1:8123")
    result = _launch_link("--patient-id", "P", "--issuer", "I", "--study-uid", "1.2.3",
                          "--lifetime", "301", "--state-dir", str(state))
    assert result.returncode == 2 and "1 to 300 seconds" in result.stderr


def test_launch_link_needs_an_accession_or_a_study_uid(tmp_path) -> None:
    result = _launch_link("--patient-id", "P", "--issuer", "I",
                          "--state-dir", str(tmp_path))
    assert result.returncode == 2 and "--accession" in result.stderr


def test_the_demo_keeps_its_launch_secret_for_this_user_only(tmp_path) -> None:
    from lightbox_hub.demo import EmbeddedDefault
    from lightbox_hub.embedded.hub import EmbeddedHub

    demo = EmbeddedDefault(tmp_path)
    demo.state_directory = tmp_path
    hub = EmbeddedHub(tmp_path / "hub", "", tmp_path / "archives.toml")
    demo._keep_launch_secret(hub)
    secret_file = tmp_path / "launch-secret"
    assert secret_file.read_text() == hub.launch_secret
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "hub-url").read_text() == hub.url


def test_make_demo_ends_without_an_error_on_ctrl_c(tmp_path) -> None:
    """Ctrl-C reaches make, its shell and the demo; only the demo's goodbye shows."""
    import shutil
    import signal
    import time
    from pathlib import Path

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # In place of .venv/bin/lightbox, a program that ends on Ctrl-C as `lightbox demo`
    # does (hub/cli.py): a clean stop, then exit status 130.
    stand_in = tmp_path / "bin" / "lightbox"
    stand_in.parent.mkdir()
    stand_in.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        "print('ready', flush=True)\n"
        "try:\n    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    print('lightbox: stopping ...', flush=True)\n    sys.exit(130)\n")
    stand_in.chmod(0o755)
    root = Path(__file__).resolve().parents[2]
    # -o setup: the recipe of demo alone, without installing anything.
    process = subprocess.Popen(
        [make, "--no-print-directory", "-C", str(root), "-o", "setup", "demo",
         f"BIN={stand_in.parent}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    out, err = process.communicate(timeout=30)
    assert "lightbox: stopping ..." in out
    assert "Error" not in err and "***" not in err, err
    # make ends as a Ctrl-C'd program should: by SIGINT, or 0 if only the demo got it.
    assert process.returncode in (0, -signal.SIGINT), process.returncode


def _welcome(tmp_path, capsys, rejected) -> str:
    from types import SimpleNamespace

    from lightbox_hub.cli import _print_welcome
    from lightbox_hub.demo import EmbeddedDefault
    from lightbox_hub.embedded.hub import EmbeddedHub
    from lightbox_hub.embedded.orthanc import UploadReport

    demo = EmbeddedDefault(tmp_path)
    demo.hub = EmbeddedHub(tmp_path / "hub", "", tmp_path / "archives.toml",
                           port=8123)
    demo.archive = SimpleNamespace(dicomweb_url="http://127.0.0.1:8042/dicom-web")
    demo.uploads = UploadReport(7, rejected)
    _print_welcome(demo, 3.0)
    return capsys.readouterr().out


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_the_launch_link_command_the_demo_prints_runs_as_printed(
        tmp_path, capsys, monkeypatch, where: str) -> None:
    import shlex
    from pathlib import Path

    checkout = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(checkout if where == "checkout" else tmp_path)
    out = _welcome(tmp_path, capsys, [])

    line = next(line for line in out.splitlines() if " launch-link " in line)
    command = line.split(" launch-link ")[0].strip()
    # Not the bare name: `lightbox` is on no PATH until the venv is activated.
    assert command != "lightbox"
    if where == "checkout":
        assert command == os.path.join(".venv", "bin", "lightbox"), command
    result = subprocess.run([*shlex.split(command), "launch-link", "--help"],
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin"}, check=False)
    assert result.returncode == 0, result.stderr
    assert "--patient-id" in result.stdout


def test_the_demo_names_each_file_its_archive_refused_and_why(
        tmp_path, capsys) -> None:
    out = _welcome(tmp_path, capsys, [("notes.pdf", "HTTP 400 Bad file format"),
                                      ("scan.dcm", "Permission denied")])

    assert "holds 7 images; it refused 2 files:" in out
    assert "    notes.pdf: HTTP 400 Bad file format" in out
    assert "    scan.dcm: Permission denied" in out


def test_the_files_refused_are_named_without_their_folders(tmp_path) -> None:
    from pathlib import Path

    from lightbox_hub.demo import load_clinical_studies
    from lightbox_hub.embedded.orthanc import UploadReport

    # A folder named after a patient, as real exports often are.
    folder = tmp_path / "TEST^CASE"

    class _Archive:
        def load_datasets(self, datasets) -> UploadReport:
            count = len(list(datasets))
            return UploadReport(count - 1, [("1.2.826.0.1.3680043.2.9",
                                             "HTTP 400 Bad file format")])

        def load_files(self, paths) -> UploadReport:
            names = [Path(p).name for p in paths]
            return UploadReport(len(names) - 1, [(
                str(folder / "image.dcm"),
                f"[Errno 13] Permission denied: '{folder / 'image.dcm'}'")])

    report = load_clinical_studies(_Archive(), load_extra_data=False)

    assert report.rejected == [("a generated teaching image",
                                "HTTP 400 Bad file format"),
                               ("image.dcm", "Permission denied")]
    assert "TEST^CASE" not in repr(report.rejected)


def test_a_demo_started_with_ctrl_c_ignored_still_answers_it(tmp_path) -> None:
    """Started in the background (SIGINT ignored), the demo and its children hear Ctrl-C."""
    import signal

    script = (
        "import signal, subprocess, sys\n"
        "from lightbox_hub.cli import answer_ctrl_c\n"
        "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)\n"
        "answer_ctrl_c()\n"
        "child = ('import signal; print(signal.getsignal(signal.SIGINT) '\n"
        "         'is signal.default_int_handler)')\n"
        "sys.stdout.flush()\n"
        "subprocess.run([sys.executable, '-c', child], check=True)\n")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert result.returncode == 0, result.stderr
    # Ignored as it started; its child starts with the default action again.
    assert result.stdout.split() == ["True", "True"]
