"""Kernel side of the overlay and document viewers: what they send and keep."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "objects"))
from object_builders import (  # noqa: E402
    encapsulated_pdf,
    pdf_bytes,
    phantom,
    segmentation,
)

from viewerlib.widgets.document import DocumentViewer  # noqa: E402
from viewerlib.widgets.overlays import AnnotatedStackViewer  # noqa: E402
from viewerlib.widgets.report import ReportViewer  # noqa: E402


def _capture(widget, monkeypatch) -> list:
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(
        widget, "send", lambda content, buffers=None: sent.append((content, buffers)))
    return sent


def test_layers_are_sent_bit_packed_and_kept_out_of_the_state(monkeypatch) -> None:
    images, volume = phantom()
    masks = np.zeros((4, 16, 16, 1), dtype=np.uint8)
    masks[2, 0, 0:3, 0] = 1  # the first three pixels of slice 2
    masks[2, 15, 15, 0] = 1  # and its last pixel
    viewer = AnnotatedStackViewer.from_volume(volume)
    sent = _capture(viewer, monkeypatch)

    viewer.add_segmentation(segmentation(images, masks, ["Bleed"],
                                         [(50.0, 60.0, 40.0)]))

    content, buffers = sent[-1]
    # The box of slice 2 spans it all: rows 0-15, columns 0-15.
    assert content == {"type": "layer", "id": 0, "slices": [2],
                       "boxes": [[0, 0, 16, 16]], "offsets": [0]}
    packed = bytes(buffers[0])
    # 256 pixels = 32 bytes; the first pixel is the top bit: 0b11100000, and the
    # last byte holds the last pixel in its lowest bit.
    assert len(packed) == 32 and packed[0] == 0xE0 and packed[31] == 0x01
    assert sum(bin(b).count("1") for b in packed) == 4
    assert viewer.layers[0]["slices"] == [2] and viewer.layers[0]["visible"]
    state = viewer.get_state()
    state.pop("_esm")
    assert all(not isinstance(v, (bytes, memoryview)) for v in state.values())
    assert len(repr(state)) < 3000

    # A view that opens later asks with "ready" and gets the layer again.
    sent.clear()
    viewer._handle_overlay_message(viewer, {"type": "ready"}, [])
    assert [c["type"] for c, _ in sent] == ["layer"]


def test_layer_messages_carry_only_each_slice_bounding_box(monkeypatch) -> None:
    images, volume = phantom()
    masks = np.zeros((4, 16, 16, 1), dtype=np.uint8)
    masks[1, 3:6, 4:9, 0] = 1  # rows 3-5, columns 4-8 of slice 1
    masks[3, 10, 2, 0] = 1  # one pixel of slice 3
    viewer = AnnotatedStackViewer.from_volume(volume)
    sent = _capture(viewer, monkeypatch)

    viewer.add_segmentation(segmentation(images, masks, ["Bleed"],
                                         [(50.0, 60.0, 40.0)]))

    content, buffers = sent[-1]
    assert content == {"type": "layer", "id": 0, "slices": [1, 3],
                       "boxes": [[3, 4, 3, 5], [10, 2, 1, 1]], "offsets": [0, 2]}
    # 15 set bits in two bytes (the last bit of the second unused), then one byte
    # whose top bit is the single pixel.
    assert bytes(buffers[0]) == bytes([0xFF, 0xFE, 0x80])


def test_layers_toggle_by_name_and_unknown_names_raise() -> None:
    images, volume = phantom()
    masks = np.zeros((4, 16, 16, 2), dtype=np.uint8)
    masks[1, 2, 2, 0] = masks[1, 3, 3, 1] = 1
    viewer = AnnotatedStackViewer.from_volume(volume)
    viewer.add_segmentation(segmentation(images, masks, ["A", "B"],
                                         [(50.0, 0.0, 0.0)] * 2))
    viewer.set_layer_visible("B", False)
    assert [row["visible"] for row in viewer.layers] == [True, False]
    with pytest.raises(KeyError, match="no overlay layer 'C'; the layers are 'A', 'B'"):
        viewer.set_layer_visible("C", True)


def test_pdf_pages_are_rendered_in_the_kernel_and_sent_as_rgb(monkeypatch) -> None:
    # Page 1 red, page 2 blue, each 200 x 100 points; at 72 dpi one point is a pixel.
    ds = encapsulated_pdf(pdf_bytes([(255, 0, 0), (0, 0, 255)]))
    viewer = DocumentViewer(ds, dpi=72)
    sent = _capture(viewer, monkeypatch)

    viewer._handle_message(viewer, {"type": "page", "page_index": 1}, [])

    assert viewer.number_of_pages == 2 and viewer.title == "Test report"
    content, buffers = sent[0]
    assert content == {"type": "page", "page_index": 1, "rows": 100, "columns": 200}
    rgb = np.frombuffer(bytes(buffers[0]), np.uint8).reshape(100, 200, 3)
    assert rgb[50, 100].tolist() == [0, 0, 255]
    assert viewer.page(0)[10, 10].tolist() == [255, 0, 0]
    assert "EncapsulatedDocument" not in repr(viewer.get_state())


def test_page_index_is_clamped_and_no_pdf_raises() -> None:
    viewer = DocumentViewer(pdf=pdf_bytes([(0, 0, 0)]))
    viewer.page_index = 5
    assert viewer.page_index == 0
    with pytest.raises(ValueError, match="not a readable PDF"):
        DocumentViewer(pdf=b"%PDF-1.4 broken")
    with pytest.raises(ValueError, match="give either a DICOM instance"):
        DocumentViewer()


def test_report_viewer_sends_pdfs_to_the_document_viewer() -> None:
    with pytest.raises(ValueError, match="DocumentViewer"):
        ReportViewer(encapsulated_pdf(pdf_bytes([(0, 0, 0)])))


def test_overlay_front_end_ships_the_add_on_before_the_stack_viewer() -> None:
    source = AnnotatedStackViewer.class_traits()["_esm"].default_value
    # stack.js calls stackAddOn when it is defined; a plain StackViewer has none.
    assert "function stackAddOn(" in source and "typeof stackAddOn" in source
    assert source.index("function stackAddOn(") < source.index("export default")
    from viewerlib.widgets.stack import StackViewer

    assert "function stackAddOn(" not in StackViewer.class_traits()["_esm"].default_value


def test_every_viewer_declares_its_front_end_on_its_class() -> None:
    """anywidget makes a new class for a widget whose front end is not a trait
    of its class (FrontEndWidget): a third of the time a viewer takes to make."""
    import importlib
    import pkgutil

    import anywidget
    import traitlets

    import viewerlib.widgets
    from viewerlib.widgets._frontend import FrontEndWidget

    for module in pkgutil.iter_modules(viewerlib.widgets.__path__):
        importlib.import_module(f"viewerlib.widgets.{module.name}")

    classes, seen = [anywidget.AnyWidget], []
    while classes:
        for sub in classes.pop().__subclasses__():
            classes.append(sub)
            if sub.__module__.startswith("viewerlib.") and sub is not FrontEndWidget:
                seen.append(sub)
    assert len(seen) >= 9
    for kind in seen:
        assert issubclass(kind, FrontEndWidget), kind
        assert isinstance(kind.class_traits().get("_esm"), traitlets.Unicode), kind
        assert "export default" in kind.class_traits()["_esm"].default_value, kind
    viewer = AnnotatedStackViewer.from_volume(phantom()[1])
    assert type(viewer) is AnnotatedStackViewer  # no class made for the widget
    assert viewer._anywidget_id == "viewerlib.widgets.overlays.AnnotatedStackViewer"
    viewer.close()
