"""The audit log takes only known events and fields, and never patient data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lightbox_hub.audit import AuditError, AuditLog


def test_records_are_appended_as_json_lines(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.record("sign-in", "radiologist", "127.0.0.1", groups=["radiologist"],
               role="radiologist")
    log.record("study-opened", "radiologist", "127.0.0.1",
               study_instance_uid="1.2.3", series_instance_uid="1.2.3.4")
    log.record("purge", "radiologist", None, kinds=["pixel"], items=3, bytes=10,
               where="kernel")
    records = log.read()
    assert [r["event"] for r in records] == ["sign-in", "study-opened", "purge"]
    assert records[1]["client_ip"] == "127.0.0.1" and records[1]["time"].endswith("+00:00")
    assert oct(os.stat(log.path).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("event", "fields", "match"),
    [
        ("study-opened", {"patient_name": "Test^Case"}, "takes no field"),
        ("launch", {"patient_id": "LBX-0001"}, "takes no field"),
        ("study-opened", {"study_instance_uid": "Test^Case"}, "must be a DICOM UID"),
        ("purge", {"items": -1}, "count"),
        ("launch", {"reason": "x" * 200}, "short label"),
        ("made-up", {}, "unknown audit event"),
    ],
    ids=["patient name", "patient id", "name as uid", "negative count",
         "long free text", "unknown event"],
)
def test_record_that_could_carry_patient_data_raises(tmp_path: Path, event: str,
                                                     fields: dict, match: str) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(AuditError, match=match):
        log.record(event, "radiologist", "127.0.0.1", **fields)
    assert log.read() == []
