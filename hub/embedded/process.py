"""A child process that the demo or a test starts, waits for, and stops by its PID."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


class EmbeddedServiceError(RuntimeError):
    """A service of the embedded default could not start.

    The message is one line for the person at the terminal: what is wrong and what to do.
    """


class ManagedProcess:
    """One server process with its log file, started and stopped by this program."""

    def __init__(self, name: str, argv: list[str], log_path: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            # Own session: a Ctrl-C at the terminal reaches the demo, which then stops
            # its children in order instead of all of them dying at once.
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, start_new_session=True)
        except FileNotFoundError as err:
            raise EmbeddedServiceError(
                f"{self.name}: the program {self.argv[0]!r} is not installed") from err
        finally:
            log.close()

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll ``ready`` until it is true; return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process is not None and self.process.poll() is not None:
                raise EmbeddedServiceError(
                    f"{self.name} exited during start-up (code {self.process.returncode});"
                    f" its log is {self.log_path}: {self.log_tail()}")
            try:
                if ready():
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.1)
        raise EmbeddedServiceError(
            f"{self.name} did not become ready ({what}) within {timeout:.0f} s;"
            f" its log is {self.log_path}")

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the process by PID: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s; killing pid %d",
                           self.name, timeout, self.process.pid)
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
