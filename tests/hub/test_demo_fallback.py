"""Without Orthanc the demo still shows the studies, from a folder, and says so."""
from __future__ import annotations

from pathlib import Path

import pytest

import lightbox_hub.demo as demo
from viewerlib.sources.config import connect


def test_without_orthanc_the_archive_is_a_folder_with_a_notice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "orthanc_missing",
                        lambda: "Orthanc is not installed (Debian package 'orthanc')")
    embedded = demo.EmbeddedDefault(tmp_path)
    archives_file = embedded._start_archive()

    assert embedded.archive is None
    assert len(embedded.notices) == 1
    assert "Orthanc is not installed" in embedded.notices[0]
    assert "folder of sample files" in embedded.notices[0]

    # The kernels read the same archives file and find the teaching studies.
    studies = connect(archives_file).search_for_studies(patient_name="Test^Case")
    assert {s.StudyDate for s in studies} == {"20261102", "20260504"}
