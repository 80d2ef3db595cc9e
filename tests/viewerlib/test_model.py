"""Study, Series and Instance from DICOM JSON and from Part-10 files."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from viewerlib.model import (
    Instance,
    PatientIdentifier,
    PersonName,
    Series,
    Study,
    dataset_to_dicom_json,
)

CHARSETS = Path(pydicom.data.__file__).parent / "charset_files"


def test_study_from_dicom_json_reads_every_component_group():
    study = Study.from_dicom_json({
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Yamada^Tarou",
                                            "Ideographic": "山田^太郎",
                                            "Phonetic": "やまだ^たろう"}]},
        "00100020": {"vr": "LO", "Value": ["TEST-1"]},
        "00100021": {"vr": "LO", "Value": ["HOSP"]},
        "00101002": {"vr": "SQ", "Value": [
            {"00100020": {"vr": "LO", "Value": ["R-9"]},
             "00100021": {"vr": "LO", "Value": ["REGION"]}}]},
        "00080061": {"vr": "CS", "Value": ["CT", "PT"]},
        "00201208": {"vr": "IS", "Value": [12]},
    }, location="pacs")
    assert study.PatientName == PersonName("Yamada^Tarou", "山田^太郎",
                                           "やまだ^たろう")
    assert study.patient_identifier == PatientIdentifier("TEST-1", "HOSP")
    assert study.other_patient_identifiers == [PatientIdentifier("R-9", "REGION")]
    assert study.ModalitiesInStudy == ["CT", "PT"]
    assert study.NumberOfStudyRelatedInstances == 12
    assert study.locations == ["pacs"]


def test_missing_and_empty_elements_give_defaults():
    study = Study.from_dicom_json({"0020000D": {"vr": "UI", "Value": ["1.2.3"]},
                                   "00100010": {"vr": "PN"}})
    assert study.PatientName == PersonName() and str(study.PatientName) == ""
    assert study.NumberOfStudyRelatedSeries is None


def test_series_and_instance_from_dicom_json():
    series = Series.from_dicom_json({"0020000E": {"vr": "UI", "Value": ["1.2.4"]},
                                     "00080060": {"vr": "CS", "Value": ["MR"]},
                                     "00200011": {"vr": "IS", "Value": ["3"]}})
    assert (series.SeriesInstanceUID, series.Modality, series.SeriesNumber) == (
        "1.2.4", "MR", 3)
    instance = Instance.from_dicom_json({"00080018": {"vr": "UI", "Value": ["1.2.5"]},
                                         "00280008": {"vr": "IS", "Value": ["30"]}})
    assert instance.NumberOfFrames == 30 and instance.InstanceNumber is None


@pytest.mark.parametrize(("file", "charset", "expected"), [
    ("chrFren.dcm", "ISO_IR 100", PersonName("Buc^Jérôme")),
    ("chrX1.dcm", "ISO_IR 192", PersonName("Wang^XiaoDong", "王^小東")),
    ("chrH31.dcm", "ISO 2022 IR 87",
     PersonName("Yamada^Tarou", "山田^太郎", "やまだ^たろう")),
    ("chrJapMulti.dcm", "ISO 2022 IR 87", PersonName("やまだ^たろう")),
])
def test_part10_names_are_decoded_with_the_specific_character_set(file, charset,
                                                                  expected):
    dataset = pydicom.dcmread(CHARSETS / file)
    charsets = dataset.SpecificCharacterSet
    assert charset in ([charsets] if isinstance(charsets, str) else list(charsets))
    dataset.StudyInstanceUID = dataset.get("StudyInstanceUID") or "1.2.3"
    study = Study.from_dicom_json(dataset_to_dicom_json(dataset))
    assert study.PatientName == expected
