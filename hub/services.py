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
# Studies asked of one archive for a launch. An accession number or UID names one
# study; an archive that matches loosely (wildcards, '?' for spaces) may answer with
# more, and none of those is the link's.
_SEARCH_LIMIT = 100


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


# How a study an archive found compares with the link (compare_with_link).
SAME_STUDY = "same"
OTHER_STUDY = "other-study"
OTHER_PATIENT = "other-patient"
OTHER_ISSUER = "other-issuer"


def compare_with_link(study: Any, context: LaunchContext) -> str:
    """How a study an archive found compares with the one the link names.

    An archive's search is only a filter: one that ignores a key, or matches it
    loosely (wildcards, case, prefixes), may answer with another study. So every
    identifier of the link is compared again, exactly. Returns

    ``OTHER_STUDY``
        (0008,0050) *Accession Number* or (0020,000D) *Study Instance UID*,
        whichever the link names, differs: not the link's study at all.
    ``OTHER_PATIENT``
        The link's study, but (0010,0020) *Patient ID* differs: the EHR's context
        names another patient than the archive does.
    ``OTHER_ISSUER``
        Same Patient ID, but the archive records another (0010,0021) *Issuer of
        Patient ID* (one it does not record cannot disagree).
    ``SAME_STUDY``
        Exactly the link's study.
    """
    if context.accession_number is not None and str(
            getattr(study, "AccessionNumber", "") or "") != context.accession_number:
        return OTHER_STUDY
    if context.study_instance_uid is not None and str(
            getattr(study, "StudyInstanceUID", "") or "") != context.study_instance_uid:
        return OTHER_STUDY
    if str(getattr(study, "PatientID", "") or "") != context.patient_id:
        return OTHER_PATIENT
    issuer = str(getattr(study, "IssuerOfPatientID", "") or "")
    if issuer and issuer != context.issuer_of_patient_id:
        return OTHER_ISSUER
    return SAME_STUDY


def is_the_launched_study(study: Any, context: LaunchContext) -> bool:
    """Whether a study an archive found is exactly the one the link names."""
    return compare_with_link(study, context) == SAME_STUDY


def _identifier(context: LaunchContext) -> str:
    """What the link names the study by, in the user's words (never the value)."""
    return ("accession number" if context.accession_number is not None
            else "Study Instance UID")


def _refusal(outcome: str, context: LaunchContext, archive: str,
             others_unsearched: bool = False) -> LaunchRefused:
    """The refusal for a study that is not the link's, or not the role's to open.

    The pages name no patient ID, issuer or accession number: the user has them
    in the EHR, and a page can be screenshotted or left open.
    """
    identifier = _identifier(context)
    if outcome == OTHER_PATIENT:
        return LaunchRefused(
            403, "patient-mismatch", f"The study with this {identifier} belongs to "
            "another patient than the link names, so it was not shown. Check the "
            "patient and order in the EHR, then open the study again from there; "
            "if the EHR shows the right patient, tell the PACS administrators.",
            f"study found in {archive} with another Patient ID than the link's")
    if outcome == OTHER_ISSUER:
        return LaunchRefused(
            403, "issuer-mismatch", f"The study with this {identifier} is filed "
            "under a Patient ID of another issuer (another hospital's or system's "
            "numbering) than the link names, so it was not shown. Check the EHR "
            "context; if it is right, tell the PACS administrators.",
            f"study found in {archive} with another Issuer of Patient ID")
    if outcome == "role":
        return LaunchRefused(
            403, "study-not-in-role-archives", "This study is not in any archive "
            "your role may open: it is held in an archive your role may not open "
            f"({archive}), so it was not shown. Researchers, for example, see only "
            "the de-identified teaching archive. Ask the Lightbox administrators "
            "if your role should see it.",
            f"study held in {archive}, which the role may not open")
    where = ("No archive your role may open holds" if others_unsearched
             else "No archive holds")
    return LaunchRefused(
        403, "study-not-found", f"{where} a study with this {identifier}, so there "
        "is nothing to show. The study may not have reached the archive yet: open "
        "it again from the EHR later; if it keeps failing, tell the PACS "
        "administrators.", "no archive holds the study the link names")


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
            allow_plain_get=settings.launch_allow_plain_get,
            clock_skew_s=settings.launch_clock_skew_s)
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
        thread (the archives are queried with viewerlib). Each archive is asked
        for the link's accession number or Study Instance UID alone, and every
        answer is compared with the whole link (:func:`compare_with_link`), so a
        refusal can say what is wrong. Only when the role's archives do not hold
        the study are the other archives asked, to tell "your role may not open
        it" from "no such study".

        Raises
        ------
        LaunchRefused
            403 ``no-role-archives`` if the role may use no archive;
            ``patient-mismatch`` / ``issuer-mismatch`` if the role's archives hold
            the study under another Patient ID / issuer;
            503 ``archives-unreachable`` (the link stays usable) if it was not
            found while one of the role's archives could not be searched;
            403 ``study-not-in-role-archives`` if only archives the role may not
            open hold it; 403 ``study-not-found`` if no archive holds it.
        """
        allowed = self.settings.archives_for_role(role)
        if not allowed:
            raise LaunchRefused(403, "no-role-archives", "Your role may open no image "
                                "archive, so this study cannot be shown. Ask the "
                                "Lightbox administrators if this is wrong.")
        every_table = read_archives(self.settings.archives_file)
        tables = filter_archives(every_table, allowed)
        if not tables:
            raise LaunchRefused(403, "no-role-archives", "None of the archives your "
                                "role may open is configured on this hub.")

        # The role's archives first: the study is opened only from one of them.
        found, not_searched = self._search_archives(tables, context)
        for archive, outcome, study in found:
            if outcome == SAME_STUDY:
                return study.StudyInstanceUID, archive
        mismatches = [(archive, outcome) for archive, outcome, _ in found
                      if outcome in (OTHER_PATIENT, OTHER_ISSUER)]
        if mismatches:
            archive, outcome = mismatches[0]
            raise _refusal(outcome, context, archive)
        if not_searched:
            raise LaunchRefused(503, "archives-unreachable", "The study was not found, "
                                "but these archives could not be searched just now: "
                                + ", ".join(not_searched) + ". Open the link again in "
                                "a few minutes; if it keeps failing, tell the PACS "
                                "administrators.",
                                f"{len(not_searched)} archive(s) could not be searched")

        # Not in the role's archives: is it anywhere else? The hub searches with
        # its own access; the user learns only that another archive holds it.
        names = {table.get("name") for table in tables}
        others = [table for table in every_table if table.get("name") not in names]
        from viewerlib.sources import ArchivesConfigError

        try:
            found, not_searched = self._search_archives(others, context)
        except ArchivesConfigError as err:
            # E.g. a password variable only the role's servers are given.
            logger.warning("EHR launch: the other archives could not be set up: %s",
                           type(err).__name__)
            found, not_searched = [], [str(t.get("name")) for t in others]
        holding = [archive for archive, outcome, _ in found if outcome != OTHER_STUDY]
        if holding:
            raise _refusal("role", context, holding[0])
        raise _refusal("not-found", context, "", others_unsearched=bool(not_searched))

    def _search_archives(self, tables: list[dict[str, Any]], context: LaunchContext
                         ) -> tuple[list[tuple[str, str, Any]], list[str]]:
        """Ask each archive of ``tables`` for the link's study.

        Returns ``(archive name, compare_with_link outcome, study)`` for every
        study found, and the names of the archives that could not be searched.
        """
        if not tables:
            return [], []
        import tempfile

        from viewerlib.errors import SourceError
        from viewerlib.sources.config import load_sources

        with tempfile.TemporaryDirectory() as folder:
            subset = Path(folder) / "archives.json"
            subset.write_text(json.dumps({"archive": tables}))
            sources = load_sources(subset)
        found: list[tuple[str, str, Any]] = []
        not_searched = []
        for source in sources:
            try:
                # By the study's identifier alone, not the Patient ID: a study
                # filed under another patient must be found to be named as such.
                studies = source.search_for_studies(
                    accession_number=context.accession_number,
                    study_instance_uid=context.study_instance_uid,
                    limit=_SEARCH_LIMIT)
            except SourceError as err:
                # One archive down must not hide the study another one holds.
                not_searched.append(source.name)
                logger.warning("EHR launch: archive %s could not be searched: %s",
                               source.name, type(err).__name__)
                continue
            found += [(source.name, compare_with_link(study, context), study)
                      for study in studies]
        return found, not_searched
