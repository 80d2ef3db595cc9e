"""The ``lightbox`` command line: ``lightbox demo`` runs the embedded default."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from lightbox_hub.embedded.idp import test_users
from lightbox_hub.embedded.process import EmbeddedServiceError
from lightbox_hub.settings import HubConfigurationError

_DEFAULT_STATE = Path(".lightbox") / "demo"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightbox", description="Lightbox: one door to every DICOM archive.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="start the identity provider, the sample archive and the hub")
    demo.add_argument("--port", type=_port, default=8000,
                      help="port of the hub on 127.0.0.1 (default 8000)")
    demo.add_argument("--state-dir", type=Path, default=_DEFAULT_STATE,
                      help="working folder of the demo, wiped at start and at exit; "
                           "it must be new, empty, or an earlier demo's "
                           "(default .lightbox/demo)")
    link = commands.add_parser(
        "launch-link", help="sign an EHR launch link with the running demo's secret",
        description="Print a signed launch link, as an EHR would send it, that the "
                    "demo running with --state-dir accepts once, for up to 300 s. "
                    "Its patient context is encrypted (enc=a256gcm, with a key "
                    "derived from the demo's launch secret), so the address shows "
                    "no patient ID or accession number.")
    link.add_argument("--patient-id", required=True,
                      help="(0010,0020) Patient ID, e.g. LBX-0001")
    link.add_argument("--issuer", required=True,
                      help="(0010,0021) Issuer of Patient ID, e.g. LIGHTBOX-DEMO")
    study = link.add_mutually_exclusive_group(required=True)
    study.add_argument("--accession", help="(0008,0050) Accession Number, e.g. LBXACC01")
    study.add_argument("--study-uid", help="(0020,000D) Study Instance UID")
    link.add_argument("--lifetime", type=int, default=300,
                      help="seconds the link stays valid (default and hub maximum 300)")
    link.add_argument("--state-dir", type=Path, default=_DEFAULT_STATE,
                      help="working folder of the running demo (default .lightbox/demo)")
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 1 to 65535")
    return port


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "demo":
        return _demo(arguments.port, arguments.state_dir)
    if arguments.command == "launch-link":
        return _launch_link(arguments)
    return 2


def _launch_link(arguments: argparse.Namespace) -> int:
    """Print a link signed with the secret the running demo keeps in its folder."""
    from lightbox_hub.demo import HUB_URL_FILE, LAUNCH_SECRET_FILE
    from lightbox_hub.launch import launch_url, sign_launch

    folder = arguments.state_dir
    owner = folder / _MARKER
    running = (owner.exists() and owner.read_text().strip().isdigit()
               and _process_alive(int(owner.read_text().strip())))
    secret_file, url_file = folder / LAUNCH_SECRET_FILE, folder / HUB_URL_FILE
    if not running or not secret_file.exists() or not url_file.exists():
        print(f"lightbox: no demo is running with {folder}: start "
              f"`{lightbox_command()} demo` (or `make demo`) first, or name its "
              "folder with --state-dir", file=sys.stderr)
        return 2
    if not 1 <= arguments.lifetime <= 300:
        print(f"lightbox: --lifetime {arguments.lifetime} is refused by the hub: use "
              "1 to 300 seconds", file=sys.stderr)
        return 2
    context = {"pid": arguments.patient_id, "iss": arguments.issuer}
    if arguments.accession:
        context["acc"] = arguments.accession
    else:
        context["suid"] = arguments.study_uid
    # Encrypted (sign_launch's default with a shared secret): the link lands in
    # browser history and proxy logs, the patient context must not.
    params = sign_launch(context, secret=secret_file.read_text().encode(),
                         encrypt=True, lifetime_s=arguments.lifetime)
    print(launch_url(url_file.read_text().strip(), params))
    return 0


def _demo(port: int, state_directory: Path) -> int:
    from lightbox_hub.demo import EmbeddedDefault
    from lightbox_hub.embedded.ports import port_is_free

    # Check everything that could refuse the start before anything is deleted: a
    # running demo's folder must survive a second, failed start.
    if not port_is_free(port):
        print(f"lightbox: port {port} on 127.0.0.1 is already in use: stop the program "
              "using it or choose another with --port", file=sys.stderr)
        return 2
    refusal = _claim_state_directory(state_directory)
    if refusal:
        print(f"lightbox: {refusal}", file=sys.stderr)
        return 2
    answer_ctrl_c()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    print("lightbox: starting the identity provider, the archive and the hub ...",
          flush=True)
    embedded = EmbeddedDefault(state_directory, hub_port=port)
    try:
        embedded.start()
    except (EmbeddedServiceError, HubConfigurationError) as err:
        print(f"lightbox: {err}", file=sys.stderr)
        shutil.rmtree(state_directory, ignore_errors=True)
        return 2
    except KeyboardInterrupt:
        shutil.rmtree(state_directory, ignore_errors=True)
        return 130
    try:
        _print_welcome(embedded, time.monotonic() - started)
        while not stop.wait(1.0):
            assert embedded.hub is not None
            embedded.hub.check_alive()
    except KeyboardInterrupt:
        return 130  # after the clean stop below, as a shell expects of Ctrl-C
    except EmbeddedServiceError as err:
        print(f"lightbox: {err}", file=sys.stderr)
        return 1
    finally:
        print("lightbox: stopping ...", flush=True)
        embedded.stop()
        shutil.rmtree(state_directory, ignore_errors=True)
        print(f"lightbox: stopped; {state_directory} is deleted", flush=True)
    return 0


def answer_ctrl_c() -> None:
    """Make Ctrl-C (SIGINT) stop the demo, even when it was started with it ignored.

    A program started in the background by a shell (``make demo &``) begins with
    SIGINT ignored, and so would every process it starts: the hub's SIGINT to a
    user server would then go unheard until the hub kills it. Python's own
    handler here ends the demo cleanly, and the processes it starts get the
    default action again (exec resets handled signals, not ignored ones).
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


_MARKER = ".lightbox-demo"


def _claim_state_directory(folder: Path) -> str | None:
    """Empty ``folder`` for a new demo and mark it ours; say why not when we must not.

    A demo leaves nothing behind: images, homes and logs live in this one folder,
    wiped at start and again at exit. Only a folder that is new, empty, or marked by
    an earlier demo that is no longer running is ever wiped.
    """
    marker = folder / _MARKER
    if folder.exists() and any(folder.iterdir()):
        if not marker.exists():
            return (f"{folder} holds files that are not a Lightbox demo's; choose a new "
                    "or empty folder with --state-dir")
        owner = marker.read_text().strip()
        if owner.isdigit() and _process_alive(int(owner)):
            return (f"a demo (pid {owner}) is running with {folder}; stop it first, or "
                    "give this one another --state-dir and --port")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _state_option(embedded: object) -> str:
    """`` --state-dir ...`` when the demo runs with another folder than the default."""
    folder = getattr(embedded, "state_directory", None)
    if folder is None or Path(folder) == _DEFAULT_STATE.resolve():
        return ""
    return f" --state-dir {folder}"


def lightbox_command() -> str:
    """How to run this ``lightbox`` from the folder the demo was started in.

    The script sits next to the running Python (``.venv/bin/lightbox``), which is
    not on PATH unless the environment is activated: relative to the current
    folder when it is below it, as the README writes it, else absolute. Without
    the script (run as ``python -m lightbox_hub.cli``), the module form.
    """
    script = Path(os.path.abspath(sys.executable)).with_name("lightbox")
    if not script.is_file():
        return f"{sys.executable} -m lightbox_hub.cli"
    try:
        relative = script.relative_to(Path.cwd())
    except ValueError:
        return str(script)
    # A bare name would be looked up on PATH.
    return str(relative) if len(relative.parts) > 1 else f"./{relative}"


def _print_welcome(embedded: object, seconds: float) -> None:
    from lightbox_hub.demo import EXAMPLE_LAUNCH, EmbeddedDefault

    assert isinstance(embedded, EmbeddedDefault) and embedded.hub is not None
    for notice in embedded.notices:
        print(f"lightbox: notice: {notice}")
    if embedded.archive is not None and embedded.uploads is not None:
        rejected = embedded.uploads.rejected
        print(f"lightbox: archive Orthanc at {embedded.archive.dicomweb_url} holds "
              f"{embedded.uploads.stored} images"
              + (f"; it refused {len(rejected)} "
                 f"file{'' if len(rejected) == 1 else 's'}:" if rejected else ""))
        # File names only (demo.load_clinical_studies): never a folder or patient.
        for name, reason in rejected:
            print(f"    {name}: {reason}")
    print(f"""
  Lightbox is ready after {seconds:.0f} s (plain HTTP, on this computer only).

  Open  {embedded.hub.url}  and choose "Sign in with Lightbox demo sign-on".
  At the test identity provider, type one of these user names and press Authorize
  (the test provider asks for no password):
""")
    for user in test_users():
        groups = ", ".join(str(g) for g in user["groups"])  # type: ignore[attr-defined]
        print(f"    {user['sub']:<16} {user['name']}  (groups: {groups})")
    print(f"""
  The radiologist lands on a lesson that opens a CT head study in the viewer.
  'outsider' belongs to no clinical role and is refused.

  An EHR opens a study with a signed link whose patient context is encrypted.
  This one opens the current CT head (Patient ID {EXAMPLE_LAUNCH['pid']}, issuer \
{EXAMPLE_LAUNCH['iss']},
  accession {EXAMPLE_LAUNCH['acc']}); it works once, within 5 minutes:

    {embedded.example_launch_link()}

  Make a fresh one (as 'researcher' it is refused: researchers see only the
  de-identified teaching archive) with
    {lightbox_command()} launch-link --patient-id {EXAMPLE_LAUNCH['pid']} \
--issuer {EXAMPLE_LAUNCH['iss']} --accession {EXAMPLE_LAUNCH['acc']}{_state_option(embedded)}

  Press Ctrl-C to stop; the demo then deletes everything it stored.
""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
