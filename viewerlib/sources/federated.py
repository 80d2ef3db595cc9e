"""Several sources searched as one: concurrent fan-out, merged and linked results."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from viewerlib.errors import SourceError, SourceNotFoundError, SourceUnreachableError
from viewerlib.model import Instance, PatientIdentifier, PersonName, Series, Study
from viewerlib.sources.base import DateQuery, Source, SourceHealth

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

T = TypeVar("T")
_Key = tuple[str, str, str]


@dataclass
class LinkedPatient:
    """One patient as known to several archives, possibly under several IDs.

    Attributes
    ----------
    identifiers : list of PatientIdentifier
        Every (0010,0020) *Patient ID* / (0010,0021) *Issuer of Patient ID* pair
        seen for the patient, own and from (0010,1002) *Other Patient IDs
        Sequence*.
    names : list of PersonName
        The distinct (0010,0010) *Patient's Name* values seen (shown, never used
        to link).
    study_instance_uids : list of str
        The patient's studies in the results.
    locations : list of str
        Sources holding any of them.
    """

    identifiers: list[PatientIdentifier] = field(default_factory=list)
    names: list[PersonName] = field(default_factory=list)
    study_instance_uids: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)

    @property
    def is_linked(self) -> bool:
        """``True`` when the patient is known under more than one identifier."""
        return len(self.identifiers) > 1


class FederatedResults(list[T]):
    """A list of results plus how each source answered.

    Attributes
    ----------
    source_health : dict of str to SourceHealth
        Per source: ``'ok'``, ``'slow'`` (answered late, or not within the time
        limit: its results are missing) or ``'down'``, with latency and message.
    patients : list of LinkedPatient
        For study searches: the patients, linked across identifiers.
    """

    def __init__(self, items: Sequence[T] = (),
                 source_health: dict[str, SourceHealth] | None = None) -> None:
        super().__init__(items)
        self.source_health: dict[str, SourceHealth] = source_health or {}
        self.patients: list[LinkedPatient] = []

    @property
    def complete(self) -> bool:
        """``True`` when every source answered in time."""
        return all(h.state != "down" and h.latency_ms is not None
                   for h in self.source_health.values())


def _identifier_key(identifier: PatientIdentifier, location: str) -> _Key:
    # Without an issuer a Patient ID is only unique inside one archive.
    if identifier.IssuerOfPatientID:
        return (identifier.PatientID, identifier.IssuerOfPatientID, "")
    return (identifier.PatientID, "", location)


def link_patients(studies: Sequence[Study]) -> list[LinkedPatient]:
    """Group studies into patients through Patient ID, issuer and Other Patient IDs.

    Two studies belong to one patient when they share a qualified identifier:
    the same (0010,0020) *Patient ID* with the same (0010,0021) *Issuer of
    Patient ID*, or one listed in the other's (0010,1002) *Other Patient IDs
    Sequence*. A Patient ID without an issuer only links inside one source.
    Names are never used to link. Each study's ``linked_identifiers`` is set to
    the patient's other identifiers.

    Parameters
    ----------
    studies : sequence of Study
        Merged studies (with ``locations``); modified in place.

    Returns
    -------
    list of LinkedPatient
    """
    parent: dict[_Key, _Key] = {}

    def find(key: _Key) -> _Key:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    study_keys: list[list[tuple[_Key, PatientIdentifier]]] = []
    for study in studies:
        keys = []
        for location in study.locations or [""]:
            for identifier in [study.patient_identifier,
                               *study.other_patient_identifiers]:
                if identifier.PatientID:
                    keys.append((_identifier_key(identifier, location), identifier))
        if not keys:
            # No Patient ID at all: a patient of its own.
            anonymous = PatientIdentifier("", "")
            keys.append((("", study.StudyInstanceUID, "no patient id"), anonymous))
        for key, _ in keys[1:]:
            parent[find(key)] = find(keys[0][0])
        find(keys[0][0])
        study_keys.append(keys)

    patients: dict[_Key, LinkedPatient] = {}
    for study, keys in zip(studies, study_keys, strict=True):
        patient = patients.setdefault(find(keys[0][0]), LinkedPatient())
        for _, identifier in keys:
            if identifier.PatientID and identifier not in patient.identifiers:
                patient.identifiers.append(identifier)
        if study.PatientName not in patient.names:
            patient.names.append(study.PatientName)
        patient.study_instance_uids.append(study.StudyInstanceUID)
        for location in study.locations:
            if location not in patient.locations:
                patient.locations.append(location)
    for study, keys in zip(studies, study_keys, strict=True):
        patient = patients[find(keys[0][0])]
        study.linked_identifiers = [i for i in patient.identifiers
                                    if i != study.patient_identifier]
    return list(patients.values())


def _merge(items: list[Any], uid_attribute: str) -> list[Any]:
    """Merge results with the same UID into one, listing every location."""
    merged: dict[str, Any] = {}
    for item in items:
        uid = getattr(item, uid_attribute)
        if uid not in merged:
            merged[uid] = replace(item, locations=list(item.locations),
                                  attributes=dict(item.attributes))
            continue
        target = merged[uid]
        for location in item.locations:
            if location not in target.locations:
                target.locations.append(location)
        for tag, element in item.attributes.items():
            target.attributes.setdefault(tag, element)
    return list(merged.values())


class FederatedSource(Source):
    """Several sources searched as one.

    A search goes to every source at once (one thread each) and waits at most
    ``timeout_s``; a source that has not answered by then is reported ``'slow'``
    and left out, one that fails is ``'down'``; the others' results are returned.
    The same (0020,000D) *Study Instance UID* in two sources is one study with
    two ``locations``. Retrievals go to a source that holds the study (as seen in
    earlier searches), trying the others on failure.

    Parameters
    ----------
    sources : sequence of Source
        With distinct names.
    timeout_s : float
        Longest wait for any one source in a fan-out. Default 10.
    slow_after_s : float, optional
        Answers later than this are marked ``'slow'`` (but kept); default half of
        ``timeout_s``.
    name : str
        Name of the federation, used in messages.

    Raises
    ------
    ValueError
        If there are no sources or two share a name.
    """

    def __init__(self, sources: Sequence[Source], timeout_s: float = 10.0,
                 slow_after_s: float | None = None, name: str = "all archives") -> None:
        names = [s.name for s in sources]
        if not sources:
            raise ValueError("FederatedSource needs at least one source")
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be distinct, got {names}")
        self.sources = list(sources)
        self.name = name
        self.timeout_s = timeout_s
        self.slow_after_s = timeout_s / 2 if slow_after_s is None else slow_after_s
        self._locations: dict[str, list[str]] = {}

    def source(self, name: str) -> Source:
        """Return the member source called ``name``."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"no source named {name!r}; known: "
                       f"{[s.name for s in self.sources]}")

    # -- fan-out -----------------------------------------------------------------

    def _fan_out(self, call: Callable[[Source], list[T]],
                 sources: Sequence[Source] | None = None
                 ) -> tuple[list[T], dict[str, SourceHealth]]:
        sources = list(sources or self.sources)
        started = time.perf_counter()
        finished: dict[str, float] = {}

        def timed(source: Source) -> list[T]:
            try:
                return call(source)
            finally:
                finished[source.name] = time.perf_counter()

        # Not a with-block: leaving it would wait for the slow sources.
        executor = ThreadPoolExecutor(max_workers=len(sources),
                                      thread_name_prefix="lightbox-federated")
        futures: dict[Future[list[T]], Source] = {
            executor.submit(timed, s): s for s in sources}
        done, _ = wait(futures, timeout=self.timeout_s)
        executor.shutdown(wait=False, cancel_futures=True)

        results: list[T] = []
        health: dict[str, SourceHealth] = {}
        for future, source in futures.items():
            if future not in done:
                health[source.name] = SourceHealth(
                    "slow", None, f"no answer within {self.timeout_s:g} s; its "
                    "results are missing. Search again later, or raise timeout_s.",
                    source.name)
                continue
            latency_ms = (finished.get(source.name, time.perf_counter())
                          - started) * 1000
            error = future.exception()
            if isinstance(error, SourceNotFoundError):
                health[source.name] = SourceHealth("ok", latency_ms, "", source.name)
            elif isinstance(error, SourceError):
                health[source.name] = SourceHealth("down", None, str(error),
                                                   source.name)
            elif error is not None:
                raise error
            else:
                results.extend(future.result())
                state = "slow" if latency_ms > self.slow_after_s * 1000 else "ok"
                message = (f"answered in {latency_ms:.0f} ms" if state == "slow"
                           else "")
                health[source.name] = SourceHealth(state, latency_ms, message,
                                                   source.name)
        for state in ("slow", "down"):
            names = [n for n, h in health.items() if h.state == state]
            if names:
                logger.warning("%d of %d sources %s: %s", len(names), len(sources),
                               state, ", ".join(names))
        if health and all(h.state == "down" for h in health.values()):
            # An empty answer would read as "no such patient"; say what happened.
            reasons = "; ".join(h.message for h in health.values())
            raise SourceUnreachableError(
                self.name, f"every archive is down, so nothing could be searched: "
                f"{reasons}")
        return results, health

    def _holders(self, study_instance_uid: str | None) -> list[Source]:
        names = self._locations.get(study_instance_uid or "", [])
        known = [self.source(n) for n in names]
        return known + [s for s in self.sources if s not in known]

    def _remember(self, items: Sequence[Study | Series | Instance]) -> None:
        for item in items:
            places = self._locations.setdefault(item.StudyInstanceUID, [])
            for location in item.locations:
                if location not in places:
                    places.append(location)

    # -- searching ---------------------------------------------------------------

    def search_for_studies(
        self,
        patient_name: str | None = None,
        patient_id: str | None = None,
        study_date: DateQuery | None = None,
        modality: str | None = None,
        accession_number: str | None = None,
        study_instance_uid: str | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
    ) -> FederatedResults[Study]:
        """Search every source at once; merge by Study Instance UID; link patients.

        Returns
        -------
        FederatedResults of Study
            With ``.source_health`` and ``.patients``.
        """
        def call(source: Source) -> list[Study]:
            return source.search_for_studies(
                patient_name=patient_name, patient_id=patient_id,
                study_date=study_date, modality=modality,
                accession_number=accession_number,
                study_instance_uid=study_instance_uid, fields=fields, limit=limit)

        found, health = self._fan_out(call)
        studies = _merge(found, "StudyInstanceUID")
        studies.sort(key=lambda s: (s.StudyDate, s.StudyTime), reverse=True)
        if limit is not None:
            studies = studies[:limit]
        results = FederatedResults(studies, health)
        results.patients = link_patients(results)
        self._remember(results)
        return results

    def search_for_series(
        self,
        study_instance_uid: str | None = None,
        modality: str | None = None,
        series_instance_uid: str | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
    ) -> FederatedResults[Series]:
        """Search every source for series; merge by Series Instance UID."""
        def call(source: Source) -> list[Series]:
            return source.search_for_series(study_instance_uid, modality,
                                            series_instance_uid, fields, limit)

        found, health = self._fan_out(call)
        series = _merge(found, "SeriesInstanceUID")
        self._remember(series)
        return FederatedResults(series[:limit] if limit else series, health)

    def search_for_instances(
        self,
        study_instance_uid: str,
        series_instance_uid: str | None = None,
        sop_instance_uid: str | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
    ) -> FederatedResults[Instance]:
        """Search every source for instances; merge by SOP Instance UID."""
        def call(source: Source) -> list[Instance]:
            return source.search_for_instances(study_instance_uid,
                                               series_instance_uid,
                                               sop_instance_uid, fields, limit)

        found, health = self._fan_out(call)
        instances = _merge(found, "SOPInstanceUID")
        instances.sort(key=lambda i: (i.InstanceNumber is None, i.InstanceNumber or 0))
        return FederatedResults(instances[:limit] if limit else instances, health)

    # -- retrieving --------------------------------------------------------------

    def _first(self, study_instance_uid: str, action: str,
               call: Callable[[Source], T]) -> T:
        failures: list[SourceError] = []
        for source in self._holders(study_instance_uid):
            try:
                return call(source)
            except SourceError as err:
                failures.append(err)
        details = "; ".join(str(f) for f in failures)
        if all(isinstance(f, SourceNotFoundError) for f in failures):
            raise SourceNotFoundError(
                self.name, f"no source holds it ({action}): {details}") from (
                failures[-1] if failures else None)
        first = next(f for f in failures if not isinstance(f, SourceNotFoundError))
        raise type(first)(self.name, f"every source failed ({action}): {details}"
                          ) from first

    def retrieve_series_metadata(self, study_instance_uid: str,
                                 series_instance_uid: str) -> list[Dataset]:
        """Return series metadata from the first source that holds the study."""
        return self._first(study_instance_uid, "retrieving series metadata",
                           lambda s: s.retrieve_series_metadata(study_instance_uid,
                                                                series_instance_uid))

    def retrieve_instance_metadata(self, study_instance_uid: str,
                                   series_instance_uid: str,
                                   sop_instance_uid: str) -> Dataset:
        """Return instance metadata from the first source that holds the study."""
        return self._first(study_instance_uid, "retrieving instance metadata",
                           lambda s: s.retrieve_instance_metadata(
                               study_instance_uid, series_instance_uid,
                               sop_instance_uid))

    def retrieve_instance(self, study_instance_uid: str, series_instance_uid: str,
                          sop_instance_uid: str) -> Dataset:
        """Return one whole instance from the first source that holds the study."""
        return self._first(study_instance_uid, "retrieving an instance",
                           lambda s: s.retrieve_instance(study_instance_uid,
                                                         series_instance_uid,
                                                         sop_instance_uid))

    def iter_series(self, study_instance_uid: str,
                    series_instance_uid: str) -> Iterator[Dataset]:
        """Stream a series from the first source that holds the study.

        Only the start of the transfer falls back to another source; a transfer
        that breaks midway raises (see :meth:`retrieve_series`).
        """
        def opened(source: Source) -> tuple[Dataset | None, Iterator[Dataset]]:
            iterator = iter(source.iter_series(study_instance_uid,
                                               series_instance_uid))
            return next(iterator, None), iterator

        first, rest = self._first(study_instance_uid, "retrieving a series", opened)

        def chained() -> Iterator[Dataset]:
            if first is not None:
                yield first
                yield from rest

        return chained()

    def retrieve_instance_frames(self, study_instance_uid: str,
                                 series_instance_uid: str, sop_instance_uid: str,
                                 frame_numbers: Sequence[int]) -> list[bytes]:
        """Return frames (``frame_number`` from 1) from a source holding the study."""
        return self._first(study_instance_uid, "retrieving frames",
                           lambda s: s.retrieve_instance_frames(
                               study_instance_uid, series_instance_uid,
                               sop_instance_uid, frame_numbers))

    def health(self) -> SourceHealth:
        """Check every source at once; ``'ok'`` only if all are."""
        by_source = self.health_by_source()
        states = [h.state for h in by_source.values()]
        latencies = [h.latency_ms for h in by_source.values() if h.latency_ms]
        state = ("ok" if all(s == "ok" for s in states) else
                 "down" if all(s == "down" for s in states) else "slow")
        message = "; ".join(f"{n}: {h.state}" for n, h in by_source.items()
                            if h.state != "ok")
        return SourceHealth(state, max(latencies) if latencies else None, message,
                            self.name)

    def health_by_source(self) -> dict[str, SourceHealth]:
        """Run every member's :meth:`health` at once, within ``timeout_s``."""
        found, fan_health = self._fan_out(lambda s: [s.health()])
        by_source = {h.source_name: h for h in found}
        for name, health in fan_health.items():
            by_source.setdefault(name, health)
        return {s.name: by_source[s.name] for s in self.sources}


__all__ = ["FederatedResults", "FederatedSource", "LinkedPatient", "link_patients"]
