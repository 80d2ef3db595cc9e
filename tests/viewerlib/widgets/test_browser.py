"""The study browser across several archives: health, linked patients, open, prior.

Two folder archives hold the patient's studies under two linked identifiers (see
the legend of ``widget_builders``); a third archive is down (nothing listens on its
port).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from widget_builders import (
    CURRENT_DATE,
    PRIOR_DATE,
    closed_port,
    current_ct,
    decoy_study,
    prior_study,
    write,
)

from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.federated import FederatedSource
from viewerlib.sources.local import FolderSource
from viewerlib.widgets.browser import StudyBrowser
from viewerlib.widgets.compare import Comparison
from viewerlib.widgets.overlays import AnnotatedStackViewer


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    main, outside = (tmp_path_factory.mktemp(n) for n in ("main", "outside"))
    write(current_ct(), main)
    write(prior_study(), outside)
    write(decoy_study(), outside)
    return main, outside


@pytest.fixture
def browser(folders) -> StudyBrowser:
    main, outside = folders
    dead = DICOMwebSource(
        f"http://127.0.0.1:{closed_port()}/dicom-web",
        "Old PACS",
        retries=0,
        timeout=2.0,
    )
    source = FederatedSource(
        [
            FolderSource(main, name="Main PACS"),
            FolderSource(outside, name="Outside CDs"),
            dead,
        ]
    )
    browser = StudyBrowser(source)
    browser.table.send = lambda content, buffers=None: None
    return browser


def _message(browser: StudyBrowser, **content: object) -> None:
    browser._handle_message(browser.table, content, [])


def _by_date(browser: StudyBrowser) -> dict[str, dict]:
    return {row["date"]: row for row in browser.table.results}


def test_an_archive_down_is_shown_and_the_others_are_listed(browser) -> None:
    states = {h["archive"]: h["state"] for h in browser.table.health}
    assert states == {"Main PACS": "ok", "Outside CDs": "ok", "Old PACS": "down"}

    # No IncompleteResultsWarning escapes (warnings are errors here): the browser
    # says it in its own lines.
    _message(browser, type="search", patient_name="", patient_id="")

    assert sorted(_by_date(browser)) == ["20260504", "20260801", "20261102"]
    assert _by_date(browser)[CURRENT_DATE]["archives"] == ["Main PACS"]
    assert _by_date(browser)[PRIOR_DATE]["archives"] == ["Outside CDs"]
    assert {h["archive"]: h["state"] for h in browser.table.health}[
        "Old PACS"
    ] == "down"
    assert browser.table.status.startswith(
        "3 studies. Archive 'Old PACS' could not be searched"
    )


def test_linked_patients_carry_a_badge_and_a_namesake_does_not(browser) -> None:
    browser.search()
    rows = _by_date(browser)
    assert rows[CURRENT_DATE]["linked"] == ["B-9 (HOSP-B)"]
    assert rows[PRIOR_DATE]["linked"] == ["A-1 (HOSP-A)"]
    # C-3 is also called Test^Case, like A-1: names never link.
    assert rows["20260801"]["name"] == rows[CURRENT_DATE]["name"]
    assert rows["20260801"]["linked"] == []


def test_open_streams_the_study_and_the_progress_bar_follows(browser) -> None:
    browser.search()
    uid = _by_date(browser)[CURRENT_DATE]["uid"]
    shown: list[str] = []
    browser.progress.layout.observe(
        lambda change: shown.append(change["new"]), names="visibility"
    )

    _message(browser, type="open", uid=uid)

    viewer = browser.viewer
    assert isinstance(viewer, AnnotatedStackViewer)
    # Through viewerlib.open: the viewer streamed the series in (a federation is
    # not a folder, so it is not read whole first).
    assert viewer.loading["state"] in ("loading", "complete")
    assert viewer.volume.voxels.shape[0] == 8
    assert viewer.loading["state"] == "complete"
    assert browser.progress.layout.visibility == "hidden"
    assert browser.progress.value == 1.0 and shown == ["visible", "hidden"]
    assert browser.table.status == "Opened"


def test_progress_shows_the_share_of_images_arrived(browser) -> None:
    browser._follow_loading({"new": {"state": "loading", "received": 3, "total": 12}})
    assert browser.progress.value == 0.25 and browser.progress.description == (
        "3 of 12"
    )
    assert browser.progress.layout.visibility == "visible"
    browser._follow_loading({"new": {"state": "complete", "received": 12, "total": 12}})
    assert browser.progress.layout.visibility == "hidden"


def test_compare_with_prior_in_one_click_across_the_archives(browser) -> None:
    browser.search()
    _message(browser, type="compare", uid=_by_date(browser)[CURRENT_DATE]["uid"])

    pair = browser.viewer
    assert isinstance(pair, Comparison) and browser.viewer_box.children == (pair,)
    assert pair.prior.overlay["series"].endswith("Axial head 4 mm")
    assert browser.table.status == (
        f"Compared with the prior of {PRIOR_DATE} from Outside CDs"
    )


def test_compare_without_a_prior_says_so_in_the_browser(browser) -> None:
    browser.search()
    _message(browser, type="compare", uid=_by_date(browser)["20260801"]["uid"])
    assert browser.table.status.startswith(
        "Failed: LookupError: no earlier study of this patient (searched as C-3 "
        "(HOSP-C))"
    )
    assert browser.viewer is None
