"""The viewers on a 1024 x 768 touch screen: swipe, pinch and the toolbar.

The stack viewer, the comparison (current beside prior) and the MPR viewer, each
driven by touch events as a tablet sends them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from e2e_support import ARTIFACTS
from widget_fixtures import PHANTOM_SETUP, JupyterLab

pytestmark = pytest.mark.browser

_CELLS = [
    PHANTOM_SETUP + "from viewerlib.widgets.stack import StackViewer\n"
    "import viewerlib.viewer as vv\n"
    "tablet = StackViewer.from_volume(current)\ntablet.add_class('t-tablet')\ntablet",
    "pair = vv.compare(current, prior)\npair.add_class('t-tab-pair')\npair",
    "mpr = vv.open_mpr(current)\nmpr.add_class('t-tab-mpr')\nmpr",
]


@pytest.fixture(scope="module")
def tablet(browser, jupyter_lab: JupyterLab) -> Iterator[tuple[object, object, object]]:
    context = browser.new_context(
        viewport={"width": 1024, "height": 768}, has_touch=True
    )
    page = context.new_page()
    name = jupyter_lab.write_notebook("tablet.ipynb", _CELLS)
    try:
        jupyter_lab.open_and_run(
            page, name, ".t-tab-mpr .lbx-mpr[data-painted='true']"
        )
        viewer = page.locator(".t-tablet .lbx-stack").first
        viewer.scroll_into_view_if_needed()
        yield page, viewer, context.new_cdp_session(page)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets-tablet-FAILED.png"))
        raise
    finally:
        context.close()
        jupyter_lab.shut_down_kernels()


def _touch(cdp, kind: str, points: list[tuple[float, float]]) -> None:
    cdp.send(
        "Input.dispatchTouchEvent",
        {
            "type": kind,
            "touchPoints": [
                {"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)
            ],
        },
    )


def _gesture(
    page,
    cdp,
    start: list[tuple[float, float]],
    end: list[tuple[float, float]],
    steps: int = 12,
) -> None:
    _touch(cdp, "touchStart", start)
    for step in range(1, steps + 1):
        f = step / steps
        _touch(
            cdp,
            "touchMove",
            [
                (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
                for a, b in zip(start, end)
            ],
        )
        page.wait_for_timeout(16)
    _touch(cdp, "touchEnd", [])
    page.wait_for_timeout(150)


def _zoom(viewer) -> float:
    return float(
        re.search(r"Zoom (\d+\.\d+)x", viewer.locator(".lbx-br").inner_text())[1]
    )


def _visible_tools(viewer) -> list[dict]:
    return [
        tool.bounding_box()
        for tool in viewer.locator(".lbx-bar > *").all()
        if tool.is_visible()
    ]


def _press_tool(viewer, name: str) -> None:
    """Tap a tool in the row, or in the "More" menu when the row had no room."""
    button = viewer.locator(".lbx-bar").get_by_role("button", name=name, exact=True)
    if not button.count():
        viewer.get_by_role("button", name="More tools").tap()
        button = viewer.locator(".lbx-menu").get_by_role(
            "button", name=name, exact=True
        )
    button.tap()


@pytest.mark.parametrize("size", [(1024, 768), (900, 700)], ids=["tablet", "small"])
def test_toolbar_keeps_to_one_row(tablet, size) -> None:
    page, viewer, _ = tablet
    page.set_viewport_size({"width": size[0], "height": size[1]})
    try:
        page.wait_for_timeout(300)
        viewer.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"widgets-toolbar-{size[0]}.png"))
        box = viewer.bounding_box()
        assert box["x"] + box["width"] <= size[0]
        tools = _visible_tools(viewer)
        assert len(tools) >= 5, tools
        # One row: every tool at the same height, all inside the viewer.
        assert max(t["y"] for t in tools) - min(t["y"] for t in tools) <= 2, tools
        for bounds in tools:
            assert bounds["x"] >= box["x"] - 1, bounds
            assert bounds["x"] + bounds["width"] <= box["x"] + box["width"] + 1, bounds
            # Fingers need targets of a reasonable height.
            assert bounds["height"] >= 20, bounds
        # Nothing is lost: what the row has no room for is in the menu, and
        # works from there; the menu stays inside the viewer too.
        more = viewer.get_by_role("button", name="More tools")
        if more.is_visible():
            more.tap()
            menu = viewer.locator(".lbx-menu")
            assert menu.is_visible()
            for item in menu.locator("button").all():
                bounds = item.bounding_box()
                assert box["x"] <= bounds["x"], bounds
                assert bounds["x"] + bounds["width"] <= box["x"] + box["width"], bounds
            more.tap()
            assert menu.is_hidden()
        _press_tool(viewer, "Rotate")
        page.wait_for_function(
            "(el) => el.querySelector('.lbx-br').textContent.includes('rot 90')",
            arg=viewer.element_handle(),
        )
        for _ in range(3):
            _press_tool(viewer, "Rotate")
        page.wait_for_function(
            "(el) => !el.querySelector('.lbx-br').textContent.includes('rot')",
            arg=viewer.element_handle(),
        )
        assert viewer.locator(".lbx-menu").is_hidden()
    finally:
        page.set_viewport_size({"width": 1024, "height": 768})


def test_one_finger_swipe_scrolls_slices(tablet) -> None:
    page, viewer, cdp = tablet
    canvas = viewer.locator("canvas").bounding_box()
    x, y = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 3
    start = int(viewer.get_attribute("data-slice-index"))
    _gesture(page, cdp, [(x, y)], [(x, y + 120)])
    page.wait_for_function(
        "([el, n]) => Number(el.dataset.sliceIndex) >= n + 8",
        arg=[viewer.element_handle(), start],
    )
    after = int(viewer.get_attribute("data-slice-index"))
    assert after == start + 10, (start, after)  # 12 px per slice
    _gesture(page, cdp, [(x, y + 120)], [(x, y)])
    page.wait_for_function(
        "([el, n]) => Number(el.dataset.sliceIndex) === n",
        arg=[viewer.element_handle(), start],
    )


def test_two_finger_pinch_zooms(tablet) -> None:
    page, viewer, cdp = tablet
    canvas = viewer.locator("canvas").bounding_box()
    x, y = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    before = _zoom(viewer)
    _gesture(page, cdp, [(x - 50, y), (x + 50, y)], [(x - 100, y), (x + 100, y)])
    after = _zoom(viewer)
    assert after == pytest.approx(2 * before, rel=0.1), (before, after)
    viewer.screenshot(path=str(ARTIFACTS / "widgets-tablet-pinched.png"))
    viewer.get_by_role("button", name="Fit").tap()
    page.wait_for_function(
        "([el, z]) => el.querySelector('.lbx-br').textContent.startsWith('Zoom ' + z)",
        arg=[viewer.element_handle(), f"{before:.2f}"],
    )


def test_window_tool_works_by_touch(tablet) -> None:
    page, viewer, cdp = tablet
    viewer.get_by_role("button", name="W/L").tap()
    canvas = viewer.locator("canvas").bounding_box()
    x, y = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    width = float(viewer.get_attribute("data-window-width"))
    _gesture(page, cdp, [(x, y)], [(x + 100, y)])
    assert float(viewer.get_attribute("data-window-width")) > width + 50
    viewer.get_by_role("button", name="Auto").tap()


def _inside_the_screen(page, root) -> dict:
    """The viewer's box; it fits the 1024 px width, and so do its tools.

    Buttons, menus and fields are at least 20 px tall, for a finger (a slice
    slider is dragged by its thumb, and a swipe scrolls anyway).
    """
    box = root.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1024, box
    for tool in root.locator("button, select, input:not([type=range])").all():
        if tool.is_visible():
            bounds = tool.bounding_box()
            assert bounds["x"] + bounds["width"] <= box["x"] + box["width"] + 1
            assert bounds["height"] >= 20, bounds
    return box


def test_comparison_at_tablet_size_swipes_both_and_pinches_one(tablet) -> None:
    page, _, cdp = tablet
    current, prior = (page.locator(".t-tab-pair .lbx-stack").nth(i) for i in (0, 1))
    current.scroll_into_view_if_needed()
    for viewer in (current, prior):
        page.wait_for_function("(el) => el.dataset.painted === 'true'",
                               arg=viewer.element_handle())
        _inside_the_screen(page, viewer)
        # Each pane keeps its tools to one row (the rest in "More").
        tops = [t.bounding_box()["y"] for t in viewer.locator(".lbx-bar > *").all()
                if t.is_visible()]
        assert len(tops) >= 4 and max(tops) - min(tops) <= 2, tops
    left, right = current.bounding_box(), prior.bounding_box()
    assert left["x"] + left["width"] <= right["x"] + 1
    assert right["width"] > 250  # half of what the file browser leaves

    canvas = current.locator("canvas").bounding_box()
    x, y = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 3
    start = [int(v.get_attribute("data-slice-index")) for v in (current, prior)]
    # One finger down 120 px: ten slices on the current, and the prior follows.
    _gesture(page, cdp, [(x, y)], [(x, y + 120)])
    page.wait_for_function(
        "([el, n]) => Number(el.dataset.sliceIndex) === n",
        arg=[prior.element_handle(), start[1] + 10])
    assert int(current.get_attribute("data-slice-index")) == start[0] + 10

    pane = prior.locator("canvas").bounding_box()
    px, py = pane["x"] + pane["width"] / 2, pane["y"] + pane["height"] / 2
    before = _zoom(prior), _zoom(current)
    _gesture(page, cdp, [(px - 40, py), (px + 40, py)], [(px - 80, py), (px + 80, py)])
    assert _zoom(prior) == pytest.approx(2 * before[0], rel=0.1)
    assert _zoom(current) == before[1]
    page.locator(".t-tab-pair").first.screenshot(
        path=str(ARTIFACTS / "widgets-tablet-compare.png"))
    prior.get_by_role("button", name="Fit").tap()


def _center(root) -> list[float]:
    return json.loads(root.get_attribute("data-center"))


def test_mpr_at_tablet_size_swipes_pinches_and_taps(tablet) -> None:
    page, _, cdp = tablet
    root = page.locator(".t-tab-mpr .lbx-mpr").first
    root.scroll_into_view_if_needed()
    _inside_the_screen(page, root)
    views = {name: root.locator(f".lbx-mpr-{name}") for name in
             ("axial", "coronal", "sagittal")}
    # With JupyterLab's file browser open, three planes share about 600 px.
    for view in views.values():
        bounds = view.bounding_box()
        assert bounds["width"] > 180 and bounds["height"] > 300, bounds

    # One finger down 120 px on the axial plane: ten slices (4 mm) to the head.
    axial = views["axial"].locator("canvas").bounding_box()
    x, y = axial["x"] + axial["width"] / 2, axial["y"] + axial["height"] / 3
    before = _center(root)
    _gesture(page, cdp, [(x, y)], [(x, y + 120)])
    page.wait_for_function(
        "([el, z]) => Math.abs(JSON.parse(el.dataset.center)[2] - z) < 1e-6",
        arg=[root.element_handle(), before[2] + 40.0])
    assert _center(root)[:2] == pytest.approx(before[:2])

    # Two fingers apart on the coronal plane: it alone is enlarged twice.
    coronal = views["coronal"]
    box = coronal.locator("canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    scale = json.loads(coronal.get_attribute("data-fit"))[0]
    draws = int(root.get_attribute("data-draws"))
    _gesture(page, cdp, [(cx - 40, cy), (cx + 40, cy)], [(cx - 80, cy), (cx + 80, cy)])
    page.wait_for_function("([el, n]) => Number(el.dataset.draws) > n",
                           arg=[root.element_handle(), draws])
    assert float(coronal.get_attribute("data-zoom")) == pytest.approx(2.0, rel=0.1)
    assert json.loads(coronal.get_attribute("data-fit"))[0] == pytest.approx(
        2 * scale, rel=0.1)
    assert views["axial"].get_attribute("data-zoom") == "1"
    root.screenshot(path=str(ARTIFACTS / "widgets-tablet-mpr.png"))

    # A tap on the sagittal plane puts the crosshair there: x stays, y and z move.
    sagittal = views["sagittal"].locator("canvas").bounding_box()
    here = _center(root)
    page.touchscreen.tap(sagittal["x"] + sagittal["width"] * 0.3,
                         sagittal["y"] + sagittal["height"] * 0.6)
    page.wait_for_function(
        "([el, y]) => Math.abs(JSON.parse(el.dataset.center)[1] - y) > 1",
        arg=[root.element_handle(), here[1]])
    assert _center(root)[0] == pytest.approx(here[0])
    root.get_by_role("button", name="Fit").tap()
    page.wait_for_function("(el) => el.dataset.zoom === '1'",
                           arg=coronal.element_handle())
