"""Widget benchmarks of issue #5: paint rates and latencies in Chromium.

Run ``python -m bench.widgets --quick`` (7 pairs, about three minutes) or ``python -m
bench.widgets`` (15 pairs). A plain JupyterLab on loopback serves one notebook with
the stack viewer, a comparison of two studies, the MPR viewer and the baseline (an
ipywidgets ``Image`` fed PNG frames by an ``IntSlider`` observer in the kernel,
encoded with Pillow's defaults as a notebook user would write it; the same with
``compress_level=1`` is reported as a second, tuned baseline); Playwright drives
Debian's Chromium.

Rows (medians over alternating pairs, with min and max):

- frames painted per second for wheel events at 30, 60 and 120 per second, over
  min(rate, 60) (goal >= 0.95), and the wheel-to-paint p95 (goal <= 50 ms);
- stack viewer frames per second over the baseline's at 60 inputs a second (goal >= 4,
  or 0.95 of the ratio's ceiling, 60 over the baseline's rate, where that is lower),
  and, for information, over the tuned baseline's. The stack viewer cannot paint
  more than the display's 60 frames a second, so this ratio is at most 60 over the
  baseline's rate: it reaches 4 only where the baseline paints 15 or fewer;
- the same ratio with the display not limiting (goal >= 4): in a second JupyterLab
  and a Chromium without its frame-rate limit, the stack viewer's frames a second
  at 240 wheel events a second over the baseline's at 60 inputs a second, its best
  (:func:`_unlimited_ratios`);
- window/level drag-to-paint p95 (goal <= 33 ms);
- two synchronised studies: the slower viewer's frames per second over the single
  viewer's (goal >= 0.9);
- MPR: kernel reslice of three planes (:mod:`viewerlib.volume.mpr`) over the
  browser's reslice and draw of three planes (informs where reslicing runs).

How a frame is counted, the same way for Lightbox and the baseline: a paint counts
only when a new slice reaches the page, and only while the user is scrolling. The
input runs for ``_RUN_S`` seconds (the wheel starts on the first slice and stops
before passing the last, so at 120 events a second on a 140-slice series it runs
1.15 s), from its first event at ``start`` to its last at ``end``; the paints
counted are those of a slice other than the one shown just before, within ``[start,
end + 1 / min(rate, 60) s]`` (the last event may be painted up to one display frame
later), and the rate is their number over that span: at most min(rate, 60), give or
take the one display frame the span's two edges may add between them (1.5 % of a 1.1
s run). Paints made after that, while a viewer catches up with input that has
already stopped, are not counted: the user no longer scrolls then. The stack viewer
reports each paint from its animation-frame callback (``lightboxStats.paints``); for
the baseline, an animation-frame callback in the page counts each new ``<img>``
source that has loaded (an image replaced before it loaded, or twice in one frame,
is never seen and is not counted).

Earlier versions counted every distinct paint up to 150 ms after the input and added
one, so a viewer catching up after the input ended scored above 1.0 at 120 events a
second, and a run with no paint at all scored one frame; they counted the baseline's
frames in the kernel (sent, not shown, for 300 ms after the input) and updated a
kernel-side counter widget with each frame, which both favoured and burdened the
baseline. Each workload now starts after the previous one has settled (the viewers
send their state to the kernel 250 ms after the input stops), so one side's messages
do not land in the other's run.

Results go to ``bench/results/widgets-<profile>-<time>.json`` and a markdown table is
printed; the exit status is 1 only if a median misses its goal by more than 15 %.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent / "tests" / "e2e"))

from widget_fixtures import JupyterLab

_RESULTS = _HERE / "results"
_CT_SERIES = "dcm_qa_ct/Philips/S21570/S2020"
# Wheel events a second for the stack viewer when the display does not limit it.
_UNLIMITED_RATE = 240.0
_CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# No 60 Hz display clock: frames are drawn as fast as the page asks for them.
_UNLIMITED_FLAGS = [*_CHROMIUM_FLAGS, "--disable-frame-rate-limit",
                    "--disable-gpu-vsync"]
_SLACK = 1.15
_RUN_S = 2.0
# Time for the page and the kernel to settle between workloads (the viewers sync
# their state 250 ms after the input stops; the baseline's last answers arrive).
_SETTLE_MS = 600

# Input events dispatched in the page on a clock: Playwright's own mouse.wheel waits
# about 40 ms for each event's acknowledgement, too slow to make 60 or 120 events a
# second. The viewers handle these events like trusted ones (they do not look at
# isTrusted); the time stamp of each event is its creation time. The clock is a
# timer, not a busy wait: a spinning loop would hold the page's main thread (a
# third of it at 120 events a second), which a real wheel does not; timers add
# about a millisecond of jitter, as real input has.
_DRIVE = """
async (target, [kind, rate, count]) => {
  const start = performance.now();
  let first = null;
  let last = null;
  for (let i = 0; i < count; i++) {
    const due = start + (1000 * i) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const box = target.getBoundingClientRect();
    const at = { clientX: box.left + box.width / 2, clientY: box.top + box.height / 2,
                 bubbles: true, cancelable: true };
    last = performance.now();
    if (first === null) first = last;
    target.dispatchEvent(kind === "wheel" ? new WheelEvent("wheel", { ...at, deltaY: 100 })
      : new KeyboardEvent("keydown", { ...at, key: kind, code: kind }));
  }
  return { start: first, end: last, achieved: (count - 1) / ((last - first) / 1000) };
}
"""

# Counts the new images an <img> shows: once per animation frame, a source other
# than the last one counted, once it has loaded, is a new frame on screen.
_WATCH_IMAGE = """
(image) => {
  const record = { times: [], on: true };
  let last = image.src;
  const tick = () => {
    if (image.complete && image.naturalWidth && image.src !== last) {
      last = image.src;
      record.times.push(performance.now());
    }
    if (record.on) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  image.lightboxWatch = record;
}
"""

_SETUP = """\
import io, os, glob
import numpy as np
import ipywidgets as w
from PIL import Image as PILImage
from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume.volume import read_series
from viewerlib.pipeline.voi import apply_windowing
import viewerlib.viewer as vv
corpus = os.environ.get("LIGHTBOX_EXTRA_DATA", "")
real = os.path.join(corpus, %(series)r)
if corpus and os.path.isdir(real):
    current = read_series(sorted(glob.glob(real + "/*")))[0]
    prior = current
else:
    shape = dict(rows=512, columns=512, number_of_slices=140, pixel_spacing_mm=0.45,
                 slice_spacing_mm=1.4)
    current = read_series(ct_head_phantom("current", **shape).datasets)[0]
    prior = read_series(ct_head_phantom("prior", **shape).datasets)[0]
"""

_CELLS = [
    _SETUP % {"series": _CT_SERIES},
    "single = vv.StackViewer.from_volume(current)\nsingle.add_class('b-single')\nsingle",
    "pair = vv.compare(current, prior)\npair.add_class('b-pair')\npair",
    # The baselines: the kernel windows and PNG-encodes each slice the slider asks
    # for, with Pillow's default compression (as users write it) and with the
    # fastest one.
    (
        "def baseline(name, **png):\n"
        "    slider = w.IntSlider(0, 0, current.shape[0] - 1)\n"
        "    image = w.Image(format='png')\n"
        "    def show(change):\n"
        "        grey = np.rint(apply_windowing(current.voxels[change.new], 40, 80))\n"
        "        buffer = io.BytesIO()\n"
        "        PILImage.fromarray(grey.astype(np.uint8)).save(buffer, format='png', "
        "**png)\n"
        "        image.value = buffer.getvalue()\n"
        "    slider.observe(show, 'value')\n"
        "    show(type('C', (), {'new': 0}))\n"
        "    box = w.VBox([slider, image])\n"
        "    box.add_class(name)\n"
        "    return box\n"
        "w.VBox([baseline('b-baseline'), baseline('b-tuned', compress_level=1)])"
    ),
    "mpr = vv.open_mpr(current)\nmpr.add_class('b-mpr')\nmpr",
]


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("anywidget", "ipywidgets", "jupyterlab", "playwright", "numpy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _frames_per_second(
    times: list[float], drive: dict[str, float], rate: float
) -> float:
    """New frames a second within the input's span, as the module docstring says.

    `times` are the page times (ms) of the paints of a new slice; `drive` holds the
    first and last event times (``start``, ``end``).
    """
    stop = drive["end"] + 1000.0 / min(rate, 60.0)
    shown = sum(1 for t in times if drive["start"] <= t <= stop)
    return shown / ((stop - drive["start"]) / 1000.0)


def _p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def _paced(count: int, rate: float, action: Any) -> float:
    """Call `action` `count` times at `rate` per second; return the achieved rate."""
    start = time.perf_counter()
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        action()
    elapsed = time.perf_counter() - start
    return count / elapsed if elapsed > 0 else float("nan")


class Bench:
    """The page, its viewers and one method per workload."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.single = page.locator(".b-single .lbx-stack").first
        self.current = page.locator(".b-pair .lbx-stack").nth(0)
        self.prior = page.locator(".b-pair .lbx-stack").nth(1)
        self.baseline_direction = {"b-baseline": "ArrowRight", "b-tuned": "ArrowRight"}

    def _centre(self, viewer: Any) -> tuple[float, float]:
        viewer.scroll_into_view_if_needed()
        box = viewer.locator("canvas").bounding_box()
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def _stats(self, viewer: Any) -> tuple[int, int]:
        # The page keeps the last 5000 paints and latencies only: emptied before
        # each run, so that a long profile never marks past a full list (which
        # read as a run that painted nothing).
        return viewer.evaluate(
            "(el) => { el.lightboxStats.paints.length = 0; "
            "el.lightboxStats.latencies.length = 0; return [0, 0]; }"
        )

    def _since(self, viewer: Any, marks: tuple[int, int]) -> tuple[list, list]:
        return viewer.evaluate(
            "(el, m) => [el.lightboxStats.paints.slice(m[0]), "
            "el.lightboxStats.latencies.slice(m[1])]",
            list(marks),
        )

    def wheel(self, viewer: Any, rate: float, others: tuple[Any, ...] = ()) -> dict:
        x, y = self._centre(viewer)
        self.page.mouse.move(x, y)
        viewer.press("Home")
        self.page.wait_for_timeout(_SETTLE_MS)
        viewers = (viewer, *others)
        marks = [self._stats(v) for v in viewers]
        before = [int(v.get_attribute("data-slice-index")) for v in viewers]
        # From the first slice on, never past the last (where paints would stop).
        last = int(viewer.locator("input.lbx-slider").get_attribute("max"))
        count = min(int(rate * _RUN_S), last)
        drive = viewer.locator("canvas").evaluate(_DRIVE, ["wheel", rate, count])
        self.page.wait_for_timeout(_SETTLE_MS)
        results = []
        for v, mark, shown in zip(viewers, marks, before, strict=True):
            paints, latencies = self._since(v, mark)
            # Paints that put another slice on the canvas than it showed.
            new = []
            for time_ms, index, _tier, _ms in paints:
                if index != shown:
                    new.append(time_ms)
                    shown = index
            results.append(
                {
                    "fps": _frames_per_second(new, drive, rate),
                    "latencies": latencies,
                }
            )
        return {"achieved_rate": drive["achieved"], "viewers": results}

    def window_drag(self, rate: float = 60.0) -> dict:
        # Trusted pointer moves (a synthetic pointer cannot be captured); Playwright
        # delivers them at about the rate asked for.
        x, y = self._centre(self.single)
        marks = self._stats(self.single)
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        count = int(rate * _RUN_S)
        positions = iter(range(count))
        _paced(
            count,
            rate,
            lambda: self.page.mouse.move(x + 2 * (next(positions) % 60) - 60, y + 20),
        )
        self.page.mouse.up()
        self.page.wait_for_timeout(150)
        _, latencies = self._since(self.single, marks)
        # Back to the brain window for the next runs.
        self.single.locator("select.lbx-presets").select_option(
            self.single.locator("select.lbx-presets option")
            .nth(1)
            .get_attribute("value")
        )
        return {"latencies": latencies}

    def baseline(self, rate: float, name: str = "b-baseline") -> dict:
        box = self.page.locator(f".{name}").first
        box.scroll_into_view_if_needed()
        handle = box.locator(".noUi-handle").first
        handle.focus()
        image = box.locator("img").first
        self.page.wait_for_timeout(_SETTLE_MS)
        image.evaluate(_WATCH_IMAGE)
        count = int(rate * _RUN_S)
        key = self.baseline_direction[name]
        start_value = box.locator(".widget-readout").first.inner_text()
        drive = handle.evaluate(_DRIVE, [key, rate, count])
        if box.locator(".widget-readout").first.inner_text() == start_value:
            raise RuntimeError("the baseline slider did not move: keydown not handled")
        self.baseline_direction[name] = (
            "ArrowLeft" if key == "ArrowRight" else "ArrowRight"
        )
        # Let the frames already asked for arrive before the next workload.
        self.page.wait_for_timeout(_SETTLE_MS)
        times = image.evaluate(
            "(el) => { el.lightboxWatch.on = false; return el.lightboxWatch.times; }"
        )
        return {
            "achieved_rate": drive["achieved"],
            "fps": _frames_per_second(times, drive, rate),
            "after_input": sum(
                1 for t in times if t > drive["end"] + 1000.0 / min(rate, 60.0)
            ),
        }

    def mpr_reslice_ms(self) -> list[float]:
        root = self.page.locator(".b-mpr .lbx-mpr").first
        root.scroll_into_view_if_needed()
        canvas = root.locator(".lbx-mpr-axial canvas")
        box = canvas.bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        times = []
        for step in range(10):
            draws = int(root.get_attribute("data-draws") or 0)
            self.page.mouse.wheel(0, 100 if step % 2 == 0 else -100)
            self.page.wait_for_function(
                "([el, n]) => Number(el.dataset.draws) > n",
                arg=[root.element_handle(), draws],
            )
            times.append(float(root.get_attribute("data-reslice-ms")))
        return times


def kernel_reslice_ms(repeats: int = 5) -> list[float]:
    """Three planes through the centre with viewerlib.volume.mpr, in this process."""
    from viewerlib.samples.phantom import ct_head_phantom
    from viewerlib.volume import mpr
    from viewerlib.volume.volume import read_series

    corpus = os.environ.get("LIGHTBOX_EXTRA_DATA", "")
    real = Path(corpus) / _CT_SERIES
    if corpus and real.is_dir():
        volume = read_series(sorted(real.iterdir()))[0]
    else:
        volume = read_series(
            ct_head_phantom(
                "current",
                rows=512,
                columns=512,
                number_of_slices=140,
                pixel_spacing_mm=0.45,
                slice_spacing_mm=1.4,
            ).datasets
        )[0]
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for plane in (mpr.axial, mpr.coronal, mpr.sagittal):
            plane(volume)
        times.append(1000 * (time.perf_counter() - start))
    return times[1:]


def _unlimited_ratios(pairs: int) -> list[float]:
    """The stack viewer's frames a second over the baseline's, the display not limiting.

    A second JupyterLab and a Chromium without its frame-rate limit (no 60 Hz
    display clock): the stack viewer is driven by wheel events at
    ``_UNLIMITED_RATE`` a second, the baseline at 60 a second, its own best (at
    more inputs a second its kernel falls behind and it paints fewer frames).
    Each pair alternates which goes first, after a warm-up of both.
    """
    from playwright.sync_api import sync_playwright

    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        lab = JupyterLab(Path(folder)).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=_UNLIMITED_FLAGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                name = lab.write_notebook("unlimited.ipynb", _CELLS)
                lab.open_and_run(page, name, ".b-mpr .lbx-mpr[data-painted='true']",
                                 timeout_ms=300_000)
                bench = Bench(page)
                page.wait_for_function(
                    "(el) => Number(el.dataset.slicesLoaded) >= "
                    "Number(el.querySelector('input.lbx-slider').max) + 1",
                    arg=bench.single.element_handle(), timeout=120_000)
                bench.wheel(bench.single, _UNLIMITED_RATE)  # warm-up of both sides
                bench.baseline(60)
                for index in range(pairs):
                    runs = {}
                    for side in (("stack", "png") if index % 2 == 0
                                 else ("png", "stack")):
                        if side == "stack":
                            runs[side] = bench.wheel(
                                bench.single, _UNLIMITED_RATE)["viewers"][0]["fps"]
                        else:
                            runs[side] = bench.baseline(60)["fps"]
                    ratios.append(runs["stack"] / max(runs["png"], 1e-9))
                    print(f"  display not limiting: stack {runs['stack']:.0f} fps at "
                          f"{_UNLIMITED_RATE:.0f} wheel events/s, baseline "
                          f"{runs['png']:.1f} fps at 60/s", flush=True)
                browser.close()
        finally:
            lab.stop()
    return ratios


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(pairs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    rows: dict[str, list[float]] = {
        key: []
        for key in ("fps30", "fps60", "fps120", "vs_baseline", "vs_tuned", "sync",
                    "vs_baseline_ceiling")
    }
    latencies: dict[str, list[float]] = {"wheel": [], "window": []}
    raw: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        lab = JupyterLab(Path(folder)).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=_CHROMIUM_FLAGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                name = lab.write_notebook("bench.ipynb", _CELLS)
                lab.open_and_run(
                    page,
                    name,
                    ".b-mpr .lbx-mpr[data-painted='true']",
                    timeout_ms=300_000,
                )
                bench = Bench(page)
                # Every viewer holds its whole series lossless before timing.
                for viewer in (bench.single, bench.current, bench.prior):
                    page.wait_for_function(
                        "(el) => Number(el.dataset.slicesLoaded) >= "
                        "Number(el.querySelector('input.lbx-slider').max) + 1",
                        arg=viewer.element_handle(),
                        timeout=120_000,
                    )
                bench.wheel(bench.single, 60)  # warm-up of both sides
                bench.baseline(60)
                bench.baseline(60, "b-tuned")
                retried = failed_pairs = 0
                for index in range(pairs):
                    record: dict[str, Any] = {}
                    # Alternate which side goes first so drift in load cancels.
                    order = (
                        ("single", "other") if index % 2 == 0 else ("other", "single")
                    )
                    # A run in which the viewer painted nothing at all is a
                    # stall, not a frame rate: the pair is measured once more,
                    # and both counts are reported.
                    for attempt in range(2):
                        for side in order:
                            if side == "single":
                                for rate in (30, 60, 120):
                                    record[f"single{rate}"] = bench.wheel(
                                        bench.single, rate
                                    )
                                record["window"] = bench.window_drag()
                            else:
                                record["baseline60"] = bench.baseline(60)
                                record["tuned60"] = bench.baseline(60, "b-tuned")
                                record["pair60"] = bench.wheel(
                                    bench.current, 60, others=(bench.prior,)
                                )
                        stalled = [r for r in (30, 60, 120) if not record[
                            f"single{r}"]["viewers"][0]["fps"]]
                        if not stalled or attempt:
                            break
                        retried += 1
                        print(f"  pair {index}: the viewer painted nothing at "
                              f"{stalled} wheel events/s; measuring the pair again",
                              flush=True)
                    if any(not record[f"single{r}"]["viewers"][0]["fps"]
                           for r in (30, 60, 120)):
                        failed_pairs += 1
                        print(f"  pair {index}: painted nothing twice; left out",
                              flush=True)
                        continue
                    for rate in (30, 60, 120):
                        fps = record[f"single{rate}"]["viewers"][0]["fps"]
                        rows[f"fps{rate}"].append(fps / min(rate, 60))
                        latencies["wheel"] += record[f"single{rate}"]["viewers"][0][
                            "latencies"
                        ]
                    single60 = record["single60"]["viewers"][0]["fps"]
                    rows["vs_baseline"].append(
                        single60 / max(record["baseline60"]["fps"], 1e-9)
                    )
                    rows["vs_tuned"].append(
                        single60 / max(record["tuned60"]["fps"], 1e-9)
                    )
                    # No viewer paints more than the display's 60 frames a second,
                    # so the ratio to the baseline can be at most 60 / its rate.
                    rows["vs_baseline_ceiling"].append(
                        60 / max(record["baseline60"]["fps"], 1e-9)
                    )
                    pair = min(v["fps"] for v in record["pair60"]["viewers"])
                    rows["sync"].append(pair / single60)
                    latencies["window"] += record["window"]["latencies"]
                    raw.append(
                        {
                            "single_fps": {
                                r: record[f"single{r}"]["viewers"][0]["fps"]
                                for r in (30, 60, 120)
                            },
                            "achieved_wheel_rate": {
                                r: record[f"single{r}"]["achieved_rate"]
                                for r in (30, 60, 120)
                            },
                            "baseline_fps": record["baseline60"]["fps"],
                            "tuned_baseline_fps": record["tuned60"]["fps"],
                            "pair_fps": [v["fps"] for v in record["pair60"]["viewers"]],
                        }
                    )
                browser_mpr = bench.mpr_reslice_ms()
                browser.close()
        finally:
            lab.stop()
    kernel_mpr = kernel_reslice_ms()
    unlimited = _unlimited_ratios(max(3, pairs // 2))
    load_after = os.getloadavg()
    results = {
        "fps_over_min_rate_60_30": _summary(rows["fps30"]),
        "fps_over_min_rate_60_60": _summary(rows["fps60"]),
        "fps_over_min_rate_60_120": _summary(rows["fps120"]),
        "stack_over_ipywidgets_png_at_60": _summary(rows["vs_baseline"]),
        "stack_over_tuned_png_at_60": _summary(rows["vs_tuned"]),
        "stack_over_ipywidgets_png_ceiling": _summary(rows["vs_baseline_ceiling"]),
        "stack_over_ipywidgets_png_unlimited": _summary(unlimited),
        "synchronised_pair_over_single": _summary(rows["sync"]),
        "wheel_to_paint_p95_ms": _p95(latencies["wheel"]),
        "window_drag_to_paint_p95_ms": _p95(latencies["window"]),
        "mpr_kernel_3_planes_ms": _summary(kernel_mpr),
        "mpr_browser_3_planes_ms": _summary(browser_mpr),
    }
    return {
        "pairs": pairs,
        "pairs_measured_again": retried,
        "pairs_left_out": failed_pairs,
        "results": results,
        "runs": raw,
        "load_before": load_before,
        "load_after": load_after,
        "cpus": os.cpu_count(),
        "versions": _versions(),
        "data": "real CT"
        if os.environ.get("LIGHTBOX_EXTRA_DATA")
        else "phantom 140 x 512 x 512",
    }


_GOALS = (  # (key, label, goal, direction)
    (
        "fps_over_min_rate_60_30",
        "frames painted / min(30, 60), wheel at 30/s",
        0.95,
        ">=",
    ),
    (
        "fps_over_min_rate_60_60",
        "frames painted / min(60, 60), wheel at 60/s",
        0.95,
        ">=",
    ),
    (
        "fps_over_min_rate_60_120",
        "frames painted / min(120, 60), wheel at 120/s",
        0.95,
        ">=",
    ),
    ("wheel_to_paint_p95_ms", "wheel-to-paint p95 (ms)", 50.0, "<="),
    (
        "stack_over_ipywidgets_png_at_60",
        "stack fps / ipywidgets Image PNG fps",
        4.0,
        ">=",
    ),
    (
        "stack_over_ipywidgets_png_unlimited",
        "stack fps / ipywidgets Image PNG fps, the display not limiting (wheel at "
        "240/s, baseline at 60/s, its best)",
        4.0,
        ">=",
    ),
    ("window_drag_to_paint_p95_ms", "window/level drag-to-paint p95 (ms)", 33.0, "<="),
    (
        "synchronised_pair_over_single",
        "two synchronised studies fps / single",
        0.9,
        ">=",
    ),
)


def goal_of(key: str, goal: float, results: dict[str, Any]) -> float:
    """The goal a row is judged by.

    The stack viewer's frame rate over the baseline's cannot pass 60 over the
    baseline's rate: no viewer paints faster than the display (60 frames a
    second), and the stack viewer reaches that (the rows above). Where the
    baseline runs faster than 15 frames a second, 4x is out of reach for any
    viewer, so the row asks for 0.95 of that ceiling instead.
    """
    if key == "stack_over_ipywidgets_png_at_60":
        ceiling = results["stack_over_ipywidgets_png_ceiling"]["median"]
        return min(goal, 0.95 * ceiling)
    return goal


def judge(report: dict[str, Any]) -> bool:
    """Write each goal row's goal and verdict into the results; True if all pass.

    A row passes when its median misses its goal by no more than 15 %.
    """
    results = report["results"]
    ok = True
    for key, _, goal, direction in _GOALS:
        value = results[key]
        median = value["median"] if isinstance(value, dict) else value
        target = goal_of(key, goal, results)
        met = median >= target if direction == ">=" else median <= target
        within = (median * _SLACK >= target if direction == ">="
                  else median <= target * _SLACK)
        if not isinstance(value, dict):
            value = results[key] = {"median": value, "min": None, "max": None}
        value.update(goal=f"{direction} {target:.3g}", met=met, within_slack=within)
        ok = ok and within
    return ok


def table(report: dict[str, Any]) -> str:
    """Markdown table of the report (after :func:`judge`)."""
    results = report["results"]
    lines = ["| measurement | median | min-max | goal | met |",
             "|---|---|---|---|---|"]
    for key, label, _, _ in _GOALS:
        value = results[key]
        spread = (f"{value['min']:.2f}-{value['max']:.2f}" if value["min"] is not None
                  else "(all events)")
        verdict = ("yes" if value["met"] else
                   "within 15 %" if value["within_slack"] else "NO")
        lines.append(f"| {label} | {value['median']:.2f} | {spread} | "
                     f"{value['goal']} | {verdict} |")
    ceiling = results["stack_over_ipywidgets_png_ceiling"]
    lines.append(
        f"| 60 / ipywidgets Image PNG fps (the ceiling of the ratio above) "
        f"| {ceiling['median']:.2f} | {ceiling['min']:.2f}-{ceiling['max']:.2f} "
        "| (information) | |"
    )
    tuned = results["stack_over_tuned_png_at_60"]
    lines.append(
        f"| stack fps / ipywidgets Image PNG fps, compress_level=1 "
        f"| {tuned['median']:.2f} | {tuned['min']:.2f}-{tuned['max']:.2f} "
        "| (information) | |"
    )
    kernel = results["mpr_kernel_3_planes_ms"]
    browser = results["mpr_browser_3_planes_ms"]
    lines.append(
        f"| MPR 3 planes, kernel reslice (ms, no transfer) | {kernel['median']:.1f} "
        f"| {kernel['min']:.1f}-{kernel['max']:.1f} | (information) | |"
    )
    lines.append(
        f"| MPR 3 planes, browser reslice + draw (ms) | {browser['median']:.1f} "
        f"| {browser['min']:.1f}-{browser['max']:.1f} | (information) | |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="7 pairs instead of 15")
    arguments = parser.parse_args()
    pairs = 7 if arguments.quick else 15
    report = run(pairs)
    report["profile"] = "quick" if arguments.quick else "full"
    ok = judge(report)
    _RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = _RESULTS / f"widgets-{report['profile']}-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, default=float))
    print(table(report))
    print(f"\npairs: {pairs}; measured again after a run that painted nothing: "
          f"{report['pairs_measured_again']}; left out: {report['pairs_left_out']}")
    print(
        f"load average {report['load_before']} -> {report['load_after']}; "
        f"written to {out.relative_to(_HERE.parent)}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
