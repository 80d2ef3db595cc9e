"""A child process that the demo or a test starts, waits for, and stops by its PID.

Stopping one ends its descendants too: JupyterHub starts the proxy, its services and
the users' servers each in a session of their own, so they outlive a hub that had to
be killed, and would keep the demo's ports. Only processes that descend from the one
started here are ended, each recognised by its PID and start time, so a PID that the
system has given to another program since is left alone.
"""
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
        # Descendants seen so far (PID -> start time), to end at stop.
        self.descendants: dict[int, int] = {}

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

    def note_descendants(self) -> dict[int, int]:
        """Remember the processes that descend from this one now; return them all.

        Call it while the process runs (the demo does, every second): once it has
        died, its orphans belong to init and can no longer be found through it.
        """
        if self.process is not None and self.process.poll() is None:
            # Those that ended since are forgotten; their PIDs may be reused.
            self.descendants = {pid: start for pid, start in self.descendants.items()
                                if is_running(pid, start)}
            self.descendants.update(process_tree(self.process.pid))
        return self.descendants

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the process by PID: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Then end every descendant it left (SIGTERM, then SIGKILL after 10 s): after
        a SIGKILL they all are left, and even a clean stop may leave some.
        """
        if self.process is None:
            return
        if self.process.poll() is None:
            self.note_descendants()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                # Those it started while stopping, too.
                self.note_descendants()
                logger.warning("%s did not stop within %.0f s; killing pid %d and "
                               "ending the %d processes it started", self.name, timeout,
                               self.process.pid, len(self.descendants))
                self.process.kill()
                self.process.wait(5)
        left = end_processes(self.descendants)
        if left:
            logger.warning("%s: could not end pids %s", self.name,
                           ", ".join(map(str, left)))
        self.descendants = {}


def _stat(pid: int) -> tuple[int, int, str] | None:
    """``(parent PID, start time, state)`` of ``pid`` from /proc, or ``None``.

    proc(5): the command name (field 2) is in parentheses and may hold spaces,
    so the fields are counted after its last ``)``: state is field 3, the parent
    field 4 and the start time (in clock ticks since boot) field 22.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()
    return int(fields[1]), int(fields[19]), fields[0].decode()


def process_tree(root: int) -> dict[int, int]:
    """Every process that descends from ``root``: PID -> start time.

    Empty where there is no /proc (only Linux is supported for the demo).
    """
    children: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is not None:
            children.setdefault(stat[0], []).append(int(entry))
            started[int(entry)] = stat[1]
    found: dict[int, int] = {}
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found[child] = started[child]
                pending.append(child)
    return found


def is_running(pid: int, start_time: int) -> bool:
    """Whether ``pid`` is still the process that started at ``start_time``.

    A zombie is not running: it holds no port and only waits for its parent.
    """
    stat = _stat(pid)
    return stat is not None and stat[1] == start_time and stat[2] != "Z"


def _signal_if_same(pid: int, start_time: int, signal_number: int) -> None:
    """Signal ``pid`` only if it is still the process that started at ``start_time``.

    Through a pidfd where the system has one: opened first and checked after, it
    names that one process, so a PID reused in between is never signalled.
    """
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):
        descriptor = None  # no pidfd here: check, then signal by PID
    try:
        if not is_running(pid, start_time):
            return
        if descriptor is not None:
            signal.pidfd_send_signal(descriptor, signal_number)
        else:
            os.kill(pid, signal_number)
    except (ProcessLookupError, PermissionError):
        pass
    finally:
        if descriptor is not None:
            os.close(descriptor)


def end_processes(processes: dict[int, int], timeout: float = 10.0) -> list[int]:
    """SIGTERM each of ``processes`` (PID -> start time) still running; SIGKILL
    those that remain after ``timeout`` seconds. Returns the PIDs still running."""
    def running() -> list[int]:
        return [pid for pid, start in processes.items() if is_running(pid, start)]

    def send(pids: list[int], signal_number: int) -> None:
        for pid in pids:
            _signal_if_same(pid, processes[pid], signal_number)

    send(running(), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    send(running(), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    return running()
