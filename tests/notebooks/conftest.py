"""The demo's archives the lessons run against (a TOML file, as on a laptop)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightbox_hub.demo import (
    DEMO_ARCHIVE,
    dicomweb_archive,
    load_clinical_studies,
    write_teaching_archive,
)


@pytest.fixture(scope="session")
def demo_archives_file(orthanc_factory, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[Path]:
    """An archives file (TOML) naming a real Orthanc with the demo's studies, and a folder.

    Built by the demo's own functions: "Demo archive" (DICOMweb, the phantoms,
    pydicom's samples and LIGHTBOX_EXTRA_DATA when it names a folder) and "Teaching
    archive" (a folder of de-identified copies of the phantoms).
    """
    root = tmp_path_factory.mktemp("lessons")
    archive = orthanc_factory("lessons").start()
    extra = os.environ.get("LIGHTBOX_EXTRA_DATA")
    report = load_clinical_studies(archive, bool(extra and Path(extra).is_dir()))
    assert report.stored, "the phantoms did not reach the archive"
    teaching_entry = write_teaching_archive(root / "teaching-archive")
    path = root / "archives.toml"
    path.write_text(dicomweb_archive(DEMO_ARCHIVE, archive.dicomweb_url) + "\n"
                    + teaching_entry, encoding="utf-8")
    previous = os.environ.get("LIGHTBOX_ARCHIVES")
    os.environ["LIGHTBOX_ARCHIVES"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("LIGHTBOX_ARCHIVES", None)
    else:
        os.environ["LIGHTBOX_ARCHIVES"] = previous

