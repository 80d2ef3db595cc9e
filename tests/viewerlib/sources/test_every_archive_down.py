"""When every archive is down a search says so; it never looks like "no studies"."""

from __future__ import annotations

import socket

import pytest

from viewerlib.errors import SourceUnreachableError
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.federated import FederatedSource
from viewerlib.viewer import choose_series


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_search_with_every_archive_down_raises_naming_them() -> None:
    archives = FederatedSource([
        DICOMwebSource(f"http://127.0.0.1:{_closed_port()}/dicom-web", "Main PACS",
                       retries=0, timeout=2),
        DICOMwebSource(f"http://127.0.0.1:{_closed_port()}/dicom-web", "Outside",
                       retries=0, timeout=2)])
    with pytest.raises(SourceUnreachableError,
                       match="every archive is down") as caught:
        archives.search_for_studies(patient_id="LBX-0001")
    assert "Main PACS" in str(caught.value) and "Outside" in str(caught.value)
    assert "LBX-0001" not in str(caught.value)


def test_a_study_no_archive_holds_says_so() -> None:
    with pytest.raises(LookupError, match="no archive holds a series of this study"):
        choose_series([])
