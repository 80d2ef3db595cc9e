"""The demo archive the lessons run against, and helpers to read notebooks."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pydicom.data
import pytest

from viewerlib.samples.phantom import teaching_studies, write_teaching_set

# Real images that come with pydicom, as the demo loads them.
PYDICOM_SAMPLES = ("CT_small.dcm", "MR_small.dcm")


@pytest.fixture(scope="session")
def demo_archives_file(orthanc_factory, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[Path]:
    """An archives file naming a real Orthanc with the demo's studies, and a folder.

    The same two archives the demo configures: "Demo archive" (DICOMweb, the
    phantoms, pydicom's samples and LIGHTBOX_EXTRA_DATA when set) and "Teaching
    archive" (a folder of the phantoms).
    """
    root = tmp_path_factory.mktemp("lessons")
    archive = orthanc_factory("lessons").start()
    report = archive.load_datasets(ds for study in teaching_studies()
                                   for ds in study.datasets)
    archive.load_files(Path(pydicom.data.get_testdata_file(name))
                       for name in PYDICOM_SAMPLES)
    extra = Path(os.environ.get("LIGHTBOX_EXTRA_DATA") or "/nonexistent")
    if os.environ.get("LIGHTBOX_EXTRA_DATA") and extra.is_dir():
        archive.load_files(p for p in sorted(extra.rglob("*")) if p.is_file()
                           and p.suffix.lower() not in {".md", ".txt", ".json"})
    assert report.stored, "the phantoms did not reach the archive"
    teaching = root / "teaching-archive"
    write_teaching_set(teaching)
    path = root / "archives.toml"
    path.write_text(
        '[[archive]]\nname = "Demo archive"\ntype = "dicomweb"\n'
        f'url = "{archive.dicomweb_url}"\nquirks = "orthanc-1.10"\n\n'
        '[[archive]]\nname = "Teaching archive"\ntype = "folder"\n'
        f'path = "{teaching}"\n', encoding="utf-8")
    previous = os.environ.get("LIGHTBOX_ARCHIVES")
    os.environ["LIGHTBOX_ARCHIVES"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("LIGHTBOX_ARCHIVES", None)
    else:
        os.environ["LIGHTBOX_ARCHIVES"] = previous
