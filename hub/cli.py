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
    return 2


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
    return 0


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


def _print_welcome(embedded: object, seconds: float) -> None:
    from lightbox_hub.demo import EmbeddedDefault

    assert isinstance(embedded, EmbeddedDefault) and embedded.hub is not None
    for notice in embedded.notices:
        print(f"lightbox: notice: {notice}")
    if embedded.archive is not None and embedded.uploads is not None:
        print(f"lightbox: archive Orthanc at {embedded.archive.dicomweb_url} holds "
              f"{embedded.uploads.stored} images"
              + (f" ({len(embedded.uploads.rejected)} files it refused)"
                 if embedded.uploads.rejected else ""))
    print(f"""
  Lightbox is ready after {seconds:.0f} s (plain HTTP, on this computer only).

  Open  {embedded.hub.url}  and choose "Sign in with Lightbox demo sign-on".
  At the test identity provider, type one of these user names and press Authorize
  (the test provider asks for no password):
""")
    for user in test_users():
        groups = ", ".join(str(g) for g in user["groups"])  # type: ignore[attr-defined]
        print(f"    {user['sub']:<16} {user['name']}  (groups: {groups})")
    print("""
  The radiologist lands on a lesson that opens a CT head study in the viewer.
  'outsider' belongs to no clinical role and is refused.

  Press Ctrl-C to stop; the demo then deletes everything it stored.
""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
