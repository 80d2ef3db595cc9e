"""The study browser in Chromium: search, thumbnails, one-click open, the prior.

The first notebook searches one folder archive. The second searches three archives
as one: 'Main PACS' (a real Orthanc, behind a proxy that can hold a series back
half-way, as a slow archive does), 'Outside CDs' (a folder) and 'Old PACS' (down:
nothing listens on its port). The patient is A-1 (HOSP-A) in the first and B-9
(HOSP-B) in the second, linked through Other Patient IDs; C-3 shares the name and
nothing else (see ``tests/viewerlib/widgets/widget_builders.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import ARTIFACTS
from widget_fixtures import JupyterLab, SeriesHoldingProxy

pytestmark = pytest.mark.browser

_XSS = "<img src=x onerror=alert(1)>"
_WIDGETS = Path(__file__).resolve().parents[1] / "viewerlib" / "widgets"
sys.path.insert(0, str(_WIDGETS))
# The current CT: 12 instances of 128 x 128 (32 KiB of pixels each).
_SLICES, _ROWS = 12, 128


@pytest.fixture(scope="module")
def page(browser, jupyter_lab: JupyterLab, tmp_path_factory) -> Iterator[object]:
    archive = tmp_path_factory.mktemp("archive")
    cells = [
        (
            "from pathlib import Path\nfrom viewerlib.samples.phantom import ct_head_phantom\n"
            "from viewerlib.sources.local import FolderSource\n"
            "from viewerlib.widgets.browser import StudyBrowser\n"
            f"folder = Path({str(archive)!r})\n"
            "for kind in ('current', 'prior'):\n"
            "    study = ct_head_phantom(kind, rows=96, columns=96, number_of_slices=12)\n"
            "    for index, ds in enumerate(study.datasets):\n"
            f"        ds.StudyDescription = {_XSS!r} if kind == 'prior' else ds.StudyDescription\n"
            "        ds.save_as(folder / f'{kind}-{index:02d}.dcm', enforce_file_format=True)\n"
            "studies = StudyBrowser(FolderSource(folder, name='Teaching folder'))\n"
            "studies.add_class('t-browser')\nstudies"
        ),
    ]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.lightbox_dialogs = dialogs
    name = jupyter_lab.write_notebook("browser.ipynb", cells)
    try:
        jupyter_lab.open_and_run(page, name, ".t-browser .lbx-browser .lbx-ok")
        yield page
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets-browser-FAILED.png"))
        raise
    finally:
        context.close()
        jupyter_lab.shut_down_kernels()


def test_search_lists_studies_with_archive_health_and_thumbnails(page) -> None:
    root = page.locator(".t-browser .lbx-browser").first
    assert root.locator(".lbx-health").inner_text() == "Teaching folder: ok"
    root.locator("input.lbx-field-patient_name").fill("Test")
    root.locator("input.lbx-field-modality").fill("CT")
    root.locator("button.lbx-search").click()
    page.wait_for_function(
        "(el) => el.querySelectorAll('canvas[data-painted]').length === 2",
        arg=root.element_handle(),
    )
    rows = root.locator("tr.lbx-result")
    assert rows.count() == 2
    assert sorted(rows.locator(".lbx-date").all_inner_texts()) == [
        "20260504",
        "20261102",
    ]
    assert rows.locator(".lbx-archives").all_inner_texts() == ["Teaching folder"] * 2
    # The hostile description is text in its cell, not markup.
    assert _XSS in root.locator(".lbx-description").all_inner_texts()
    assert root.locator("img").count() == 0 and page.lightbox_dialogs == []
    root.locator("input.lbx-field-date_from").fill("20260801")
    root.locator("button.lbx-search").click()
    page.wait_for_function(
        "(el) => el.querySelectorAll('tr.lbx-result').length === 1",
        arg=root.element_handle(),
    )
    root.screenshot(path=str(ARTIFACTS / "widgets-browser.png"))


def test_one_click_opens_the_study_in_the_viewer(page) -> None:
    page.locator(".t-browser tr.lbx-result").first.click()
    viewer = page.locator(".t-browser .lbx-stack[data-painted='true']").first
    viewer.wait_for(timeout=60_000)
    assert "Im 7/12" in viewer.locator(".lbx-tr").inner_text()
    page.locator(".t-browser").first.screenshot(
        path=str(ARTIFACTS / "widgets-browser-open.png")
    )


@pytest.fixture(scope="module")
def archives(orthanc_factory, tmp_path_factory) -> Iterator[tuple[object, Path]]:
    """The main archive (Orthanc, behind the proxy) and the outside folder."""
    from widget_builders import current_ct, decoy_study, prior_study, write

    server = orthanc_factory("main-pacs").start()
    report = server.load_datasets(current_ct(rows=_ROWS, slices=_SLICES))
    assert report.stored == _SLICES, report
    outside = tmp_path_factory.mktemp("outside-cds")
    write(prior_study(rows=64, slices=12), outside)
    write(decoy_study(rows=64), outside)
    # Two and a half instances of the series go on, then the stream is held.
    proxy = SeriesHoldingProxy(server.http_port, pass_bytes=int(2.5 * 2 * _ROWS**2))
    with proxy:
        yield proxy, outside


@pytest.fixture(scope="module")
def federated(browser, jupyter_lab: JupyterLab, archives) -> Iterator[object]:
    from widget_builders import closed_port

    proxy, outside = archives
    dead = f"http://127.0.0.1:{closed_port()}/dicom-web"
    cells = [(
        "from viewerlib.sources.dicomweb import ArchiveQuirks, DICOMwebSource\n"
        "from viewerlib.sources.federated import FederatedSource\n"
        "from viewerlib.sources.local import FolderSource\n"
        "from viewerlib.widgets.browser import StudyBrowser\n"
        "source = FederatedSource([\n"
        f"    DICOMwebSource({proxy.url()!r}, 'Main PACS',\n"
        "                   quirks=ArchiveQuirks.for_orthanc_1_10()),\n"
        f"    FolderSource({str(outside)!r}, name='Outside CDs'),\n"
        f"    DICOMwebSource({dead!r}, 'Old PACS',\n"
        "                   retries=0, timeout=2.0)])\n"
        "archives = StudyBrowser(source)\n"
        "archives.add_class('t-fed')\narchives"
    )]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    name = jupyter_lab.write_notebook("federated.ipynb", cells)
    try:
        jupyter_lab.open_and_run(page, name, ".t-fed .lbx-browser .lbx-down")
        yield page
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets-browser-federated-FAILED.png"))
        raise
    finally:
        context.close()
        jupyter_lab.shut_down_kernels()


def _row(page, date: str):
    return page.locator(".t-fed tr.lbx-result", has=page.locator(
        f"td.lbx-date:text-is('{date}')"))


def test_federated_search_lists_studies_with_one_archive_down(federated) -> None:
    page = federated
    root = page.locator(".t-fed .lbx-browser").first
    assert root.locator(".lbx-down").inner_text().startswith("Old PACS: down")
    assert sorted(root.locator(".lbx-ok").all_inner_texts()) == [
        "Main PACS: ok", "Outside CDs: ok"]
    root.locator("button.lbx-search").click()
    page.wait_for_function(
        "(el) => el.querySelectorAll('canvas[data-painted]').length === 3",
        arg=root.element_handle(), timeout=60_000)
    assert root.locator(".lbx-status").inner_text().startswith(
        "3 studies. Archive 'Old PACS' could not be searched")
    assert _row(page, "20261102").locator(".lbx-archives").inner_text() == "Main PACS"
    assert _row(page, "20260504").locator(".lbx-archives").inner_text() == (
        "Outside CDs")
    # Linked by issuer and Other Patient IDs: a badge on both of the patient's
    # studies, none on the namesake's.
    assert _row(page, "20261102").locator(".lbx-linked").inner_text() == (
        "same patient as B-9 (HOSP-B)")
    assert _row(page, "20260504").locator(".lbx-linked").inner_text() == (
        "same patient as A-1 (HOSP-A)")
    namesake = _row(page, "20260801")
    assert namesake.locator(".lbx-name").inner_text() == _row(
        page, "20261102").locator(".lbx-name").inner_text() == "Test Case"
    assert namesake.locator(".lbx-linked").count() == 0
    root.screenshot(path=str(ARTIFACTS / "widgets-browser-federated.png"))


def test_open_shows_the_first_image_and_progress_before_the_series_is_whole(
    federated, archives
) -> None:
    page = federated
    proxy, _ = archives
    proxy.hold.set()
    _row(page, "20261102").click()
    viewer = page.locator(".t-fed .lbx-stack[data-painted='true']").first
    viewer.wait_for(timeout=60_000)
    # The first images are on screen while the archive still holds the rest back.
    assert proxy.held.is_set() and not proxy.release.is_set()
    assert viewer.get_attribute("data-loading") == "loading"
    received = int(viewer.get_attribute("data-loading-received"))
    assert 1 <= received < _SLICES
    progress = page.locator(".t-fed .lbx-progress").first
    page.wait_for_function(
        "(el) => parseFloat(el.querySelector('.progress-bar').style.width) > 0",
        arg=progress.element_handle())
    assert progress.is_visible()
    width = float(progress.locator(".progress-bar").evaluate(
        "(el) => parseFloat(el.style.width)"))
    assert 0 < width < 100, width
    assert progress.inner_text().strip().endswith(f"of {_SLICES}")
    page.locator(".t-fed").first.screenshot(
        path=str(ARTIFACTS / "widgets-browser-loading.png"))

    proxy.release.set()
    # By selector: a series laid out anew is drawn in a new element.
    page.wait_for_selector(".t-fed .lbx-stack[data-loading='complete']",
                           timeout=60_000)
    page.wait_for_function("(el) => getComputedStyle(el).visibility === 'hidden'",
                           arg=progress.element_handle())
    assert f"/{_SLICES}" in page.locator(".t-fed .lbx-stack .lbx-tr").inner_text()


def test_compare_with_prior_finds_it_in_the_other_archive(federated) -> None:
    page = federated
    _row(page, "20261102").locator("button.lbx-compare").click()
    panes = page.locator(".t-fed .lbx-compare-pane .lbx-stack")
    page.wait_for_function(
        "() => document.querySelectorAll("
        "\".t-fed .lbx-compare-pane .lbx-stack[data-painted='true']\").length === 2",
        timeout=60_000)
    current, prior = panes.nth(0), panes.nth(1)
    assert "2026-11-02" in current.locator(".lbx-tl").inner_text()
    prior_text = prior.locator(".lbx-tl").inner_text()
    # From 'Outside CDs', patient B-9: the axial series, chosen by plane and
    # description over the sagittal one that has more images.
    assert "2026-05-04" in prior_text and "TEST" in prior_text
    assert prior_text.endswith("Axial head 4 mm")
    assert [prior.locator(f".lbx-marker-{edge}").inner_text()
            for edge in ("left", "top")] == ["R", "A"]
    assert page.locator(".t-fed .lbx-status").inner_text() == (
        "Compared with the prior of 20260504 from Outside CDs")
    # Scrolled together: by slice number (two Frames of Reference).
    box = current.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    start = int(prior.get_attribute("data-slice-index"))
    page.mouse.wheel(0, 100)
    page.wait_for_function(f"(el) => el.dataset.sliceIndex === '{start + 1}'",
                           arg=prior.element_handle())
    page.locator(".t-fed").first.screenshot(
        path=str(ARTIFACTS / "widgets-browser-compare.png"))
