"""Comparison: prior lookup across archives, the hanging protocol, linked viewers."""

from __future__ import annotations

from pathlib import Path

import pytest

from viewerlib.model import Series
from viewerlib.samples.phantom import ct_head_phantom, write_teaching_set
from viewerlib.sources.local import FolderSource
from viewerlib.viewer import compare
from viewerlib.volume.volume import read_series
from viewerlib.widgets.compare import find_prior, match_series, plane_of


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> FolderSource:
    folder = tmp_path_factory.mktemp("archive")
    write_teaching_set(Path(folder))
    return FolderSource(folder, name="Teaching")


def _small(kind: str):
    return read_series(
        ct_head_phantom(kind, rows=16, columns=16, number_of_slices=6).datasets
    )[0]


@pytest.mark.parametrize(
    "orientation,plane",
    [
        ([1, 0, 0, 0, 1, 0], "AXIAL"),
        ([1, 0, 0, 0, 0, -1], "CORONAL"),
        ([0, 1, 0, 0, 0, -1], "SAGITTAL"),
        (None, ""),
    ],
)
def test_plane_of_orientation(orientation, plane) -> None:
    assert plane_of(orientation) == plane


def test_hanging_protocol_prefers_modality_then_description() -> None:
    reference = Series("1", "1.1", "CT", SeriesDescription="Axial head 4 mm")
    candidates = [
        Series("2", "2.1", "SR", SeriesDescription="Axial head 4 mm"),
        Series("2", "2.2", "MR", SeriesDescription="Axial head 4 mm"),
        Series("2", "2.3", "CT", SeriesDescription="Scout"),
        Series("2", "2.4", "CT", SeriesDescription="Axial head 5 mm"),
    ]
    assert match_series(reference, candidates).SeriesInstanceUID == "2.4"


def test_hanging_protocol_without_image_series_raises() -> None:
    reference = Series("1", "1.1", "CT")
    with pytest.raises(LookupError, match="no image series"):
        match_series(reference, [Series("2", "2.1", "SR")])


def test_prior_is_the_patients_latest_earlier_study(archive) -> None:
    current = next(
        s
        for s in archive.search_for_studies(patient_id="LBX-0001")
        if s.StudyDate == "20261102"
    )
    assert find_prior(current, archive).StudyDate == "20260504"


def test_compare_finds_and_hangs_the_prior_from_the_archive(archive) -> None:
    current = next(
        s
        for s in archive.search_for_studies(patient_id="LBX-0001")
        if s.StudyDate == "20261102"
    )
    pair = compare(current, source=archive)
    assert pair.current.volume is not None and pair.prior.volume is not None
    assert pair.prior.overlay["study"].startswith("2026-05-04")
    assert pair.current.sync_group == pair.prior.sync_group != ""
    # Different Frames of Reference: the prior is linked by slice number.
    assert pair.current.frame_of_reference_uid != pair.prior.frame_of_reference_uid
    assert pair.prior.slice_index == pair.current.slice_index


def test_compare_links_window_and_start_position() -> None:
    now, then = _small("current"), _small("prior")
    pair = compare(now, then)
    assert (pair.prior.window_center, pair.prior.window_width) == (
        pair.current.window_center,
        pair.current.window_width,
    )


def test_compare_of_a_volume_needs_a_prior_raises() -> None:
    with pytest.raises(ValueError, match="give the prior"):
        compare(_small("current"))
