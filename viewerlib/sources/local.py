"""A folder or a DICOMDIR (CD/DVD) of files as a :class:`~.base.Source`."""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pydicom.encaps
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PYDICOM_IMPLEMENTATION_UID,
    generate_uid,
)

from viewerlib import cache as _cache
from viewerlib.errors import (
    PartialSeriesError,
    SourceNotFoundError,
    SourceResponseError,
    UnreadableFilesError,
)
from viewerlib.model import (
    Instance,
    Series,
    Study,
    dataset_to_dicom_json,
    json_value,
)
from viewerlib.sources.base import (
    DateQuery,
    Source,
    SourceHealth,
    StoreReport,
    date_matches,
    normalize_date_query,
    person_name_matches,
)
from viewerlib.pipeline.instance import not_dicom_reason
from viewerlib.sources.video import (
    VIDEO_PHOTOGRAPHIC_IMAGE_STORAGE,
    VideoReadError,
    read_video_file,
)
from viewerlib.volume.diagnosis import (
    NOT_DICOM,
    companion_note,
    holds_no_dicom,
    is_companion_file,
)

logger = logging.getLogger(__name__)

INDEX_KIND = "folder-index"
"""How :func:`viewerlib.purge` names the folder indexes in its receipt."""
_cache.register_index(INDEX_KIND)

_VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"
_MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
_VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov"}
# Elements kept in the index (the rest is read from the file when asked for).
_INDEX_KEYWORDS = (
    "SpecificCharacterSet", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
    "SOPClassUID", "PatientName", "PatientID", "IssuerOfPatientID",
    "OtherPatientIDsSequence", "PatientBirthDate", "PatientSex", "StudyDate",
    "StudyTime", "AccessionNumber", "StudyDescription", "StudyID", "Modality",
    "SeriesNumber", "SeriesDescription", "SeriesDate", "InstanceNumber",
    "NumberOfFrames", "Rows", "Columns",
)
# EXIF tags (CIPA DC-008): DateTimeOriginal in the Exif IFD, DateTime in IFD0.
_EXIF_IFD, _EXIF_DATETIME_ORIGINAL, _EXIF_DATETIME = 0x8769, 0x9003, 0x0132
_WHAT_TO_DO_CHANGED = ("Put the files back (or copy them again from the disc or "
                       "share), or call refresh() on the source and search again "
                       "to use only the files there now.")
_LISTED_NOT_FOUND = "listed in the DICOMDIR but missing from the disc or folder"
_LISTED_FILES = 5
"""Files named one by one in a message; the rest are counted."""


class _FileUnreadable(Exception):
    """A file of the index could not be read now; ``reason`` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _plain_reason(err: BaseException) -> str:
    """pydicom's error text without its advice to pass ``force=True``.

    Our API reads every file it can already (with ``force`` where it helps), so
    that advice names nothing a user of viewerlib can do.
    """
    text = str(err)
    for advice in (" Use force=True to force reading.", "Use force=True to force "
                   "reading.", " - use force=True to force reading"):
        text = text.replace(advice, "")
    return text.strip().rstrip(",;") or type(err).__name__


def _header_holds(path: str | os.PathLike[str], sop_instance_uid: str) -> bool:
    """True when the header of the file at `path` is that of the instance."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - then it is not
        return False
    return str(header.get("SOPInstanceUID", "") or "") == sop_instance_uid


def _why_unreadable(err: BaseException) -> str:
    """What stops a file that was indexed from being read now, in a user's words."""
    if isinstance(err, FileNotFoundError):
        return "deleted or moved since the folder was indexed"
    if isinstance(err, PermissionError):
        return ("not readable for this account (permission denied); ask the "
                "owner of the file to make it readable")
    if isinstance(err, OSError):
        return f"could not be opened ({err.strerror or _plain_reason(err)})"
    return (f"no longer a readable DICOM file ({type(err).__name__}: "
            f"{_plain_reason(err)}); it changed since the folder was indexed")


def _file_listing(files: Sequence[tuple[str, str]]) -> str:
    """``"/a.dcm (deleted ...); /b.dcm (...)"``, the first few, then a count."""
    named = "; ".join(f"{path} ({why})" for path, why in files[:_LISTED_FILES])
    rest = len(files) - _LISTED_FILES
    return named + (f"; and {rest} more (all in '.missing_files')" if rest > 0
                    else "")


@dataclass
class _Record:
    path: Path
    kind: str  # 'dicom', 'image', 'video' or 'missing' (listed in a DICOMDIR only)
    attributes: dict[str, Any]

    def value(self, keyword: str, default: Any = "") -> Any:
        return json_value(self.attributes, keyword, default)


@dataclass
class _Index:
    records: list[_Record] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    # Files beside the images that are no DICOM and not meant to be (README.TXT).
    not_dicom: list[str] = field(default_factory=list)


def _media_kind(path: Path) -> str | None:
    """Say whether a file is a JPEG/PNG image or an MP4 video, by its signature."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return None
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image"
    if head[4:8] == b"ftyp":
        return "video"
    return None


def _decoded_image(path: Path) -> Any:
    """Decode a JPEG or PNG file whole, as RGB (a PIL image).

    Raises
    ------
    OSError
        If Pillow cannot read it (cut short, damaged, too large to be safe).
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (ValueError, SyntaxError, Image.DecompressionBombError) as err:
        # Pillow raises these too for damaged files: one kind for the callers.
        raise OSError(str(err)) from err


def _check_image(path: Path) -> None:
    """Read a JPEG or PNG file's structure without decoding its pixels.

    Raises
    ------
    OSError
        If Pillow finds it damaged (a PNG's chunks are checked whole; a JPEG's
        headers only).
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except (ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise OSError(str(err)) from err


def _image_error(err: BaseException) -> str:
    """Pillow's reason, in a form a user can repeat."""
    return str(err) or type(err).__name__


def _exif_date(path: Path) -> tuple[str, str]:
    """Return (StudyDate, StudyTime) from a photograph's EXIF, or ('', '')."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            exif = image.getexif()
            value = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL) or exif.get(
                _EXIF_DATETIME)
    except (OSError, ValueError, SyntaxError):
        return "", ""
    try:
        moment = datetime.datetime.strptime(str(value).strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return "", ""
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S")


@dataclass
class _Listed:
    """A file a DICOMDIR references, with what its directory records say of it."""

    path: Path
    attributes: dict[str, Any]  # DICOM JSON: study, series and instance UIDs


def _referenced_files(dicomdir: Path) -> list[_Listed]:
    """List the files a DICOMDIR references (PS3.3 F.3.2.2, (0004,1500)).

    Each comes with the Study, Series and SOP Instance UIDs, Modality and Instance
    Number its STUDY, SERIES and IMAGE records give, so a file that is missing from
    the CD can still be named as a missing instance of its series. pydicom's
    ``FileSet`` would stage changes in a temporary folder; reading the directory
    records directly keeps everything off the disk.
    """
    directory = pydicom.dcmread(dicomdir)
    records = list(directory.get("DirectoryRecordSequence", []))
    parents = _record_parents(directory, records)
    files = []
    for position, record in enumerate(records):
        parts = record.get("ReferencedFileID")
        if not parts:
            continue
        components = [parts] if isinstance(parts, str) else list(parts)
        listed = Dataset()
        # PS3.3 F.5: the IMAGE record names its instance; STUDY and SERIES above it.
        for keyword, source in (("SOPInstanceUID", "ReferencedSOPInstanceUIDInFile"),
                                ("SOPClassUID", "ReferencedSOPClassUIDInFile"),
                                ("InstanceNumber", "InstanceNumber")):
            if record.get(source) not in (None, ""):
                setattr(listed, keyword, record.get(source))
        ancestor = parents.get(position)
        while ancestor is not None:
            for keyword in ("SeriesInstanceUID", "Modality", "SeriesNumber",
                            "StudyInstanceUID", "StudyDate", "StudyDescription"):
                value = records[ancestor].get(keyword)
                if value not in (None, "") and keyword not in listed:
                    setattr(listed, keyword, value)
            ancestor = parents.get(ancestor)
        files.append(_Listed(dicomdir.parent.joinpath(*components),
                             dataset_to_dicom_json(listed)))
    return files


def dicomdir_files(dicomdir: str | os.PathLike[str]) -> list[Path]:
    """The files a DICOMDIR references, in the order of its directory records.

    Parameters
    ----------
    dicomdir : str or os.PathLike
        The ``DICOMDIR`` file of a CD or folder (PS3.10 8.6).

    Returns
    -------
    list of pathlib.Path
        Each record's (0004,1500) *Referenced File ID*, joined to the folder the
        DICOMDIR is in; a file that is not there is listed all the same.

    Raises
    ------
    pydicom.errors.InvalidDicomError, OSError, ValueError, KeyError, AttributeError
        If the DICOMDIR cannot be read or its records are garbled.

    Examples
    --------
    >>> import pydicom.data
    >>> files = dicomdir_files(pydicom.data.get_testdata_file("DICOMDIR"))
    >>> files[0].relative_to(files[0].parents[2]).as_posix()
    '77654033/CR1/6154'
    """
    return [entry.path for entry in _referenced_files(Path(dicomdir))]


def _record_parents(directory: Dataset, records: list[Dataset]) -> dict[int, int]:
    """Map each directory record (by position) to its parent record's position.

    PS3.3 F.3.2.2: records are linked by byte offsets, (0004,1400) to the next
    record at the same level and (0004,1420) to the first one below.
    """
    at = {getattr(r, "seq_item_tell", None): i for i, r in enumerate(records)}
    parents: dict[int, int] = {}

    def walk(offset: int | None, parent: int | None, depth: int) -> None:
        seen = set()
        while offset and offset in at and offset not in seen and depth < 16:
            seen.add(offset)
            position = at[offset]
            if parent is not None:
                parents[position] = parent
            record = records[position]
            walk(record.get("OffsetOfReferencedLowerLevelDirectoryEntity"), position,
                 depth + 1)
            offset = record.get("OffsetOfTheNextDirectoryRecord")

    walk(directory.get("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity"),
         None, 0)
    return parents


def _json_element(vr: str, value: Any) -> dict[str, Any]:
    if value in (None, ""):
        return {"vr": vr}
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": value}]}
    return {"vr": vr, "Value": [value]}


class FolderSource(Source):
    """The DICOM files in a folder (recursively) or on a CD with a DICOMDIR.

    The folder is indexed on first use, reading headers only
    (``stop_before_pixels``); pixel data is read when an instance is retrieved.
    JPEG and PNG photographs and MP4 videos in one folder form one study of their
    own (dates from EXIF where present); a photograph is retrieved as a VL
    Photographic Image, a video as a Video Photographic Image with its H.264 or
    HEVC stream encapsulated as stored (:mod:`viewerlib.sources.video`). Every
    file that cannot be used is listed in :attr:`unreadable` with the reason.
    The index (names and IDs) lives in memory only; :func:`viewerlib.purge`
    forgets it.

    Parameters
    ----------
    path : str or Path
        A folder, a folder holding a ``DICOMDIR``, or the ``DICOMDIR`` file itself.
        With a DICOMDIR, only the files it references are indexed.
    name : str, optional
        Name shown in results; the folder name by default.

    Notes
    -----
    A video whose codec, profile or level no DICOM transfer syntax carries (H.264
    High 10, VP9, AV1, ...) raises :class:`NotImplementedError` when retrieved;
    ``viewerlib.open`` of the file itself plays it.

    Examples
    --------
    >>> import pydicom.data
    >>> from pathlib import Path
    >>> cd = FolderSource(Path(pydicom.data.get_testdata_file("DICOMDIR")))
    >>> len(cd.search_for_studies()) > 0
    True
    """

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or (self.path.parent.name if self.path.name.upper() ==
                             "DICOMDIR" else self.path.name) or str(self.path)
        self._index: _Index | None = None
        self._lock = threading.Lock()
        # The index holds names and IDs: viewerlib.purge() must forget it too.
        _cache.register_index(INDEX_KIND, self)

    # -- indexing ----------------------------------------------------------------

    def _dicomdir(self) -> Path | None:
        if self.path.is_file() and self.path.name.upper() == "DICOMDIR":
            return self.path
        candidate = self.path / "DICOMDIR"
        return candidate if candidate.is_file() else None

    def _files(self, index: _Index) -> list[Path]:
        dicomdir = self._dicomdir()
        if dicomdir is not None:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    listed = _referenced_files(dicomdir)
                index.warnings += [(str(dicomdir), str(w.message)) for w in caught]
                files = []
                for entry in listed:
                    if entry.path.is_file():
                        files.append(entry.path)
                    else:
                        self._note_missing(entry, index)
                return files
            except (InvalidDicomError, OSError, ValueError, KeyError,
                    AttributeError) as err:
                index.unreadable.append((str(dicomdir), (
                    f"DICOMDIR could not be read ({_plain_reason(err)}); indexing "
                    "every file in the folder instead")))
        if not self.path.is_dir():
            raise SourceNotFoundError(
                self.name, f"{self.path} is not a folder or a DICOMDIR. Check the path "
                "(in the archives configuration, 'path').")
        files = []
        for root, directories, names in os.walk(self.path):
            directories[:] = sorted(d for d in directories if not d.startswith("."))
            files += [Path(root) / n for n in sorted(names) if not n.startswith(".")]
        if dicomdir is not None:
            # Its failure is listed already; it holds no image either way.
            files = [f for f in files if f != dicomdir]
        return files

    def _note_missing(self, entry: _Listed, index: _Index) -> None:
        """List a file the DICOMDIR names but the CD lacks, in its series if known.

        As a record of its series, the missing file is counted in the search
        results and named when the series is read (PartialSeriesError), so a
        series never opens as if it were whole.
        """
        index.unreadable.append((str(entry.path), _LISTED_NOT_FOUND))
        if all(json_value(entry.attributes, k, "") for k in (
                "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")):
            index.records.append(_Record(entry.path, "missing", entry.attributes))

    def _read_header(self, path: Path, index: _Index) -> None:
        # pydicom warns about values it can work around; keep them per file.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self._read_header_quietly(path, index)
        index.warnings += [(str(path), str(w.message)) for w in caught]

    def _read_header_quietly(self, path: Path, index: _Index) -> None:
        try:
            try:
                dataset = pydicom.dcmread(path, stop_before_pixels=True)
            except InvalidDicomError:
                # pydicom's message advises force=True, which is what follows.
                kind = _media_kind(path)
                if kind == "image":
                    try:
                        # Checked now, cheaply (headers, PNG checksums): a damaged
                        # photo is named here, not counted as a study that then
                        # fails to open.
                        _check_image(path)
                    except OSError as err:
                        index.unreadable.append((str(path), (
                            f"an image file that could not be read "
                            f"({_image_error(err)}): it is damaged or cut short; "
                            "copy it again from where it came from")))
                        return
                if kind is not None:
                    self._add_media(path, kind, index)
                    return
                if holds_no_dicom(path):
                    # A CD's README or viewer program: nothing is missing for it.
                    if is_companion_file(path):
                        index.not_dicom.append(str(path))
                    else:
                        index.unreadable.append((str(path), NOT_DICOM))
                    return
                # Empty, say: worded as read_series words it.
                reason = not_dicom_reason(path)
                if reason is not None:
                    index.unreadable.append((str(path), reason))
                    return
                dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                if "SOPInstanceUID" not in dataset:
                    index.unreadable.append((str(path), (
                        "no 'DICM' marker and no (0008,0018) SOP Instance UID, though "
                        "it starts with DICOM elements: it is cut short or damaged; "
                        "copy it again from where it came from")))
                    return
        except OSError as err:
            index.unreadable.append((str(path), _why_unreadable(err).replace(
                " since the folder was indexed", " while the folder was indexed")))
            return
        except (EOFError, ValueError, TypeError, KeyError, IndexError,
                NotImplementedError) as err:
            index.unreadable.append((str(path), (
                f"could not be read as DICOM ({type(err).__name__}: "
                f"{_plain_reason(err)}); the file is damaged or cut short: copy it "
                "again from where it came from")))
            return
        sop_class = str(getattr(dataset, "SOPClassUID", ""))
        if sop_class == _MEDIA_STORAGE_DIRECTORY:
            return
        for keyword, tag in (("StudyInstanceUID", "(0020,000D)"),
                             ("SeriesInstanceUID", "(0020,000E)"),
                             ("SOPInstanceUID", "(0008,0018)")):
            if not dataset.get(keyword):
                index.unreadable.append((str(path), f"DICOM without {tag} {keyword}; "
                                         "it cannot be placed in a study"))
                return
        subset = Dataset()
        try:
            for keyword in _INDEX_KEYWORDS:
                if keyword in dataset:
                    subset[keyword] = dataset[keyword]
            attributes = dataset_to_dicom_json(subset)
        except (ValueError, TypeError, LookupError) as err:
            index.unreadable.append((str(path), (
                f"header could not be decoded ({type(err).__name__}: "
                f"{_plain_reason(err)})")))
            return
        index.records.append(_Record(path, "dicom", attributes))

    def _add_media(self, path: Path, kind: str, index: _Index) -> None:
        folder = str(path.parent.resolve())
        study_uid = generate_uid(entropy_srcs=["lightbox media study", folder])
        series_uid = generate_uid(entropy_srcs=[
            "lightbox media series", folder if kind == "image" else str(path)])
        date, moment = _exif_date(path) if kind == "image" else ("", "")
        attributes = {
            "0020000D": _json_element("UI", study_uid),
            "0020000E": _json_element("UI", series_uid),
            "00080018": _json_element("UI", generate_uid(entropy_srcs=[
                "lightbox media instance", str(path.resolve())])),
            "00080016": _json_element("UI", _VL_PHOTOGRAPHIC if kind == "image"
                                      else VIDEO_PHOTOGRAPHIC_IMAGE_STORAGE),
            "00080060": _json_element("CS", "XC"),
            "00080020": _json_element("DA", date),
            "00080030": _json_element("TM", moment),
            "00081030": _json_element("LO", path.parent.name),
            "0008103E": _json_element("LO", "photographs" if kind == "image"
                                      else path.name),
        }
        index.records.append(_Record(path, kind, attributes))

    def _indexed(self) -> _Index:
        with self._lock:
            if self._index is None:
                started = time.perf_counter()
                index = _Index()
                for path in self._files(index):
                    self._read_header(path, index)
                self._index = index
                logger.info("%s: indexed %d files (%d unreadable) in %.2f s",
                            self.name, len(index.records), len(index.unreadable),
                            time.perf_counter() - started)
                if index.not_dicom:
                    logger.info(companion_note(len(index.not_dicom)))
            return self._index

    def refresh(self) -> None:
        """Forget the index; the folder is read again on next use."""
        self.clear_index()

    def clear_index(self) -> tuple[int, int]:
        """Forget the index (as :meth:`refresh`); say how much it held.

        Returns
        -------
        tuple of int
            ``(items, estimated bytes)``: the files indexed, unreadable or
            warned about, and the memory their entries held.
        """
        with self._lock:
            index, self._index = self._index, None
        if index is None:
            return 0, 0
        entries: list[Any] = [(str(r.path), r.kind, r.attributes)
                              for r in index.records]
        entries += index.unreadable + index.warnings + index.not_dicom
        return len(entries), _cache.estimate_size(entries)

    @property
    def unreadable(self) -> list[tuple[str, str]]:
        """``(path, reason)`` for every file that could not be used."""
        return list(self._indexed().unreadable)

    @property
    def not_dicom(self) -> list[str]:
        """Paths of the files that are not DICOM and not meant to be, skipped.

        The README, autorun, HTML and viewer files a CD carries beside its
        images (:func:`~viewerlib.volume.diagnosis.is_companion_file`): nothing
        is wrong with them, so they are not :attr:`unreadable`. A file named
        as DICOM (.dcm) that holds none is unreadable instead.
        """
        return list(self._indexed().not_dicom)

    @property
    def unreadable_outside_series(self) -> list[tuple[str, str]]:
        """The :attr:`unreadable` files that no series counts.

        A file a DICOMDIR lists but the disc lacks is counted in its series
        (and named when the series is read); any other unreadable file could
        have belonged to any series.
        """
        index = self._indexed()
        counted = {str(record.path) for record in index.records
                   if record.kind == "missing"}
        return [(path, why) for path, why in index.unreadable if path not in counted]

    @property
    def read_warnings(self) -> list[tuple[str, str]]:
        """``(path, message)`` for warnings pydicom gave while reading headers."""
        return list(self._indexed().warnings)

    # -- searching ---------------------------------------------------------------

    def _records(self, **uids: str | None) -> list[_Record]:
        keywords = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID",
                    "sop": "SOPInstanceUID"}
        return [r for r in self._indexed().records
                if all(v is None or r.value(keywords[k]) == v for k, v in uids.items())]

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
        """Search the index; names match as a prefix unless they hold wildcards."""
        date_query = normalize_date_query(study_date)
        name_query = patient_name
        if patient_name and "*" not in patient_name and "?" not in patient_name:
            name_query = f"{patient_name}*"
        grouped: dict[str, list[_Record]] = {}
        for record in self._records(study=study_instance_uid):
            grouped.setdefault(record.value("StudyInstanceUID"), []).append(record)
        studies = []
        for uid, records in grouped.items():
            first = records[0]
            modalities = sorted({r.value("Modality") for r in records} - {""})
            name = first.value("PatientName", None)
            # Photographs carry their own EXIF dates: the study is the earliest.
            dates = sorted(d for d in (r.value("StudyDate") for r in records) if d)
            date = first.value("StudyDate") or (dates[0] if dates else "")
            if not (person_name_matches(name, name_query)
                    and (patient_id is None or first.value("PatientID") == patient_id)
                    and date_matches(date, date_query)
                    and (modality is None or modality in modalities)
                    and (accession_number is None
                         or first.value("AccessionNumber") == accession_number)):
                continue
            attributes = dict(first.attributes)
            if date:
                attributes["00080020"] = {"vr": "DA", "Value": [date]}
            attributes["00080061"] = {"vr": "CS", "Value": modalities}
            attributes["00201206"] = {"vr": "IS", "Value": [len(
                {r.value("SeriesInstanceUID") for r in records})]}
            attributes["00201208"] = {"vr": "IS", "Value": [len(records)]}
            studies.append(Study.from_dicom_json(attributes, self.name))
            if limit is not None and len(studies) >= limit:
                break
        return studies

    def search_for_series(
        self,
        study_instance_uid: str | None = None,
        modality: str | None = None,
        series_instance_uid: str | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Series]:
        """Search the index for series."""
        grouped: dict[str, list[_Record]] = {}
        for record in self._records(study=study_instance_uid,
                                    series=series_instance_uid):
            grouped.setdefault(record.value("SeriesInstanceUID"), []).append(record)
        found = []
        for records in grouped.values():
            if modality is not None and records[0].value("Modality") != modality:
                continue
            attributes = dict(records[0].attributes)
            attributes["00201209"] = {"vr": "IS", "Value": [len(records)]}
            found.append(Series.from_dicom_json(attributes, self.name))
            if limit is not None and len(found) >= limit:
                break
        return found

    def search_for_instances(
        self,
        study_instance_uid: str,
        series_instance_uid: str | None = None,
        sop_instance_uid: str | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Instance]:
        """Search the index for instances, ordered by (0020,0013) Instance Number."""
        records = self._records(study=study_instance_uid, series=series_instance_uid,
                                sop=sop_instance_uid)
        instances = [Instance.from_dicom_json(r.attributes, self.name) for r in records]
        instances.sort(key=lambda i: (i.InstanceNumber is None, i.InstanceNumber or 0))
        return instances[:limit] if limit is not None else instances

    # -- retrieving --------------------------------------------------------------

    def _record(self, study_instance_uid: str, series_instance_uid: str,
                sop_instance_uid: str) -> _Record:
        found = self._records(study=study_instance_uid, series=series_instance_uid,
                              sop=sop_instance_uid)
        if not found:
            raise SourceNotFoundError(
                self.name, f"no instance with that SOP Instance UID in {self.path}. "
                "Search again; if the files changed, call refresh().")
        return found[0]

    def _series_records(self, study_instance_uid: str,
                        series_instance_uid: str) -> list[_Record]:
        records = self._records(study=study_instance_uid, series=series_instance_uid)
        if not records:
            raise SourceNotFoundError(
                self.name, f"no series with that Series Instance UID in {self.path}. "
                "Search again; if the files changed, call refresh().")

        def order(record: _Record) -> tuple[bool, int]:
            number = record.value("InstanceNumber", None)
            return (number is None, int(number or 0))

        return sorted(records, key=order)

    def _read(self, record: _Record, stop_before_pixels: bool = False) -> Dataset:
        if record.kind == "image" and stop_before_pixels:
            return Dataset.from_json(record.attributes)
        try:
            if record.kind == "image":
                return self._read_image(record)
            if record.kind == "video":
                return self._read_video(record, stop_before_pixels)
            dataset = self._read_file(record, stop_before_pixels)
        except _FileUnreadable as err:
            raise SourceResponseError(
                self.name, f"{err.path} is {err.reason}. {_WHAT_TO_DO_CHANGED}"
            ) from err
        return dataset

    def _read_file(self, record: _Record, stop_before_pixels: bool = False) -> Dataset:
        """Read an indexed DICOM file, checking it is still the one indexed.

        Raises
        ------
        _FileUnreadable
            If the file is gone, unreadable, or holds another instance now.
        """
        if record.kind == "missing":
            raise _FileUnreadable(record.path, _LISTED_NOT_FOUND)
        try:
            dataset = pydicom.dcmread(record.path,
                                      stop_before_pixels=stop_before_pixels,
                                      force=True)
        except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError,
                InvalidDicomError) as err:
            raise _FileUnreadable(record.path, _why_unreadable(err)) from err
        expected = record.value("SOPInstanceUID")
        found = str(dataset.get("SOPInstanceUID", "") or "")
        if not found and not stop_before_pixels and _header_holds(record.path,
                                                                  expected):
            # pydicom reads a file cut inside its compressed pixel data as no data
            # set at all; its header alone is still the one indexed.
            raise _FileUnreadable(record.path, (
                "cut short or damaged in its pixel data: its header is the one "
                "indexed there, but the whole file reads as no data set; copy it "
                "again from its source"))
        if found != expected:
            # Overwritten with something else: it is not the instance searched for.
            held = "another instance" if found else "no DICOM data set"
            raise _FileUnreadable(record.path, (
                f"overwritten since the folder was indexed: it holds {held} now, "
                "not the one indexed there"))
        return dataset

    def _read_video(self, record: _Record, stop_before_pixels: bool) -> Dataset:
        """Read a video file as a Video Photographic Image instance, in memory.

        Raises
        ------
        _FileUnreadable
            If the file is gone, unreadable, or no video FFmpeg can read.
        NotImplementedError
            If its codec, profile or level fits no DICOM transfer syntax.
        """
        try:
            return read_video_file(record.path, record.attributes,
                                   with_pixels=not stop_before_pixels)
        except OSError as err:
            raise _FileUnreadable(record.path, _why_unreadable(err)) from err
        except VideoReadError as err:
            raise _FileUnreadable(record.path, (
                f"no longer a readable video ({err}); it changed since the folder "
                "was indexed, or it is damaged")) from err

    def _read_image(self, record: _Record) -> Dataset:
        """Read a photograph as a VL Photographic Image instance, in memory.

        Raises
        ------
        _FileUnreadable
            If the file is gone, or no longer an image Pillow can read.
        """
        try:
            rgb = _decoded_image(record.path)
        except OSError as err:
            if isinstance(err, FileNotFoundError | PermissionError):
                raise _FileUnreadable(record.path, _why_unreadable(err)) from err
            raise _FileUnreadable(record.path, (
                f"no longer a readable image ({_image_error(err)}); it changed "
                "since the folder was indexed, or it is damaged")) from err
        dataset = Dataset.from_json(record.attributes)
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        dataset.Rows, dataset.Columns = rgb.height, rgb.width
        dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 3, "RGB"
        dataset.PlanarConfiguration = 0
        dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
        dataset.PixelRepresentation = 0
        dataset.PixelData = rgb.tobytes()
        return dataset

    def retrieve_series_metadata(self, study_instance_uid: str,
                                 series_instance_uid: str) -> list[Dataset]:
        """Read the headers of every file of a series (no pixel data)."""
        return [self._read(r, stop_before_pixels=True) for r in
                self._series_records(study_instance_uid, series_instance_uid)]

    def retrieve_instance_metadata(self, study_instance_uid: str,
                                   series_instance_uid: str,
                                   sop_instance_uid: str) -> Dataset:
        """Read the header of one file (no pixel data)."""
        return self._read(self._record(study_instance_uid, series_instance_uid,
                                       sop_instance_uid), stop_before_pixels=True)

    def retrieve_instance(self, study_instance_uid: str, series_instance_uid: str,
                          sop_instance_uid: str) -> Dataset:
        """Read one whole file; photographs become VL Photographic Image data sets."""
        return self._read(self._record(study_instance_uid, series_instance_uid,
                                       sop_instance_uid))

    def _read_series(self, study_instance_uid: str, series_instance_uid: str,
                     unreadable: list[tuple[_Record, str]]) -> Iterator[Dataset]:
        """Yield each readable file of a series; note the others in ``unreadable``."""
        for record in self._series_records(study_instance_uid, series_instance_uid):
            if record.kind == "image":
                yield self._read(record)
                continue
            try:
                yield (self._read_video(record, stop_before_pixels=False)
                       if record.kind == "video" else self._read_file(record))
            except _FileUnreadable as err:
                # One missing file must not cost the readable ones after it.
                unreadable.append((record, err.reason))

    def _unreadable_message(self, unreadable: list[tuple[_Record, str]],
                            arrived: int) -> str:
        total = arrived + len(unreadable)
        files = [(str(r.path), why) for r, why in unreadable]
        return (f"{len(unreadable)} of the {total} files of the series could not be "
                f"read, so {arrived} of {total} instances arrived: "
                f"{_file_listing(files)}. {_WHAT_TO_DO_CHANGED}")

    def iter_series(self, study_instance_uid: str,
                    series_instance_uid: str) -> Iterator[Dataset]:
        """Yield the files of a series one at a time, by Instance Number.

        A file that cannot be read any more (deleted, unreadable, changed since
        it was indexed) is skipped; the others are all yielded.

        Raises
        ------
        viewerlib.errors.UnreadableFilesError
            After the last readable file, if some could not be read; ``.files``
            names each by path with the reason.
        """
        # Checked now, so that an unknown series fails here, not at the first next().
        self._series_records(study_instance_uid, series_instance_uid)

        def stream() -> Iterator[Dataset]:
            unreadable: list[tuple[_Record, str]] = []
            arrived = 0
            for dataset in self._read_series(study_instance_uid,
                                             series_instance_uid, unreadable):
                arrived += 1
                yield dataset
            if unreadable:
                raise UnreadableFilesError(
                    self.name, self._unreadable_message(unreadable, arrived),
                    [(str(r.path), why) for r, why in unreadable],
                    [r.value("SOPInstanceUID") for r, _ in unreadable])

        return stream()

    def retrieve_series(self, study_instance_uid: str,
                        series_instance_uid: str) -> list[Dataset]:
        """Read every file of a series, by Instance Number.

        Raises
        ------
        viewerlib.errors.PartialSeriesError
            If some files could not be read; ``.datasets`` holds every readable
            instance, ``.missing_files`` each unreadable file's path and reason.
        """
        unreadable: list[tuple[_Record, str]] = []
        datasets = list(self._read_series(study_instance_uid, series_instance_uid,
                                          unreadable))
        if unreadable:
            raise PartialSeriesError(
                self.name, self._unreadable_message(unreadable, len(datasets)),
                datasets, [r.value("SOPInstanceUID") for r, _ in unreadable],
                missing_files=[(str(r.path), why) for r, why in unreadable])
        return datasets

    def retrieve_instance_frames(self, study_instance_uid: str,
                                 series_instance_uid: str, sop_instance_uid: str,
                                 frame_numbers: Sequence[int]) -> list[bytes]:
        """Return frames as stored in the file, ``frame_number`` from 1.

        Raises
        ------
        ValueError
            If a frame number is outside 1 to (0028,0008) *Number of Frames*.
        NotImplementedError
            For 1-bit native pixel data (frames do not start on byte boundaries),
            and for a video file (one stream, not frames one by one).
        """
        record = self._record(study_instance_uid, series_instance_uid,
                              sop_instance_uid)
        if record.kind == "video":
            # PS3.5 A.4.7: a video's Pixel Data is one stream, not a frame each.
            raise NotImplementedError(
                f"frames of a video ({record.path.name}) cannot be read one by "
                "one; retrieve the instance and decode its stream, as "
                "viewerlib.open does")
        dataset = self._read(record)
        count = int(dataset.get("NumberOfFrames") or 1)
        numbers = [int(n) for n in frame_numbers]
        if not numbers or min(numbers) < 1 or max(numbers) > count:
            raise ValueError(f"frame numbers run from 1 to {count} ((0028,0008) "
                             f"Number of Frames), got {numbers}")
        if "PixelData" not in dataset:
            raise ValueError("the instance has no (7FE0,0010) Pixel Data")
        syntax = dataset.file_meta.get("TransferSyntaxUID", ImplicitVRLittleEndian)
        if syntax.is_compressed:
            frames = list(pydicom.encaps.generate_frames(dataset.PixelData,
                                                         number_of_frames=count))
            return [frames[n - 1] for n in numbers]
        if int(dataset.BitsAllocated) == 1:
            raise NotImplementedError("frames of 1-bit (0028,0100) Bits Allocated "
                                      "pixel data are not implemented")
        length = (int(dataset.Rows) * int(dataset.Columns)
                  * int(dataset.get("SamplesPerPixel", 1))
                  * int(dataset.BitsAllocated) // 8)
        data = dataset.PixelData
        return [bytes(data[(n - 1) * length:n * length]) for n in numbers]

    def health(self) -> SourceHealth:
        """Say whether the folder (or DICOMDIR) is there and readable."""
        started = time.perf_counter()
        there = self.path.exists() and os.access(self.path, os.R_OK)
        latency_ms = (time.perf_counter() - started) * 1000
        if not there:
            return SourceHealth("down", None, f"{self.path} is missing or not "
                                "readable; is the disc or share mounted?", self.name,
                                answered=False)
        return SourceHealth("ok", latency_ms, "", self.name)

    # -- uploading ---------------------------------------------------------------

    def upload_to(self, source: Source, batch_size: int = 20) -> StoreReport:
        """Send every readable DICOM file to ``source`` with STOW-RS.

        Parameters
        ----------
        source : Source
            Where to store, e.g. a :class:`~.dicomweb.DICOMwebSource`.
        batch_size : int
            Files per STOW-RS request.

        Returns
        -------
        StoreReport
            Paths stored, and ``(path, reason)`` for each file not stored:
            unreadable files, files that are not DICOM (:attr:`not_dicom`),
            photographs and videos (not converted), and files the archive
            refused.
        """
        index = self._indexed()
        report = StoreReport(failed=[(p, f"not sent: {r}") for p, r in
                                     index.unreadable])
        report.failed += [(p, "not sent: not DICOM, nor meant to be (a CD's README, "
                           "autorun or viewer file, say)") for p in index.not_dicom]
        dicom = []
        for record in index.records:
            if record.kind == "missing":
                continue  # in index.unreadable already
            if record.kind != "dicom":
                report.failed.append((str(record.path), f"not sent: a {record.kind} "
                                      "file, not DICOM (upload_to sends DICOM only)"))
            else:
                dicom.append(record)
        for start in range(0, len(dicom), batch_size):
            batch = dicom[start:start + batch_size]
            datasets, paths = [], {}
            for record in batch:
                try:
                    dataset = self._read(record)
                except SourceResponseError as err:
                    report.failed.append((str(record.path), str(err)))
                    continue
                datasets.append(dataset)
                paths[str(dataset.SOPInstanceUID)] = str(record.path)
            answer = source.store_instances(datasets)
            report.stored += [paths.get(uid, uid) for uid in answer.stored]
            report.failed += [(paths.get(uid, uid), why) for uid, why in answer.failed]
        logger.info("%s: uploaded %d files to %s, %d not stored", self.name,
                    len(report.stored), source.name, len(report.failed))
        return report

