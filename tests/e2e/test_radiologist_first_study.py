"""The main job end to end: sign in through SSO, land in JupyterLab, see a CT study."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from e2e_support import run_all_and_wait_for_viewer

from lightbox_hub.demo import EmbeddedDefault

pytestmark = pytest.mark.browser

# Statistics of the painted canvas, computed in the page: the middle of the image
# (where the head is) against its corner (air, outside the body).
_CANVAS_STATISTICS = """
(canvas) => {
  const context = canvas.getContext("2d");
  const stats = (x, y, w, h) => {
    const data = context.getImageData(x, y, w, h).data;
    let sum = 0, sumSquares = 0, n = 0;
    for (let i = 0; i < data.length; i += 4) {
      sum += data[i]; sumSquares += data[i] * data[i]; n += 1;
    }
    const mean = sum / n;
    return { mean, sd: Math.sqrt(Math.max(0, sumSquares / n - mean * mean)) };
  };
  const w = canvas.width, h = canvas.height, side = Math.floor(Math.min(w, h) / 4);
  return {
    width: w, height: h,
    middle: stats(Math.floor(w / 2 - side / 2), Math.floor(h / 2 - side / 2), side, side),
    corner: stats(2, 2, 12, 12),
  };
}
"""


def sign_in(page, hub_url: str, user: str) -> None:
    page.goto(hub_url + "/hub/")
    page.wait_for_url("**/hub/login**")
    # JupyterHub renders the sign-in link as <a role="button">.
    page.get_by_role("button", name="Sign in with").click()
    page.wait_for_url(re.compile(r".*/oauth2/authorize.*"))
    page.get_by_placeholder("sub").fill(user)
    page.get_by_role("button", name="Authorize").click()


def test_radiologist_signs_in_and_sees_the_ct_study(
        browser, embedded_default: EmbeddedDefault, artifacts: Path) -> None:
    assert embedded_default.hub is not None
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, embedded_default.hub.url, "radiologist")

        # The role's workspace opens on its first lesson, not on an empty launcher.
        page.wait_for_url(re.compile(r".*/user/radiologist/lab/tree/radiologist/.*ipynb"),
                          timeout=120_000)
        viewer = run_all_and_wait_for_viewer(page)
        viewer.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "radiologist-first-study.png"))
        viewer.screenshot(path=str(artifacts / "radiologist-stack-viewer.png"))

        canvas = viewer.locator("canvas.lightbox-stack-canvas")
        statistics = canvas.evaluate(_CANVAS_STATISTICS)
        # Brain in a brain window is mid-grey with texture; the air around is black.
        assert statistics["corner"]["mean"] < 5, statistics
        assert statistics["middle"]["mean"] > 40, statistics
        assert statistics["middle"]["sd"] > 5, statistics

        overlay = viewer.locator(".lbx-tl").inner_text()
        assert "Test, Case" in overlay
        assert "CT HEAD" in overlay
        assert re.search(r"Im \d+/48", viewer.locator(".lbx-tr").inner_text())
    except Exception:
        page.screenshot(path=str(artifacts / "radiologist-first-study-FAILED.png"))
        raise
    finally:
        context.close()


def test_outsider_is_refused_with_a_clear_page(
        browser, embedded_default: EmbeddedDefault, artifacts: Path) -> None:
    assert embedded_default.hub is not None
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, embedded_default.hub.url, "outsider")
        page.get_by_text("403").first.wait_for(timeout=30_000)
        text = page.locator("body").inner_text()
        assert "in no Lightbox job role (your groups: billing)" in text
        assert "Ask your Lightbox administrator" in text
        page.screenshot(path=str(artifacts / "outsider-refused.png"))
    finally:
        context.close()
