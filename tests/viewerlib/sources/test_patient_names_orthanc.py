"""Patient names outside ASCII, searched on a real Orthanc 1.10 (raw-query quirk).

Two archives hold pydicom's character set test files (Specific Character Set
ISO_IR 100, 126, 144, 192, ISO 2022 IR 87 and 149, ...), each under its own UIDs,
plus the synthetic Test^Case: one as the embedded archive sets Orthanc up
(``EmbeddedOrthanc`` writes "DefaultEncoding": "Utf8", so it answers in UTF-8),
one as Orthanc comes ("Latin1", its default: it answers in ISO_IR 100, dropping
the letters Latin-1 lacks). The names, as the files hold them (alphabetic =
ideographic = phonetic):

==============  =================================================
file            (0010,0010) Patient's Name
==============  =================================================
chrFren         Buc^Jérôme
chrGerm         Äneas^Rüdiger
chrGreek        Διονυσιος
chrRuss         Люкceмбypг (Cyrillic with Latin c, e, y, p in it)
chrH31          Yamada^Tarou = 山田^太郎 = やまだ^たろう
chrI2           Hong^Gildong = 洪^吉洞 = 홍^길동
chrX1           Wang^XiaoDong = 王^小東
synthetic       Test^Case
==============  =================================================
"""

from __future__ import annotations

import json
import warnings

import pydicom
import pytest
from lightbox_source_testing import FAKE_PATIENT, make_ct_series
from pydicom.data import get_charset_files
from pydicom.uid import generate_uid

from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.quirks import ArchiveQuirks

pytestmark = pytest.mark.orthanc

CHARSET_FILES = ("chrFren", "chrGerm", "chrGreek", "chrRuss", "chrH31", "chrI2",
                 "chrX1")


def _start_archive(orthanc_factory, name: str, default_encoding: str | None):
    """An archive holding one study per character set file, and Test^Case."""
    class Archive(orthanc_factory):
        def _write_configuration(self):
            path = super()._write_configuration()
            if default_encoding:
                configuration = json.loads(path.read_text())
                configuration["DefaultEncoding"] = default_encoding
                path.write_text(json.dumps(configuration))
            return path

    archive = Archive(name).start()
    datasets = make_ct_series(1, patient_id="TEST-NAMES")
    patient_ids = {}
    for stem in CHARSET_FILES:
        [path] = get_charset_files(f"{stem}.dcm")
        dataset = pydicom.dcmread(path)
        # Some of the files share UIDs; each becomes a study of its own here.
        dataset.StudyInstanceUID = generate_uid()
        dataset.SeriesInstanceUID = generate_uid()
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = (
            generate_uid())
        dataset.PatientID = f"TEST-{stem.upper()}"
        patient_ids[dataset.PatientID] = stem
        datasets.append(dataset)
    patient_ids["TEST-NAMES"] = "synthetic"
    report = archive.load_datasets(datasets)
    assert report.stored == len(datasets), report.rejected
    return archive, patient_ids


@pytest.fixture(scope="module")
def names_archive(orthanc_factory):
    """The archive as ``EmbeddedOrthanc`` sets it up: it answers in UTF-8."""
    archive, patient_ids = _start_archive(orthanc_factory, "names-utf8", None)
    yield archive, patient_ids
    archive.stop()


@pytest.fixture(scope="module")
def latin1_archive(orthanc_factory):
    """The archive as Orthanc comes (its default encoding): it answers in Latin-1."""
    archive, patient_ids = _start_archive(orthanc_factory, "names-latin1", "Latin1")
    yield archive, patient_ids
    archive.stop()


# Query -> the files whose name matches it, worked out by hand from the table
# above: a name without wildcards is a prefix of one component group (or of the
# whole value), case-insensitive; * and ? are wildcards.
EXPECTED = [
    ("Buc^Jérôme", {"chrFren"}),
    ("Buc^Jér", {"chrFren"}),
    ("buc^JÉR", {"chrFren"}),          # case-insensitive outside ASCII too
    ("Äneas", {"chrGerm"}),
    ("äneas^r", {"chrGerm"}),
    ("*^Rüdiger", {"chrGerm"}),
    ("Διον", {"chrGreek"}),
    ("Люк", {"chrRuss"}),
    ("*ceм*", {"chrRuss"}),            # Latin c, e, then a Cyrillic м
    ("*cem*", set()),                  # ... not a Latin m
    ("山田", {"chrH31"}),               # the ideographic group
    ("やまだ^たろう", {"chrH31"}),        # the phonetic group
    ("*^太郎", {"chrH31"}),
    ("Yamada", {"chrH31"}),            # the alphabetic group, plain ASCII
    ("홍", {"chrI2"}),
    ("洪^吉洞", {"chrI2"}),
    ("王", {"chrX1"}),
    ("Wang^XiaoDong=王^小東", {"chrX1"}),  # the whole value, groups and all
    ("Test^Case", {"synthetic"}),
    ("Jérôme", set()),                 # the given name is no prefix of the name
    ("Buc^Jéro", set()),               # ô is not o
    ("Διον?σιος", {"chrGreek"}),        # ? for one letter outside ASCII
    ("Muller", set()),
    ("山本", set()),
]


@pytest.mark.parametrize(("query", "expected"), EXPECTED,
                         ids=[q for q, _ in EXPECTED])
def test_names_outside_ascii_find_their_patient(names_archive, query, expected):
    archive, patient_ids = names_archive
    source = DICOMwebSource(archive.dicomweb_url, "names",
                            quirks=ArchiveQuirks.for_orthanc_1_10())
    studies = source.search_for_studies(patient_name=query)
    assert {patient_ids[s.PatientID] for s in studies} == expected


def test_decoded_names_keep_all_three_component_groups(names_archive):
    archive, _ = names_archive
    source = DICOMwebSource(archive.dicomweb_url, "names",
                            quirks=ArchiveQuirks.for_orthanc_1_10())
    [study] = source.search_for_studies(patient_name="山田")
    assert tuple(study.PatientName) == ("Yamada^Tarou", "山田^太郎", "やまだ^たろう")
    [study] = source.search_for_studies(patient_name="Test^Case")
    assert str(study.PatientName) == FAKE_PATIENT


def test_without_the_quirk_names_outside_ascii_find_nothing(names_archive):
    # Why the quirk matches here: the archive compares the percent-encoded bytes
    # (Buc%5EJ%C3%A9r) with the stored letters.
    archive, _ = names_archive
    plain = DICOMwebSource(archive.dicomweb_url, "names")
    assert plain.search_for_studies(patient_name="Buc^Jér*") == []


@pytest.mark.parametrize(("query", "expected"), [
    ("Buc^Jér", {"chrFren"}), ("äneas^r", {"chrGerm"}), ("Yamada", {"chrH31"}),
    ("*^Rüdiger", {"chrGerm"}),
], ids=["french", "german", "ascii-of-japanese", "leading-star"])
def test_latin1_names_are_found_on_an_archive_answering_in_latin1(
        latin1_archive, query, expected):
    archive, patient_ids = latin1_archive
    source = DICOMwebSource(archive.dicomweb_url, "latin1",
                            quirks=ArchiveQuirks.for_orthanc_1_10())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none expected: Latin-1 holds them all
        studies = source.search_for_studies(patient_name=query)
    assert {patient_ids[s.PatientID] for s in studies} == expected


@pytest.mark.parametrize("query", ["山田", "Διον", "Люк"])
def test_names_latin1_cannot_hold_warn_on_an_archive_answering_in_latin1(
        latin1_archive, query):
    # Orthanc sends "Yamada^Tarou=^=^", "" and "ceyp" for these: nothing here can
    # match them, and the search says why instead of quietly finding nothing.
    archive, _ = latin1_archive
    source = DICOMwebSource(archive.dicomweb_url, "latin1",
                            quirks=ArchiveQuirks.for_orthanc_1_10())
    with pytest.warns(UserWarning, match=r"latin1: the archive answered \d+ patient "
                      r"names in character sets \(ISO_IR 100\).*Search by Patient "
                      r"ID.*DefaultEncoding"):
        assert source.search_for_studies(patient_name=query) == []
