"""A DICOMweb archive (QIDO-RS, WADO-RS, STOW-RS) as a :class:`~.base.Source`.

Every way in which one archive product departs from PS3.18 lives in
:mod:`viewerlib.sources.quirks`; this module is written against the standard.
"""

from __future__ import annotations

import copy
import io
import logging
import re
import ssl
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pydicom
import requests
import urllib3
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from viewerlib import cache as _cache
from viewerlib.errors import (
    SourceAuthenticationError,
    SourceError,
    SourceNotFoundError,
    SourceResponseError,
    SourceUnreachableError,
)
from viewerlib.model import Instance, Series, Study, json_value
from viewerlib.sources.auth import (
    REFRESHED_NOT_RESENT,
    TOKEN_PROVIDER,
    AccessToken,
    AccessTokenProvider,
    BearerAuth,
)
from viewerlib.sources.base import (
    DateQuery,
    Source,
    SourceHealth,
    StoreReport,
    normalize_date_query,
)
from viewerlib.sources.layout import HeaderLayouts
from viewerlib.sources.multipart import (
    SplitBody,
    iter_multipart_part10,
    iter_multipart_parts,
    read_ahead,
)
from viewerlib.sources.multipart import safe_url as _safe_url
from viewerlib.sources.quirks import ArchiveQuirks, NameFilter, NameQuery

logger = logging.getLogger(__name__)

_OTHER_PATIENT_IDS = "00101002"  # (0010,1002) Other Patient IDs Sequence
_STUDY_FIELDS = ("StudyDescription", "IssuerOfPatientID", "OtherPatientIDsSequence",
                 "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                 "NumberOfStudyRelatedInstances")
_SERIES_FIELDS = ("Modality", "SeriesNumber", "SeriesDescription",
                  "NumberOfSeriesRelatedInstances")
_INSTANCE_FIELDS = ("SOPClassUID", "InstanceNumber", "NumberOfFrames")
# Answers to a series-level WADO-RS request that mean "not this way": the
# archive cannot send a whole series (or not in the media type asked for), so
# its instances are retrieved one by one instead.
_SERIES_REFUSED = frozenset({400, 405, 406, 501})
# Media types of frames for a requested transfer syntax (PS3.18 8.7.3.5.2).
_FRAME_MEDIA_TYPES = {
    "*": "application/octet-stream",
    "1.2.840.10008.1.2.1": "application/octet-stream",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
}


class _ScrubQueryStrings(logging.Filter):
    """Remove query strings and quoted UIDs from HTTP libraries' log records.

    dicomweb-client and urllib3 log whole request URLs (query values are patient
    data), and dicomweb-client logs UIDs at info level; our rules allow neither.
    """

    _query = re.compile(r"\?[^\s'\"]*")
    _uid = re.compile(r'"[0-9.]{6,64}"')

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self._uid.sub('"<uid>"', self._query.sub("?<query>", message))
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


# urllib3 logs the request line (query string included) at debug level too.
for _name in ("dicomweb_client.web", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_ScrubQueryStrings())



class ArchiveSession(requests.Session):
    """The HTTP session one :class:`DICOMwebSource` owns (never shared or global).

    It applies the archive's query quirks to each outgoing request, a default
    timeout, and bounded retries on connection errors and HTTP 502/503/504.

    Parameters
    ----------
    quirks : ArchiveQuirks
        How to rewrite query strings.
    timeout : float
        Seconds to wait for a connection and for each read.
    retries : int
        Extra attempts after a connection error or a 502/503/504 answer (GET
        only; STOW-RS is not retried).
    backoff_s : float
        Base of the exponential back-off between attempts.
    """

    def __init__(self, quirks: ArchiveQuirks, timeout: float = 20.0,
                 retries: int = 2, backoff_s: float = 0.25) -> None:
        super().__init__()
        self.quirks = quirks
        self.timeout = timeout
        retry = Retry(total=None, connect=retries, read=0, redirect=3,
                      status=retries, other=0, backoff_factor=backoff_s,
                      status_forcelist=(502, 503, 504),
                      allowed_methods=frozenset({"GET", "HEAD"}),
                      raise_on_status=False, respect_retry_after_header=True)
        adapter = HTTPAdapter(max_retries=retry)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        # No proxies or .netrc from the environment: credentials come from the
        # archives configuration only, and requests stay on the named host.
        self.trust_env = False

    def send(self, request: requests.PreparedRequest,  # type: ignore[override]
             **kwargs: Any) -> requests.Response:
        if request.url and "?" in request.url:
            base, _, query = request.url.partition("?")
            request.url = f"{base}?{self.quirks.rewrite_query(query)}"
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def _check_uid(value: str, keyword: str) -> None:
    if not isinstance(value, str) or not UID(value).is_valid:
        raise ValueError(f"{keyword} must be a valid UID (digits and dots, at most 64 "
                         f"characters), got {value!r}")


def prepare_for_storage(dataset: Dataset) -> Dataset:
    """Return a shallow copy of ``dataset`` written as a Part-10 file would be.

    STOW-RS carries Part-10 files (PS3.10 7.1), and some archives keep the bytes
    as sent: the copy gets the 128-byte preamble and the group 0002 File Meta
    (transfer syntax, SOP class and instance) where they are missing. Data sets
    read with ``force=True`` from files without File Meta need this.
    """
    prepared = copy.copy(dataset)
    if getattr(prepared, "preamble", None) is None:
        prepared.preamble = b"\0" * 128
    meta = FileMetaDataset(getattr(dataset, "file_meta", None) or FileMetaDataset())
    if "TransferSyntaxUID" not in meta:
        implicit = dataset.original_encoding[0] is not False
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else (
            ExplicitVRLittleEndian)
    if "MediaStorageSOPClassUID" not in meta and "SOPClassUID" in dataset:
        meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    if "MediaStorageSOPInstanceUID" not in meta and "SOPInstanceUID" in dataset:
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    if "ImplementationClassUID" not in meta:
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    prepared.file_meta = meta
    return prepared


def _names_one(uid: str | None) -> bool:
    """Whether a UID query value names one object (not a list, PS3.18 8.3.4.1)."""
    return bool(uid) and "," not in str(uid) and "\\" not in str(uid)


def _ssl_cause(err: BaseException) -> ssl.SSLError | None:
    """Find the :class:`ssl.SSLError` inside a requests / urllib3 error, if any."""
    seen: set[int] = set()
    pending: list[Any] = [err]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        if isinstance(current, BaseException):
            pending += [current.__cause__, current.__context__,
                        getattr(current, "reason", None), *current.args]
    return None



def _bulk_data_left_out(*_: Any) -> None:
    # Metadata is for headers; pixel data comes through frames or instances.
    return None


class DICOMwebSource(Source):
    """One DICOMweb archive.

    Parameters
    ----------
    url : str
        The DICOMweb root, e.g. ``"http://127.0.0.1:8042/dicom-web"``.
    name : str, optional
        Short name shown in results and messages; the host and port by default.
    auth : tuple, str, callable or requests.auth.AuthBase, optional
        ``(user, password)`` for HTTP basic; a ``str`` bearer token; a callable
        returning a fresh bearer token (e.g. :class:`AccessTokenProvider`); or
        any requests auth object. ``None`` for no authentication.
    quirks : ArchiveQuirks, optional
        How this archive departs from the standard; :meth:`ArchiveQuirks.standard`
        by default.
    timeout : float
        Seconds to wait for a connection and for each read. Default 20.
    retries : int
        Extra attempts on connection errors and 502/503/504. Default 2.
    client_certificate : tuple of str, optional
        ``(certificate_path, key_path)`` for TLS client authentication.
    verify : bool or str
        ``True`` to check the server certificate against the system store, or a
        path to a CA bundle.
    slow_after_s : float
        :meth:`health` reports ``'slow'`` above this round-trip time. Default 2.
    use_cache : bool
        Keep metadata and pixel data in :mod:`viewerlib.cache` (memory only).

    Examples
    --------
    >>> source = DICOMwebSource("http://127.0.0.1:8042/dicom-web", name="pacs",
    ...                         quirks=ArchiveQuirks.for_orthanc_1_10())
    >>> source
    DICOMwebSource(name='pacs')
    """

    def __init__(self, url: str, name: str | None = None, auth: Any = None,
                 quirks: ArchiveQuirks | None = None, timeout: float = 20.0,
                 retries: int = 2,
                 client_certificate: tuple[str, str] | None = None,
                 verify: bool | str = True, slow_after_s: float = 2.0,
                 use_cache: bool = True) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"DICOMweb url must be http(s)://host[:port]/path, got "
                             f"{_safe_url(url)!r}")
        self.name = name or (f"{parts.hostname}:{parts.port}" if parts.port
                             else parts.hostname)
        self.quirks = quirks or ArchiveQuirks.standard()
        self.timeout, self.retries, self.slow_after_s = timeout, retries, slow_after_s
        self.use_cache = use_cache
        self.session = ArchiveSession(self.quirks, timeout=timeout, retries=retries)
        if isinstance(auth, tuple):
            self.session.auth = requests.auth.HTTPBasicAuth(*auth)
        elif isinstance(auth, requests.auth.AuthBase):
            self.session.auth = auth
        elif isinstance(auth, str) or callable(auth):
            self.session.auth = BearerAuth(auth)
        elif auth is not None:
            raise TypeError(f"auth must be (user, password), a token, a token callable "
                            f"or a requests auth object, got {type(auth).__name__}")
        if client_certificate is not None:
            self.session.cert = client_certificate
        self.session.verify = verify
        self.client = DICOMwebClient(self.url, session=self.session, timeout=timeout)
        # Retries happen once, in the session's adapter; not again in the client.
        self.client.set_http_retry_params(retry=False)
        # Smaller chunks: the first instance of a series is handed on sooner.
        self.client.set_chunk_size(256 * 1024)

    # -- errors ------------------------------------------------------------------

    @contextmanager
    def _translated_errors(self, action: str) -> Iterator[None]:
        where = _safe_url(self.url)
        try:
            yield
        except SourceAuthenticationError as err:
            if err.source_name != TOKEN_PROVIDER:
                raise
            # The token service failed while authorising a request to this archive.
            raise SourceAuthenticationError(
                self.name, f"no access token to send to {where} while {action}: "
                f"{str(err).removeprefix(TOKEN_PROVIDER + ': ')}") from err
        except SourceError:
            raise
        except requests.HTTPError as err:
            raise self._http_error(err, action) from err
        except requests.exceptions.SSLError as err:
            raise self._tls_error(err, action) from err
        except (requests.Timeout, urllib3.exceptions.ReadTimeoutError) as err:
            raise SourceUnreachableError(
                self.name, f"no answer from {where} within {self.timeout:g} s while "
                f"{action}. The archive may be overloaded or stopped; try again, or "
                "raise 'timeout' for this archive.") from err
        except requests.ConnectionError as err:
            reason = "connection refused" if "refused" in str(err).lower() else (
                "connection failed")
            raise SourceUnreachableError(
                self.name, f"could not reach {where} while {action} ({reason}, after "
                f"{self.retries} retries). Check that the archive is running and "
                "that its url in the archives configuration is right.") from err
        except (requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                urllib3.exceptions.ProtocolError) as err:
            raise SourceResponseError(
                self.name, f"the answer from {where} was cut short while {action}. "
                "Try again; if it keeps happening, the archive or a proxy in "
                "between drops long transfers.") from err
        except (ValueError, InvalidDicomError, EOFError, KeyError) as err:
            raise SourceResponseError(
                self.name, f"the answer from {where} could not be read while "
                f"{action} ({type(err).__name__}: {err}). The archive sent a "
                "malformed body; check its logs or report it to its administrator."
            ) from err

    def _http_error(self, err: requests.HTTPError, action: str) -> SourceError:
        status = err.response.status_code if err.response is not None else 0
        where = _safe_url(err.response.url) if err.response is not None else (
            _safe_url(self.url))
        if status == 401 and self._refreshes_token:
            return SourceAuthenticationError(
                self.name, f"{where} refused the access token (HTTP 401) while "
                f"{action}, also a fresh one fetched after the first refusal. Sign "
                "in to the hub again (the sign-on may have ended); if that does not "
                f"help, ask the administrator of archive '{self.name}' whether your "
                "account may use it.")
        if status == 401:
            return SourceAuthenticationError(
                self.name, f"{where} refused the credentials (HTTP 401) while "
                f"{action}. Check the username and password_env (auth = \"basic\") "
                "or token_env / token_file (auth = \"bearer\") of this archive in "
                "the archives configuration, and that the variable or file they "
                "name holds the current secret.")
        if status == 403:
            return SourceAuthenticationError(
                self.name, f"{where} denied access (HTTP 403) while {action}. Ask "
                "the archive's administrator to grant this account access.")
        if status == 404:
            return SourceNotFoundError(
                self.name, f"{where} does not hold what was asked for (HTTP 404) "
                f"while {action}. Search again, or look in another archive.")
        return SourceResponseError(
            self.name, f"{where} answered HTTP {status} while {action}. Check the "
            "archive's logs; if the request looks valid, report it to the archive's "
            "administrator.")

    def _tls_error(self, err: requests.exceptions.SSLError,
                   action: str) -> SourceError:
        """Say which side of a failed TLS handshake to fix, and how."""
        where = _safe_url(self.url)
        cause = _ssl_cause(err)
        reason = getattr(cause, "reason", None) or type(cause or err).__name__
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = getattr(cause, "verify_message", "") or reason
            return SourceUnreachableError(
                self.name, f"the TLS certificate of {where} could not be verified "
                f"while {action} ({detail}). If the archive's certificate is signed "
                "by the hospital's own CA, name that CA's certificate file with "
                "'ca_bundle' for this archive in the archives configuration; "
                "otherwise ask the archive's administrator.")
        if self.session.cert is None:
            return SourceAuthenticationError(
                self.name, f"{where} ended the TLS handshake while {action} "
                f"({reason}): it asks for a client certificate, and none is set "
                "for this archive. Set auth = \"certificate\" with 'cert_file' and "
                "'key_file' (a certificate the archive's administrator trusts) "
                "for this archive in the archives configuration.")
        return SourceAuthenticationError(
            self.name, f"{where} did not accept the client certificate while "
            f"{action} (TLS handshake failed: {reason}). Check that 'cert_file' and "
            "'key_file' of this archive in the archives configuration name your "
            "current certificate and its key, and ask the archive's administrator "
            "whether it trusts the CA that signed it.")

    @property
    def _refreshes_token(self) -> bool:
        auth = self.session.auth
        return isinstance(auth, BearerAuth) and auth.refreshable

    # -- QIDO-RS -----------------------------------------------------------------

    def _search(self, level: str, search: Callable[..., list[dict[str, Any]]],
                filters: dict[str, Any], fields: Sequence[str],
                limit: int | None, fuzzy: bool | None,
                keep: Callable[[dict[str, Any]], bool] | None = None,
                unique: bool = False) -> list[dict[str, Any]]:
        """Fetch every page of one QIDO-RS search.

        ``keep`` filters each page here; ``unique`` says the query names one
        object by its UID, so that the first page holds all there is.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0 or None, got {limit}")
        results: list[dict[str, Any]] = []
        offset = 0
        previous: list[dict[str, Any]] | None = None
        with self._translated_errors(f"searching for {level}"):
            while limit is None or len(results) < limit:
                page_size = self.quirks.max_page_size
                if limit is not None and keep is None:
                    page_size = min(page_size, limit - len(results))
                page = search(fuzzymatching=fuzzy, limit=page_size, offset=offset,
                              fields=list(fields) or None,
                              search_filters={k: v for k, v in filters.items()
                                              if v is not None})
                # PS3.18 8.3.4.4: an empty page or a 204 (empty list) ends it. A
                # short page does not: an archive may cap its pages below the
                # limit asked for (10 when 100 were asked), and more may follow.
                if not page:
                    break
                if page == previous:
                    # An archive that ignores offset would repeat itself forever.
                    logger.warning("%s: the archive sent the same page again for "
                                   "offset %d; it ignores 'offset', so the search "
                                   "stops at %d results", self.name, offset,
                                   len(results))
                    break
                previous = page
                offset += len(page)
                results.extend(page if keep is None else filter(keep, page))
                if unique:
                    # One UID matches one object: no page can follow.
                    break
        if limit is not None:
            # Some archives send more than the limit asked for.
            del results[limit:]
        logger.info("%s: search for %s found %d", self.name, level, len(results))
        return results

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
        """Search for studies (QIDO-RS); see :meth:`.base.Source.search_for_studies`.

        Notes
        -----
        With ``ArchiveQuirks.raw_query_characters``, spaces and ``^`` in other
        values than the patient name become the ``?`` wildcard, so a match is
        near-exact rather than exact. A patient name is matched exactly as
        asked (over all three component groups), part of it here: see
        :meth:`ArchiveQuirks.prepare_name_query`.
        """
        name = (self.quirks.prepare_name_query(patient_name) if patient_name
                else NameQuery(""))
        keep = NameFilter(name.match_here) if name.match_here is not None else None
        if study_instance_uid is not None:
            _check_uid(study_instance_uid, "study_instance_uid")
        # "*" alone matches every name: the same as not asking.
        name_value = name.value if name.value not in ("", "*") else None
        filters = {"PatientName": name_value, "PatientID": patient_id,
                   "StudyDate": normalize_date_query(study_date),
                   "ModalitiesInStudy": modality, "AccessionNumber": accession_number,
                   "StudyInstanceUID": study_instance_uid}
        found = self._search("studies", self.client.search_for_studies, filters,
                             tuple(dict.fromkeys((*_STUDY_FIELDS, *fields))),
                             limit, name.fuzzymatching, keep,
                             unique=_names_one(study_instance_uid))
        if keep is not None and keep.unreadable:
            message = (
                f"{self.name}: the archive answered {keep.unreadable} patient names "
                f"in character sets ({', '.join(sorted(keep.character_sets))}) that "
                "cannot hold every letter of the name searched for, so those "
                "studies could not be matched and are left out. Search by Patient "
                "ID, or ask the archive's administrator to answer in UTF-8 "
                "(Orthanc: \"DefaultEncoding\": \"Utf8\").")
            logger.warning(message)
            warnings.warn(message, UserWarning, stacklevel=2)
        if not self.quirks.qido_returns_sequences:
            found = [self._with_other_patient_ids(item) for item in found]
        return [Study.from_dicom_json(item, self.name) for item in found]

    def _with_other_patient_ids(self, study: dict[str, Any]) -> dict[str, Any]:
        """Add (0010,1002) *Other Patient IDs Sequence* from an instance's metadata.

        For archives whose QIDO-RS leaves sequences out: without it a patient
        known under another ID elsewhere could not be linked.
        """
        study_uid = json_value(study, "StudyInstanceUID", "")
        if not study_uid or _OTHER_PATIENT_IDS in study:
            return study
        key = self._cache_key("other-patient-ids", study_uid)
        metadata_cache = _cache.get_cache("metadata")
        element = metadata_cache.get(key) if self.use_cache else None
        if element is None:
            element = self._read_other_patient_ids(study_uid)
            if self.use_cache:
                metadata_cache.put(key, element)
        if not element:
            return study
        return {**study, _OTHER_PATIENT_IDS: element}

    def _read_other_patient_ids(self, study_instance_uid: str) -> dict[str, Any]:
        # One instance stands for the study: the patient module is the same in
        # every instance of a study (PS3.3 C.7.1.1 is at patient level).
        try:
            with self._translated_errors("reading Other Patient IDs"):
                [instance] = self.client.search_for_instances(
                    study_instance_uid, limit=1,
                    fields=["SeriesInstanceUID"]) or [{}]
                series_uid = json_value(instance, "SeriesInstanceUID", "")
                sop_uid = json_value(instance, "SOPInstanceUID", "")
                if not series_uid or not sop_uid:
                    return {}
                metadata = self.client.retrieve_instance_metadata(
                    study_instance_uid, series_uid, sop_uid)
        except SourceNotFoundError:
            # Deleted between the search and now: nothing to link.
            return {}
        return dict(metadata.get(_OTHER_PATIENT_IDS) or {})

    def search_for_series(
        self,
        study_instance_uid: str | None = None,
        modality: str | None = None,
        series_instance_uid: str | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Series]:
        """Search for series (QIDO-RS), in one study or in the whole archive."""
        if study_instance_uid is not None:
            _check_uid(study_instance_uid, "study_instance_uid")

        def search(**kwargs: Any) -> list[dict[str, Any]]:
            return self.client.search_for_series(study_instance_uid, **kwargs)

        filters = {"Modality": modality, "SeriesInstanceUID": series_instance_uid}
        found = self._search("series", search, filters,
                             tuple(dict.fromkeys((*_SERIES_FIELDS, *fields))),
                             limit, None, unique=_names_one(series_instance_uid))
        series = [Series.from_dicom_json(item, self.name) for item in found]
        for item in series:
            item.StudyInstanceUID = item.StudyInstanceUID or (study_instance_uid or "")
        return series

    def search_for_instances(
        self,
        study_instance_uid: str,
        series_instance_uid: str | None = None,
        sop_instance_uid: str | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Instance]:
        """Search for the instances of a study or series (QIDO-RS)."""
        _check_uid(study_instance_uid, "study_instance_uid")
        if series_instance_uid is not None:
            _check_uid(series_instance_uid, "series_instance_uid")

        def search(**kwargs: Any) -> list[dict[str, Any]]:
            return self.client.search_for_instances(
                study_instance_uid, series_instance_uid, **kwargs)

        found = self._search("instances", search, {"SOPInstanceUID": sop_instance_uid},
                             tuple(dict.fromkeys((*_INSTANCE_FIELDS, *fields))),
                             limit, None, unique=_names_one(sop_instance_uid))
        return [Instance.from_dicom_json(item, self.name) for item in found]

    # -- WADO-RS -----------------------------------------------------------------

    def _cache_key(self, *parts: object) -> tuple[object, ...]:
        return (self.url, *parts)

    def retrieve_series_metadata(self, study_instance_uid: str,
                                 series_instance_uid: str) -> list[Dataset]:
        """Return the metadata of every instance of a series (one request).

        Returns
        -------
        list of pydicom.dataset.Dataset
            Without pixel data or other bulk data.
        """
        _check_uid(study_instance_uid, "study_instance_uid")
        _check_uid(series_instance_uid, "series_instance_uid")
        key = self._cache_key("series-metadata", study_instance_uid,
                              series_instance_uid)
        cached = _cache.get_cache("metadata").get(key) if self.use_cache else None
        if cached is not None:
            return list(cached)
        with self._translated_errors("retrieving series metadata"):
            found = self.client.retrieve_series_metadata(study_instance_uid,
                                                         series_instance_uid)
            datasets = [Dataset.from_json(item, _bulk_data_left_out) for item in found]
        if self.use_cache:
            _cache.get_cache("metadata").put(key, datasets)
        return list(datasets)

    def retrieve_instance_metadata(self, study_instance_uid: str,
                                   series_instance_uid: str,
                                   sop_instance_uid: str) -> Dataset:
        """Return the metadata of one instance, without bulk data."""
        for keyword, value in (("study_instance_uid", study_instance_uid),
                               ("series_instance_uid", series_instance_uid),
                               ("sop_instance_uid", sop_instance_uid)):
            _check_uid(value, keyword)
        with self._translated_errors("retrieving instance metadata"):
            found = self.client.retrieve_instance_metadata(
                study_instance_uid, series_instance_uid, sop_instance_uid)
            return Dataset.from_json(found, _bulk_data_left_out)

    def retrieve_instance(self, study_instance_uid: str, series_instance_uid: str,
                          sop_instance_uid: str) -> Dataset:
        """Return one whole instance in the transfer syntax it was stored in.

        The archive is asked for ``transfer-syntax=*`` so that it never transcodes;
        compressed pixel data is decoded here, in the kernel.
        """
        for keyword, value in (("study_instance_uid", study_instance_uid),
                               ("series_instance_uid", series_instance_uid),
                               ("sop_instance_uid", sop_instance_uid)):
            _check_uid(value, keyword)
        key = self._cache_key("instance", sop_instance_uid)
        cached = _cache.get_cache("pixel").get(key) if self.use_cache else None
        if cached is not None:
            return cached
        with self._translated_errors("retrieving an instance"):
            dataset = self.client.retrieve_instance(
                study_instance_uid, series_instance_uid, sop_instance_uid,
                media_types=(("application/dicom", "*"),))
        if self.use_cache:
            _cache.get_cache("pixel").put(key, dataset)
        return dataset

    def iter_series(self, study_instance_uid: str,
                    series_instance_uid: str) -> Iterator[Dataset]:
        """Yield the whole instances of a series from ONE streamed WADO-RS request.

        Each instance is handed on as soon as its part of the multipart answer
        has arrived, in its stored transfer syntax (``transfer-syntax=*``), read
        in the caller's thread (the socket's buffer receives the next parts
        while the caller works on this one). Each instance's elements are read
        as soon as its head has arrived, and its pixel data value is read from
        the socket into its own buffer and used as is (see
        :func:`viewerlib.sources.multipart.iter_multipart_part10`). Closing the
        iterator early closes the answer at once.

        An archive that refuses the series-level request (HTTP 400, 405, 406 or
        501), or whose quirks say it cannot send a series whole
        (``ArchiveQuirks.series_retrieval``), is asked for the series' instance
        list and then for each instance on its own, in Instance Number order.

        Raises
        ------
        viewerlib.errors.SourceResponseError
            (during iteration) if the answer is cut short or malformed; the
            instances yielded before stay valid. Also if the archive refused
            the series-level request and lists no instance for the series.
        """
        _check_uid(study_instance_uid, "study_instance_uid")
        _check_uid(series_instance_uid, "series_instance_uid")
        return self._iter_series(study_instance_uid, series_instance_uid)

    def _iter_series(self, study_instance_uid: str,
                     series_instance_uid: str) -> Iterator[Dataset]:
        if not self.quirks.series_retrieval:
            yield from self._iter_series_by_instance(study_instance_uid,
                                                     series_instance_uid, None)
            return
        url = f"{self.url}/studies/{study_instance_uid}/series/{series_instance_uid}"
        accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
        count = 0
        refusal: requests.HTTPError | None = None
        with self._translated_errors("retrieving a series"):
            # Identity coding: pixel data hardly compresses, and an uncoded body
            # can be read part by part with exact reads (one copy per part).
            response = self.session.get(
                url, headers={"Accept": accept, "Accept-Encoding": "identity"},
                stream=True)
            try:
                response.raise_for_status()
            except requests.HTTPError as err:
                response.close()
                if response.status_code not in _SERIES_REFUSED:
                    raise
                refusal = err
        if refusal is not None:
            # Not "no such series" (404) but "not this way": one by one, then.
            yield from self._iter_series_by_instance(study_instance_uid,
                                                     series_instance_uid, refusal)
            return
        with self._translated_errors("retrieving a series"):
            # Read in the caller's thread, part after part: while one is parsed,
            # the next ones arrive in the socket's buffer (the kernel reads
            # ahead). A reader thread of our own would add no overlap, only
            # hand-offs: it must hold the GIL after every receive, and waited
            # for it behind the parsing, which made a series on a fast link
            # take more time and processor, and a first image wait on a thread.
            # What the instances repeat (their layout, their elements), read once.
            layouts = HeaderLayouts()
            parts = iter_multipart_part10(response, self.name, layouts=layouts)
            try:
                for part in parts:
                    count += 1
                    yield (part.to_dataset(layouts) if isinstance(part, SplitBody)
                           else pydicom.dcmread(io.BytesIO(part)))
            finally:
                parts.close()
                response.close()
        logger.debug("%s: series streamed, %d instances", self.name, count)

    def _iter_series_by_instance(self, study_instance_uid: str,
                                 series_instance_uid: str,
                                 refusal: requests.HTTPError | None,
                                 ) -> Iterator[Dataset]:
        """Yield a series' instances with one WADO-RS request each, listed first."""
        listed = self.search_for_instances(study_instance_uid, series_instance_uid)
        if not listed and refusal is not None:
            # Nothing to fall back on: the refusal itself is the answer.
            raise self._http_error(refusal, "retrieving a series") from refusal
        listed.sort(key=lambda i: (i.InstanceNumber is None, i.InstanceNumber or 0))
        if refusal is not None:
            status = getattr(refusal.response, "status_code", 0)
            logger.info("%s: the archive refused to send the series whole (HTTP "
                        "%d); retrieving its %d instances one by one", self.name,
                        status, len(listed))

        def each() -> Iterator[Dataset]:
            for instance in listed:
                yield self.retrieve_instance(study_instance_uid, series_instance_uid,
                                             instance.SOPInstanceUID)

        # The next instance is requested while the caller works on this one.
        yield from read_ahead(each, depth=2)

    def _frame_media_types(self, transfer_syntax_uid: str) -> tuple[Any, ...]:
        if transfer_syntax_uid in self.quirks.forbidden_transfer_syntaxes:
            raise ValueError(
                f"archive '{self.name}' ({self.quirks.name}) must not be asked for "
                f"transfer syntax {transfer_syntax_uid}: it crashes on that output. "
                "Ask for '*' (as stored) and decode in the kernel.")
        if transfer_syntax_uid == "*" and not self.quirks.explicit_media_types:
            # Any media type, in the transfer syntax as stored (PS3.18 8.7.3.5).
            return (("*/*", "*"),)
        try:
            return ((_FRAME_MEDIA_TYPES[transfer_syntax_uid], transfer_syntax_uid),)
        except KeyError:
            raise ValueError(f"transfer syntax {transfer_syntax_uid!r} is not one "
                             f"frames can be asked for; use one of "
                             f"{', '.join(sorted(_FRAME_MEDIA_TYPES))}") from None

    def retrieve_instance_frames(self, study_instance_uid: str,
                                 series_instance_uid: str, sop_instance_uid: str,
                                 frame_numbers: Sequence[int],
                                 transfer_syntax_uid: str = "*") -> list[bytes]:
        """Return frames of one instance, in one request for those not cached.

        Parameters
        ----------
        study_instance_uid, series_instance_uid, sop_instance_uid : str
            The instance.
        frame_numbers : sequence of int
            Frame numbers, starting at 1 (PS3.18 10.4.1.1.4).
        transfer_syntax_uid : str
            ``"*"`` (default) for the frames as stored; otherwise the archive
            transcodes, which is slow and, for some syntaxes, unsafe.

        Returns
        -------
        list of bytes
            One item per frame number, in the order asked.

        Raises
        ------
        ValueError
            If a frame number is < 1, or the transfer syntax is one the archive
            must not be asked for (``ArchiveQuirks.forbidden_transfer_syntaxes``).
        viewerlib.errors.SourceResponseError
            If the archive returned a different number of frames.
        """
        for keyword, value in (("study_instance_uid", study_instance_uid),
                               ("series_instance_uid", series_instance_uid),
                               ("sop_instance_uid", sop_instance_uid)):
            _check_uid(value, keyword)
        numbers = [int(n) for n in frame_numbers]
        if not numbers or min(numbers) < 1:
            raise ValueError(f"frame_numbers start at 1 (DICOMweb), got {numbers}")
        media_types = self._frame_media_types(transfer_syntax_uid)
        pixel_cache = _cache.get_cache("pixel")
        frames: dict[int, bytes] = {}
        if self.use_cache:
            for number in numbers:
                hit = pixel_cache.get(self._cache_key("frame", sop_instance_uid,
                                                      number, transfer_syntax_uid))
                if hit is not None:
                    frames[number] = hit
        wanted = [n for n in dict.fromkeys(numbers) if n not in frames]
        if wanted:
            with self._translated_errors("retrieving frames"):
                fetched = self.client.retrieve_instance_frames(
                    study_instance_uid, series_instance_uid, sop_instance_uid,
                    frame_numbers=wanted, media_types=media_types)
            if len(fetched) != len(wanted):
                raise SourceResponseError(
                    self.name, f"{_safe_url(self.url)} returned {len(fetched)} frames "
                    f"for {len(wanted)} frame numbers asked. Ask for fewer frames "
                    "at a time, or report it to the archive's administrator.")
            for number, data in zip(wanted, fetched, strict=True):
                frames[number] = data
                if self.use_cache:
                    pixel_cache.put(self._cache_key("frame", sop_instance_uid, number,
                                                    transfer_syntax_uid), data)
        return [frames[n] for n in numbers]

    def retrieve_instance_rendered(
        self, study_instance_uid: str, series_instance_uid: str,
        sop_instance_uid: str, media_type: str = "image/png",
        window: tuple[float, float, str] | None = None,
        viewport: tuple[int, int] | None = None,
    ) -> bytes:
        """Return a rendered image of an instance (PS3.18 10.4.1.1.3).

        Parameters
        ----------
        media_type : {'image/png', 'image/jpeg'}
            Image format asked for.
        window : tuple, optional
            ``(window_center, window_width, function)``, e.g. ``(40, 400,
            "linear")``, as in (0028,1050)/(0028,1051)/(0028,1056).
        viewport : tuple of int, optional
            ``(columns, rows)`` of the image asked for.

        Returns
        -------
        bytes
            The encoded image; for display only, not for diagnosis.
        """
        params: dict[str, str] = {}
        if window is not None:
            center, width, function = window
            params["window"] = f"{center:g},{width:g},{function}"
        if viewport is not None:
            params["viewport"] = f"{int(viewport[0])},{int(viewport[1])}"
        with self._translated_errors("retrieving a rendered image"):
            return self.client.retrieve_instance_rendered(
                study_instance_uid, series_instance_uid, sop_instance_uid,
                media_types=(media_type,), params=params or None)

    def retrieve_instance_thumbnail(self, study_instance_uid: str,
                                    series_instance_uid: str, sop_instance_uid: str,
                                    size: int = 128) -> bytes:
        """Return a small JPEG of an instance (``/thumbnail`` or a small rendered)."""
        if not self.quirks.thumbnails:
            return self.retrieve_instance_rendered(
                study_instance_uid, series_instance_uid, sop_instance_uid,
                media_type="image/jpeg", viewport=(size, size))
        url = (f"{self.url}/studies/{study_instance_uid}/series/{series_instance_uid}"
               f"/instances/{sop_instance_uid}/thumbnail")
        with self._translated_errors("retrieving a thumbnail"):
            response = self.session.get(url, params={"viewport": f"{size},{size}"},
                                        headers={"Accept": "image/jpeg"})
            response.raise_for_status()
            return response.content

    # -- STOW-RS -----------------------------------------------------------------

    def store_instances(self, datasets: Sequence[Dataset]) -> StoreReport:
        """Store instances with STOW-RS and report per instance.

        All instances go in one request. When the archive refuses it (some answer
        400 for the whole request when one part is bad, although they store the
        others), each instance is sent again on its own to learn which failed;
        storing an instance again is harmless.

        Returns
        -------
        StoreReport
            SOP Instance UIDs stored, and ``(SOP Instance UID, reason)`` refused.
        """
        datasets = list(datasets)
        report = StoreReport()
        if not datasets:
            return report
        prepared = [prepare_for_storage(d) for d in datasets]
        try:
            try:
                with self._translated_errors("storing instances"):
                    answer = self.client.store_instances(prepared)
            except SourceAuthenticationError as err:
                refused = getattr(err.__cause__, "response", None)
                if not getattr(refused, REFRESHED_NOT_RESENT, False):
                    raise
                # A large upload is streamed, so the token refresh could not
                # re-send it; it has fetched a fresh token: once more (a second
                # refusal raises).
                with self._translated_errors("storing instances"):
                    answer = self.client.store_instances(prepared)
        except SourceResponseError as err:
            if len(datasets) == 1:
                report.failed.append((str(datasets[0].SOPInstanceUID), str(err)))
                return report
            for dataset in datasets:
                single = self.store_instances([dataset])
                report.stored += single.stored
                report.failed += single.failed
            return report
        failed = {str(item.get("ReferencedSOPInstanceUID", "")):
                  f"refused with failure reason {item.get('FailureReason', '?')}"
                  for item in answer.get("FailedSOPSequence", [])}
        for dataset in datasets:
            uid = str(dataset.SOPInstanceUID)
            if uid in failed:
                report.failed.append((uid, failed[uid]))
            else:
                report.stored.append(uid)
        logger.info("%s: stored %d instances, %d refused", self.name,
                    len(report.stored), len(report.failed))
        return report

    # -- health ------------------------------------------------------------------

    def health(self) -> SourceHealth:
        """Ask for one study (``limit=1``) and time the answer."""
        started = time.perf_counter()
        try:
            with self._translated_errors("checking health"):
                self.client.search_for_studies(limit=1)
        except SourceError as err:
            return SourceHealth("down", None, str(err), self.name, answered=False)
        latency_ms = (time.perf_counter() - started) * 1000
        if latency_ms > self.slow_after_s * 1000:
            return SourceHealth("slow", latency_ms,
                                f"answered in {latency_ms:.0f} ms (slow above "
                                f"{self.slow_after_s * 1000:.0f} ms)", self.name)
        return SourceHealth("ok", latency_ms, "", self.name)


__all__ = [
    "AccessToken",  # re-exported from viewerlib.sources.auth
    "AccessTokenProvider",
    "ArchiveQuirks",  # re-exported from viewerlib.sources.quirks
    "ArchiveSession",
    "BearerAuth",
    "DICOMwebSource",
    "iter_multipart_parts",
    "prepare_for_storage",
]
