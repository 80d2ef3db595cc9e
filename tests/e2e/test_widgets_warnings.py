"""What the viewers say on screen when something cannot be shown, in Chromium.

A slice that could not be decoded (the CT head phantom with one slice's RLE data cut
short, ``widget_fixtures.CUT_SLICE_SETUP``): the stack viewer puts a banner over it
and a mark by the slider and refuses to measure on it; the comparison does so in the
pane that holds it; the MPR warns above its views and marks where the slice cuts
them. A study without images: an ECG-only study opens a short notice of what it
holds, an SR-only study its report, both without a traceback. A series opened from
a folder that lost one of its 48 files after it was indexed: the stack viewer keeps
"Incomplete series" and "Uneven slice spacing" in one line above the image, and
the notes behind them (file names, no folders) over the image on a click.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from e2e_support import ARTIFACTS
from widget_fixtures import CUT_SLICE, CUT_SLICE_SETUP, JupyterLab

pytestmark = pytest.mark.browser

_XSS = "<img src=x onerror=alert(1)>"
_SLICES = 48
_LOST_FILE = "012.dcm"  # an inner slice's file: its loss leaves an 8 mm gap
_BUILDERS = Path(__file__).resolve().parents[1] / "viewerlib" / "widgets"
_OBJECTS = Path(__file__).resolve().parents[1] / "viewerlib" / "objects"

_CELLS = [
    CUT_SLICE_SETUP,
    "cut.add_class('t-cut')\ncut",
    (
        "whole = read_series(ct_head_phantom('prior').datasets)[0]\n"
        "pair = viewerlib.compare(whole, cut.volume)\npair.add_class('t-pair')\npair"
    ),
    "mpr = viewerlib.open_mpr(cut.volume)\nmpr.add_class('t-mpr')\nmpr",
    (
        "from viewerlib.sources.local import FolderSource\n"
        "lost_folder = Path(tempfile.mkdtemp(prefix='lbx-alerts-'))\n"
        "lost_study = ct_head_phantom('current')\n"
        "for ds in lost_study.datasets:\n"
        "    ds.save_as(lost_folder / f'{ds.InstanceNumber:03d}.dcm',\n"
        "               enforce_file_format=True)\n"
        "lost_source = FolderSource(lost_folder, name='CD')\n"
        "lost_source.search_for_studies()  # indexed, then the CD loses a file\n"
        f"(lost_folder / '{_LOST_FILE}').unlink()\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')  # the alert line is what is tested\n"
        "    lost = viewerlib.open(lost_study.study_instance_uid, lost_source)\n"
        "lost.add_class('t-alerts')\nlost"
    ),
    (
        "import sys\n"
        f"sys.path[:0] = [{str(_BUILDERS)!r}, {str(_OBJECTS)!r}]\n"
        "from widget_builders import ecg_waveform, text_report, write\n"
        "from object_builders import phantom\n"
        "ecg_folder = Path(tempfile.mkdtemp(prefix='lbx-ecg-'))\n"
        "write([ecg_waveform('1.2.826.0.1.3680043.8.498.80')], ecg_folder)\n"
        "ecg = viewerlib.open(ecg_folder)\necg.add_class('t-ecg')\necg"
    ),
    (
        "sr_folder = Path(tempfile.mkdtemp(prefix='lbx-sr-'))\n"
        f"write([text_report(phantom()[0], ['No bleed', {_XSS!r}])], sr_folder)\n"
        "sr = viewerlib.open(sr_folder)\nsr.add_class('t-sr')\nsr"
    ),
]


@pytest.fixture(scope="module")
def page(browser, jupyter_lab: JupyterLab) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.lightbox_dialogs = dialogs
    name = jupyter_lab.write_notebook("warnings.ipynb", _CELLS)
    try:
        jupyter_lab.open_and_run(
            page, name, ".t-sr .lbx-report[data-painted='true']", timeout_ms=120_000
        )
        yield page
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets-warnings-FAILED.png"))
        raise
    finally:
        context.close()
        jupyter_lab.shut_down_kernels()


def _painted(page, locator) -> None:
    locator.scroll_into_view_if_needed()
    page.wait_for_function(
        "(el) => el.dataset.painted === 'true'", arg=locator.element_handle()
    )


def _go_to_slice(page, viewer, index: int) -> None:
    viewer.locator("canvas").focus()
    viewer.press("Home")
    for _ in range(index):
        viewer.press("ArrowDown")
    page.wait_for_function(
        "([el, n]) => el.dataset.sliceIndex === String(n)",
        arg=[viewer.element_handle(), index],
    )


def test_a_missing_slice_has_a_banner_and_a_mark_by_the_slider(page, artifacts):
    viewer = page.locator(".t-cut .lbx-stack").first
    _painted(page, viewer)
    banner = viewer.locator(".lbx-missing")
    assert viewer.get_attribute("data-missing-slice") == "false"
    assert banner.is_hidden()

    _go_to_slice(page, viewer, CUT_SLICE)
    page.wait_for_function(
        "(el) => el.dataset.missingSlice === 'true'", arg=viewer.element_handle()
    )
    viewer.screenshot(path=str(artifacts / "widgets-missing-slice.png"))
    assert banner.is_visible() and banner.get_attribute("role") == "alert"
    assert banner.inner_text().startswith(
        f"Im {CUT_SLICE + 1}/{_SLICES} could not be decoded: it is blank, not the "
        "patient's image."
    )
    assert "do not measure on or across it" in banner.inner_text()
    assert f"Im {CUT_SLICE + 1}/{_SLICES}  NOT DECODED" in viewer.locator(
        ".lbx-tr").inner_text()
    # The banner sits over the middle of the image.
    view, box = viewer.locator("canvas").bounding_box(), banner.bounding_box()
    middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert abs(middle[0] - (view["x"] + view["width"] / 2)) < 2
    assert abs(middle[1] - (view["y"] + view["height"] / 2)) < 2

    # One red mark by the slider, where the slice lies along it.
    (mark,) = viewer.locator(".lbx-missing-mark").all()
    slider = viewer.locator("input.lbx-slider").bounding_box()
    marked = mark.bounding_box()
    along = (marked["x"] + marked["width"] / 2 - slider["x"]) / slider["width"]
    assert along == pytest.approx(CUT_SLICE / (_SLICES - 1), abs=0.03)
    assert mark.evaluate("(el) => getComputedStyle(el).backgroundColor") == (
        "rgb(255, 82, 82)")

    viewer.press("ArrowDown")
    page.wait_for_function(
        "(el) => el.dataset.missingSlice === 'false'", arg=viewer.element_handle()
    )
    assert banner.is_hidden()
    assert "NOT DECODED" not in viewer.locator(".lbx-tr").inner_text()


def test_measuring_on_a_missing_slice_is_refused_on_screen(page, artifacts):
    viewer = page.locator(".t-cut .lbx-stack").first
    _painted(page, viewer)
    _go_to_slice(page, viewer, CUT_SLICE)
    viewer.get_by_role("button", name="Length").click()
    box = viewer.locator("canvas").bounding_box()
    start = (box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 120, start[1])
    page.mouse.up()
    refused = viewer.locator(".lbx-missing-refused")
    refused.wait_for(state="visible", timeout=5_000)
    assert refused.inner_text() == "Not measured: this slice holds no image."
    page.wait_for_timeout(300)
    assert viewer.locator(".lbx-measure-label").count() == 0
    viewer.screenshot(path=str(artifacts / "widgets-missing-slice-refused.png"))

    # On the next slice the same drag measures, and the refusal is gone.
    viewer.press("ArrowDown")
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 120, start[1])
    page.mouse.up()
    viewer.locator(".lbx-measure-label").first.wait_for(timeout=10_000)
    assert viewer.locator(".lbx-missing").is_hidden()
    viewer.get_by_role("button", name="Clear").click()
    viewer.get_by_role("button", name="Auto").click()


def test_the_comparison_pane_holding_the_missing_slice_says_so(page, artifacts):
    whole, cut = (page.locator(".t-pair .lbx-stack").nth(i) for i in (0, 1))
    for viewer in (whole, cut):
        _painted(page, viewer)
    start = int(whole.get_attribute("data-slice-index"))
    box = whole.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(start - CUT_SLICE):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(40)
    page.wait_for_function(
        "(el) => el.dataset.missingSlice === 'true'", arg=cut.element_handle()
    )
    assert whole.get_attribute("data-missing-slice") == "false"
    assert whole.locator(".lbx-missing").is_hidden()
    assert cut.locator(".lbx-missing").is_visible()
    assert whole.locator(".lbx-missing-mark").count() == 0
    assert cut.locator(".lbx-missing-mark").count() == 1
    page.locator(".t-pair").first.screenshot(
        path=str(artifacts / "widgets-missing-slice-compare.png"))


def test_the_mpr_warns_and_marks_where_the_missing_slice_cuts_each_view(
    page, artifacts
):
    root = page.locator(".t-mpr .lbx-mpr").first
    _painted(page, root)
    warning = root.locator(".lbx-mpr-warning")
    assert warning.is_visible() and warning.inner_text().startswith(
        f"Im {CUT_SLICE + 1}/{_SLICES} could not be decoded: it is blank in every "
        "plane")
    coronal = root.locator(".lbx-mpr-coronal")
    for name in ("coronal", "sagittal"):
        assert root.locator(f".lbx-mpr-{name}").get_attribute(
            "data-missing-lines") == "1"
    axial = root.locator(".lbx-mpr-axial")
    assert axial.get_attribute("data-missing-slice") == "false"

    # The dashed line is orange where the slice lies in the coronal view.
    geometry = json.loads(coronal.get_attribute("data-geometry"))
    scale, x0, y0 = json.loads(coronal.get_attribute("data-fit"))
    z = _slice_z(CUT_SLICE)
    row = (z - geometry["origin"][2]) / (geometry["step"] * geometry["row"][2])
    columns = int(coronal.get_attribute("data-columns"))
    x, y = x0 + (columns * 0.1 + 0.5) * scale, y0 + (row + 0.5) * scale
    orange = coronal.locator("canvas").evaluate(
        """(canvas, [x, y]) => {
          const data = canvas.getContext("2d").getImageData(
            Math.round(x) - 3, Math.round(y) - 3, 7, 7).data;
          let orange = 0;
          for (let i = 0; i < data.length; i += 4) {
            if (data[i] > 220 && data[i + 1] > 110 && data[i + 1] < 180
                && data[i + 2] < 60) orange += 1;
          }
          return orange;
        }""",
        [x, y],
    )
    assert orange > 0

    # A click on that line puts the axial plane in the blank slice: it says so.
    ratio = page.evaluate("() => window.devicePixelRatio")
    canvas = coronal.locator("canvas").bounding_box()
    draws = int(root.get_attribute("data-draws"))
    page.mouse.click(canvas["x"] + (x0 + columns / 2 * scale) / ratio,
                     canvas["y"] + y / ratio)
    page.wait_for_function(
        "([el, n]) => Number(el.dataset.draws) > n", arg=[root.element_handle(), draws]
    )
    page.wait_for_function(
        "(el) => el.dataset.missingSlice === 'true'", arg=axial.element_handle()
    )
    assert axial.locator(".lbx-mpr-missing").inner_text().startswith(
        f"Im {CUT_SLICE + 1}/{_SLICES} could not be decoded: this plane is blank")
    root.screenshot(path=str(artifacts / "widgets-missing-slice-mpr.png"))


def _slice_z(index: int) -> float:
    from viewerlib.samples.phantom import ct_head_phantom
    from viewerlib.volume.volume import read_series

    volume = read_series(ct_head_phantom("current").datasets)[0]
    return float(np.asarray(volume.slice_positions_mm)[index][2])


def test_an_ecg_only_study_shows_what_it_holds_not_a_traceback(page, artifacts):
    notice = page.locator(".t-ecg .lbx-notice").first
    _painted(page, notice)
    notice.screenshot(path=str(artifacts / "widgets-study-notice-ecg.png"))
    text = notice.inner_text()
    assert "Nothing in this study can be shown as images or as a report; it " in text
    assert "an ECG waveform (12-lead ECG Waveform Storage" in text
    assert "open it in the cardiology system" in text
    assert page.locator(".jp-OutputArea-output:has-text('Traceback')").count() == 0
    assert page.locator(".jp-OutputArea-output:has-text('LookupError')").count() == 0


def test_an_sr_only_study_shows_its_report_as_text(page, artifacts):
    report = page.locator(".t-sr .lbx-report").first
    _painted(page, report)
    report.screenshot(path=str(artifacts / "widgets-study-report-only.png"))
    values = report.locator(".lbx-value").all_inner_texts()
    assert values == ["No bleed", _XSS]
    assert report.locator("img").count() == 0 and page.lightbox_dialogs == []


def test_the_alerts_of_a_series_stay_in_one_line_above_the_image(page, artifacts):
    lost = page.locator(".t-alerts .lbx-stack").first
    _painted(page, lost)
    line = lost.locator(".lbx-alerts-line")
    assert lost.get_attribute("data-alerts") == "2"
    assert line.is_visible()
    assert lost.locator(".lbx-alerts").get_attribute("role") == "alert"
    assert line.inner_text() == (
        f"⚠ Incomplete series: 1 of {_SLICES} images missing · "
        "Uneven slice spacing (4.000 to 8.000 mm)")
    # Above the image, not over it: the whole image stays to be read.
    canvas, box = lost.locator("canvas").bounding_box(), line.bounding_box()
    assert box["y"] + box["height"] <= canvas["y"] + 1
    assert box["width"] == pytest.approx(canvas["width"], abs=2)
    lost.screenshot(path=str(artifacts / "widgets-alerts-line.png"))

    # On hover the notes behind each line; on a click, over the image.
    title = line.get_attribute("title")
    assert "could not be read, so 47 of 48 instances arrived" in title
    detail = lost.locator(".lbx-alerts-detail")
    assert detail.is_hidden()
    line.click()
    detail.wait_for(state="visible", timeout=5_000)
    assert line.get_attribute("aria-expanded") == "true"
    text = detail.inner_text()
    assert f"{_LOST_FILE} (deleted or moved since the folder was indexed)" in text
    assert "Non-uniform slice spacing: gaps from 4.000 to 8.000 mm" in text
    # File names only: not the folder, which could name the patient.
    assert "lbx-alerts-" not in text and "lbx-alerts-" not in title
    assert detail.locator("img, a, script").count() == 0
    lost.screenshot(path=str(artifacts / "widgets-alerts-detail.png"))
    line.click()
    detail.wait_for(state="hidden", timeout=5_000)

    # A whole series has no line; a pane with a blank slice says so in its own,
    # and the other keeps the line's room, so both images are drawn at one scale.
    whole, cut = (page.locator(".t-pair .lbx-stack").nth(i) for i in (0, 1))
    assert whole.get_attribute("data-alerts") == "0"
    assert whole.locator(".lbx-alerts").is_hidden()
    assert cut.locator(".lbx-alerts-line").inner_text() == (
        f"⚠ 1 of {_SLICES} slices not decoded (blank)")
    areas = [pane.locator(".lbx-area").bounding_box() for pane in (whole, cut)]
    assert areas[0]["y"] == pytest.approx(areas[1]["y"], abs=1)
    assert whole.locator(".lbx-br").inner_text() == cut.locator(".lbx-br").inner_text()
