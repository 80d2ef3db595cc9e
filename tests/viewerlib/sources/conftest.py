"""Fixtures for the source tests: two real Orthanc archives loaded with test data."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).parent))

from lightbox_source_testing import (  # noqa: E402
    CREDENTIALS,
    JPEG_LS_FILE,
    SERIES_LENGTH,
    make_ct_series,
    write_datasets,
)

from viewerlib import cache  # noqa: E402
from viewerlib.sources.dicomweb import DICOMwebSource  # noqa: E402
from viewerlib.sources.quirks import ArchiveQuirks  # noqa: E402



@dataclass
class Archives:
    """Two running archives: ``a`` open, ``b`` with HTTP basic auth.

    ``a`` holds CT_small, MR_small and a JPEG-LS MR; ``b`` holds CT_small (the
    same study as in ``a``) and the synthetic Test^Case series of
    :data:`SERIES_LENGTH` slices.
    """

    a: object
    b: object
    series: list
    series_paths: list[Path]

    def source_a(self, **kwargs: object) -> DICOMwebSource:
        kwargs.setdefault("quirks", ArchiveQuirks.for_orthanc_1_10())
        return DICOMwebSource(self.a.dicomweb_url, "a",  # type: ignore[attr-defined]
                              **kwargs)

    def source_b(self, **kwargs: object) -> DICOMwebSource:
        kwargs.setdefault("auth", CREDENTIALS)
        kwargs.setdefault("quirks", ArchiveQuirks.for_orthanc_1_10())
        return DICOMwebSource(self.b.dicomweb_url, "b",  # type: ignore[attr-defined]
                              **kwargs)


@pytest.fixture(scope="session")
def archives(orthanc_factory, tmp_path_factory: pytest.TempPathFactory) -> Archives:
    a = orthanc_factory("srca").start()
    b = orthanc_factory("srcb", credentials=CREDENTIALS).start()
    ct, mr = get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm")
    jpeg_ls = get_testdata_file(JPEG_LS_FILE)
    series = make_ct_series(SERIES_LENGTH)
    paths = write_datasets(series, tmp_path_factory.mktemp("series"))
    report_a = a.load_files([ct, mr, jpeg_ls])
    report_b = b.load_files([ct, *paths])
    assert report_a.stored == 3 and report_b.stored == 1 + SERIES_LENGTH, (
        report_a, report_b)
    return Archives(a, b, series, paths)


@pytest.fixture(autouse=True)
def _empty_caches() -> Iterator[None]:
    """Every test starts and ends with empty caches (they are process-wide)."""
    cache.purge()
    yield
    cache.purge()
