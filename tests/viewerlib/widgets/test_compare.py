"""Comparison: prior lookup across archives, the hanging protocol, linked viewers."""

from __future__ import annotations

from pathlib import Path

import pytest
from widget_builders import (
    DECOY_DATE,
    PRIOR_DATE,
    closed_port,
    current_ct,
    decoy_study,
    prior_study,
    write,
)

from viewerlib.model import Series
from viewerlib.samples.phantom import ct_head_phantom, write_teaching_set
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.federated import FederatedSource
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


@pytest.fixture(scope="module")
def two_archives(tmp_path_factory: pytest.TempPathFactory) -> FederatedSource:
    """The current CT in 'Main PACS', its prior and a decoy in 'Outside CDs'."""
    main, outside = (tmp_path_factory.mktemp(n) for n in ("main", "outside"))
    write(current_ct(), main)
    write(prior_study(), outside)
    write(decoy_study(), outside)
    return FederatedSource([FolderSource(main, name="Main PACS"),
                            FolderSource(outside, name="Outside CDs")])


def _current(source: FederatedSource):
    (study,) = source.search_for_studies(patient_id="A-1")
    return study


def test_prior_is_found_in_the_other_archive_under_the_linked_patient_id(
    two_archives,
) -> None:
    current = _current(two_archives)
    assert current.locations == ["Main PACS"]

    prior = find_prior(current, two_archives)

    # B-9 (HOSP-B) is A-1's other ID; the decoy C-3 shares the name, a later
    # date, and nothing else: it is never taken for the prior.
    assert (prior.PatientID, prior.StudyDate, prior.locations) == (
        "B-9", PRIOR_DATE, ["Outside CDs"])
    decoys = two_archives.search_for_studies(patient_id="C-3")
    assert decoys[0].StudyDate == DECOY_DATE > PRIOR_DATE
    assert str(decoys[0].PatientName) == str(current.PatientName)


def test_compare_hangs_the_prior_series_that_matches_by_plane(two_archives) -> None:
    pair = compare(_current(two_archives), source=two_archives)

    # The prior's sagittal series has the most images; the hanging protocol takes
    # the axial one, like the current.
    assert pair.prior.overlay["series"].endswith("Axial head 4 mm")
    assert pair.prior.orientation["left"] == "R" == pair.current.orientation["left"]
    assert pair.prior.overlay["study"].startswith("2026-05-04")


def test_hanging_protocol_tells_planes_apart_when_descriptions_agree(
    two_archives,
) -> None:
    prior = find_prior(_current(two_archives), two_archives)
    candidates = [s for s in two_archives.search_for_series(
        study_instance_uid=prior.StudyInstanceUID) if s.SeriesDescription != "Scout"]
    for series in candidates:
        series.SeriesDescription = "Head"
    (reference,) = two_archives.search_for_series(
        study_instance_uid=_current(two_archives).StudyInstanceUID)
    reference.SeriesDescription = "Head"

    chosen = match_series(reference, candidates, two_archives)

    assert chosen.NumberOfSeriesRelatedInstances == 8  # the axial, not 16 sagittal


def test_compare_of_a_study_no_archive_holds_names_what_was_searched_raises(
    two_archives,
) -> None:
    with pytest.raises(LookupError) as caught:
        compare("1.2.826.0.1.3680043.99.1", source=two_archives)
    message = str(caught.value)
    assert "1.2.826.0.1.3680043.99.1" in message
    assert "archives 'Main PACS' and 'Outside CDs'" in message
    assert "Check the UID" in message
    assert not isinstance(caught.value, IndexError)


def test_compare_when_an_archive_is_down_says_which_raises(two_archives) -> None:
    from viewerlib.errors import IncompleteResultsWarning

    dead = DICOMwebSource(f"http://127.0.0.1:{closed_port()}/dicom-web", "Old PACS",
                          retries=0, timeout=2.0)
    source = FederatedSource([*two_archives.sources, dead])
    with pytest.warns(IncompleteResultsWarning), pytest.raises(
            LookupError, match="Archive 'Old PACS' could not be searched"):
        compare("1.2.826.0.1.3680043.99.1", source=source)


def test_no_prior_names_the_identifiers_searched_raises(two_archives) -> None:
    (decoy,) = two_archives.search_for_studies(patient_id="C-3")
    with pytest.raises(LookupError, match=r"searched as C-3 \(HOSP-C\)"):
        find_prior(decoy, two_archives)
