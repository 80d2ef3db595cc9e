"""The stack viewer on a 1024 x 768 touch screen: swipe, pinch and the toolbar."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from e2e_support import ARTIFACTS
from widget_fixtures import PHANTOM_SETUP, JupyterLab

pytestmark = pytest.mark.browser

_CELLS = [
    PHANTOM_SETUP + "from viewerlib.widgets.stack import StackViewer\n"
    "tablet = StackViewer.from_volume(current)\ntablet.add_class('t-tablet')\ntablet"
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
            page, name, ".t-tablet .lbx-stack[data-painted='true']"
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
