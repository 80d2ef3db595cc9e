"""The study browser in Chromium: search a folder archive, thumbnails, one-click open."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_support import ARTIFACTS
from widget_fixtures import JupyterLab

pytestmark = pytest.mark.browser

_XSS = "<img src=x onerror=alert(1)>"


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
