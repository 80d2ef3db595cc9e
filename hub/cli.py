"""The ``lightbox`` command line: ``lightbox demo`` runs the embedded default."""
from __future__ import annotations

import argparse
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
    demo.add_argument("--port", type=int, default=8000,
                      help="port of the hub on 127.0.0.1 (default 8000)")
    demo.add_argument("--state-dir", type=Path, default=_DEFAULT_STATE,
                      help="working folder, wiped at start and at exit "
                           "(default .lightbox/demo)")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "demo":
        return _demo(arguments.port, arguments.state_dir)
    return 2


def _demo(port: int, state_directory: Path) -> int:
    from lightbox_hub.demo import EmbeddedDefault

    # A demo leaves nothing behind: images, homes and logs live in one folder that is
    # wiped at start and again at exit.
    shutil.rmtree(state_directory, ignore_errors=True)
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
        pass
    except EmbeddedServiceError as err:
        print(f"lightbox: {err}", file=sys.stderr)
        return 1
    finally:
        print("lightbox: stopping ...", flush=True)
        embedded.stop()
        shutil.rmtree(state_directory, ignore_errors=True)
    return 0


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
