"""MPR, 3D and comparison viewers in JupyterLab in Chromium, on the CT head phantom."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from e2e_support import ARTIFACTS
from scipy import ndimage
from widget_fixtures import CANVAS_PIXELS, CANVAS_STATISTICS, PHANTOM_SETUP, JupyterLab

from viewerlib.pipeline.voi import apply_windowing
from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume.volume import Volume, read_series

pytestmark = pytest.mark.browser

# The same-Frame-of-Reference "prior": every other slice of the current study.
_THIN = """\
import dataclasses
half = current.affine.copy(); half[:3, 0] *= 2
thinned = dataclasses.replace(current, voxels=current.voxels[::2], affine=half,
    spacing_mm=(8.0, *current.spacing_mm[1:]),
    slice_positions_mm=current.slice_positions_mm[::2],
    datasets=current.datasets[::2], source_order=current.source_order[::2],
    source_frames=current.source_frames[::2])
"""

_CELLS = [
    PHANTOM_SETUP + "import viewerlib.viewer as vv\n" + _THIN,
    "mpr = vv.open_mpr(current)\nmpr.add_class('t-mpr')\nmpr",
    "pair = vv.compare(current, prior)\npair.add_class('t-pair')\npair",
    "same = vv.compare(current, thinned)\nsame.add_class('t-same')\nsame",
    "v3d = vv.open_3d(current)\nv3d.add_class('t-3d')\nv3d",
]


@pytest.fixture(scope="module")
def current() -> Volume:
    return read_series(ct_head_phantom("current").datasets)[0]


@pytest.fixture(scope="module")
def page(browser, jupyter_lab: JupyterLab) -> Iterator[object]:
    # Wide enough that each MPR plane is enlarged (no smoothing) even when oblique.
    context = browser.new_context(viewport={"width": 1920, "height": 1000})
    page = context.new_page()
    name = jupyter_lab.write_notebook("views.ipynb", _CELLS)
    try:
        jupyter_lab.open_and_run(
            page, name, ".t-3d .lbx-3d[data-painted='true']", timeout_ms=120_000
        )
        yield page
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets-views-FAILED.png"))
        raise
    finally:
        context.close()
        jupyter_lab.shut_down_kernels()


def _wait_draws(page, root, more_than: int) -> None:
    page.wait_for_function(
        "([el, n]) => Number(el.dataset.draws || 0) > n",
        arg=[root.element_handle(), more_than],
    )


def _plane_vs_volume(view, volume: Volume, center: float, width: float) -> np.ndarray:
    """|displayed grey - windowed trilinear value of the volume at the same LPS point|."""
    geometry = json.loads(view.get_attribute("data-geometry"))
    scale, x0, y0 = json.loads(view.get_attribute("data-fit"))
    rows, columns = (
        int(view.get_attribute("data-rows")),
        int(view.get_attribute("data-columns")),
    )
    grid = [(r, c) for r in range(2, rows - 2, 9) for c in range(2, columns - 2, 9)]
    origin, row, col = (np.array(geometry[k]) for k in ("origin", "row", "col"))
    lps = np.array(
        [
            origin + row * r * geometry["step"] + col * c * geometry["step"]
            for r, c in grid
        ]
    )
    index = (np.linalg.inv(volume.affine) @ np.c_[lps, np.ones(len(lps))].T)[:3]
    values = ndimage.map_coordinates(
        volume.voxels.astype(np.float64), index, order=1, mode="constant", cval=np.nan
    )
    inside = ~np.isnan(values)
    points = [[x0 + (c + 0.5) * scale, y0 + (r + 0.5) * scale] for r, c in grid]
    shown = np.array(view.locator("canvas").evaluate(CANVAS_PIXELS, points), float)
    expected = np.rint(apply_windowing(values[inside], center, width))
    assert inside.sum() > 200
    return np.abs(shown[inside] - expected)


def test_mpr_planes_show_the_volume_at_their_patient_positions(page, current) -> None:
    root = page.locator(".t-mpr .lbx-mpr").first
    root.scroll_into_view_if_needed()
    page.wait_for_function(
        "(el) => el.dataset.painted === 'true'", arg=root.element_handle()
    )
    root.screenshot(path=str(ARTIFACTS / "widgets-mpr.png"))
    # The crosshair lines cover pixels; compare the images without them.
    draws = int(root.get_attribute("data-draws"))
    root.get_by_role("button", name="Crosshair").click()
    _wait_draws(page, root, draws)
    for name in ("axial", "coronal", "sagittal"):
        view = root.locator(f".lbx-mpr-{name}")
        difference = _plane_vs_volume(view, current, 40.0, 80.0)
        assert np.mean(difference <= 1) > 0.99, (name, difference.max())
    # True aspect ratio: the coronal image is as tall, relative to its width, as the
    # head's 188 mm of slices against the 230 mm field of view.
    coronal = root.locator(".lbx-mpr-coronal")
    rows, columns = (
        int(coronal.get_attribute("data-rows")),
        int(coronal.get_attribute("data-columns")),
    )
    assert rows / columns == pytest.approx((47 * 4.0) / (255 * 0.9), rel=0.01)
    markers = [
        coronal.locator(f".lbx-marker-{e}").inner_text() for e in ("left", "top")
    ]
    assert markers == ["R", "H"]


def test_mpr_click_moves_the_crosshair_and_the_other_planes(page, current) -> None:
    root = page.locator(".t-mpr .lbx-mpr").first
    sagittal = root.locator(".lbx-mpr-sagittal canvas")
    before = sagittal.evaluate(CANVAS_STATISTICS)
    draws = int(root.get_attribute("data-draws"))
    axial = root.locator(".lbx-mpr-axial canvas").bounding_box()
    page.mouse.click(
        axial["x"] + axial["width"] * 0.35, axial["y"] + axial["height"] * 0.4
    )
    _wait_draws(page, root, draws)
    center = json.loads(root.get_attribute("data-center"))
    assert center[0] < -10, center  # towards the patient's right (image left)
    after = sagittal.evaluate(CANVAS_STATISTICS)
    assert after["mean"] != before["mean"]
    difference = _plane_vs_volume(
        root.locator(".lbx-mpr-sagittal"), current, 40.0, 80.0
    )
    assert np.mean(difference <= 1) > 0.99, difference.max()


def test_mpr_slab_and_oblique(page, current) -> None:
    root = page.locator(".t-mpr .lbx-mpr").first
    draws = int(root.get_attribute("data-draws"))
    root.locator("input.lbx-slab").fill("20")
    root.locator("input.lbx-slab").dispatch_event("change")
    _wait_draws(page, root, draws)
    assert "MIP 20.0 mm" in root.locator(".lbx-mpr-axial .lbx-mpr-label").inner_text()
    thin_then_thick = root.locator(".lbx-mpr-coronal canvas").evaluate(
        CANVAS_STATISTICS
    )
    draws = int(root.get_attribute("data-draws"))
    root.locator("select.lbx-slab-mode").select_option("minip")
    _wait_draws(page, root, draws)
    assert "MinIP" in root.locator(".lbx-mpr-axial .lbx-mpr-label").inner_text()
    minip = root.locator(".lbx-mpr-coronal canvas").evaluate(CANVAS_STATISTICS)
    assert minip["mean"] < thin_then_thick["mean"]
    root.locator("input.lbx-slab").fill("0")
    root.locator("input.lbx-slab").dispatch_event("change")
    draws = int(root.get_attribute("data-draws"))
    root.locator("input.lbx-oblique").fill("30")
    _wait_draws(page, root, draws)
    page.wait_for_timeout(200)
    coronal = root.locator(".lbx-mpr-coronal")
    assert coronal.locator(".lbx-mpr-label").inner_text().startswith("Oblique Coronal")
    assert coronal.locator(".lbx-marker-right").inner_text() == "LP"
    difference = _plane_vs_volume(coronal, current, 40.0, 80.0)
    assert np.mean(difference <= 1) > 0.99, difference.max()
    root.screenshot(path=str(ARTIFACTS / "widgets-mpr-oblique.png"))


def _index(viewer) -> int:
    return int(viewer.get_attribute("data-slice-index"))


def test_comparison_scrolls_and_windows_both_studies(page) -> None:
    current, prior = (page.locator(".t-pair .lbx-stack").nth(i) for i in (0, 1))
    current.scroll_into_view_if_needed()
    for viewer in (current, prior):
        page.wait_for_function(
            "(el) => el.dataset.painted === 'true'", arg=viewer.element_handle()
        )
    assert "2026-11-02" in current.locator(".lbx-tl").inner_text()
    assert "2026-05-04" in prior.locator(".lbx-tl").inner_text()
    box = current.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    start = _index(current), _index(prior)
    for _ in range(4):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(40)
    page.wait_for_function(
        f"(el) => el.dataset.sliceIndex === String({start[1] + 4})",
        arg=prior.element_handle(),
    )
    assert _index(current) == start[0] + 4
    # Different Frames of Reference: linked by slice number plus the manual offset.
    assert prior.get_attribute("data-synced-by") == "offset"

    # Shift + wheel moves the prior alone and keeps the offset for later scrolling.
    pbox = prior.locator("canvas").bounding_box()
    page.mouse.move(pbox["x"] + pbox["width"] / 2, pbox["y"] + pbox["height"] / 2)
    page.keyboard.down("Shift")
    for _ in range(3):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(40)
    page.keyboard.up("Shift")
    page.wait_for_timeout(200)
    assert _index(prior) == _index(current) + 3
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -100)
    page.wait_for_function(
        "([a, b]) => Number(b.dataset.sliceIndex) === Number(a.dataset.sliceIndex) + 3",
        arg=[current.element_handle(), prior.element_handle()],
    )

    # Window/level dragged on one study applies to both.
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 20)
    page.mouse.up()
    page.wait_for_function(
        "([a, b]) => a.dataset.windowWidth === b.dataset.windowWidth "
        "&& a.dataset.windowWidth !== '80'",
        arg=[current.element_handle(), prior.element_handle()],
    )
    page.locator(".t-pair").first.screenshot(
        path=str(ARTIFACTS / "widgets-compare.png")
    )


def test_comparison_in_one_frame_of_reference_follows_patient_position(page) -> None:
    current, thinned = (page.locator(".t-same .lbx-stack").nth(i) for i in (0, 1))
    current.scroll_into_view_if_needed()
    box = current.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(40)
    page.wait_for_timeout(300)
    assert thinned.get_attribute("data-synced-by") == "position"
    positions = [
        float(current.locator(".lbx-tr").inner_text().split("Pos ")[1].split()[0]),
        float(thinned.locator(".lbx-tr").inner_text().split("Pos ")[1].split()[0]),
    ]
    # Every other slice: the nearest position is at most half of 8 mm away.
    assert abs(positions[0] - positions[1]) <= 4.0, positions
    assert (
        _index(thinned) == round(_index(current) / 2)
        or abs(_index(thinned) * 2 - _index(current)) <= 1
    )


def test_volume_rendering_presets_and_rotation(page) -> None:
    root = page.locator(".t-3d .lbx-3d").first
    root.scroll_into_view_if_needed()
    assert root.get_attribute("data-webgl") == "webgl2"
    read = """(canvas) => {
      const copy = document.createElement('canvas');
      copy.width = canvas.width; copy.height = canvas.height;
      const context = copy.getContext('2d');
      context.drawImage(canvas, 0, 0);
      const d = context.getImageData(0, 0, copy.width, copy.height).data;
      let lit = 0, sum = 0, redMinusBlue = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] + d[i + 1] + d[i + 2] > 60) lit += 1;
        sum += d[i]; redMinusBlue += d[i] - d[i + 2];
      }
      const n = d.length / 4;
      const middle = 4 * (Math.floor(copy.height / 2) * copy.width + Math.floor(copy.width / 2));
      return { lit: lit / n, mean: sum / n, warmth: redMinusBlue / n,
               middle: d[middle] + d[middle + 1] + d[middle + 2] };
    }"""
    canvas = root.locator("canvas")
    bone = canvas.evaluate(read)
    root.screenshot(path=str(ARTIFACTS / "widgets-3d-bone.png"))
    # The skull, seen from the front, fills the middle of the view, warm-toned.
    assert 0.05 < bone["lit"] < 0.9 and bone["middle"] > 150, bone
    assert bone["warmth"] > 1, bone
    draws = int(root.get_attribute("data-draws"))
    root.get_by_role("button", name="MIP").click()
    _wait_draws(page, root, draws)
    mip = canvas.evaluate(read)
    root.screenshot(path=str(ARTIFACTS / "widgets-3d-mip.png"))
    assert abs(mip["warmth"]) < 0.5 and mip["mean"] != bone["mean"], mip
    root.get_by_role("button", name="CT bone").click()
    draws = int(root.get_attribute("data-draws"))
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(
        box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2 + 60
    )
    page.mouse.up()
    _wait_draws(page, root, draws)
    page.wait_for_timeout(300)
    turned = canvas.evaluate(read)
    root.screenshot(path=str(ARTIFACTS / "widgets-3d-turned.png"))
    assert turned["lit"] != bone["lit"]
