"""The audit log: one JSON object per line, appended, never rewritten.

Each record says what happened (``event``), who, when (UTC, ISO 8601) and from where
(client IP). Only fields named in :data:`EVENT_FIELDS` are written, so a caller cannot
put a patient's name, ID or accession number into the log by accident; studies and
series appear by UID only.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# One table: the events and the extra fields each may carry.
EVENT_FIELDS: dict[str, frozenset[str]] = {
    "sign-in": frozenset({"groups", "role"}),
    "sign-in-refused": frozenset({"reason"}),
    "sign-out": frozenset(),
    "launch": frozenset({"study_instance_uid", "outcome", "reason", "archive"}),
    "launch-refused": frozenset({"reason"}),
    # "session": a random label each kernel makes at its start, so a stop can
    # tell which kernels that opened series sent no purge receipt.
    "study-opened": frozenset({"study_instance_uid", "series_instance_uid",
                               "archive", "session"}),
    "series-opened": frozenset({"study_instance_uid", "series_instance_uid",
                                "archive", "session"}),
    "server-started": frozenset({"role"}),
    "server-stopped": frozenset({"scratch_wiped"}),
    # where: "kernel" (each kernel's exit) or "server" (the server extension's own
    # caches, at server shutdown).
    "purge": frozenset({"kinds", "items", "bytes", "where", "session"}),
    # A stopped server had kernels that opened series and sent no purge receipt.
    "purge-missing": frozenset({"kernels"}),
}
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_UID_FIELDS = {"study_instance_uid", "series_instance_uid"}
_LABEL = re.compile(r"^[A-Za-z0-9 _.:@/\-]{0,80}$")


class AuditError(ValueError):
    """A record that may not be written (unknown event or field, or a bad value)."""


def _clean(event: str, fields: dict[str, Any]) -> dict[str, Any]:
    allowed = EVENT_FIELDS.get(event)
    if allowed is None:
        raise AuditError(f"unknown audit event {event!r}; known: {sorted(EVENT_FIELDS)}")
    extra = set(fields) - allowed
    if extra:
        raise AuditError(f"audit event {event!r} takes no field(s) {sorted(extra)}")
    clean: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _UID_FIELDS:
            if not isinstance(value, str) or not _UID.match(value) or len(value) > 64:
                raise AuditError(f"{key} must be a DICOM UID (digits and dots)")
        elif key in {"items", "bytes", "kernels"}:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise AuditError(f"{key} must be a count >= 0")
        elif key in {"kinds", "groups"}:
            if not (isinstance(value, list)
                    and all(isinstance(v, str) and _LABEL.match(v) for v in value)):
                raise AuditError(f"{key} must be a list of short labels")
        elif key == "scratch_wiped":
            if not isinstance(value, bool):
                raise AuditError("scratch_wiped must be true or false")
        elif not isinstance(value, str) or not _LABEL.match(value):
            raise AuditError(f"{key} must be a short label (letters, digits, "
                             "' _.:@/-', at most 80)")
        clean[key] = value
    return clean


class AuditLog:
    """Append records to one JSON-lines file (created with mode 0600).

    Parameters
    ----------
    path : str or Path
        The file; its folder is created when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, event: str, user: str | None, client_ip: str | None = None,
               **fields: Any) -> dict[str, Any]:
        """Append one record and return it.

        Raises
        ------
        AuditError
            If ``event`` is unknown or a field is not allowed for it.
        """
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event, "user": user or "", "client_ip": client_ip or ""}
        entry.update(_clean(event, fields))
        line = (json.dumps(entry, sort_keys=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # O_APPEND: each write lands at the end, even with several writers.
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                os.write(descriptor, line)
            finally:
                os.close(descriptor)
        return entry

    def read(self) -> list[dict[str, Any]]:
        """Every record, oldest first (for tests and reports)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]
