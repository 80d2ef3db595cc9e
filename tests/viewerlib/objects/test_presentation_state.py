"""A GSPS's VOI LUT tables, Presentation LUT and bitmap shutter, worked by hand.

The tables are small enough to follow on paper: the VOI LUT maps modality value
``-4 + k`` to entry ``5 k`` (8 bits, so grey level 5 k), and the Presentation LUT
maps the VOI output's position ``j`` (of 256) to ``j * j // 64`` of 1023 (10 bits).
"""

from __future__ import annotations

import numpy as np
import pytest
from object_builders import (
    phantom,
    presentation_state,
    set_bitmap_shutter,
    set_presentation_lut,
    voi_lut_presentation_state,
)
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from viewerlib.objects.presentation_state import read_presentation_state
from viewerlib.objects.references import SliceIndex
from viewerlib.widgets.overlays import AnnotatedStackViewer

_FIRST = -4
_VOI_ENTRIES = [5 * k for k in range(48)]
_P_ENTRIES = [j * j // 64 for j in range(256)]
# sRGB blue in CIELab D50 (29.57, 68.30, -112.03), scaled as PS3.3 C.10.7.1.1.
_BLUE_LAB = [round(29.57 * 65535 / 100), round((68.30 + 128) * 65535 / 255),
             round((-112.03 + 128) * 65535 / 255)]


def _capture(widget, monkeypatch) -> list:
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(
        widget, "send", lambda content, buffers=None: sent.append((content, buffers)))
    return sent


def test_voi_lut_table_maps_modality_values_from_its_first_value() -> None:
    images, volume = phantom()
    ps = voi_lut_presentation_state(images, _FIRST, _VOI_ENTRIES)

    state = read_presentation_state(ps, SliceIndex(volume))

    (voi,) = state.voi
    assert (voi.slices, voi.window, voi.lut_first, voi.explanation) == (
        None, None, -4, "TEST LUT")
    assert state.window is None and state.warnings == []
    # k = clip(v + 4, 0, 47), grey 5 k of 255 (8-bit entries: scale 255 / 255).
    values = np.array([-10, -4, 0, 32, 43, 50])
    assert state.display_values(values, 0).tolist() == [0, 0, 20, 180, 235, 235]
    assert voi.lut is not None and voi.lut[[0, 36, 47]].tolist() == [0.0, 180.0, 235.0]


def test_presentation_lut_table_follows_the_voi_and_replaces_the_shape() -> None:
    images, volume = phantom()
    ps = voi_lut_presentation_state(images, _FIRST, _VOI_ENTRIES)
    set_presentation_lut(ps, _P_ENTRIES)

    state = read_presentation_state(ps, SliceIndex(volume))

    # v = 32: grey 180, position 180 * 255 / 255 = 180, entry 180 * 180 // 64 = 506,
    # 506 * 255 / 1023 = 126.13 -> 126. v = 0: grey 20, entry 6, 1.50 -> 1.
    # v = 43: grey 235, entry 862, 214.87 -> 215. v = -10: grey 0, entry 0.
    values = np.array([32, 0, 43, -10])
    assert state.display_values(values, 0).tolist() == [126, 1, 215, 0]
    assert state.invert is False
    assert state.presentation_lut is not None and len(state.presentation_lut) == 256
    assert state.presentation_lut_explanation == "TEST P-LUT"


def test_presentation_lut_with_a_window_and_the_viewer_gets_both_tables(
        monkeypatch) -> None:
    images, volume = phantom()
    ps = presentation_state(images, (40.0, 80.0))
    set_presentation_lut(ps, _P_ENTRIES)
    viewer = AnnotatedStackViewer.from_volume(volume)
    sent = _capture(viewer, monkeypatch)

    state = viewer.apply_presentation_state(ps)

    # LINEAR 40/80, v = 40: ((40 - 39.5) / 79 + 0.5) * 255 = 129.11, position
    # rint(129.11) = 129, entry 129 * 129 // 64 = 260, 260 * 255 / 1023 = 64.81 -> 65.
    assert state.display_values(np.array([40]), 1).tolist() == [65]
    # One window for every image stays the viewer's own, to drag as usual.
    assert viewer.presentation_voi == []
    assert (viewer.window_center, viewer.window_width) == (40.0, 80.0)
    ((content, buffers),) = sent
    assert content == {"type": "lut", "id": 0, "first": 0, "entries": 256}
    table = np.frombuffer(bytes(buffers[0]), "<f4")
    assert table[129] == pytest.approx(260 * 255 / 1023, abs=1e-4)
    assert viewer.presentation_lut == {"lut": 0, "explanation": "TEST P-LUT"}
    assert viewer.invert is False
    # Shown again (a toggle off and on), the table the page holds is named again.
    viewer.apply_presentation_state(ps)
    assert len(sent) == 1 and viewer.presentation_lut["lut"] == 0


def test_voi_items_apply_to_the_images_they_reference(monkeypatch) -> None:
    images, volume = phantom()
    ps = voi_lut_presentation_state(images, _FIRST, _VOI_ENTRIES)
    table_item = ps.SoftcopyVOILUTSequence[0]
    window_item = Dataset()
    window_item.WindowCenter, window_item.WindowWidth = 40.0, 80.0
    for item, shown in ((window_item, images[:2]), (table_item, images[2:])):
        references = []
        for image in shown:
            reference = Dataset()
            reference.ReferencedSOPClassUID = image.SOPClassUID
            reference.ReferencedSOPInstanceUID = image.SOPInstanceUID
            references.append(reference)
        item.ReferencedImageSequence = DicomSequence(references)
    ps.SoftcopyVOILUTSequence = DicomSequence([window_item, table_item])
    viewer = AnnotatedStackViewer.from_volume(volume)
    viewer.slice_index = 3
    sent = _capture(viewer, monkeypatch)

    state = viewer.apply_presentation_state(ps)

    assert [voi.slices for voi in state.voi] == [[0, 1], [2, 3]]
    # Slice 1 by the window: v = 0 is at the ramp's bottom end, 0 <= 0 -> 0; v = 79
    # at its top, ((79 - 39.5) / 79 + 0.5) * 255 = 255. Slice 2 by the table.
    assert state.display_values(np.array([0, 40, 79]), 1).tolist() == [0, 129, 255]
    assert state.display_values(np.array([0, 40, 79]), 2).tolist() == [20, 220, 235]
    window_row, table_row = viewer.presentation_voi
    assert window_row == {"slices": [0, 1], "kind": "window", "center": 40.0,
                          "width": 80.0, "function": "LINEAR", "lut": None,
                          "explanation": ""}
    assert (table_row["slices"], table_row["kind"], table_row["lut"]) == (
        [2, 3], "lut", 0)
    # The table went before the trait that names it, as float32 grey levels.
    ((content, buffers),) = sent
    assert content == {"type": "lut", "id": 0, "first": -4, "entries": 48}
    assert np.frombuffer(bytes(buffers[0]), "<f4").tolist() == [
        float(v) for v in _VOI_ENTRIES]
    # Slice 3 is shown: a drag starts from its table's span, -4 + 48 / 2 and 48.
    assert (viewer.window_center, viewer.window_width) == (20.0, 48.0)

    # A page that opens later gets the table again; a drag of the window leaves
    # the presentation state's VOI for the viewer's own.
    sent.clear()
    viewer._handle_overlay_message(viewer, {"type": "ready"}, [])
    assert [c["type"] for c, _ in sent] == ["lut"]
    viewer._handle_overlay_message(viewer, {"type": "voi_released"}, [])
    assert viewer.presentation_voi == []


@pytest.mark.parametrize("shape,starts_inverted,expected", [
    ("IDENTITY", True, False),
    ("INVERSE", True, True),
    ("INVERSE", False, True),
], ids=["identity-over-monochrome1", "inverse-over-monochrome1", "inverse"])
def test_presentation_lut_shape_replaces_the_photometric_interpretation(
        shape: str, starts_inverted: bool, expected: bool) -> None:
    # PS3.4 N.2.1.4: once a state applies, its shape alone says what is dark.
    images, volume = phantom()
    ps = presentation_state(images, (40.0, 80.0))
    ps.PresentationLUTShape = shape
    viewer = AnnotatedStackViewer.from_volume(volume, invert=starts_inverted)

    viewer.apply_presentation_state(ps)

    assert viewer.invert is expected


def test_bitmap_shutter_covers_the_pixels_its_overlay_sets(monkeypatch) -> None:
    images, volume = phantom()
    ps = presentation_state(images, (40.0, 80.0))
    # An 8 x 8 overlay whose first pixel lies on image row 3, column 2 (from 1):
    # one byte per overlay row, column 0 in the lowest bit. Rows 0-3 are all set,
    # rows 4-7 only in column 0.
    set_bitmap_shutter(ps, bytes([0xFF] * 4 + [0x01] * 4), 8, 8, origin=(3, 2),
                       lab=_BLUE_LAB)
    viewer = AnnotatedStackViewer.from_volume(volume)
    sent = _capture(viewer, monkeypatch)

    state = viewer.apply_presentation_state(ps)

    expected = np.zeros((16, 16), dtype=bool)
    expected[2:6, 1:9] = True  # image rows 3-6, columns 2-9 (from 1)
    expected[6:10, 1] = True  # then column 2 only, rows 7-10
    assert state.shutter_mask is not None
    np.testing.assert_array_equal(state.shutter_mask, expected)
    assert state.shutters == [{"shape": "BITMAP", "color": [0, 0, 255]}]
    assert viewer.shutters == [{"shape": "BITMAP", "color": [0, 0, 255], "mask": 0}]
    ((content, buffers),) = sent
    assert content == {"type": "shutter_mask", "id": 0, "rows": 16, "columns": 16}
    # Sent one bit per pixel with the first pixel in the top bit: row 2 is
    # 0111 1111 1000 0000, row 6 is 0100 0000 0000 0000.
    packed = bytes(buffers[0])
    assert packed[4:6] == bytes([0x7F, 0x80]) and packed[12:14] == bytes([0x40, 0])
    assert sum(b.bit_count() for b in packed) == 32 + 4


def test_bitmap_shutter_without_its_overlay_is_reported() -> None:
    images, _ = phantom()
    ps = presentation_state(images, (40.0, 80.0))
    set_bitmap_shutter(ps, bytes(8), 8, 8)
    ps.ShutterOverlayGroup = 0x6002

    with pytest.warns(UserWarning, match="overlay group 6002"):
        state = read_presentation_state(ps, image_size=(16, 16))

    assert state.shutters == [] and state.shutter_mask is None
