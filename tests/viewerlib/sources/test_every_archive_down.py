"""When archives fail, a search says which and why; it never looks like "no studies".

Every archive failing raises the most specific error that fits them all; some
failing warns (``IncompleteResultsWarning``) and marks the results, so that an
empty list is never read as "the patient has no studies".
"""

from __future__ import annotations

import socket

import pydicom
import pytest
from lightbox_source_testing import CREDENTIALS
from lightbox_source_testing import LoopbackProxy

from viewerlib.errors import (
    IncompleteResultsWarning,
    SourceAuthenticationError,
    SourceError,
    SourceUnreachableError,
)
from viewerlib.sources.config import connect
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.quirks import ArchiveQuirks
from viewerlib.sources.federated import FederatedSource, not_searched_note
from viewerlib.sources.local import FolderSource
from viewerlib.viewer import choose_series

CT = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"),
                     stop_before_pixels=True)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stopped(name: str) -> DICOMwebSource:
    return DICOMwebSource(f"http://127.0.0.1:{_closed_port()}/dicom-web", name,
                          retries=0, timeout=2)


def test_search_with_every_archive_down_raises_naming_them() -> None:
    archives = FederatedSource([_stopped("Main PACS"), _stopped("Outside")])
    with pytest.raises(SourceUnreachableError,
                       match="every archive is down") as caught:
        archives.search_for_studies(patient_id="LBX-0001")
    assert "Main PACS" in str(caught.value) and "Outside" in str(caught.value)
    assert "LBX-0001" not in str(caught.value)
    # A health check reports them instead of raising.
    assert {h.state for h in archives.health_by_source().values()} == {"down"}


def test_a_study_no_archive_holds_says_so() -> None:
    with pytest.raises(LookupError, match="no archive holds a series of this study"):
        choose_series([])


def _basic_archive(tmp_path, url: str, password_env: str):
    path = tmp_path / "archives.toml"
    path.write_text(f'[[archive]]\nname = "Main PACS"\ntype = "dicomweb"\n'
                    f'url = "{url}"\nquirks = "orthanc-1.10"\nauth = "basic"\n'
                    f'username = "{CREDENTIALS[0]}"\npassword_env = "{password_env}"\n'
                    "retries = 0\n")
    return path


@pytest.mark.orthanc
def test_wrong_password_raises_authentication_error_not_down(archives, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv("LIGHTBOX_TEST_WRONG_PASSWORD", "not-" + CREDENTIALS[1])
    path = _basic_archive(tmp_path, archives.b.dicomweb_url,
                          "LIGHTBOX_TEST_WRONG_PASSWORD")
    with pytest.raises(SourceAuthenticationError) as caught:
        connect(path).search_for_studies()
    message = str(caught.value)
    assert "'Main PACS' refused the credentials" in message
    assert "HTTP 401" in message and "password_env" in message
    assert "down" not in message and "could not reach" not in message
    assert isinstance(caught.value.failures["Main PACS"], SourceAuthenticationError)

    # The same file with the right password in the variable works.
    monkeypatch.setenv("LIGHTBOX_TEST_WRONG_PASSWORD", CREDENTIALS[1])
    found = connect(path).search_for_studies(study_instance_uid=str(
        CT.StudyInstanceUID))
    assert [s.StudyInstanceUID for s in found] == [str(CT.StudyInstanceUID)]


@pytest.mark.orthanc
def test_every_archive_refusing_names_each_one(archives):
    federation = FederatedSource([
        archives.source_b(auth=(CREDENTIALS[0], "wrong"), retries=0),
        DICOMwebSource(archives.b.dicomweb_url, "b-anonymous", retries=0,
                       quirks=ArchiveQuirks.for_orthanc_1_10())])
    with pytest.raises(SourceAuthenticationError,
                       match="'b' and 'b-anonymous' refused the credentials"):
        federation.search_for_studies()


@pytest.mark.orthanc
def test_refused_and_down_lists_each_reason_and_does_not_say_down(archives):
    federation = FederatedSource([
        archives.source_b(auth=(CREDENTIALS[0], "wrong"), retries=0),
        _stopped("Stopped PACS")])
    with pytest.raises(SourceError) as caught:
        federation.search_for_studies()
    error = caught.value
    # Neither class alone fits both failures.
    assert not isinstance(error, SourceAuthenticationError | SourceUnreachableError)
    message = str(error)
    assert "no archive could be searched, each for its own reason" in message
    assert "'b': " in message and "HTTP 401" in message
    assert "'Stopped PACS': " in message and "connection refused" in message
    assert "every archive is down" not in message
    assert set(error.failures) == {"b", "Stopped PACS"}


@pytest.mark.orthanc
def test_down_and_too_slow_raises_unreachable_no_archive_answered(archives):
    port = int(archives.a.url.rsplit(":", 1)[1])
    with LoopbackProxy(port, delay_s=2.0) as proxy:
        slow = DICOMwebSource(proxy.url(), "a-slow", timeout=5,
                              quirks=ArchiveQuirks.for_orthanc_1_10())
        federation = FederatedSource([slow, _stopped("Stopped PACS")], timeout_s=0.5)
        with pytest.raises(SourceUnreachableError,
                           match="no archive answered in time") as caught:
            federation.search_for_studies()
        federation.close()
    assert "'a-slow': no answer within 0.5 s" in str(caught.value)
    assert "'Stopped PACS': could not reach" in str(caught.value)


def test_down_archive_and_a_folder_without_the_study_warns_and_marks_results(
        tmp_path):
    (tmp_path / "empty").mkdir()
    federation = FederatedSource([_stopped("Stopped PACS"),
                                  FolderSource(tmp_path / "empty", name="CDs")])
    with pytest.warns(IncompleteResultsWarning,
                      match=r"1 of 2 archives answered\. Archive 'Stopped PACS' "
                      "could not be searched") as caught:
        studies = federation.search_for_studies(patient_id="LBX-0001")
    assert "connection refused" in str(caught[0].message)
    assert studies == [] and studies.incomplete and not studies.complete
    assert list(studies.not_searched) == ["Stopped PACS"]
    assert "could not reach" in studies.not_searched["Stopped PACS"]
    # The README's ``search_for_studies(...)[0]`` says why nothing is there.
    with pytest.raises(IndexError, match="no result 0 among the 0 found. Archive "
                       "'Stopped PACS' could not be searched"):
        studies[0]  # noqa: B018

    # What viewerlib.open's "no archive holds a series" message can append.
    with pytest.warns(IncompleteResultsWarning, match="Stopped PACS"):
        series = federation.search_for_series(study_instance_uid="1.2.3.4")
    note = not_searched_note(series)
    assert note.startswith("Archive 'Stopped PACS' could not be searched, so what "
                           "it holds is missing from these results: could not reach")
    assert not_searched_note([]) == ""


@pytest.mark.orthanc
def test_refusing_archive_and_one_holding_the_study_returns_it_and_warns(archives):
    federation = FederatedSource([
        archives.source_a(),
        archives.source_b(auth=(CREDENTIALS[0], "wrong"), retries=0)])
    with pytest.warns(IncompleteResultsWarning,
                      match="Archive 'b' could not be searched.*HTTP 401"):
        found = federation.search_for_studies(study_instance_uid=str(
            CT.StudyInstanceUID))
    assert [s.locations for s in found] == [["a"]]
    assert found[0].locations == ["a"] and found[-1] is found[0]
    assert set(found.not_searched) == {"b"}
    # Every archive answering: no warning (pytest turns one into an error).
    complete = FederatedSource([archives.source_a()]).search_for_studies(
        study_instance_uid=str(CT.StudyInstanceUID))
    assert complete.complete and complete.not_searched == {}
    assert not_searched_note(complete) == ""
