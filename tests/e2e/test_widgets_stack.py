"""The stack viewer in JupyterLab in Chromium: painting, scrolling, windowing, tools.

The kernel builds the CT head phantom (and, with ``LIGHTBOX_EXTRA_DATA``, a real CT);
the test builds the same voxels to compare the canvas with the pipeline's windowing.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from e2e_support import ARTIFACTS
from widget_fixtures import CANVAS_PIXELS, CANVAS_STATISTICS, PHANTOM_SETUP, JupyterLab

from viewerlib.pipeline.voi import apply_windowing
from viewerlib.samples.phantom import HAEMORRHAGE, ct_head_phantom
from viewerlib.volume.volume import read_series

pytestmark = pytest.mark.browser

_XSS = "<img src=x onerror=alert(1)>"
_REAL_CT = "dcm_qa_ct/Philips/S21570/S2020"


def _cells() -> list[str]:
    cells = [
        PHANTOM_SETUP + "from viewerlib.widgets.stack import StackViewer\n",
        "main = StackViewer.from_volume(current)\nmain.add_class('t-main')\nmain",
        (
            "tiered = StackViewer.from_volume(current, lossless_slices=3)\n"
            "tiered.add_class('t-tiered')\ntiered"
        ),
        (
            "exact = StackViewer.from_volume(current, window=(30.0, 90.0), "
            "window_function='LINEAR_EXACT')\nexact.add_class('t-exact')\nexact"
        ),
        (
            "sigmoid = StackViewer.from_volume(current, window=(30.0, 90.0), "
            "window_function='SIGMOID')\nsigmoid.add_class('t-sigmoid')\nsigmoid"
        ),
        (
            "hostile = ct_head_phantom('current', rows=64, columns=64, "
            "number_of_slices=4).datasets\n"
            f"for ds in hostile: ds.PatientName = {_XSS!r}\n"
            "xss = StackViewer.from_volume(read_series(hostile)[0])\n"
            "xss.add_class('t-xss')\nxss"
        ),
        (
            "import pydicom\nfrom pydicom.data import get_testdata_file\n"
            "from viewerlib.widgets.report import ReportViewer\n"
            "sr = pydicom.dcmread(get_testdata_file('test-SR.dcm'))\n"
            f"sr.PatientName = {_XSS!r}\n"
            "note = pydicom.Dataset()\nnote.ValueType = 'TEXT'\n"
            f"note.RelationshipType = 'CONTAINS'\nnote.TextValue = {_XSS!r}\n"
            "sr.ContentSequence.append(note)\n"
            "report = ReportViewer(sr)\nreport.add_class('t-report')\nreport"
        ),
    ]
    extra = os.environ.get("LIGHTBOX_EXTRA_DATA")
    if extra and (Path(extra) / _REAL_CT).is_dir():
        cells.append(
            "import glob\n"
            f"real = read_series(sorted(glob.glob({str(Path(extra) / _REAL_CT)!r} "
            "+ '/*')))[0]\nreal_viewer = StackViewer.from_volume(real)\n"
            "real_viewer.add_class('t-real')\nreal_viewer"
        )
    return cells


@pytest.fixture(scope="module")
def voxels() -> np.ndarray:
    return read_series(ct_head_phantom("current").datasets)[0].voxels


@pytest.fixture(scope="module")
def page(browser, jupyter_lab: JupyterLab) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.lightbox_dialogs = dialogs
    name = jupyter_lab.write_notebook("stack.ipynb", _cells())
    try:
        jupyter_lab.open_and_run(
            page, name, ".t-report .lbx-report[data-painted='true']"
        )
        yield page
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets-stack-FAILED.png"))
        raise
    finally:
        context.close()
        jupyter_lab.shut_down_kernels()


def _viewer(page, name: str):
    viewer = page.locator(f".t-{name} .lbx-stack").first
    viewer.scroll_into_view_if_needed()
    page.wait_for_function(
        "(el) => el.dataset.painted === 'true'", arg=viewer.element_handle()
    )
    return viewer


def _image_to_device(viewer, points: list[tuple[float, float]]) -> list[list[float]]:
    """Canvas device pixels of image (row, column) pixel centres, from data-transform."""
    a, b, c, d, e, f = json.loads(viewer.get_attribute("data-transform"))
    return [
        [a * (col + 0.5) + c * (row + 0.5) + e, b * (col + 0.5) + d * (row + 0.5) + f]
        for row, col in points
    ]


def _client_point(viewer, row: float, column: float) -> tuple[float, float]:
    ((x, y),) = _image_to_device(viewer, [(row, column)])
    box = viewer.locator("canvas").bounding_box()
    ratio = viewer.evaluate("() => window.devicePixelRatio")
    return box["x"] + x / ratio, box["y"] + y / ratio


def _displayed_vs_pipeline(viewer, voxels: np.ndarray, function: str) -> np.ndarray:
    index = int(viewer.get_attribute("data-slice-index"))
    center = float(viewer.get_attribute("data-window-center"))
    width = float(viewer.get_attribute("data-window-width"))
    grid = [(r, c) for r in range(3, 256, 11) for c in range(3, 256, 11)]
    shown = np.array(
        viewer.locator("canvas").evaluate(
            CANVAS_PIXELS, _image_to_device(viewer, grid)
        ),
        dtype=float,
    )
    values = np.array([voxels[index, r, c] for r, c in grid])
    expected = apply_windowing(values, center, width, function)
    return np.abs(shown - np.rint(expected))


def test_stack_viewer_paints_the_phantom_with_its_overlays(page, artifacts) -> None:
    viewer = _viewer(page, "main")
    viewer.screenshot(path=str(artifacts / "widgets-stack-viewer.png"))
    statistics = viewer.locator("canvas").evaluate(CANVAS_STATISTICS)
    assert statistics["mean"] > 20 and statistics["sd"] > 20, statistics

    top_left = viewer.locator(".lbx-tl").inner_text()
    assert "Test, Case" in top_left and "CT HEAD" in top_left and "Se 2" in top_left
    top_right = viewer.locator(".lbx-tr").inner_text()
    assert re.search(r"Im 25/48", top_right), top_right
    assert re.search(r"Pos -?\d+\.\d mm", top_right) and "Thick 4.00 mm" in top_right
    assert viewer.locator(".lbx-bl").inner_text().startswith("W 80 C 40 HU")
    assert re.search(r"Zoom \d\.\d\dx", viewer.locator(".lbx-br").inner_text())
    markers = {
        edge: viewer.locator(f".lbx-marker-{edge}").inner_text()
        for edge in ("left", "right", "top", "bottom")
    }
    assert markers == {"left": "R", "right": "L", "top": "A", "bottom": "P"}

    # The scale bar is as long on screen as its label says, at the displayed zoom.
    label = viewer.locator(".lbx-scale-label")
    millimetres = float(label.get_attribute("data-mm"))
    assert label.inner_text() == f"{millimetres:g} mm"
    width_px = viewer.locator(".lbx-scale").bounding_box()["width"]
    a, *_ = json.loads(viewer.get_attribute("data-transform"))
    ratio = viewer.evaluate("() => window.devicePixelRatio")
    css_per_mm = a / ratio / 0.9
    assert width_px == pytest.approx(millimetres * css_per_mm, abs=2.5)


def test_wheel_events_change_the_slice(page) -> None:
    viewer = _viewer(page, "main")
    canvas = viewer.locator("canvas")
    box = canvas.bounding_box()
    before = canvas.evaluate(CANVAS_STATISTICS)
    start = int(viewer.get_attribute("data-slice-index"))
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(5):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(30)
    page.wait_for_function(
        "([el, n]) => el.dataset.sliceIndex === String(n)",
        arg=[viewer.element_handle(), start + 5],
    )
    page.wait_for_timeout(100)
    assert "Im 30/48" in viewer.locator(".lbx-tr").inner_text()
    after = canvas.evaluate(CANVAS_STATISTICS)
    assert after["mean"] != before["mean"]
    for _ in range(5):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(30)
    page.wait_for_function(
        "([el, n]) => el.dataset.sliceIndex === String(n)",
        arg=[viewer.element_handle(), start],
    )


def test_window_drag_shows_what_the_pipeline_computes(page, voxels, artifacts) -> None:
    viewer = _viewer(page, "main")
    box = viewer.locator("canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + 12 * step, y - 3 * step)
    page.mouse.up()
    page.wait_for_timeout(200)
    center = float(viewer.get_attribute("data-window-center"))
    width = float(viewer.get_attribute("data-window-width"))
    assert width > 80 and center < 40, (center, width)
    assert (
        viewer.locator(".lbx-bl")
        .inner_text()
        .startswith(f"W {round(width)} C {round(center)}")
    )
    viewer.screenshot(path=str(artifacts / "widgets-stack-after-window-drag.png"))
    difference = _displayed_vs_pipeline(viewer, voxels, "LINEAR")
    assert difference.max() <= 1, difference.max()
    # The grid samples dark, grey and white pixels, so the check means something.
    assert len(difference) > 400


@pytest.mark.parametrize(
    "name,function", [("exact", "LINEAR_EXACT"), ("sigmoid", "SIGMOID")]
)
def test_voi_functions_match_the_pipeline(page, voxels, name, function) -> None:
    viewer = _viewer(page, name)
    assert function in viewer.locator(".lbx-bl").inner_text()
    difference = _displayed_vs_pipeline(viewer, voxels, function)
    assert difference.max() <= 1, difference.max()


def test_presets_set_the_window(page) -> None:
    viewer = _viewer(page, "main")
    select = viewer.locator("select.lbx-presets")
    labels = select.locator("option").all_inner_texts()
    for preset in ("Brain", "Stroke", "Subdural", "Bone", "Lung", "Abdomen", "Liver"):
        assert any(label.upper().startswith(preset.upper()) for label in labels), labels
    value = select.locator("option", has_text="Lung").get_attribute("value")
    select.select_option(value)
    page.wait_for_function(
        "(el) => el.dataset.windowWidth === '1500'", arg=viewer.element_handle()
    )
    assert viewer.get_attribute("data-window-center") == "-600"
    value = select.locator("option", has_text="BRAIN").get_attribute("value")
    select.select_option(value)
    page.wait_for_function(
        "(el) => el.dataset.windowWidth === '80'", arg=viewer.element_handle()
    )


def test_rotate_and_flip_carry_the_orientation_markers(page, artifacts) -> None:
    viewer = _viewer(page, "main")

    def markers() -> dict[str, str]:
        return {
            edge: viewer.locator(f".lbx-marker-{edge}").inner_text()
            for edge in ("left", "right", "top", "bottom")
        }

    before = viewer.locator("canvas").evaluate(CANVAS_PIXELS, [[10, 10]])
    viewer.get_by_role("button", name="Rotate").click()
    page.wait_for_function(
        "(el) => el.querySelector('.lbx-marker-top').textContent === 'R'",
        arg=viewer.element_handle(),
    )
    assert markers() == {"left": "P", "right": "A", "top": "R", "bottom": "L"}
    assert "rot 90" in viewer.locator(".lbx-br").inner_text()
    viewer.screenshot(path=str(artifacts / "widgets-stack-rotated.png"))
    viewer.get_by_role("button", name="Flip H").click()
    page.wait_for_function(
        "(el) => el.querySelector('.lbx-marker-left').textContent === 'A'",
        arg=viewer.element_handle(),
    )
    # A mirror of what is on screen: left and right swap, top and bottom stay.
    assert markers() == {"left": "A", "right": "P", "top": "R", "bottom": "L"}
    # Back to the stored view: flip again, then three more quarter turns.
    viewer.get_by_role("button", name="Flip H").click()
    for _ in range(3):
        viewer.get_by_role("button", name="Rotate").click()
    page.wait_for_function(
        "(el) => el.querySelector('.lbx-marker-left').textContent === 'R'",
        arg=viewer.element_handle(),
    )
    assert markers() == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert viewer.locator("canvas").evaluate(CANVAS_PIXELS, [[10, 10]]) == before


def _go_to_slice(page, viewer, index: int) -> None:
    viewer.locator("canvas").focus()
    viewer.press("Home")
    for _ in range(index):
        viewer.press("ArrowDown")
    page.wait_for_function(
        "([el, n]) => el.dataset.sliceIndex === String(n)",
        arg=[viewer.element_handle(), index],
    )


def test_length_and_region_are_measured_in_the_kernel(page, artifacts) -> None:
    viewer = _viewer(page, "main")
    # The haemorrhage: LPS (-32, -38, 24) mm is slice 27, row 85.3, column 91.9.
    _go_to_slice(page, viewer, 27)
    viewer.get_by_role("button", name="Length").click()
    start = _client_point(viewer, 40, 60)
    end = _client_point(viewer, 40, 160)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, start[1])
    page.mouse.move(*end)
    page.mouse.up()
    label = viewer.locator(".lbx-measure-label").first
    label.wait_for(timeout=10_000)
    # 100 columns of 0.9 mm; the mouse lands within a screen pixel of each end.
    assert float(label.inner_text().split()[0]) == pytest.approx(90.0, abs=1.2)

    viewer.get_by_role("button", name="ROI").click()
    radius = 6.0
    corner = _client_point(viewer, 85.3 - radius, 91.9 - radius)
    opposite = _client_point(viewer, 85.3 + radius, 91.9 + radius)
    page.mouse.move(*corner)
    page.mouse.down()
    page.mouse.move(*opposite)
    page.mouse.up()
    page.wait_for_function(
        "(el) => el.querySelectorAll('.lbx-measure-label').length === 2",
        arg=viewer.element_handle(),
    )
    text = viewer.locator(".lbx-measure-label").nth(1).inner_text()
    mean = float(re.search(r"mean (-?\d+\.\d) HU", text).group(1))
    assert mean == pytest.approx(HAEMORRHAGE.hounsfield_units, abs=3), text
    assert re.search(r"area \d+\.\d mm²", text)
    viewer.screenshot(path=str(artifacts / "widgets-stack-measurements.png"))
    viewer.get_by_role("button", name="Clear").click()
    page.wait_for_function(
        "(el) => !el.querySelector('.lbx-measure-label')", arg=viewer.element_handle()
    )
    viewer.get_by_role("button", name="Auto").click()


def test_cine_plays_at_its_frame_rate_and_stops(page) -> None:
    viewer = _viewer(page, "main")
    viewer.locator("input.lbx-fps").fill("20")
    viewer.locator("input.lbx-fps").dispatch_event("change")
    paints_before = viewer.evaluate("(el) => el.lightboxStats.paints.length")
    viewer.get_by_role("button", name="Play").click()
    page.wait_for_timeout(1500)
    viewer.get_by_role("button", name="Play").click()
    paints = viewer.evaluate(f"(el) => el.lightboxStats.paints.slice({paints_before})")
    changes = sum(1 for a, b in itertools.pairwise(paints) if a[1] != b[1])
    # 20 frames/s for 1.5 s: about 30 new slices (the loop wraps at the end).
    assert 18 <= changes <= 34, changes
    index = viewer.get_attribute("data-slice-index")
    page.wait_for_timeout(300)
    assert viewer.get_attribute("data-slice-index") == index


def test_hostile_patient_name_is_shown_as_text(page, artifacts) -> None:
    viewer = _viewer(page, "xss")
    # The DOM text, which does not depend on JupyterLab having rendered the cell
    # (it skips cells scrolled out of view): set as text, the markup is its text.
    assert _XSS in viewer.locator(".lbx-tl").text_content()
    assert viewer.locator("img").count() == 0
    assert page.locator("img[src='x']").count() == 0
    page.wait_for_timeout(300)
    assert page.lightbox_dialogs == []
    viewer.screenshot(path=str(artifacts / "widgets-stack-hostile-name.png"))


def test_structured_report_is_a_tree_of_escaped_text(page, artifacts) -> None:
    report = page.locator(".t-report .lbx-report").first
    report.scroll_into_view_if_needed()
    text = report.inner_text()
    assert "Diagnosis" in text and "Diameter: 3 Length Unit" in text
    # Twice: in the patient line and as the appended TEXT content item.
    assert text.count(_XSS) == 2 and _XSS in report.locator(".lbx-head").inner_text()
    assert report.locator("img").count() == 0
    assert report.locator("ul ul").count() > 3  # nested content items
    page.wait_for_timeout(200)
    assert page.lightbox_dialogs == []
    report.screenshot(path=str(artifacts / "widgets-report-sr.png"))


@pytest.mark.extra_data
def test_real_ct_paints_and_windows_like_the_pipeline(
    page, extra_data, artifacts
) -> None:
    import glob

    if not page.locator(".t-real").count():
        pytest.skip("the notebook was written without the real CT")
    viewer = page.locator(".t-real .lbx-stack").first
    viewer.scroll_into_view_if_needed()
    page.wait_for_function(
        "(el) => el.dataset.painted === 'true'",
        arg=viewer.element_handle(),
        timeout=60_000,
    )
    viewer.screenshot(path=str(artifacts / "widgets-stack-real-ct.png"))
    # One image pixel per device pixel: no smoothing, so each sample is one voxel.
    viewer.get_by_role("button", name="1:1").click()
    page.wait_for_timeout(300)
    volume = read_series(sorted(glob.glob(str(extra_data / _REAL_CT / "*"))))[0]
    index = int(viewer.get_attribute("data-slice-index"))
    center = float(viewer.get_attribute("data-window-center"))
    width = float(viewer.get_attribute("data-window-width"))
    rows, columns = volume.voxels.shape[1:]
    size = viewer.locator("canvas").evaluate("(c) => [c.width, c.height]")
    grid = [(r, c) for r in range(5, rows, 23) for c in range(5, columns, 23)]
    grid = [
        point
        for point, (x, y) in zip(grid, _image_to_device(viewer, grid))
        if 0 <= x < size[0] - 1 and 0 <= y < size[1] - 1
    ]
    shown = np.array(
        viewer.locator("canvas").evaluate(
            CANVAS_PIXELS, _image_to_device(viewer, grid)
        ),
        dtype=float,
    )
    expected = apply_windowing(
        np.array([volume.voxels[index, r, c] for r, c in grid]),
        center,
        width,
        volume.default_window.function,
    )
    assert np.abs(shown - np.rint(expected)).max() <= 1
    assert not math.isclose(float(np.std(shown)), 0.0)


def test_scrolling_paints_previews_and_stillness_the_true_pixels(
    page, voxels, artifacts
) -> None:
    # Three lossless slices in the page: scrolling ten slices runs past them.
    viewer = _viewer(page, "tiered")
    page.wait_for_function(
        "(el) => el.dataset.previewsLoaded === '48' && el.dataset.slicesLoaded === '3'",
        arg=viewer.element_handle(),
    )
    assert viewer.get_attribute("data-quality") == "lossless"
    viewer.evaluate(
        """(el) => { el.noteSeen = []; const note = el.querySelector('.lbx-quality');
        new MutationObserver(() => { if (!note.hidden) el.noteSeen.push(
          [el.dataset.sliceIndex, note.textContent]); }).observe(note,
          { attributes: true }); }"""
    )
    start = int(viewer.get_attribute("data-slice-index"))
    marks = viewer.evaluate("(el) => el.lightboxStats.paints.length")
    box = viewer.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(10):
        page.mouse.wheel(0, 100)
    page.wait_for_function(
        "([el, n]) => el.dataset.sliceIndex === String(n) "
        "&& el.dataset.quality === 'lossless'",
        arg=[viewer.element_handle(), start + 10],
    )
    paints = viewer.evaluate(f"(el) => el.lightboxStats.paints.slice({marks})")
    tiers = [tier for _, _, tier, _ in paints]
    assert "preview" in tiers, tiers
    # The last paint is the lossless frame of the slice the user stopped on.
    assert paints[-1][1:3] == [start + 10, "lossless"], paints[-1]
    seen = viewer.evaluate("(el) => el.noteSeen")
    assert seen and seen[0][1].startswith("PREVIEW"), seen
    assert viewer.locator(".lbx-quality").is_hidden()
    # The page keeps its budget of lossless slices.
    assert int(viewer.get_attribute("data-slices-loaded")) <= 3
    viewer.screenshot(path=str(artifacts / "widgets-stack-lossless-at-rest.png"))

    # At rest, every pixel of the image is the pipeline's display value:
    # PS3.3 C.11.2.1.2.1 LINEAR windowing, rounded to the nearest integer.
    index = int(viewer.get_attribute("data-slice-index"))
    center = float(viewer.get_attribute("data-window-center"))
    width = float(viewer.get_attribute("data-window-width"))
    assert "LINEAR" not in viewer.locator(".lbx-bl").inner_text()
    rows, columns = voxels.shape[1:]
    grid = [(r, c) for r in range(rows) for c in range(columns)]
    shown = np.array(
        viewer.locator("canvas").evaluate(
            CANVAS_PIXELS, _image_to_device(viewer, grid)
        ),
        dtype=np.int64,
    ).reshape(rows, columns)
    expected = np.clip(
        np.rint(apply_windowing(voxels[index], center, width, "LINEAR")), 0, 255
    )
    assert np.array_equal(shown, expected.astype(np.int64)), np.abs(
        shown - expected
    ).max()
    # The phantom slice holds dark, grey and white pixels: the check means something.
    assert len(np.unique(shown)) > 20


def test_nothing_is_stored_in_the_browser(page) -> None:
    probe = page.evaluate(
        """async () => ({
        idb: (await indexedDB.databases()).map((d) => d.name),
        caches: await caches.keys(),
        local: Object.keys(localStorage).map((k) => [k, localStorage[k].length]),
        session: Object.keys(sessionStorage).map((k) => [k, sessionStorage[k].length]),
        })"""
    )
    assert probe["idb"] == [] and probe["caches"] == [], probe
    # JupyterLab keeps a few small settings; a slice would be 128 KiB.
    assert all(size < 20_000 for _, size in probe["local"] + probe["session"]), probe


# TODO(#5): also save the notebook from the page with "Save Widget State
# Automatically" on and check the file for image data. With JupyterLab 4.6 and
# jupyterlab_widgets 3.0.17 here, a save after turning that setting on wrote no
# widget metadata at all (even for a lone IntSlider), so such a check could not
# fail for the right reason; tests/viewerlib/widgets/test_stack.py checks the
# state the kernel syncs, which is what the page would save.
