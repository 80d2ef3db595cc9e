"""The first image paints in Chromium while the rest of the series is held back.

A real Orthanc holds a Test^Case CT; a loopback proxy in front of it passes the first
instances of the series stream and then holds the rest, as a slow archive would. The
notebook opens the series through the proxy with ``viewerlib.open``; the page must
paint an image and say "Loading n of N images" before the test lets the rest go,
then show every slice.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from e2e_support import ARTIFACTS
from widget_fixtures import CANVAS_STATISTICS, JupyterLab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viewerlib" / "sources"))

from lightbox_source_testing import (  # noqa: E402
    LoopbackProxy,
    make_ct_series,
    write_datasets,
)

pytestmark = [pytest.mark.browser, pytest.mark.orthanc]

SLICES = 16
ROWS = 192
INSTANCE_BYTES = ROWS * ROWS * 2


@pytest.fixture(scope="module")
def held_archive(orthanc_factory, tmp_path_factory) -> Iterator[tuple]:
    server = orthanc_factory("firstpaint").start()
    datasets = make_ct_series(SLICES, rows=ROWS)
    for ds in datasets:
        # A ramp that differs from slice to slice: a painted slice is never flat.
        pixels = (
            np.add.outer(np.arange(ROWS), np.arange(ROWS)) * 8
            + 40 * int(ds.InstanceNumber)
        ).astype(np.uint16)
        ds.PixelData = pixels.tobytes()
        ds.WindowCenter, ds.WindowWidth = 1000, 3000
    paths = write_datasets(datasets, tmp_path_factory.mktemp("firstpaint"))
    assert server.load_files(paths).stored == SLICES
    port = int(server.url.rsplit(":", 1)[1])
    # Small answers (the instance count search) pass; the series stream is held
    # after about three instances until the test releases it.
    with LoopbackProxy(
        port, hold_after_bytes=int(3.5 * INSTANCE_BYTES), hold_timeout_s=90
    ) as proxy:
        yield proxy, datasets


@pytest.fixture(scope="module")
def page(browser, jupyter_lab: JupyterLab, held_archive) -> Iterator[object]:
    proxy, datasets = held_archive
    cells = [
        "import viewerlib\n"
        "from viewerlib.sources.dicomweb import ArchiveQuirks, DICOMwebSource\n"
        f"source = DICOMwebSource({proxy.url()!r}, 'slow archive',\n"
        "                        quirks=ArchiveQuirks.for_orthanc_1_10())\n"
        f"viewer = viewerlib.open({str(datasets[0].StudyInstanceUID)!r}, source,\n"
        f"                        series={str(datasets[0].SeriesInstanceUID)!r})\n"
        "viewer.add_class('t-first')\nviewer"
    ]
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    name = jupyter_lab.write_notebook("first_image.ipynb", cells)
    try:
        jupyter_lab.open_and_run(
            page,
            name,
            ".t-first .lbx-stack[data-painted='true'][data-loading='loading']",
        )
        yield page
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "first-image-FAILED.png"))
        raise
    finally:
        proxy.release.set()
        context.close()
        jupyter_lab.shut_down_kernels()


def test_first_image_paints_before_the_series_has_arrived(page, held_archive):
    proxy, _ = held_archive
    viewer = page.locator(".t-first .lbx-stack").first
    # Still held back: the page painted from the instances that came through.
    assert proxy.held.is_set() and not proxy.release.is_set()
    assert viewer.get_attribute("data-loading") == "loading"
    received = int(viewer.get_attribute("data-loading-received"))
    assert 1 <= received < SLICES
    status = viewer.locator(".lbx-loading-text")
    page.wait_for_function(
        f"(el) => el.textContent.endsWith(' of {SLICES} images')",
        arg=status.element_handle(),
        timeout=30_000,
    )
    assert status.inner_text().startswith("Loading ")
    stats = viewer.locator("canvas").evaluate(CANVAS_STATISTICS)
    assert stats["sd"] > 5, stats  # an image, not a blank canvas
    ARTIFACTS.mkdir(exist_ok=True)
    viewer.screenshot(path=str(ARTIFACTS / "first-image-while-loading.png"))

    proxy.release.set()
    page.wait_for_function(
        "(el) => el.dataset.loading === 'complete'",
        arg=viewer.element_handle(),
        timeout=60_000,
    )
    assert not viewer.locator(".lbx-loading").is_visible()
    # Every slice is there now: each one paints as the wheel reaches it.
    viewer.hover()
    for _ in range(SLICES):
        page.mouse.wheel(0, 120)
    page.wait_for_function(
        f"(el) => el.dataset.sliceIndex === '{SLICES - 1}' "
        "&& el.dataset.painted === 'true'",
        arg=viewer.element_handle(),
        timeout=30_000,
    )
