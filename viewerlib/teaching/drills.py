"""Helpers for the lessons' drills: a stopwatch, timed retrievals and sample logs."""
from __future__ import annotations

import datetime
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class Stopwatch:
    """Marks named moments; :attr:`seconds` is the time from the first to the last.

    Examples
    --------
    >>> watch = Stopwatch()
    >>> watch.mark("search"); watch.mark("first image")
    >>> watch.seconds >= 0
    True
    """

    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        """Note the time of moment ``name`` (``time.perf_counter``)."""
        self.marks[name] = time.perf_counter()

    @property
    def seconds(self) -> float | None:
        """Seconds between the first and the last mark; ``None`` with fewer than 2."""
        if len(self.marks) < 2:
            return None
        values = list(self.marks.values())
        return values[-1] - values[0]


@dataclass(frozen=True)
class RetrievalMeasurement:
    """How long one series retrieval took and how many pixel bytes it brought."""

    archive: str
    instances: int
    bytes: int
    seconds: float

    @property
    def megabytes_per_second(self) -> float:
        """Throughput in MB/s (1 MB = 1,000,000 bytes)."""
        return self.bytes / max(self.seconds, 1e-9) / 1e6


def time_series_retrieval(source: Any, study_instance_uid: str,
                          series_instance_uid: str) -> RetrievalMeasurement:
    """Retrieve one series from ``source`` and time it (wall clock).

    The bytes counted are those of (7FE0,0010) *Pixel Data*, the bulk of a
    retrieval; the headers add a few kB per instance.
    """
    started = time.perf_counter()
    datasets = source.retrieve_series(study_instance_uid, series_instance_uid)
    seconds = time.perf_counter() - started
    size = sum(len(ds.PixelData) for ds in datasets if "PixelData" in ds)
    return RetrievalMeasurement(getattr(source, "name", "archive"), len(datasets),
                                size, seconds)


def find_dicom_files(folder: str | Path) -> list[Path]:
    """Files under ``folder`` that are DICOM (the ``DICM`` marker at byte 128)."""
    found = []
    root = Path(folder)
    if not root.is_dir():
        return found
    for path in root.rglob("*"):
        try:
            if path.is_file() and path.stat().st_size > 132:
                with path.open("rb") as handle:
                    handle.seek(128)
                    if handle.read(4) == b"DICM":
                        found.append(path)
        except OSError:
            continue
    return found


#: Fictitious users of the sample audit log: (user, role).
SAMPLE_USERS = (
    ("dr.ada", "radiologist"), ("dr.ben", "emergency"), ("dr.chen", "neurologist"),
    ("dr.dev", "orthopaedics"), ("r.eko", "researcher"), ("p.fay", "pacs-admin"),
    ("dr.gil", "emergency"),
)


def write_sample_audit_log(path: str | Path, days: int = 14) -> Path:
    """Write a JSON-lines audit log of fictitious users, in the hub's record shape.

    One object per line with ``time`` (UTC, ISO 8601), ``event``, ``user`` and the
    event's fields; studies by UID only. The same call always writes the same file.
    """
    import random

    rng = random.Random(5)
    start = datetime.datetime(2026, 11, 2, 7, 0, tzinfo=datetime.UTC)
    study = "1.2.826.0.1.3680043.8.498.1"
    records: list[dict[str, Any]] = []
    for day in range(days):
        for user, role in SAMPLE_USERS:
            if rng.random() < 0.45 + 0.03 * day:
                at = start + datetime.timedelta(days=day, minutes=rng.randrange(600))
                records.append({"event": "sign-in", "user": user, "role": role,
                                "groups": [role], "at": at})
                for _ in range(rng.randrange(1, 4)):
                    at += datetime.timedelta(minutes=rng.randrange(2, 30))
                    records.append({"event": "study-opened", "user": user,
                                    "study_instance_uid": study,
                                    "archive": "Demo archive", "at": at})
                at += datetime.timedelta(minutes=20)
                records.append({"event": "purge", "user": user, "kinds": ["pixel"],
                                "items": rng.randrange(1, 60), "bytes": 0,
                                "where": "kernel", "at": at})
            elif rng.random() < 0.1:
                at = start + datetime.timedelta(days=day, minutes=rng.randrange(600))
                records.append({"event": "sign-in-refused", "user": user,
                                "reason": "no clinical role", "at": at})
    records.sort(key=lambda record: record["at"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            at = record.pop("at")
            line = {"time": at.isoformat(), **record}
            handle.write(json.dumps(line) + "\n")
    return path
