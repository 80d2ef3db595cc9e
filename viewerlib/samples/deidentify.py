"""De-identified copies of the teaching phantoms, for the researchers' archive.

The copies follow DICOM PS3.15 Annex E, the Basic Application Level Confidentiality
Profile, with two options: *Retain Longitudinal Temporal Information with Modified
Dates* (every date moves back by the same :data:`DATE_SHIFT_DAYS`, so the interval
between a current study and its prior survives) and *Clean Descriptors* (the
phantoms' descriptions were written to name no one, so they are kept). Every UID is
replaced by one derived from the original, so loading the set twice stores each
image once, and no copy shares a UID with the clinical original.
"""
from __future__ import annotations

import copy
import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from viewerlib.samples._dataset import stable_uid
from viewerlib.samples.phantom import PhantomStudy, teaching_studies, write_studies

# Far enough back that no copy carries a date of the clinical study.
DATE_SHIFT_DAYS = 1461
TEACHING_PATIENT_ID_PREFIX = "TEACH-"

# PS3.15 Table E.1-1 action X (remove) for the attributes a phantom or a typical CT
# carries; private attributes are removed as a whole.
_REMOVE = (
    "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientIDsSequence",
    "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers",
    "PatientBirthTime", "PatientAge", "PatientSize", "PatientWeight",
    "MedicalRecordLocator", "EthnicGroup", "Occupation", "AdditionalPatientHistory",
    "PatientComments", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "StationName", "OperatorsName",
    "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord", "RequestingPhysician", "DeviceSerialNumber",
    "RequestAttributesSequence", "ReferencedStudySequence",
    "ReferencedPatientSequence",
)
# Action Z (zero length): the attribute stays, empty, where the IOD requires it.
_EMPTY = ("PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
          "ReferringPhysicianName")
# Action U (replace with a consistent UID).
_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
         "FrameOfReferenceUID")
_DATES = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")

# PS3.16 CID 7050 De-identification Methods, scheme DCM.
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113105", "Clean Descriptors Option"),
)


def deidentified_uid(original: str) -> str:
    """The UID a copy carries in place of ``original``: the same one every time."""
    return stable_uid("de-identified", original)


def shifted_date(value: str) -> str:
    """A DICOM DA value moved back by :data:`DATE_SHIFT_DAYS` (empty stays empty)."""
    if not value:
        return value
    day = datetime.datetime.strptime(value, "%Y%m%d").date()
    return (day - datetime.timedelta(days=DATE_SHIFT_DAYS)).strftime("%Y%m%d")


@dataclass
class Deidentifier:
    """Makes de-identified copies, one pseudonym per original patient.

    The n-th patient met gets Patient ID ``TEACH-000n`` and Patient's Name
    ``Anonymous^Teaching-n``; ``pseudonyms`` maps original IDs to those numbers and is
    never written anywhere.

    Examples
    --------
    >>> from viewerlib.samples.phantom import ct_head_phantom
    >>> original = ct_head_phantom("current", rows=8, columns=8, number_of_slices=1)
    >>> copy = Deidentifier()(original.datasets[0])
    >>> str(copy.PatientName), copy.PatientID, copy.PatientIdentityRemoved
    ('Anonymous^Teaching-1', 'TEACH-0001', 'YES')
    """

    pseudonyms: dict[str, int] = field(default_factory=dict)

    def __call__(self, original: Dataset) -> Dataset:
        """A de-identified copy of ``original`` (which is left unchanged)."""
        ds = copy.deepcopy(original)  # Dataset.copy() shares the elements
        number = self.pseudonyms.setdefault(str(original.get("PatientID", "")),
                                            len(self.pseudonyms) + 1)
        ds.remove_private_tags()
        for keyword in _REMOVE:
            if keyword in ds:
                delattr(ds, keyword)
        for keyword in _EMPTY:
            if keyword in ds:
                setattr(ds, keyword, "")
        ds.PatientName = f"Anonymous^Teaching-{number}"
        ds.PatientID = f"{TEACHING_PATIENT_ID_PREFIX}{number:04d}"
        for keyword in _UIDS:
            if keyword in ds:
                setattr(ds, keyword, deidentified_uid(str(ds.data_element(keyword).value)))
        file_meta = getattr(ds, "file_meta", None)
        if file_meta is not None and "MediaStorageSOPInstanceUID" in file_meta:
            file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for keyword in _DATES:
            if keyword in ds:
                setattr(ds, keyword, shifted_date(str(ds.data_element(keyword).value)))
        ds.PatientIdentityRemoved = "YES"
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
        ds.DeidentificationMethod = [meaning[:64] for _, meaning in METHOD_CODES]
        ds.DeidentificationMethodCodeSequence = [
            _code(value, meaning) for value, meaning in METHOD_CODES]
        return ds


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def deidentified_studies(studies: Iterable[PhantomStudy] | None = None
                         ) -> Iterator[PhantomStudy]:
    """De-identified copies of ``studies`` (the teaching phantoms when not given)."""
    deidentify = Deidentifier()
    for study in teaching_studies() if studies is None else studies:
        datasets = [deidentify(ds) for ds in study.datasets]
        first = datasets[0]
        yield PhantomStudy(
            study_instance_uid=first.StudyInstanceUID,
            series_instance_uid=first.SeriesInstanceUID,
            study_date=first.StudyDate,
            study_description=study.study_description,
            accession_number="",
            datasets=datasets,
        )


def write_deidentified_teaching_set(folder: Path) -> list[Path]:
    """Write de-identified copies of every teaching phantom under ``folder``.

    One sub-folder per study, one file per instance; returns the paths.
    """
    return write_studies(deidentified_studies(), folder)
