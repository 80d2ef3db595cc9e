"""How each archive product departs from DICOMweb (PS3.18), kept in one place.

:class:`ArchiveQuirks` and its presets say what an archive does differently;
:meth:`ArchiveQuirks.prepare_name_query` and :class:`NameFilter` turn a patient-name
search into what such an archive can answer and match the results here. The rest of
:mod:`viewerlib.sources.dicomweb` is written against the standard.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydicom.charset import python_encoding

from viewerlib.model import PersonName, json_value, json_values
from viewerlib.sources.base import person_name_matches

logger = logging.getLogger(__name__)

_JPEG_LS = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
# Characters a query value may hold that need no percent-encoding (RFC 3986
# unreserved) or that the raw-query quirk puts back raw (the wildcards).
_SENT_AS_IS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789-._~*?")


def _sent_raw(character: str) -> str:
    """One character of a name as a raw-query archive can read it, or a wildcard."""
    if character == "?":
        # It may stand for a letter the archive compares in another form.
        return "*"
    if character in _SENT_AS_IS:
        return character
    return "?" if character.isascii() else "*"


class NameQuery(NamedTuple):
    """How one archive is asked for a (0010,0010) *Patient's Name*.

    Attributes
    ----------
    value : str
        The ``PatientName`` query value to send.
    fuzzymatching : bool or None
        ``True`` to send ``fuzzymatching=true``; ``None`` to leave it out.
    match_here : str or None
        When set, the archive cannot match the name exactly as asked (``value``
        is a looser pattern): keep only the results whose name matches this
        wildcard pattern in one of its component groups
        (:func:`~viewerlib.sources.base.person_name_matches`).
    """

    value: str
    fuzzymatching: bool | None = None
    match_here: str | None = None


@dataclass(frozen=True)
class ArchiveQuirks:
    """How one archive product departs from DICOMweb (PS3.18), in one place.

    Parameters
    ----------
    name : str
        Preset name, shown in messages.
    raw_query_characters : bool
        The archive does not percent-decode query values: send ``*``, ``?`` and
        ``,`` unencoded and turn space and ``^`` into the ``?`` wildcard (a raw
        ``^`` cannot be sent from requests; urllib3 encodes it again). A patient
        name is then sent as a looser pattern (see :meth:`prepare_name_query`)
        and the results are matched against the name asked for here.
    fuzzy_matching : bool
        The archive honours ``fuzzymatching=true``. When ``False``, a patient
        name without wildcards is searched as a prefix (a trailing ``*``).
    forbidden_transfer_syntaxes : frozenset of str
        Transfer syntaxes never to ask the archive to encode into.
    explicit_media_types : bool
        The archive refuses ``type="*/*"`` for frames and bulk data, so name the
        media type (``application/octet-stream; transfer-syntax=*``). Otherwise
        frames are asked for as ``type="*/*"; transfer-syntax=*``.
    thumbnails : bool
        The archive serves ``/thumbnail``; when ``False``, a small ``/rendered``
        image stands in.
    max_page_size : int
        Results asked for per QIDO-RS page. Pages are fetched until one is empty
        or a 204: a shorter page does not end the results, since some archives
        send fewer per page than asked for. (A search for one UID stops after
        its first page.)
    qido_returns_sequences : bool
        QIDO-RS answers include sequence attributes asked for with
        ``includefield``. When ``False``, (0010,1002) *Other Patient IDs
        Sequence*, needed to link a patient across archives, is read from the
        metadata of one instance of each study found (two more requests per
        study, remembered in the metadata cache).
    series_retrieval : bool
        The archive sends a whole series in one WADO-RS request. When
        ``False``, a series is retrieved one instance at a time (its instances
        are listed first), as it is anyway for a series whose series-level
        request the archive refuses (HTTP 400, 405, 406 or 501).

    Examples
    --------
    >>> quirks = ArchiveQuirks.for_orthanc_1_10()
    >>> quirks.rewrite_query("PatientName=Test%5ECa%2A&limit=10")
    'PatientName=Test?Ca*&limit=10'
    >>> quirks.prepare_name_query("Buc^Jér")
    NameQuery(value='Buc?J*r*', fuzzymatching=None, match_here='Buc^Jér*')
    >>> quirks.prepare_name_query("Test^Ca").value
    'Test?Ca*'
    """

    name: str = "standard"
    raw_query_characters: bool = False
    fuzzy_matching: bool = True
    forbidden_transfer_syntaxes: frozenset[str] = frozenset()
    explicit_media_types: bool = False
    thumbnails: bool = True
    max_page_size: int = 500
    qido_returns_sequences: bool = True
    series_retrieval: bool = True

    @classmethod
    def standard(cls) -> ArchiveQuirks:
        """An archive that follows PS3.18 (percent-decoding, fuzzy matching, ...)."""
        return cls()

    @classmethod
    def for_orthanc_1_10(cls) -> ArchiveQuirks:
        """Orthanc 1.10 with DICOMweb plugin 1.7 (Debian 12).

        Notes
        -----
        Measured on this project's machines: query values are not
        percent-decoded (so a name with ``^``, a space or a letter outside
        ASCII, such as ``Buc^Jérôme``, is matched here), ``fuzzymatching`` is
        ignored, ``type="*/*"`` frames get 400, JPEG-LS output crashes the
        server, thumbnails answer 404. QIDO-RS returns (0010,0021) *Issuer of
        Patient ID* when it is asked for with ``includefield`` (and drops it with
        ``includefield=all``), but never a sequence such as (0010,1002) *Other
        Patient IDs Sequence*, at any level; WADO-RS metadata has it. QIDO-RS
        answers are in Orthanc's ``DefaultEncoding``: Latin-1 (ISO_IR 100) unless
        it is set to ``"Utf8"``, so as it comes it drops the letters of Greek,
        Cyrillic, Japanese, ... names, which then cannot be found by name.
        """
        return cls(name="orthanc-1.10", raw_query_characters=True,
                   fuzzy_matching=False, forbidden_transfer_syntaxes=_JPEG_LS,
                   explicit_media_types=True, thumbnails=False,
                   qido_returns_sequences=False)

    @classmethod
    def preset(cls, name: str) -> ArchiveQuirks:
        """Return the preset named ``name`` (see :data:`QUIRK_PRESETS`).

        Raises
        ------
        ValueError
            If there is no such preset; the message lists the known ones.
        """
        try:
            return QUIRK_PRESETS[name]()
        except KeyError:
            raise ValueError(f"unknown archive quirks preset {name!r}; known presets: "
                             f"{', '.join(sorted(QUIRK_PRESETS))}") from None

    def rewrite_query(self, query: str) -> str:
        """Rewrite an encoded query string the way this archive can read it."""
        if not self.raw_query_characters:
            return query
        for encoded, raw in (("%2A", "*"), ("%3F", "?"), ("%2C", ","),
                             ("%5E", "?"), ("+", "?"), ("%20", "?")):
            query = query.replace(encoded, raw).replace(encoded.lower(), raw)
        return query

    def prepare_name_query(self, patient_name: str) -> NameQuery:
        """Say how to ask this archive for a (0010,0010) *Patient's Name*.

        Parameters
        ----------
        patient_name : str
            As given to ``search_for_studies``: ``*`` and ``?`` are wildcards; a
            name without them is a prefix (fuzzy) search.

        Returns
        -------
        NameQuery
            The value to send, the ``fuzzymatching`` flag, and the pattern the
            results must match here when the archive cannot match it itself.

        Notes
        -----
        With ``raw_query_characters``, every character the archive would see
        percent-encoded (``^``, space, ``=``, punctuation, and every letter
        outside ASCII, whose UTF-8 bytes would arrive as ``%C3%A9``) is sent as
        a wildcard: ``?`` for an ASCII character, ``*`` for any other (one
        letter is several bytes, and the archive may count either), and ``?``
        as ``*`` (it may stand for such a letter). The archive then finds a
        superset, and the results are matched here against the name asked for,
        over all three component groups. Orthanc answers names in its
        ``DefaultEncoding`` (Latin-1 unless set to ``"Utf8"``); names it cannot
        write in it cannot be matched here, and such a search warns.
        """
        has_wildcard = "*" in patient_name or "?" in patient_name
        pattern = patient_name if has_wildcard else f"{patient_name}*"
        if self.raw_query_characters and not set(patient_name) <= _SENT_AS_IS:
            sent = "".join(_sent_raw(c) for c in pattern)
            return NameQuery(re.sub(r"\*+", "*", sent), None, pattern)
        if has_wildcard:
            return NameQuery(patient_name)
        if self.fuzzy_matching:
            return NameQuery(patient_name, True)
        return NameQuery(pattern)


QUIRK_PRESETS: dict[str, Callable[[], ArchiveQuirks]] = {
    "standard": ArchiveQuirks.standard,
    "orthanc-1.10": ArchiveQuirks.for_orthanc_1_10,
}
"""Preset name (as used in the archives configuration) -> factory."""


def _can_hold(character_sets: Sequence[str], letters: str) -> bool:
    """Whether text in these (0008,0005) character sets can hold ``letters``."""
    codecs = ["ascii" if term in ("", "ISO_IR 6", "ISO 2022 IR 6")
              else python_encoding.get(term, "ascii") for term in character_sets]

    def holds(letter: str, codec: str) -> bool:
        try:
            letter.encode(codec)
        except (UnicodeEncodeError, LookupError):
            return False
        return True

    return all(any(holds(letter, codec) for codec in codecs or ["ascii"])
               for letter in letters)


class NameFilter:
    """Keep QIDO-RS studies whose (0010,0010) matches a pattern, checked here.

    Counts the candidates whose answer is in character sets that cannot hold
    the pattern's letters: the archive may have dropped letters from them.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.letters = "".join(sorted({c for c in pattern if c not in "*?"}))
        self.unreadable = 0
        self.character_sets: set[str] = set()

    def __call__(self, study: dict[str, Any]) -> bool:
        found = json_value(study, "PatientName", None)
        if person_name_matches(found if isinstance(found, PersonName) else None,
                               self.pattern):
            return True
        terms = [str(t) for t in json_values(study, "SpecificCharacterSet")]
        if not _can_hold(terms, self.letters):
            self.unreadable += 1
            self.character_sets.update(terms or ["ISO_IR 6"])
        return False


__all__ = ["QUIRK_PRESETS", "ArchiveQuirks", "NameFilter", "NameQuery"]
