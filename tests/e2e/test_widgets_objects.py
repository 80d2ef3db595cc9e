"""Non-image objects in JupyterLab in Chromium: SEG and RTSTRUCT layers, PDF pages,
presentation states (VOI LUT and Presentation LUT tables, bitmap shutters among
them), key images, photos, video and colour ultrasound cine.

The kernel builds the objects on a 16 x 16 x 4 CT phantom (the builders of
``tests/viewerlib/objects``), so each image pixel covers many screen pixels and a
pixel can be found on the canvas from the viewer's ``data-transform``. Three
viewers come from ``viewerlib.open`` on a folder, as a clinician opens them: the CT
(with its RTSTRUCT listed as a toggle), a colour ultrasound cine and a folder of
photographs.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from e2e_support import ARTIFACTS
from widget_fixtures import JupyterLab

pytestmark = pytest.mark.browser

_OBJECTS = Path(__file__).resolve().parents[1] / "viewerlib" / "objects"
_WIDGETS = Path(__file__).resolve().parents[1] / "viewerlib" / "widgets"
sys.path.insert(0, str(_OBJECTS))
sys.path.insert(0, str(_WIDGETS))
_XSS = "<img src=x onerror=alert(1)>"
# Opacity of a filled segment (overlays.js FILL_ALPHA).
_FILL_ALPHA = 0.45

_SETUP = f"""\
import sys
sys.path.insert(0, {str(_OBJECTS)!r})
import numpy as np
import highdicom as hd
from object_builders import *
from viewerlib.widgets.overlays import AnnotatedStackViewer
from viewerlib.widgets.document import DocumentViewer
from viewerlib.widgets.media import MediaViewer
from viewerlib.objects.media import MediaFrames
images, volume = phantom()
sys.path.insert(0, {str(_WIDGETS)!r})
from pathlib import Path
from PIL import Image
import viewerlib
from viewerlib.sources.local import FolderSource
from widget_builders import us_cine, write
"""
# sRGB blue in CIELab D50 (29.57, 68.30, -112.03), scaled as PS3.3 C.10.7.1.1.
_BLUE_LAB = [round(29.57 * 65535 / 100), round((68.30 + 128) * 65535 / 255),
             round((-112.03 + 128) * 65535 / 255)]
# Colours of the two photographs in the folder (a JPEG and a PNG).
_PHOTO_COLORS = {"wound.jpg": (200, 60, 30), "wound-later.png": (30, 90, 210)}

_CELLS = [
    _SETUP,
    # A segment on slice 1 (rows 3-5, columns 4-8) and an RT ROI on slice 1 whose
    # contour edges at columns 9.5-13.5, rows 7.5-11.5 hold columns 10-13, rows 8-11.
    f"""\
masks = np.zeros((4, 16, 16, 1), np.uint8)
masks[1, 3:6, 4:9, 0] = 1
seg = segmentation(images, masks, [{_XSS!r}], [(55.0, 70.0, 50.0)])
square = [(x_mm(9.5), y_mm(7.5)), (x_mm(13.5), y_mm(7.5)), (x_mm(13.5), y_mm(11.5)),
          (x_mm(9.5), y_mm(11.5))]
rt = structure_set(images, [("Tumour", (255, 0, 0), [(None, square, 1)])])
overlay = AnnotatedStackViewer.from_volume(volume, window=(40.0, 80.0))
overlay.add_segmentation(seg)
overlay.add_structure_set(rt)
overlay.slice_index = 1
overlay.add_class('t-seg')
overlay""",
    """\
document = DocumentViewer(encapsulated_pdf(pdf_bytes([(255, 0, 0), (0, 0, 255)])),
                          dpi=72)
document.add_class('t-pdf')
document""",
    f"""\
annotation = hd.pr.GraphicAnnotation(
    referenced_images=[images[2]],
    graphic_layer=hd.pr.GraphicLayer(layer_name="LAYER1", order=1),
    graphic_objects=[hd.pr.GraphicObject(
        "POLYLINE", np.array([[2.0, 3.0], [10.0, 3.0]]), "PIXEL")],
    text_objects=[hd.pr.TextObject({_XSS!r}, "PIXEL", anchor_point=(4.0, 12.0))])
ps = presentation_state(images, (35.0, 90.0), [annotation])
ps.ImageRotation = 90
area = ps.DisplayedAreaSelectionSequence[0]
area.DisplayedAreaTopLeftHandCorner = [3, 5]
area.DisplayedAreaBottomRightHandCorner = [10, 12]
area.PresentationSizeMode = "MAGNIFY"
area.PresentationPixelMagnificationRatio = 8.0
del area.PresentationPixelAspectRatio
ps.ShutterShape = "RECTANGULAR"
ps.ShutterLeftVerticalEdge, ps.ShutterRightVerticalEdge = 3, 10
ps.ShutterUpperHorizontalEdge, ps.ShutterLowerHorizontalEdge = 5, 12
# sRGB red in CIELab D50 (54.29, 80.80, 69.89), scaled as PS3.3 C.10.7.1.1 says.
ps.ShutterPresentationColorCIELabValue = [round(54.29 * 65535 / 100),
    round(208.80 * 65535 / 255), round(197.89 * 65535 / 255)]
gsps = AnnotatedStackViewer.from_volume(volume)
gsps.apply_presentation_state(ps)
gsps.add_class('t-gsps')
gsps""",
    # A presentation state whose VOI is a table (modality value -4 + k to grey 5 k),
    # with a Presentation LUT table (position j of 256 to j * j // 64 of 1023) and a
    # bitmap shutter in blue: an 8 x 8 overlay from image row 3, column 2 (from 1),
    # its first four rows set and then only its first column.
    f"""\
voi_ps = voi_lut_presentation_state(images, -4, [5 * k for k in range(48)])
set_presentation_lut(voi_ps, [j * j // 64 for j in range(256)])
set_bitmap_shutter(voi_ps, bytes([0xFF] * 4 + [0x01] * 4), 8, 8, origin=(3, 2),
                   lab={_BLUE_LAB!r})
voilut = AnnotatedStackViewer.from_volume(volume)
voilut.apply_presentation_state(voi_ps)
voilut.slice_index = 2
voilut.add_class('t-voilut')
voilut""",
    """\
kos = AnnotatedStackViewer.from_volume(volume)
kos.mark_key_images(key_objects(images, [1, 3]))
kos.add_class('t-kos')
kos""",
    # The CT as a clinician opens it: its RTSTRUCT (which names only its Frame of
    # Reference) is listed as a toggle. Slices 5 mm thick every 4 mm.
    """\
ct_folder = FOLDER / "ct"
square = [(x_mm(2.5), y_mm(3.5)), (x_mm(6.5), y_mm(3.5)), (x_mm(6.5), y_mm(7.5)),
          (x_mm(2.5), y_mm(7.5))]
for ds in images:
    ds.SliceThickness = 5.0
write([*images, structure_set(images, [("Tumour", (255, 0, 0),
                                        [(None, square, 2)])])], ct_folder)
opened = viewerlib.open(images[0].StudyInstanceUID, FolderSource(ct_folder),
                        window=(40.0, 80.0))
opened.slice_index = 2
opened.add_class('t-opened')
opened""",
    # A colour ultrasound cine: six solid colours, 100 ms apart.
    """\
echo_folder = FOLDER / "echo"
loop = us_cine(frame_time_ms=100.0)
write([loop], echo_folder)
echo = viewerlib.open(loop.StudyInstanceUID, FolderSource(echo_folder))
echo.add_class('t-echo')
echo""",
    # Photographs dropped in a folder: one study of their own.
    f"""\
photo_folder = FOLDER / "Wound clinic"
photo_folder.mkdir()
for name, color in {_PHOTO_COLORS!r}.items():
    Image.new("RGB", (40, 30), color).save(photo_folder / name, quality=95)
photos_source = FolderSource(photo_folder)
(photo_series,) = photos_source.search_for_series()
photos = viewerlib.open(photo_series.StudyInstanceUID, photos_source,
                        series=photo_series)
photos.add_class('t-photos')
photos""",
    """\
frames = [np.full((30, 40, 3), color, np.uint8)
          for color in ((200, 40, 40), (40, 200, 40), (40, 40, 200))]
clip = MediaViewer(MediaFrames(frames, 10.0, "video"))
clip.add_class('t-media')
clip""",
]

_LIVER = "dcmqi/segmentations"


def _cells(folder: Path) -> list[str]:
    """The cells, with the real liver SEG on its CT when the corpus is there.

    The folders the kernel writes (a CT, an echo, photographs) go under `folder`.
    """
    cells = list(_CELLS)
    cells[0] += f"FOLDER = Path({str(folder)!r})\n"
    extra = os.environ.get("LIGHTBOX_EXTRA_DATA")
    if extra and (Path(extra) / _LIVER).is_dir():
        folder = str(Path(extra) / _LIVER)
        cells.insert(-1, f"""\
import glob, pydicom
from viewerlib.volume.volume import read_series
ct = read_series(sorted(glob.glob({folder!r} + "/ct-3slice/*.dcm")))[0]
liver = AnnotatedStackViewer.from_volume(ct, window=(40.0, 400.0))
liver.add_segmentation(pydicom.dcmread({folder!r} + "/liver.dcm"))
liver.slice_index = 1
liver.add_class('t-liver')
liver""")
    return cells


# RGBA at canvas device pixels.
_RGBA = """
(canvas, points) => {
  const context = canvas.getContext("2d");
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  return points.map(([x, y]) => {
    const i = 4 * (Math.floor(y) * canvas.width + Math.floor(x));
    return [data[i], data[i + 1], data[i + 2], data[i + 3]];
  });
}
"""

# Count the blob URLs the page makes, and what they hold.
_WATCH_BLOBS = """
window.lightboxBlobs = [];
const original = URL.createObjectURL;
URL.createObjectURL = function (object) {
  window.lightboxBlobs.push(object && object.type !== undefined ? object.type : "?");
  return original.apply(this, arguments);
};
"""


@pytest.fixture(scope="module")
def page(browser, jupyter_lab: JupyterLab,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(_WATCH_BLOBS)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.lightbox_dialogs = dialogs
    name = jupyter_lab.write_notebook(
        "objects.ipynb", _cells(tmp_path_factory.mktemp("opened")))
    try:
        jupyter_lab.open_and_run(
            page, name, ".t-media .lbx-media[data-painted='true']", timeout_ms=120_000
        )
        yield page
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets-objects-FAILED.png"))
        raise
    finally:
        context.close()
        jupyter_lab.shut_down_kernels()


def _stack(page, name: str):
    viewer = page.locator(f".t-{name} .lbx-stack").first
    viewer.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.dataset.painted === 'true'",
                           arg=viewer.element_handle())
    return viewer


def _device(viewer, x: float, y: float) -> list[float]:
    """Canvas device pixel of image point (x = column, y = row), edges at integers."""
    a, b, c, d, e, f = json.loads(viewer.get_attribute("data-transform"))
    return [a * x + c * y + e, b * x + d * y + f]


def _centre_rgb(viewer, row: int, column: int) -> list[int]:
    """Displayed RGB at the centre of image pixel (row, column)."""
    point = _device(viewer, column + 0.5, row + 0.5)
    return viewer.locator("canvas").first.evaluate(_RGBA, [point])[0][:3]


def _wait_draws(page, viewer, more_than: int) -> None:
    page.wait_for_function("([el, n]) => Number(el.dataset.draws || 0) > n",
                           arg=[viewer.element_handle(), more_than])


def test_seg_layer_paints_its_voxels_and_toggles_off(page) -> None:
    viewer = _stack(page, "seg")
    page.wait_for_function("(el) => el.dataset.layersLoaded === '2'",
                           arg=viewer.element_handle())
    page.wait_for_function("(el) => el.dataset.sliceIndex === '1'",
                           arg=viewer.element_handle())
    inside = [(3, 4), (5, 8), (4, 6)]
    outside = [(2, 4), (6, 8), (4, 3), (4, 9)]
    shown_on = {p: _centre_rgb(viewer, *p) for p in inside + outside}
    ARTIFACTS.mkdir(exist_ok=True)
    viewer.screenshot(path=str(ARTIFACTS / "widgets-objects-seg.png"))

    toggle = viewer.locator(".lbx-layer[data-layer='0'] input")
    draws = int(viewer.get_attribute("data-draws"))
    toggle.click()
    _wait_draws(page, viewer, draws)
    page.wait_for_function("(el) => el.dataset.layersShown === '1'",
                           arg=viewer.element_handle())
    shown_off = {p: _centre_rgb(viewer, *p) for p in inside + outside}

    # The colour the kernel sent (its CIELab conversion is tested in the kernel).
    swatch = viewer.locator(".lbx-layer[data-layer='0'] .lbx-swatch")
    color = [int(v) for v in re.findall(r"\d+", swatch.evaluate(
        "(el) => getComputedStyle(el).backgroundColor"))][:3]
    assert color[0] > 200 > 100 > max(color[1:]), "CIELab (55, 70, 50) is red"
    for point in inside:
        grey = shown_off[point]
        assert grey[0] == grey[1] == grey[2], "the image underneath is grey"
        expected = [round((1 - _FILL_ALPHA) * grey[0] + _FILL_ALPHA * c) for c in color]
        difference = [a - b for a, b in zip(shown_on[point], expected, strict=True)]
        assert max(map(abs, difference)) <= 2, point
    for point in outside:
        assert shown_on[point] == shown_off[point], point
    # The segment label is hostile markup: shown as text, never parsed.
    name = viewer.locator(".lbx-layer[data-layer='0'] .lbx-layer-name")
    assert name.text_content() == _XSS
    assert viewer.locator("img").count() == 0
    assert page.lightbox_dialogs == []


def test_rtstruct_roi_is_drawn_as_its_outline(page) -> None:
    viewer = _stack(page, "seg")
    # Rows 8-11, columns 10-13: the border is red, the inside (rows 9-10,
    # columns 11-12) shows the image.
    for point in [(8, 10), (8, 13), (11, 11), (9, 10), (10, 13)]:
        assert _centre_rgb(viewer, *point) == [255, 0, 0], point
    for point in [(9, 11), (10, 12)]:
        red, green, blue = _centre_rgb(viewer, *point)
        assert red == green == blue, point


def test_pdf_pages_are_painted_and_turned_without_blob_urls(page) -> None:
    viewer = page.locator(".t-pdf .lbx-document").first
    viewer.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.dataset.page === '0'",
                           arg=viewer.element_handle())
    canvas = viewer.locator("canvas")
    # Page images are 200 x 100 at 72 dpi; the canvas holds them pixel for pixel.
    assert canvas.evaluate("(c) => [c.width, c.height]") == [200, 100]
    assert canvas.evaluate(_RGBA, [[100, 50], [5, 5]]) == [[255, 0, 0, 255]] * 2
    assert "Page 1 / 2" in viewer.locator(".lbx-doc-counter").text_content()
    ARTIFACTS.mkdir(exist_ok=True)
    viewer.screenshot(path=str(ARTIFACTS / "widgets-objects-pdf.png"))

    viewer.locator(".lbx-doc-next").click()
    page.wait_for_function("(el) => el.dataset.page === '1'",
                           arg=viewer.element_handle())
    assert canvas.evaluate(_RGBA, [[100, 50]]) == [[0, 0, 255, 255]]
    assert viewer.locator(".lbx-doc-next").is_disabled()

    # The PDF never became a blob, a frame, an embed or a link in the page, and
    # nothing went to browser storage.
    assert "application/pdf" not in page.evaluate("() => window.lightboxBlobs")
    assert viewer.locator("iframe, embed, object, a").count() == 0
    stored = page.evaluate("""async () => ({
        idb: (await indexedDB.databases()).map((d) => d.name),
        caches: await caches.keys(),
        sizes: [...Object.values(localStorage), ...Object.values(sessionStorage)]
          .map((v) => v.length)})""")
    assert stored["idb"] == [] and stored["caches"] == [], stored
    # JupyterLab keeps a few small settings; one page image would be 60 kB.
    assert all(size < 20_000 for size in stored["sizes"]), stored


def test_presentation_state_turns_magnifies_shutters_and_annotates(page) -> None:
    viewer = _stack(page, "gsps")
    page.wait_for_function("(el) => el.dataset.displayedArea !== undefined",
                           arg=viewer.element_handle())
    page.wait_for_function("(el) => el.dataset.sliceIndex === '2'",
                           arg=viewer.element_handle())
    ratio = viewer.evaluate("() => window.devicePixelRatio")
    a, b, c, d, e, f = json.loads(viewer.get_attribute("data-transform"))
    # A clockwise quarter turn: +column runs down the screen, +row to the left.
    assert abs(a) < 1e-6 and b > 0 and c < 0 and abs(d) < 1e-6
    # MAGNIFY 8: eight CSS pixels per image pixel.
    assert math.hypot(a, b) == pytest.approx(8 * ratio, rel=1e-6)
    # The displayed area (columns 3-10, rows 5-12) is centred: its centre, at
    # PIXEL (6, 8), is at the middle of the canvas.
    width, height = viewer.locator("canvas").evaluate("(c) => [c.width, c.height]")
    x, y = _device(viewer, 6.0, 8.0)
    assert (x, y) == (pytest.approx(width / 2, abs=1), pytest.approx(height / 2, abs=1))
    assert viewer.get_attribute("data-window-center") == "35"
    assert viewer.get_attribute("data-window-width") == "90"
    # The polyline from (2, 3) to (10, 3) is drawn in the layer's white.
    x, y = _device(viewer, 6.0, 3.0)
    near = viewer.locator("canvas").evaluate(
        _RGBA, [[x + dx, y + dy] for dx in (-1, 0, 1) for dy in (-1, 0, 1)])
    assert max(min(p[:3]) for p in near) >= 250
    ARTIFACTS.mkdir(exist_ok=True)
    viewer.screenshot(path=str(ARTIFACTS / "widgets-objects-gsps.png"))
    # The shutter shows columns 3-10, rows 5-12 (from 1) and covers the rest red.
    for row, column in [(1, 5), (8, 0), (8, 12), (14, 6)]:
        assert _centre_rgb(viewer, row, column) == [255, 0, 0], (row, column)
    for row, column in [(4, 2), (8, 5), (11, 9)]:
        red, green, blue = _centre_rgb(viewer, row, column)
        assert red == green == blue, (row, column)
    text = viewer.locator(".lbx-annotation")
    assert text.count() == 1 and text.text_content() == _XSS
    assert viewer.locator("img").count() == 0
    assert page.lightbox_dialogs == []


def test_presentation_state_voi_lut_table_and_bitmap_shutter_are_shown(page) -> None:
    from object_builders import phantom

    _, volume = phantom()
    viewer = _stack(page, "voilut")
    # Slice 2 painted losslessly through the VOI LUT table (id 0), with the
    # Presentation LUT table and the shutter's mask at hand.
    page.wait_for_function(
        "(el) => el.dataset.sliceIndex === '2' && el.dataset.voi === 'lut:0'"
        " && el.dataset.presentationReady === 'true'"
        " && el.dataset.quality === 'lossless'", arg=viewer.element_handle())
    ARTIFACTS.mkdir(exist_ok=True)
    viewer.screenshot(path=str(ARTIFACTS / "widgets-objects-voilut-shutter.png"))

    # Every pixel of the slice, worked by hand from the standard. The shutter
    # covers rows 2-5 by columns 1-8 and column 1 of rows 6-9 (from 0). Elsewhere:
    # the VOI LUT entry k = clip(v + 4, 0, 47) gives grey 5 k (8 bits: 5 k of
    # 255); the Presentation LUT entry at position 5 k * 255 / 255 is
    # (5 k)^2 // 64 of 1023, shown as round(that * 255 / 1023).
    points, expected = [], []
    for row in range(16):
        for column in range(16):
            points.append(_device(viewer, column + 0.5, row + 0.5))
            if 2 <= row <= 5 and 1 <= column <= 8 or 6 <= row <= 9 and column == 1:
                expected.append([0, 0, 255])
                continue
            grey = 5 * min(47, max(0, int(volume.voxels[2, row, column]) + 4))
            level = round(grey * grey // 64 * 255 / 1023)
            expected.append([level] * 3)
    shown = [rgba[:3] for rgba in viewer.locator("canvas").first.evaluate(
        _RGBA, points)]
    wrong = [(divmod(i, 16), s, e) for i, (s, e) in enumerate(
        zip(shown, expected, strict=True)) if s != e]
    assert wrong == []
    corner = viewer.locator(".lbx-bl").inner_text()
    assert corner.startswith("VOI LUT TEST LUT") and "P-LUT TEST P-LUT" in corner


def test_key_images_are_listed_marked_and_jumped_to(page) -> None:
    viewer = _stack(page, "kos")
    keys = viewer.locator(".lbx-key")
    assert keys.all_text_contents() == ["\u2605 Im 2", "\u2605 Im 4"]
    page.wait_for_function("(el) => el.dataset.keyImage === 'true'",
                           arg=viewer.element_handle())
    assert "Of Interest" in viewer.locator(".lbx-key-badge").text_content()
    keys.nth(1).click()
    page.wait_for_function("(el) => el.dataset.sliceIndex === '3'",
                           arg=viewer.element_handle())
    viewer.press("ArrowUp")
    page.wait_for_function("(el) => el.dataset.sliceIndex === '2'",
                           arg=viewer.element_handle())
    page.wait_for_function("(el) => el.dataset.keyImage === 'false'",
                           arg=viewer.element_handle())
    assert viewer.locator(".lbx-key-badge").text_content() == ""


def test_video_frames_come_from_the_kernel_and_step(page) -> None:
    viewer = page.locator(".t-media .lbx-media").first
    viewer.scroll_into_view_if_needed()
    canvas = viewer.locator("canvas")

    def centre() -> list[int]:
        scale, x0, y0 = json.loads(viewer.get_attribute("data-fit"))
        ratio = viewer.evaluate("() => window.devicePixelRatio")
        point = [(x0 + 20 * scale) * ratio, (y0 + 15 * scale) * ratio]
        return canvas.evaluate(_RGBA, [point])[0][:3]

    assert centre() == [200, 40, 40]
    viewer.locator(".lbx-media-button", has_text="\u25b6").click()
    page.wait_for_function("(el) => el.dataset.frameIndex === '1'",
                           arg=viewer.element_handle())
    assert centre() == [40, 200, 40]
    assert "Frame 2 / 3" in viewer.locator(".lbx-media-counter").text_content()


def test_opened_ct_lists_its_rtstruct_and_toggles_the_outline(page) -> None:
    viewer = _stack(page, "opened")
    page.wait_for_function("(el) => el.dataset.sliceIndex === '2'",
                           arg=viewer.element_handle())
    # The toggles are drawn anew whenever the kernel changes them: found by selector.
    selector = ".t-opened .lbx-object[data-modality='RTSTRUCT']"
    toggle = page.locator(selector)
    assert toggle.text_content() == "Structures: TEST"
    assert toggle.get_attribute("aria-pressed") == "false"
    assert viewer.get_attribute("data-study-objects") == "1"
    # (0018,0050) Slice Thickness 5 mm, and the 4 mm spacing apart from it. The
    # corner is written at the next paint after the slice index moves: waited for.
    page.wait_for_function(
        "(el) => el.querySelector('.lbx-tr').innerText.includes('Spacing')",
        arg=viewer.element_handle(), timeout=30_000)
    assert "Thick 5.00 mm\nSpacing 4.00 mm" in viewer.locator(".lbx-tr").inner_text()
    # Contour edges at columns 2.5-6.5, rows 3.5-7.5: the ring of rows 4-7 by
    # columns 3-6 is the outline; rows 5-6 by columns 4-5 stay the image.
    ring = [(4, 3), (4, 6), (7, 3), (7, 5), (5, 3), (6, 6)]
    inside = [(5, 4), (6, 5)]
    before = {p: _centre_rgb(viewer, *p) for p in ring + inside}
    assert all(r == g == b for r, g, b in before.values()), before

    toggle.click()
    page.wait_for_function("(el) => el.dataset.layersLoaded === '1' "
                           "&& el.dataset.layersShown === '0'",
                           arg=viewer.element_handle(), timeout=30_000)
    page.wait_for_selector(selector + "[aria-pressed='true']")
    on = {p: _centre_rgb(viewer, *p) for p in ring + inside}
    viewer.screenshot(path=str(ARTIFACTS / "widgets-objects-opened-rtstruct.png"))
    for point in ring:
        assert on[point] == [255, 0, 0], point
    for point in inside:
        assert on[point] == before[point], point
    assert viewer.locator(".lbx-layer-name").all_text_contents() == ["Tumour"]

    toggle.click()
    page.wait_for_selector(selector + "[aria-pressed='false']", timeout=30_000)
    page.wait_for_function("(el) => el.dataset.layersShown === ''",
                           arg=viewer.element_handle())
    off = {p: _centre_rgb(viewer, *p) for p in ring + inside}
    assert off == before


def _media(page, name: str):
    viewer = page.locator(f".t-{name} .lbx-media").first
    viewer.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.dataset.painted === 'true'",
                           arg=viewer.element_handle())
    return viewer


def _media_centre(viewer, rows: int, columns: int) -> list[int]:
    """Displayed RGB at the centre of a frame of `rows` x `columns`."""
    scale, x0, y0 = json.loads(viewer.get_attribute("data-fit"))
    ratio = viewer.evaluate("() => window.devicePixelRatio")
    point = [(x0 + columns / 2 * scale) * ratio, (y0 + rows / 2 * scale) * ratio]
    return viewer.locator("canvas").evaluate(_RGBA, [point])[0][:3]


# Record every frame the media viewer paints: [time ms, frame index].
_WATCH_FRAMES = """(el) => {
  el.lightboxFrames = [];
  new MutationObserver(() => el.lightboxFrames.push(
    [performance.now(), Number(el.dataset.frameIndex)])).observe(el,
    { attributes: true, attributeFilter: ["data-frame-index"] });
}"""


def _play_and_watch(page, viewer, changes: int) -> list[list[float]]:
    """Press Play, wait for `changes` frames, press Pause; the frames painted."""
    viewer.evaluate(_WATCH_FRAMES)
    play = viewer.locator(".lbx-media-play")
    assert play.is_visible() and play.text_content() == "Play"
    play.click()
    page.wait_for_function(f"(el) => el.lightboxFrames.length >= {changes}",
                           arg=viewer.element_handle(), timeout=30_000)
    play.click()
    page.wait_for_function("(el) => el.dataset.playing === 'false'",
                           arg=viewer.element_handle())
    return viewer.evaluate("(el) => el.lightboxFrames")


def test_colour_echo_cine_shows_and_plays_at_its_frame_time(page) -> None:
    from widget_builders import CINE_COLORS

    viewer = _media(page, "echo")
    assert viewer.get_attribute("data-kind") == "cine"
    assert "Frame 1 / 6" in viewer.locator(".lbx-media-counter").text_content()
    assert _media_centre(viewer, 24, 32) == list(CINE_COLORS[0])
    assert "US Se 1 Apical four chamber" in viewer.locator(
        ".lbx-media-head").text_content()
    viewer.screenshot(path=str(ARTIFACTS / "widgets-objects-echo.png"))

    painted = _play_and_watch(page, viewer, 12)

    # Every frame in turn, looping, at (0018,1063) Frame Time 100 ms: never faster
    # than 10 frames per second (slower only when the machine is busy).
    indexes = [int(index) for _, index in painted]
    assert all((b - a) % 6 == 1 for a, b in itertools.pairwise(indexes)), indexes
    rate = (len(painted) - 1) / ((painted[-1][0] - painted[0][0]) / 1000)
    assert 3.0 < rate <= 10.5, rate
    shown = int(viewer.get_attribute("data-frame-index"))
    assert _media_centre(viewer, 24, 32) == list(CINE_COLORS[shown])


def test_video_play_advances_the_frames(page) -> None:
    viewer = _media(page, "media")
    painted = _play_and_watch(page, viewer, 4)
    indexes = [int(index) for _, index in painted]
    assert all((b - a) % 3 == 1 for a, b in itertools.pairwise(indexes)), indexes
    colors = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]
    shown = int(viewer.get_attribute("data-frame-index"))
    assert _media_centre(viewer, 30, 40) == list(colors[shown])


def test_photos_in_a_folder_are_shown_in_the_viewer(page) -> None:
    viewer = _media(page, "photos")
    assert viewer.get_attribute("data-kind") == "photo"
    assert viewer.locator(".lbx-media-play").is_hidden()
    assert "Photo 1 / 2" in viewer.locator(".lbx-media-counter").text_content()
    assert "Wound clinic" in viewer.locator(".lbx-media-head").text_content()
    first = _media_centre(viewer, 30, 40)
    viewer.screenshot(path=str(ARTIFACTS / "widgets-objects-photos.png"))
    viewer.locator(".lbx-media-button", has_text="\u25b6").click()
    page.wait_for_function("(el) => el.dataset.frameIndex === '1'",
                           arg=viewer.element_handle())
    second = _media_centre(viewer, 30, 40)
    # The JPEG within a few levels, the PNG exactly; in either order.
    expected = sorted(_PHOTO_COLORS.values())
    for shown, color in zip(sorted([first, second]), expected, strict=True):
        assert max(abs(a - b) for a, b in zip(shown, color, strict=True)) <= 3
    assert "Photo 2 / 2" in viewer.locator(".lbx-media-counter").text_content()


@pytest.mark.extra_data
def test_real_liver_seg_is_painted_over_its_ct(page, extra_data: Path) -> None:
    import pydicom
    from scipy import ndimage

    from viewerlib.objects.segmentation import read_segmentation
    from viewerlib.volume.volume import read_series

    folder = extra_data / _LIVER
    ct = read_series(sorted((folder / "ct-3slice").glob("*.dcm")))[0]
    (layer,) = read_segmentation(pydicom.dcmread(folder / "liver.dcm"), ct)
    # Pixels deep inside the liver, so that neighbours (the view may shrink the
    # image) are inside too, and pixels far outside it.
    mask = layer.masks[1]
    deep = np.argwhere(ndimage.binary_erosion(mask, iterations=4))
    far = np.argwhere(~ndimage.binary_dilation(mask, iterations=4))
    inside = [tuple(deep[i]) for i in np.linspace(0, len(deep) - 1, 5).astype(int)]
    outside = [tuple(far[i]) for i in np.linspace(0, len(far) - 1, 5).astype(int)]

    viewer = _stack(page, "liver")
    page.wait_for_function("(el) => el.dataset.layersLoaded === '1'",
                           arg=viewer.element_handle())
    shown_on = {p: _centre_rgb(viewer, *p) for p in inside + outside}
    draws = int(viewer.get_attribute("data-draws"))
    viewer.locator(".lbx-layer[data-layer='0'] input").click()
    _wait_draws(page, viewer, draws)
    shown_off = {p: _centre_rgb(viewer, *p) for p in inside + outside}

    assert viewer.locator(".lbx-layer-name").text_content() == "Liver"
    color = list(layer.color)
    for point in inside:
        grey = shown_off[point][0]
        expected = [round((1 - _FILL_ALPHA) * grey + _FILL_ALPHA * c) for c in color]
        difference = [a - b for a, b in zip(shown_on[point], expected, strict=True)]
        assert max(map(abs, difference)) <= 2, point
    for point in outside:
        assert shown_on[point] == shown_off[point], point
