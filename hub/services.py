"""What the hub's Lightbox handlers share: audit log, link checks, role archives."""
from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from lightbox_hub.audit import AuditLog
from lightbox_hub.config import LightboxHub
from lightbox_hub.launch import (
    LaunchContext,
    LaunchRefused,
    LaunchVerifier,
    NonceStore,
    load_public_key,
)

logger = logging.getLogger(__name__)

_PENDING_TTL_S = 300


def read_archives(path: str | Path) -> list[dict[str, Any]]:
    """The ``[[archive]]`` tables of a viewerlib archives file (TOML or JSON)."""
    file = Path(path).expanduser()
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import tomllib

        data = tomllib.loads(text)
    return list(data.get("archive", []))


def filter_archives(tables: list[dict[str, Any]], allowed: list[str]
                    ) -> list[dict[str, Any]]:
    """The archive tables whose name is in ``allowed`` (``"*"`` allows all)."""
    if "*" in allowed:
        return list(tables)
    return [table for table in tables if table.get("name") in allowed]


def write_role_archives(source: str | Path, allowed: list[str], target: Path) -> int:
    """Write the archives a role may use to ``target`` (JSON); return how many."""
    tables = filter_archives(read_archives(source), allowed)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"archive": tables}, indent=1))
    return len(tables)


def is_the_launched_study(study: Any, context: LaunchContext) -> bool:
    """Whether a study an archive found is exactly the one the link names.

    An archive's search is only a filter: one that ignores a key, or matches it
    loosely (wildcards, case, prefixes), may answer with another study of the
    patient. So every identifier of the link is compared again, exactly:
    (0010,0020) *Patient ID*; (0010,0021) *Issuer of Patient ID* when the
    archive records one; and (0008,0050) *Accession Number* and (0020,000D)
    *Study Instance UID*, each when the link names it.
    """
    if str(getattr(study, "PatientID", "") or "") != context.patient_id:
        return False
    # An archive that records the issuer must agree with the EHR's.
    issuer = str(getattr(study, "IssuerOfPatientID", "") or "")
    if issuer and issuer != context.issuer_of_patient_id:
        return False
    if context.accession_number is not None and str(
            getattr(study, "AccessionNumber", "") or "") != context.accession_number:
        return False
    return context.study_instance_uid is None or str(
        getattr(study, "StudyInstanceUID", "") or "") == context.study_instance_uid


class LightboxServices:
    """Built once by the configuration; handlers find it in the tornado settings."""

    def __init__(self, settings: LightboxHub) -> None:
        self.settings = settings
        self.audit = AuditLog(settings.audit_log)
        state = Path(settings.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        self.verifier = LaunchVerifier(
            settings.launch_secret(), load_public_key(settings.launch_public_key_file),
            NonceStore(state / "launch-nonces.sqlite"), settings.launch_max_age_s,
            allow_plain_get=settings.launch_allow_plain_get)
        self._pending: dict[str, tuple[float, LaunchContext]] = {}
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> LightboxServices:
        # JupyterHub deep-copies its configuration; this object is shared, not data.
        return self

    def park(self, context: LaunchContext) -> str:
        """Keep a verified context for the sign-on round trip; return its id."""
        key = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for old in [k for k, (t, _) in self._pending.items()
                        if now - t > _PENDING_TTL_S]:
                del self._pending[old]
            self._pending[key] = (now, context)
        return key

    def unpark(self, key: str) -> LaunchContext | None:
        """The parked context, once; ``None`` if unknown or too old."""
        with self._lock:
            entry = self._pending.pop(key, None)
        if entry is None or time.monotonic() - entry[0] > _PENDING_TTL_S:
            return None
        return entry[1]

    def resolve_study(self, role: str | None, context: LaunchContext
                      ) -> tuple[str, str]:
        """Find the launched study in the archives ``role`` may use.

        Returns the Study Instance UID and the archive's name. Runs in a worker
        thread (the archives are queried with viewerlib).

        Raises
        ------
        LaunchRefused
            If the role may use no archive, or none of its archives holds a study
            with this patient (ID and issuer) and accession number or UID.
        """
        allowed = self.settings.archives_for_role(role)
        if not allowed:
            raise LaunchRefused(403, "no-role-archives", "Your role may open no image "
                                "archive, so this study cannot be shown. Ask the "
                                "Lightbox administrators if this is wrong.")
        import tempfile

        from viewerlib.sources.config import load_sources

        tables = filter_archives(read_archives(self.settings.archives_file), allowed)
        if not tables:
            raise LaunchRefused(403, "no-role-archives", "None of the archives your "
                                "role may open is configured on this hub.")
        with tempfile.TemporaryDirectory() as folder:
            subset = Path(folder) / "archives.json"
            subset.write_text(json.dumps({"archive": tables}))
            sources = load_sources(subset)
        from viewerlib.errors import SourceError

        not_searched = []
        for source in sources:
            try:
                found = source.search_for_studies(
                    patient_id=context.patient_id,
                    accession_number=context.accession_number,
                    study_instance_uid=context.study_instance_uid)
            except SourceError as err:
                # One archive down must not hide the study another one holds.
                not_searched.append(source.name)
                logger.warning("EHR launch: archive %s could not be searched: %s",
                               source.name, type(err).__name__)
                continue
            for study in found:
                if is_the_launched_study(study, context):
                    return study.StudyInstanceUID, source.name
        if not_searched:
            raise LaunchRefused(503, "archives-unreachable", "The study was not found, "
                                "but these archives could not be searched just now: "
                                + ", ".join(not_searched) + ". Open the link again in "
                                "a few minutes; if it keeps failing, tell the PACS "
                                "administrators.")
        raise LaunchRefused(403, "study-not-in-role-archives", "This study is not in "
                            "any archive your role may open, so it was not shown. "
                            "Researchers, for example, see only the de-identified "
                            "teaching archive.")
