"""The source protocol: what every archive, folder or federation of them offers."""

from __future__ import annotations

import datetime
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from viewerlib.errors import (
    PartialSeriesError,
    SourceError,
    SourceResponseError,
    SourceUnreachableError,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.model import Instance, PersonName, Series, Study

logger = logging.getLogger(__name__)

HealthState = Literal["ok", "slow", "down"]
DateQuery = str | datetime.date | tuple[str | datetime.date | None,
                                        str | datetime.date | None]

_DATE = re.compile(r"^\d{8}$")


@dataclass
class SourceHealth:
    """How a source answered its last check.

    Attributes
    ----------
    state : {'ok', 'slow', 'down'}
        ``'slow'`` means it answered, but later than the source's threshold (or
        not within a federation's time limit).
    latency_ms : float or None
        Round-trip time of the check; for a source that did not answer in time,
        how long it was waited for (a lower bound); ``None`` when it failed.
    message : str
        What happened, in words a user can act on (empty when ``'ok'``).
    source_name : str
        The source checked.
    answered : bool
        ``False`` when the source's answer is missing (not in time, or failed).
    """

    state: HealthState
    latency_ms: float | None
    message: str = ""
    source_name: str = ""
    answered: bool = True


@dataclass
class StoreReport:
    """What a STOW-RS upload (or a folder upload) did, per instance or file.

    Attributes
    ----------
    stored : list of str
        (0008,0018) *SOP Instance UID* (or file path) of everything stored.
    failed : list of tuple of str
        ``(SOP Instance UID or path, reason)`` for everything refused.
    """

    stored: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """``True`` when nothing failed."""
        return not self.failed


def _format_date(value: str | datetime.date | None, argument: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.date):
        return value.strftime("%Y%m%d")
    text = str(value).replace("-", "") if len(str(value)) == 10 else str(value)
    if not _DATE.match(text):
        raise ValueError(f"{argument} must be a date 'YYYYMMDD' (or a datetime.date),"
                         f" got {value!r}")
    return text


def normalize_date_query(value: DateQuery | None) -> str | None:
    """Turn a date or date range into DICOM range matching (PS3.4 C.2.2.2.5).

    Parameters
    ----------
    value : str, datetime.date, tuple or None
        ``'YYYYMMDD'``, ``'YYYYMMDD-YYYYMMDD'``, ``'YYYYMMDD-'``, ``'-YYYYMMDD'``,
        a :class:`datetime.date`, or ``(start, end)`` where either end may be
        ``None`` (open).

    Returns
    -------
    str or None
        The DICOM form, e.g. ``'20200101-20201231'``; ``None`` when ``value`` is.

    Raises
    ------
    ValueError
        If a date is not ``YYYYMMDD`` or the range runs backwards.

    Examples
    --------
    >>> normalize_date_query(("20200101", None))
    '20200101-'
    >>> normalize_date_query(datetime.date(2021, 3, 4))
    '20210304'
    """
    if value is None:
        return None
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(
                f"study_date as a tuple must be (start, end), got {value!r}")
        start = _format_date(value[0], "the start of study_date")
        end = _format_date(value[1], "the end of study_date")
    elif isinstance(value, datetime.date):
        return _format_date(value, "study_date")
    elif "-" in value and len(value) != 10:
        first, _, second = value.partition("-")
        start = _format_date(first or None, "the start of study_date")
        end = _format_date(second or None, "the end of study_date")
    else:
        return _format_date(value, "study_date")
    if not start and not end:
        raise ValueError("study_date range needs a start or an end, got neither")
    if start and end and start > end:
        raise ValueError(f"study_date range runs backwards: {start} is after {end}")
    return f"{start}-{end}"


def date_matches(date: str, query: str | None) -> bool:
    """Say whether a DA value matches the output of :func:`normalize_date_query`."""
    if not query:
        return True
    if not date:
        return False
    if "-" not in query:
        return date == query
    start, _, end = query.partition("-")
    return (not start or date >= start) and (not end or date <= end)


def wildcard_matches(value: str, pattern: str | None) -> bool:
    """Match a value against a DICOM wildcard (``*`` any run, ``?`` one character).

    Matching is case-insensitive, as most archives do for (0010,0010) *Patient's
    Name* (PS3.4 C.2.2.2.4).

    Examples
    --------
    >>> wildcard_matches("Test^Case", "test*")
    True
    >>> wildcard_matches("Test^Case", "Case")
    False
    """
    if pattern is None or pattern == "" or pattern == "*":
        return True
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                    for c in pattern)
    return re.fullmatch(regex, value, flags=re.IGNORECASE | re.DOTALL) is not None


def person_name_matches(name: PersonName | None, pattern: str | None) -> bool:
    """Match a Person Name against a wildcard pattern, group by group.

    The pattern matches when it matches any one of the three component groups
    (alphabetic, ideographic, phonetic; PS3.5 6.2.1.1) or the whole value
    written with ``=`` between the groups, as :func:`wildcard_matches` does
    (case-insensitive).

    Parameters
    ----------
    name : PersonName or None
        A decoded (0010,0010) *Patient's Name*; ``None`` for an empty value.
    pattern : str or None
        ``*`` and ``?`` are wildcards; ``None`` or ``""`` matches every name.

    Examples
    --------
    >>> from viewerlib.model import PersonName
    >>> name = PersonName("Yamada^Tarou", "山田^太郎", "やまだ^たろう")
    >>> person_name_matches(name, "山田*"), person_name_matches(name, "*^たろう")
    (True, True)
    >>> person_name_matches(name, "Tarou*")
    False
    """
    if not pattern:
        return True
    groups = list(name) if name is not None else []
    whole = "=".join(groups).rstrip("=")
    return any(wildcard_matches(value, pattern)
               for value in (*[g for g in groups if g], whole))


def partial_unlisted(source_name: str, datasets: list[Dataset],
                     failure: BaseException | None, expected_count: int | None,
                     listing_error: SourceError) -> BaseException:
    """The error for a series cut short that its source cannot list now.

    What arrived is kept, and what is missing is counted when the count came
    before the source stopped; which instances they are cannot be said.
    Nothing arrived: the transfer's own error, which says it best.
    """
    if not datasets and failure is not None:
        return failure
    why_unlisted = str(listing_error).removeprefix(f"{source_name}: ")
    broke = (f" ({str(failure).removeprefix(f'{source_name}: ')})" if failure
             else "")
    if expected_count is not None:
        missing_count: int | None = max(expected_count - len(datasets), 0)
        what = (f"only {len(datasets)} of the {expected_count} instances of the "
                f"series arrived{broke}; the other {missing_count} cannot be "
                "named")
    else:
        missing_count = None
        what = (f"{len(datasets)} instances of the series arrived before the "
                f"transfer broke{broke}; how many are missing is not known")
    return PartialSeriesError(
        source_name, f"{what}, because the source could not be asked for the "
        f"series' instances either: {why_unlisted} The instances that arrived "
        "are in '.datasets' and are whole. Retry when the source answers "
        "again; if it keeps stopping mid-transfer, tell its administrator.",
        datasets, [], missing_count=missing_count)


class Source(ABC):
    """One place studies come from: an archive, a folder, or several of them.

    Subclasses must override every ``search_for_*``, ``retrieve_*`` and ``iter_``
    method marked abstract; creating a concrete subclass that misses one raises
    :class:`TypeError` at class creation, naming the missing methods.

    Notes
    -----
    ``frame_number`` arguments start at 1 as in DICOMweb (PS3.18 10.4.1.1.4).
    """

    name: str

    def __init_subclass__(cls, abstract: bool = False, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # ABCMeta computes __abstractmethods__ only after this hook, so look
        # at each required method directly.
        missing = sorted(
            name for name in Source.__abstractmethods__
            if getattr(getattr(cls, name, None), "__isabstractmethod__", False))
        if abstract or not missing:
            return
        raise TypeError(f"{cls.__name__} must override {', '.join(missing)} to be a "
                        "Source (or be declared with 'abstract=True')")

    @abstractmethod
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
    ) -> list[Study]:
        """Search for studies (QIDO-RS, PS3.18 10.6).

        Parameters
        ----------
        patient_name : str, optional
            (0010,0010) *Patient's Name*; ``*`` and ``?`` are wildcards and a
            name without them matches as a prefix (fuzzy).
        patient_id : str, optional
            (0010,0020) *Patient ID*, exact.
        study_date : str, datetime.date or tuple, optional
            (0008,0020) *Study Date*; see :func:`normalize_date_query`.
        modality : str, optional
            Matched against (0008,0061) *Modalities in Study*.
        accession_number : str, optional
            (0008,0050) *Accession Number*.
        study_instance_uid : str, optional
            (0020,000D) *Study Instance UID*.
        fields : sequence of str, optional
            Extra keywords to include in each result.
        limit : int, optional
            Largest number of studies returned; all when ``None``.

        Returns
        -------
        list of viewerlib.model.Study
        """

    @abstractmethod
    def search_for_series(
        self,
        study_instance_uid: str | None = None,
        modality: str | None = None,
        series_instance_uid: str | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Series]:
        """Search for series, in one study or in all (QIDO-RS)."""

    @abstractmethod
    def search_for_instances(
        self,
        study_instance_uid: str,
        series_instance_uid: str | None = None,
        sop_instance_uid: str | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Instance]:
        """Search for instances of one study, optionally one series (QIDO-RS)."""

    @abstractmethod
    def retrieve_series_metadata(self, study_instance_uid: str,
                                 series_instance_uid: str) -> list[Dataset]:
        """Return the metadata of every instance in a series, without pixel data."""

    @abstractmethod
    def retrieve_instance_metadata(self, study_instance_uid: str,
                                   series_instance_uid: str,
                                   sop_instance_uid: str) -> Dataset:
        """Return the metadata of one instance, without pixel data."""

    @abstractmethod
    def retrieve_instance(self, study_instance_uid: str, series_instance_uid: str,
                          sop_instance_uid: str) -> Dataset:
        """Return one whole instance, pixel data in its original transfer syntax."""

    @abstractmethod
    def iter_series(self, study_instance_uid: str,
                    series_instance_uid: str) -> Iterator[Dataset]:
        """Yield the whole instances of a series as they arrive (streamed)."""

    @abstractmethod
    def retrieve_instance_frames(self, study_instance_uid: str,
                                 series_instance_uid: str, sop_instance_uid: str,
                                 frame_numbers: Sequence[int]) -> list[bytes]:
        """Return frames as stored (compressed or native), ``frame_number`` from 1."""

    @abstractmethod
    def health(self) -> SourceHealth:
        """Check the source with one cheap request and say how it answered."""

    def retrieve_series(self, study_instance_uid: str,
                        series_instance_uid: str) -> list[Dataset]:
        """Return every instance of a series, checked against the series' listing.

        Parameters
        ----------
        study_instance_uid, series_instance_uid : str
            (0020,000D) and (0020,000E) of the series.

        Returns
        -------
        list of pydicom.dataset.Dataset
            In the order the source sent them.

        Raises
        ------
        viewerlib.errors.PartialSeriesError
            If some instances did not arrive (the transfer broke, or the source
            left them out); ``.datasets`` holds those that did, and
            ``.missing_sop_instance_uids`` / ``.missing_count`` say what is
            missing as far as the source could still be asked. An archive that
            stopped answering altogether still gives this error, with what
            arrived before it stopped.

        Notes
        -----
        The series' instance count is asked for while the series streams (one
        cheap query); the full instance listing, slow on some archives, only
        when something is missing, to name it.
        """
        datasets: list[Dataset] = []
        failure: SourceError | None = None
        count_error: SourceError | None = None
        listed: Sequence[Series] = []
        with ThreadPoolExecutor(max_workers=1,
                                thread_name_prefix="lightbox-series-count") as pool:
            counted = pool.submit(self.search_for_series, study_instance_uid,
                                  series_instance_uid=series_instance_uid, limit=1)
            try:
                datasets.extend(self.iter_series(study_instance_uid,
                                                 series_instance_uid))
            except (SourceResponseError, SourceUnreachableError) as err:
                failure = err
            except SourceError:
                # Refused or not found: the retrieval's own error is the one to
                # report (not the count's, which says "searching").
                counted.cancel()
                raise
            try:
                listed = counted.result()
            except SourceError as err:
                count_error = err
        expected_count = listed[0].NumberOfSeriesRelatedInstances if listed else None
        if failure is None and (expected_count is None
                                or len(datasets) >= expected_count):
            if count_error is not None:
                # The stream ended as the standard says a whole answer ends;
                # only the check against the count is missing.
                logger.info("%s: series retrieved, but its instance count could "
                            "not be searched to check it (%s)", self.name,
                            type(count_error).__name__)
            return datasets

        # Something is missing: name it, if the source can still list the series.
        try:
            expected = [i.SOPInstanceUID for i in
                        self.search_for_instances(study_instance_uid,
                                                  series_instance_uid)]
        except SourceError as listing_error:
            raise self._partial_unlisted(datasets, failure, expected_count,
                                         listing_error) from failure or listing_error
        arrived = {str(getattr(d, "SOPInstanceUID", "")) for d in datasets}
        missing = [uid for uid in expected if uid not in arrived]
        if missing:
            reason = f" ({failure})" if failure else ""
            raise PartialSeriesError(
                self.name,
                f"only {len(datasets)} of {len(expected)} instances of the series "
                f"arrived{reason}; the {len(missing)} missing are listed in "
                "'.missing_sop_instance_uids'. Retry, or retrieve them one by one "
                "with retrieve_instance.", datasets, missing) from failure
        if failure is not None:
            raise failure
        return datasets

    def _partial_unlisted(self, datasets: list[Dataset],
                          failure: SourceError | None, expected_count: int | None,
                          listing_error: SourceError) -> SourceError:
        return partial_unlisted(self.name, datasets, failure, expected_count,
                                listing_error)

    def store_instances(self, datasets: Sequence[Dataset]) -> StoreReport:
        """Store instances in the source (STOW-RS).

        Raises
        ------
        NotImplementedError
            If the source is read-only.
        """
        raise NotImplementedError(f"{type(self).__name__} '{self.name}' is read-only: "
                                  "it cannot store instances")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
