"""Several sources searched as one: concurrent fan-out, merged and linked results."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from viewerlib import cache as _cache
from viewerlib.errors import (
    IncompleteResultsWarning,
    SourceAuthenticationError,
    SourceError,
    SourceNotFoundError,
    SourceUnreachableError,
)
from viewerlib.model import Instance, PatientIdentifier, PersonName, Series, Study
from viewerlib.sources.base import DateQuery, Source, SourceHealth

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

T = TypeVar("T")
THREAD_NAME_PREFIX = "lightbox-federated"
"""Names of the fan-out threads begin with this (to find them in a thread dump)."""
INDEX_KIND = "study-locations"
"""How :func:`viewerlib.purge` names the federations' remembered study locations."""
_cache.register_index(INDEX_KIND)
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
        limit: its results are missing, ``answered`` is ``False`` and the latency
        is how long it was waited for) or ``'down'``, with latency and message.
    patients : list of LinkedPatient
        For study searches: the patients, linked across identifiers.
    not_searched : dict of str to str
        Each source whose answer is missing (down, refused, too slow) and why;
        empty when ``complete``. Indexing past the end (``results[0]`` on no
        results) raises an :class:`IndexError` that names them.
    """

    def __init__(self, items: Sequence[T] = (),
                 source_health: dict[str, SourceHealth] | None = None) -> None:
        super().__init__(items)
        self.source_health: dict[str, SourceHealth] = source_health or {}
        self.patients: list[LinkedPatient] = []

    @property
    def complete(self) -> bool:
        """``True`` when every source answered in time."""
        return all(h.answered for h in self.source_health.values())

    @property
    def incomplete(self) -> bool:
        """``True`` when some source did not answer: results may be missing."""
        return not self.complete

    @property
    def not_searched(self) -> dict[str, str]:
        """Each source whose answer is missing, with why (down, refused, too slow)."""
        return {name: _reason(health) for name, health in self.source_health.items()
                if not health.answered}

    def __getitem__(self, index: Any) -> Any:
        try:
            return super().__getitem__(index)
        except IndexError:
            note = not_searched_note(self)
            if not note:
                raise
            # ``search(...)[0]`` on nothing found: say that archives were missing.
            raise IndexError(f"no result {index!r} among the {len(self)} found. "
                             f"{note}") from None


def _reason(health: SourceHealth) -> str:
    """A source's message without the leading ``"<source name>: "``."""
    return health.message.removeprefix(f"{health.source_name}: ")


def _quoted_list(names: Sequence[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else (
        f"{', '.join(quoted[:-1])} and {quoted[-1]}")


def _each_reason(reasons: dict[str, str]) -> str:
    """``"'a': why. 'b': why."``: each source's reason as a sentence of its own."""
    return " ".join(f"'{name}': {why.rstrip('. ')}." for name, why in reasons.items())


def not_searched_note(results: Sequence[Any]) -> str:
    """Say which archives a search could not reach, for a "nothing found" message.

    Parameters
    ----------
    results : sequence
        What a search returned; a plain list (one source) has nothing to say.

    Returns
    -------
    str
        ``""`` when every archive answered; otherwise a sentence naming each
        archive that could not be searched, then each one's reason and what to
        do, e.g. ``"Archive 'Main PACS' could not be searched, so what it holds
        is missing from these results: could not reach ..."``

    Examples
    --------
    >>> from viewerlib.sources.base import SourceHealth
    >>> down = SourceHealth("down", None, "pacs: connection refused", "pacs",
    ...                     answered=False)
    >>> note = not_searched_note(FederatedResults([], {"pacs": down}))
    >>> note.startswith("Archive 'pacs' could not be searched")
    True
    >>> note.endswith("missing from these results: connection refused")
    True
    >>> not_searched_note([])
    ''
    """
    missing = getattr(results, "not_searched", None)
    if not missing:
        return ""
    names = _quoted_list(list(missing))
    if len(missing) == 1:
        (why,) = missing.values()
        return (f"Archive {names} could not be searched, so what it holds is "
                f"missing from these results: {why}")
    return (f"Archives {names} could not be searched, so what they hold is missing "
            f"from these results. {_each_reason(missing)}")


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
    A call left behind keeps its thread until the source's own HTTP timeout ends
    it; while ``max_calls_per_source`` calls to one source are still waiting, new
    searches skip that source (reported ``'slow'``) instead of adding threads, so
    the federation never runs more than ``len(sources) * max_calls_per_source``.
    A search that some sources did not answer warns with
    :class:`~viewerlib.errors.IncompleteResultsWarning` and its results say which
    in ``.not_searched``; when none answered it raises instead, as the most
    specific :class:`~viewerlib.errors.SourceError` that fits every source's
    failure (:class:`~viewerlib.errors.SourceAuthenticationError` when all
    refused the credentials), listing each source's reason.
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
    max_calls_per_source : int
        Calls to one source that may be waiting at once. Default 2.

    Raises
    ------
    ValueError
        If there are no sources, two share a name, or ``max_calls_per_source``
        is below 1.
    """

    def __init__(self, sources: Sequence[Source], timeout_s: float = 10.0,
                 slow_after_s: float | None = None, name: str = "all archives",
                 max_calls_per_source: int = 2) -> None:
        names = [s.name for s in sources]
        if not sources:
            raise ValueError("FederatedSource needs at least one source")
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be distinct, got {names}")
        if max_calls_per_source < 1:
            raise ValueError(f"max_calls_per_source must be >= 1, got "
                             f"{max_calls_per_source}")
        self.sources = list(sources)
        self.name = name
        self.timeout_s = timeout_s
        self.slow_after_s = timeout_s / 2 if slow_after_s is None else slow_after_s
        self.max_calls_per_source = max_calls_per_source
        self._locations: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        # Per source: the calls not yet returned (a token -> when it started).
        self._in_flight: dict[str, dict[object, float]] = {}
        # Which sources hold which study (UIDs seen in searches): purged too.
        _cache.register_index(INDEX_KIND, self)

    def source(self, name: str) -> Source:
        """Return the member source called ``name``."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"no source named {name!r}; known: "
                       f"{[s.name for s in self.sources]}")

    # -- fan-out -----------------------------------------------------------------

    def _executor_for_fan_out(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                # One pool for the federation's lifetime, never more threads than
                # sources x max_calls_per_source, however many searches time out.
                self._executor = ThreadPoolExecutor(
                    max_workers=len(self.sources) * self.max_calls_per_source,
                    thread_name_prefix=THREAD_NAME_PREFIX)
            return self._executor

    def _start_call(self, source: Source, call: Callable[[Source], list[T]],
                    finished: dict[str, float]) -> Future[list[T]] | float:
        """Submit ``call`` for ``source``, or return how long it has been busy."""
        with self._lock:
            running = self._in_flight.setdefault(source.name, {})
            if len(running) >= self.max_calls_per_source:
                return time.perf_counter() - min(running.values())
            token = object()
            running[token] = time.perf_counter()

        def timed() -> list[T]:
            try:
                return call(source)
            finally:
                finished[source.name] = time.perf_counter()
                with self._lock:
                    running.pop(token, None)

        try:
            return self._executor_for_fan_out().submit(timed)
        except RuntimeError:
            # The federation was closed meanwhile.
            with self._lock:
                running.pop(token, None)
            raise

    def _fan_out(self, call: Callable[[Source], list[T]],
                 sources: Sequence[Source] | None = None,
                 raise_if_none_answered: bool = True,
                 ) -> tuple[list[T], dict[str, SourceHealth]]:
        sources = list(sources or self.sources)
        started = time.perf_counter()
        finished: dict[str, float] = {}
        health: dict[str, SourceHealth] = {}
        failures: dict[str, SourceError] = {}
        futures: dict[Future[list[T]], Source] = {}
        for source in sources:
            started_or_busy = self._start_call(source, call, finished)
            if isinstance(started_or_busy, Future):
                futures[started_or_busy] = source
                continue
            # Earlier calls still wait on this source: do not stack another thread
            # on it; they end at the latest after its own HTTP timeout.
            message = (
                f"still waiting for {self.max_calls_per_source} earlier requests, "
                f"the oldest for {started_or_busy:.1f} s; left out of this search. "
                "Search again later; if it stays slow, ask the archive's "
                "administrator.")
            health[source.name] = SourceHealth("slow", started_or_busy * 1000,
                                               message, source.name, answered=False)
            failures[source.name] = SourceUnreachableError(source.name, message)
        done, _ = wait(futures, timeout=self.timeout_s)
        waited_ms = (time.perf_counter() - started) * 1000

        results: list[T] = []
        for future, source in futures.items():
            if future not in done:
                message = (f"no answer within {self.timeout_s:g} s; its results are "
                           "missing. Search again later, or raise timeout_s.")
                health[source.name] = SourceHealth("slow", waited_ms, message,
                                                   source.name, answered=False)
                failures[source.name] = SourceUnreachableError(source.name, message)
                continue
            latency_ms = (finished.get(source.name, time.perf_counter())
                          - started) * 1000
            error = future.exception()
            if isinstance(error, SourceNotFoundError):
                health[source.name] = SourceHealth("ok", latency_ms, "", source.name)
            elif isinstance(error, SourceError):
                health[source.name] = SourceHealth("down", None, str(error),
                                                   source.name, answered=False)
                failures[source.name] = error
            elif error is not None:
                raise error
            else:
                results.extend(future.result())
                state = "slow" if latency_ms > self.slow_after_s * 1000 else "ok"
                message = (f"answered in {latency_ms:.0f} ms" if state == "slow"
                           else "")
                health[source.name] = SourceHealth(state, latency_ms, message,
                                                   source.name)
        health = {s.name: health[s.name] for s in sources}
        for state in ("slow", "down"):
            names = [n for n, h in health.items() if h.state == state]
            if names:
                logger.warning("%d of %d sources %s: %s", len(names), len(sources),
                               state, ", ".join(names))
        if raise_if_none_answered and health and len(failures) == len(health):
            # An empty answer would read as "no such patient"; say what happened.
            raise self._none_answered(failures, health)
        return results, health

    def _none_answered(self, failures: dict[str, SourceError],
                       health: dict[str, SourceHealth]) -> SourceError:
        """The most specific error for a search no source answered."""
        reasons = _each_reason({name: str(error).removeprefix(name + ": ")
                                for name, error in failures.items()})
        errors = list(failures.values())
        if all(isinstance(e, SourceAuthenticationError) for e in errors):
            # Each reason says what to do (which setting, or sign in again).
            error: SourceError = SourceAuthenticationError(
                self.name, f"{_quoted_list(list(failures))} refused the credentials "
                f"(or none could be sent), so nothing could be searched. {reasons}")
        elif all(isinstance(e, SourceUnreachableError) for e in errors):
            all_down = all(h.state == "down" for h in health.values())
            summary = ("every archive is down" if all_down
                       else "no archive answered in time")
            error = SourceUnreachableError(
                self.name, f"{summary}, so nothing could be searched. {reasons}")
        else:
            # The closest class all the errors share, so callers catching it see
            # every case; the message keeps each archive's own reason.
            common = next(c for c in type(errors[0]).__mro__
                          if all(isinstance(e, c) for e in errors))
            kind = common if issubclass(common, SourceError) else SourceError
            error = kind(self.name, "no archive could be searched, each for its "
                         f"own reason. {reasons}")
        error.failures = dict(failures)  # type: ignore[attr-defined]
        return error

    def _warn_if_incomplete(self, results: FederatedResults[Any]) -> None:
        """Warn (visibly, in a notebook) when some archives were not searched."""
        if results.complete:
            return
        searched = len(results.source_health) - len(results.not_searched)
        warnings.warn(IncompleteResultsWarning(
            f"{searched} of {len(results.source_health)} archives answered. "
            f"{not_searched_note(results)} (The results' .not_searched lists "
            "each archive left out and why.)"), stacklevel=3)

    def close(self) -> None:
        """Let the fan-out threads end (calls still running finish first)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _holders(self, study_instance_uid: str | None) -> list[Source]:
        with self._lock:
            names = list(self._locations.get(study_instance_uid or "", []))
        known = [self.source(n) for n in names]
        return known + [s for s in self.sources if s not in known]

    def _remember(self, items: Sequence[Study | Series | Instance]) -> None:
        with self._lock:
            for item in items:
                places = self._locations.setdefault(item.StudyInstanceUID, [])
                for location in item.locations:
                    if location not in places:
                        places.append(location)

    def clear_index(self) -> tuple[int, int]:
        """Forget where earlier searches found each study.

        Retrievals then try the sources in their configured order until a
        search remembers the study again.

        Returns
        -------
        tuple of int
            ``(studies forgotten, estimated bytes)``.
        """
        with self._lock:
            locations, self._locations = self._locations, {}
        if not locations:
            return 0, 0
        return len(locations), _cache.estimate_size(locations)

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
            With ``.source_health``, ``.not_searched`` and ``.patients``.

        Warns
        -----
        viewerlib.errors.IncompleteResultsWarning
            If some sources did not answer (named, with why).

        Raises
        ------
        viewerlib.errors.SourceError
            If no source answered; the subclass all the failures share (e.g.
            SourceAuthenticationError), the message naming each source's reason.
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
        self._warn_if_incomplete(results)
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
        results = FederatedResults(series[:limit] if limit else series, health)
        self._warn_if_incomplete(results)
        return results

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
        results = FederatedResults(instances[:limit] if limit else instances, health)
        self._warn_if_incomplete(results)
        return results

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
        found, fan_health = self._fan_out(lambda s: [s.health()],
                                          raise_if_none_answered=False)
        by_source = {h.source_name: h for h in found}
        for name, health in fan_health.items():
            by_source.setdefault(name, health)
        return {s.name: by_source[s.name] for s in self.sources}


__all__ = ["FederatedResults", "FederatedSource", "LinkedPatient", "link_patients",
           "not_searched_note"]
