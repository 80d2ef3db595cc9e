"""The study's report beside its images, in JupyterLab in Chromium.

The kernel writes the 16 x 16 x 4 CT phantom of ``tests/viewerlib/objects`` into two
folders, one with a Basic Text SR (``widget_builders.text_report``) whose patient
name and one finding are hostile markup, one with an Encapsulated PDF (a red page,
``object_builders``), and opens each with ``viewerlib.viewer.open_with_report`` as a
clinician would. A third folder holds the images alone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import ARTIFACTS
from widget_fixtures import JupyterLab

pytestmark = pytest.mark.browser

_OBJECTS = Path(__file__).resolve().parents[1] / "viewerlib" / "objects"
_WIDGETS = Path(__file__).resolve().parents[1] / "viewerlib" / "widgets"
sys.path.insert(0, str(_OBJECTS))
sys.path.insert(0, str(_WIDGETS))
_XSS = "<img src=x onerror=alert(1)>"
_FINDING = "Small left subdural haematoma, 4 mm; no midline shift."

_SETUP = f"""\
import sys
sys.path.insert(0, {str(_OBJECTS)!r})
sys.path.insert(0, {str(_WIDGETS)!r})
from pathlib import Path
from object_builders import encapsulated_pdf, pdf_bytes, phantom
from widget_builders import text_report, write
from viewerlib.sources.local import FolderSource
from viewerlib.viewer import open_with_report
images, volume = phantom()
"""


def _cells(folder: Path) -> list[str]:
    return [
        _SETUP + f"FOLDER = Path({str(folder)!r})\n",
        f"""\
for ds in images:
    ds.PatientName = {_XSS!r}
report = text_report(images, [{_FINDING!r}, {_XSS!r}], title="CT head report")
write([*images, report], FOLDER / "sr")
with_sr = open_with_report(images[0].StudyInstanceUID, FolderSource(FOLDER / "sr"),
                           window=(40.0, 80.0))
with_sr.add_class('t-sr')
with_sr""",
        """\
for ds in images:
    ds.PatientName = "Test^Case"
pdf = encapsulated_pdf(pdf_bytes([(255, 0, 0)]), title="CT head report (PDF)")
pdf.StudyInstanceUID, pdf.PatientID = images[0].StudyInstanceUID, images[0].PatientID
write([*images, pdf], FOLDER / "pdf")
with_pdf = open_with_report(images[0].StudyInstanceUID, FolderSource(FOLDER / "pdf"))
with_pdf.add_class('t-pdf')
with_pdf""",
        """\
write(images, FOLDER / "alone")
alone = open_with_report(images[0].StudyInstanceUID, FolderSource(FOLDER / "alone"))
alone.add_class('t-alone')
alone""",
    ]


@pytest.fixture(scope="module")
def page(
    browser, jupyter_lab: JupyterLab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.lightbox_dialogs = dialogs
    name = jupyter_lab.write_notebook(
        "with_report.ipynb", _cells(tmp_path_factory.mktemp("reports"))
    )
    try:
        jupyter_lab.open_and_run(
            page, name, ".t-alone .lbx-no-report", timeout_ms=120_000
        )
        yield page
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets-with-report-FAILED.png"))
        raise
    finally:
        context.close()
        jupyter_lab.shut_down_kernels()


def _painted(page, selector: str):
    element = page.locator(selector).first
    element.scroll_into_view_if_needed()
    page.wait_for_function(
        "(el) => el.dataset.painted === 'true'", arg=element.element_handle()
    )
    return element


def test_the_sr_shows_beside_the_images_as_text(page) -> None:
    layout = page.locator(".t-sr").first
    viewer = _painted(page, ".t-sr .lbx-stack")
    report = _painted(page, ".t-sr .lbx-report")
    ARTIFACTS.mkdir(exist_ok=True)
    layout.screenshot(path=str(ARTIFACTS / "widgets-with-report-sr.png"))

    # Side by side: the report starts right of the images, at the same top, and
    # both are as tall.
    images, text = viewer.bounding_box(), report.bounding_box()
    assert text["x"] >= images["x"] + images["width"]
    assert abs(text["y"] - images["y"]) <= 2
    assert abs(text["height"] - images["height"]) <= 2
    assert images["width"] > text["width"] > 250
    # Within the output, long header lines wrapped rather than cut off.
    outer = layout.bounding_box()
    assert text["x"] + text["width"] <= outer["x"] + outer["width"] + 1
    head = report.locator(".lbx-head")
    assert head.evaluate("(el) => el.scrollWidth <= el.clientWidth")
    # The stack viewer works as anywhere: the image is painted and scrolls.
    start = int(viewer.get_attribute("data-slice-index"))
    box = viewer.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 100)
    page.wait_for_function(
        "([el, n]) => el.dataset.sliceIndex === String(n)",
        arg=[viewer.element_handle(), min(start + 1, 3)],
    )

    # The report's texts, hostile markup included, are text and nothing else.
    values = report.locator(".lbx-value").all_text_contents()
    assert values == [_FINDING, _XSS]
    assert report.locator(".lbx-name").first.text_content() == "CT head report"
    assert _XSS in report.locator(".lbx-head").text_content()
    assert layout.locator("img").count() == 0
    assert page.lightbox_dialogs == []


def test_the_pdf_page_shows_beside_the_images(page) -> None:
    layout = page.locator(".t-pdf").first
    _painted(page, ".t-pdf .lbx-stack")
    document = _painted(page, ".t-pdf .lbx-document")
    layout.screenshot(path=str(ARTIFACTS / "widgets-with-report-pdf.png"))
    canvas = document.locator("canvas")
    centre = canvas.evaluate(
        "(c) => [...c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1)"
        ".data]"
    )
    assert centre == [255, 0, 0, 255]
    assert "CT head report (PDF)" in document.locator(".lbx-doc-head").text_content()
    images = page.locator(".t-pdf .lbx-stack").first.bounding_box()
    assert document.bounding_box()["x"] >= images["x"] + images["width"]


def test_a_study_without_a_report_says_so_beside_the_images(page) -> None:
    note = page.locator(".t-alone .lbx-no-report").first
    images = _painted(page, ".t-alone .lbx-stack").bounding_box()
    assert note.inner_text() == (
        "No structured report or PDF report was found in this study."
    )
    assert note.bounding_box()["x"] >= images["x"] + images["width"]
