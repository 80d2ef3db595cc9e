"""Study, series and instance records built from the DICOM JSON model (PS3.18 F.2)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from pydicom.datadict import keyword_for_tag, tag_for_keyword

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

DicomJson = Mapping[str, Any]
"""One data set in the DICOM JSON model, e.g. ``{"00080060": {"vr": "CS", ...}}``."""


class PersonName(NamedTuple):
    """A Person Name (PN) value with its three component groups (PS3.5 6.2.1.1).

    Each group is already decoded to ``str``; an absent group is ``""``.

    Examples
    --------
    >>> name = PersonName("Yamada^Tarou", "山田^太郎", "やまだ^たろう")
    >>> str(name)
    'Yamada^Tarou'
    >>> name.ideographic
    '山田^太郎'
    """

    alphabetic: str = ""
    ideographic: str = ""
    phonetic: str = ""

    def __str__(self) -> str:
        return self.alphabetic or self.ideographic or self.phonetic

    @classmethod
    def from_json_value(cls, value: Any) -> PersonName:
        """Build from one PN item of DICOM JSON (PS3.18 F.2.2) or a plain string.

        Parameters
        ----------
        value : dict or str
            ``{"Alphabetic": ..., "Ideographic": ..., "Phonetic": ...}`` or a
            ``"alphabetic=ideographic=phonetic"`` string.

        Returns
        -------
        PersonName
        """
        if isinstance(value, Mapping):
            return cls(str(value.get("Alphabetic", "")),
                       str(value.get("Ideographic", "")),
                       str(value.get("Phonetic", "")))
        groups = (str(value).split("=") + ["", ""])[:3]
        return cls(*groups)


def _tag(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"'{keyword}' is not a DICOM keyword")
    return f"{tag:08X}"


def json_value(attributes: DicomJson, keyword: str, default: Any = None) -> Any:
    """Return the first value of the element named ``keyword`` in DICOM JSON.

    Parameters
    ----------
    attributes : mapping
        One data set in the DICOM JSON model.
    keyword : str
        DICOM keyword, e.g. ``"StudyInstanceUID"``.
    default : object, optional
        Returned when the element is absent or empty.

    Returns
    -------
    object
        ``str``/number for most VRs, :class:`PersonName` for PN, a list of data sets
        (dicts) for SQ.

    Examples
    --------
    >>> json_value({"00080060": {"vr": "CS", "Value": ["CT"]}}, "Modality")
    'CT'
    """
    values = json_values(attributes, keyword)
    return values[0] if values else default


def json_values(attributes: DicomJson, keyword: str) -> list[Any]:
    """Return every value of the element named ``keyword`` (an empty list if none)."""
    element = attributes.get(_tag(keyword))
    if not element:
        return []
    values = element.get("Value") or []
    if element.get("vr") == "PN":
        return [PersonName.from_json_value(v) for v in values]
    if element.get("vr") == "SQ":
        return list(values)
    return list(values)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass
class Instance:
    """One instance (image, report, ...) as listed by a source.

    Attributes
    ----------
    StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, SOPClassUID : str
        (0020,000D), (0020,000E), (0008,0018), (0008,0016).
    InstanceNumber : int or None
        (0020,0013) *Instance Number*.
    NumberOfFrames : int or None
        (0028,0008) *Number of Frames*; ``None`` for single-frame instances.
    attributes : dict
        Every element the source returned, in the DICOM JSON model.
    locations : list of str
        Names of the sources that hold this instance.
    """

    StudyInstanceUID: str
    SeriesInstanceUID: str
    SOPInstanceUID: str
    SOPClassUID: str = ""
    InstanceNumber: int | None = None
    NumberOfFrames: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict, repr=False)
    locations: list[str] = field(default_factory=list)

    @classmethod
    def from_dicom_json(cls, attributes: DicomJson,
                        location: str | None = None) -> Instance:
        """Build from one QIDO-RS instance result or metadata item.

        Parameters
        ----------
        attributes : mapping
            DICOM JSON with at least (0008,0018) *SOP Instance UID*.
        location : str, optional
            Name of the source the result came from.

        Returns
        -------
        Instance
        """
        return cls(
            StudyInstanceUID=json_value(attributes, "StudyInstanceUID", ""),
            SeriesInstanceUID=json_value(attributes, "SeriesInstanceUID", ""),
            SOPInstanceUID=json_value(attributes, "SOPInstanceUID", ""),
            SOPClassUID=json_value(attributes, "SOPClassUID", ""),
            InstanceNumber=_int(json_value(attributes, "InstanceNumber")),
            NumberOfFrames=_int(json_value(attributes, "NumberOfFrames")),
            attributes=dict(attributes),
            locations=[location] if location else [],
        )


@dataclass
class Series:
    """One series as listed by a source.

    Attributes
    ----------
    StudyInstanceUID, SeriesInstanceUID : str
        (0020,000D) and (0020,000E).
    Modality : str
        (0008,0060) *Modality*.
    SeriesNumber : int or None
        (0020,0011) *Series Number*.
    SeriesDescription : str
        (0008,103E) *Series Description*.
    NumberOfSeriesRelatedInstances : int or None
        (0020,1209).
    attributes : dict
        Every element the source returned, in the DICOM JSON model.
    locations : list of str
        Names of the sources that hold this series.
    """

    StudyInstanceUID: str
    SeriesInstanceUID: str
    Modality: str = ""
    SeriesNumber: int | None = None
    SeriesDescription: str = ""
    NumberOfSeriesRelatedInstances: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict, repr=False)
    locations: list[str] = field(default_factory=list)

    @classmethod
    def from_dicom_json(cls, attributes: DicomJson,
                        location: str | None = None) -> Series:
        """Build from one QIDO-RS series result (see :meth:`Instance.from_dicom_json`).

        Parameters
        ----------
        attributes : mapping
            DICOM JSON with at least (0020,000E) *Series Instance UID*.
        location : str, optional
            Name of the source the result came from.

        Returns
        -------
        Series
        """
        return cls(
            StudyInstanceUID=json_value(attributes, "StudyInstanceUID", ""),
            SeriesInstanceUID=json_value(attributes, "SeriesInstanceUID", ""),
            Modality=json_value(attributes, "Modality", ""),
            SeriesNumber=_int(json_value(attributes, "SeriesNumber")),
            SeriesDescription=json_value(attributes, "SeriesDescription", ""),
            NumberOfSeriesRelatedInstances=_int(
                json_value(attributes, "NumberOfSeriesRelatedInstances")),
            attributes=dict(attributes),
            locations=[location] if location else [],
        )


@dataclass(frozen=True)
class PatientIdentifier:
    """A (0010,0020) *Patient ID* qualified by (0010,0021) *Issuer of Patient ID*."""

    PatientID: str
    IssuerOfPatientID: str = ""

    def __str__(self) -> str:
        return (f"{self.PatientID} ({self.IssuerOfPatientID})"
                if self.IssuerOfPatientID else self.PatientID)


@dataclass
class Study:
    """One study as listed by a source, or merged from several sources.

    Attributes
    ----------
    StudyInstanceUID : str
        (0020,000D) *Study Instance UID*.
    PatientName : PersonName
        (0010,0010) *Patient's Name* with all three component groups.
    PatientID, IssuerOfPatientID : str
        (0010,0020) and (0010,0021).
    StudyDate, StudyTime, AccessionNumber, StudyDescription : str
        (0008,0020), (0008,0030), (0008,0050), (0008,1030).
    ModalitiesInStudy : list of str
        (0008,0061).
    NumberOfStudyRelatedSeries, NumberOfStudyRelatedInstances : int or None
        (0020,1206) and (0020,1208).
    other_patient_identifiers : list of PatientIdentifier
        From (0010,1002) *Other Patient IDs Sequence*.
    linked_identifiers : list of PatientIdentifier
        Set by a federated search: the patient's identifiers in other archives
        (linked through issuer and Other Patient IDs, never through the name).
    attributes : dict
        Every element the source returned, in the DICOM JSON model.
    locations : list of str
        Names of the sources that hold this study.
    """

    StudyInstanceUID: str
    PatientName: PersonName = PersonName()
    PatientID: str = ""
    IssuerOfPatientID: str = ""
    StudyDate: str = ""
    StudyTime: str = ""
    AccessionNumber: str = ""
    StudyDescription: str = ""
    ModalitiesInStudy: list[str] = field(default_factory=list)
    NumberOfStudyRelatedSeries: int | None = None
    NumberOfStudyRelatedInstances: int | None = None
    other_patient_identifiers: list[PatientIdentifier] = field(default_factory=list)
    linked_identifiers: list[PatientIdentifier] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict, repr=False)
    locations: list[str] = field(default_factory=list)

    @property
    def patient_identifier(self) -> PatientIdentifier:
        """The study's own patient identifier (ID plus issuer)."""
        return PatientIdentifier(self.PatientID, self.IssuerOfPatientID)

    @classmethod
    def from_dicom_json(cls, attributes: DicomJson,
                        location: str | None = None) -> Study:
        """Build from one QIDO-RS study result.

        Parameters
        ----------
        attributes : mapping
            DICOM JSON with at least (0020,000D) *Study Instance UID*. Values are
            already Unicode (DICOM JSON is UTF-8, PS3.18 F.2), so (0008,0005)
            *Specific Character Set* needs no further decoding here.
        location : str, optional
            Name of the source the result came from.

        Returns
        -------
        Study

        Examples
        --------
        >>> study = Study.from_dicom_json({
        ...     "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        ...     "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Test^Case"}]},
        ... }, location="pacs")
        >>> str(study.PatientName), study.locations
        ('Test^Case', ['pacs'])
        """
        others = []
        for item in json_values(attributes, "OtherPatientIDsSequence"):
            patient_id = json_value(item, "PatientID", "")
            if patient_id:
                others.append(PatientIdentifier(
                    patient_id, json_value(item, "IssuerOfPatientID", "")))
        name = json_value(attributes, "PatientName")
        return cls(
            StudyInstanceUID=json_value(attributes, "StudyInstanceUID", ""),
            PatientName=name if isinstance(name, PersonName) else PersonName(),
            PatientID=json_value(attributes, "PatientID", ""),
            IssuerOfPatientID=json_value(attributes, "IssuerOfPatientID", ""),
            StudyDate=json_value(attributes, "StudyDate", ""),
            StudyTime=json_value(attributes, "StudyTime", ""),
            AccessionNumber=json_value(attributes, "AccessionNumber", ""),
            StudyDescription=json_value(attributes, "StudyDescription", ""),
            ModalitiesInStudy=[str(v) for v in
                               json_values(attributes, "ModalitiesInStudy")],
            NumberOfStudyRelatedSeries=_int(
                json_value(attributes, "NumberOfStudyRelatedSeries")),
            NumberOfStudyRelatedInstances=_int(
                json_value(attributes, "NumberOfStudyRelatedInstances")),
            other_patient_identifiers=others,
            attributes=dict(attributes),
            locations=[location] if location else [],
        )


def dataset_to_dicom_json(dataset: Dataset) -> dict[str, Any]:
    """Convert a pydicom data set (e.g. read from a Part-10 file) to DICOM JSON.

    pydicom decodes text with (0008,0005) *Specific Character Set* (ISO_IR 100,
    ISO_IR 192, ISO 2022 IR 87, ...), so the result is Unicode like a DICOMweb
    answer. Bulk data (pixel data, large binary values) is left out.

    Parameters
    ----------
    dataset : pydicom.dataset.Dataset
        Any data set; it is not modified.

    Returns
    -------
    dict
        The DICOM JSON model of ``dataset``.
    """
    return dataset.to_json_dict(bulk_data_threshold=1024,
                                bulk_data_element_handler=lambda element: "")


def keyword_of(tag: str) -> str:
    """Return the keyword for an eight-digit hex tag, or the tag if it has none."""
    return keyword_for_tag(int(tag, 16)) or tag
