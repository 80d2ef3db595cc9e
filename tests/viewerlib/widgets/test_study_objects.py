"""viewerlib.open on a CT lists the study's SEG, RTSTRUCT, GSPS and KOS as toggles.

The objects are built as ``tests/viewerlib/objects`` builds them (highdicom), on the
16 x 16 x 4 phantom: a SEG, an RTSTRUCT that names only its Frame of Reference, a
GSPS and a KOS of the CT, a SEG of another series of the same study (not listed)
and a PDF (not an annotation).
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import traitlets
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "objects"))

from object_builders import (
    encapsulated_pdf,
    key_objects,
    pdf_bytes,
    phantom,
    presentation_state,
    segmentation,
    structure_set,
    x_mm,
    y_mm,
)

import viewerlib
from viewerlib.sources.local import FolderSource
from viewerlib.widgets.overlays import AnnotatedStackViewer


def _objects(images):
    masks = np.zeros((4, 16, 16, 1), np.uint8)
    masks[2, 3:6, 4:9, 0] = 1
    square = [
        (x_mm(2.5), y_mm(3.5)),
        (x_mm(6.5), y_mm(3.5)),
        (x_mm(6.5), y_mm(7.5)),
        (x_mm(2.5), y_mm(7.5)),
    ]
    rtstruct = structure_set(images, [("Tumour", (255, 0, 0), [(None, square, 2)])])
    rtstruct.SeriesDescription = "Planning <b>ROIs</b>"
    # Another series of the same study, with a SEG of its own.
    other = [copy.deepcopy(ds) for ds in images]
    series_uid = generate_uid()
    for ds in other:
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    pdf = encapsulated_pdf(pdf_bytes([(255, 255, 255)]))
    pdf.StudyInstanceUID = images[0].StudyInstanceUID
    return {
        "seg": segmentation(images, masks, ["Bleed"], [(50.0, 60.0, 40.0)]),
        "rtstruct": rtstruct,
        "gsps": presentation_state(images, (35.0, 90.0)),
        "kos": key_objects(images, [1, 3]),
        "other-seg": segmentation(other, masks, ["Elsewhere"], [(50.0, 60.0, 40.0)]),
        "pdf": pdf,
    }, other


@pytest.fixture
def opened(tmp_path: Path):
    images, _ = phantom()
    objects, other = _objects(images)
    for number, ds in enumerate([*images, *other]):
        ds.save_as(tmp_path / f"ct{number}.dcm", enforce_file_format=True)
    for name, ds in objects.items():
        ds.save_as(tmp_path / f"{name}.dcm", enforce_file_format=True)
    source = FolderSource(tmp_path)
    (series,) = [
        s
        for s in source.search_for_series(study_instance_uid=images[0].StudyInstanceUID)
        if s.SeriesInstanceUID == images[0].SeriesInstanceUID
    ]
    viewer = viewerlib.open(images[0].StudyInstanceUID, source, series=series)
    return viewer, source, tmp_path


def _row(viewer: AnnotatedStackViewer, modality: str) -> dict:
    (row,) = [r for r in viewer.study_objects if r["modality"] == modality]
    return row


def test_open_lists_the_objects_that_refer_to_the_series(opened) -> None:
    viewer, _, _ = opened
    assert isinstance(viewer, AnnotatedStackViewer)
    assert viewer.wait_for_study_objects(0)
    assert sorted(r["modality"] for r in viewer.study_objects) == [
        "KO",
        "PR",
        "RTSTRUCT",
        "SEG",
    ]
    # Listed, not drawn: nothing is retrieved before the reader asks.
    assert viewer.layers == [] and viewer.key_images == []
    assert all(not r["shown"] and r["state"] == "" for r in viewer.study_objects)
    # The label is the object's own text, shown as text by the page.
    assert _row(viewer, "RTSTRUCT")["label"] == "Structures: Planning <b>ROIs</b>"


def test_rtstruct_toggles_on_and_off_and_on_without_retrieving_again(
    opened, monkeypatch
) -> None:
    viewer, source, _ = opened
    retrieved: list[str] = []
    original = source.retrieve_instance
    monkeypatch.setattr(
        source,
        "retrieve_instance",
        lambda *uids: (retrieved.append(uids[-1]), original(*uids))[1],
    )
    object_id = _row(viewer, "RTSTRUCT")["id"]

    viewer.show_study_object(object_id, True)
    (layer,) = viewer.layers
    assert (layer["name"], layer["style"], layer["visible"]) == (
        "Tumour",
        "outline",
        True,
    )
    # Contour edges at columns 2.5-6.5, rows 3.5-7.5: pixels 3-6 by 4-7 on slice 2.
    mask = viewer.overlay_layers[0].masks[2]
    assert mask[4:8, 3:7].all() and mask.sum() == 16
    assert _row(viewer, "RTSTRUCT")["shown"] is True

    viewer.show_study_object(object_id, False)
    assert viewer.layers[0]["visible"] is False
    assert _row(viewer, "RTSTRUCT")["shown"] is False

    viewer.show_study_object(object_id, True)
    assert viewer.layers[0]["visible"] is True and len(viewer.overlay_layers) == 1
    assert len(retrieved) == 1


def test_presentation_state_is_applied_and_put_back(opened) -> None:
    viewer, _, _ = opened
    before = (viewer.window_center, viewer.window_width, viewer.rotation)
    object_id = _row(viewer, "PR")["id"]
    viewer.show_study_object(object_id, True)
    assert (viewer.window_center, viewer.window_width) == (35.0, 90.0)
    viewer.show_study_object(object_id, False)
    assert (viewer.window_center, viewer.window_width, viewer.rotation) == before
    assert viewer.displayed_area == {} and viewer.annotations == []


def test_key_images_are_marked_and_unmarked(opened) -> None:
    viewer, _, _ = opened
    object_id = _row(viewer, "KO")["id"]
    viewer.show_study_object(object_id, True)
    assert [k["slice_index"] for k in viewer.key_images] == [1, 3]
    viewer.show_study_object(object_id, False)
    assert viewer.key_images == [] and viewer.key_images_title == ""


def test_the_page_toggles_by_message_and_a_lost_object_says_so(opened) -> None:
    viewer, _, folder = opened
    seg = _row(viewer, "SEG")["id"]
    viewer._handle_overlay_message(
        viewer, {"type": "study_object", "id": seg, "shown": True}, []
    )
    deadline = time.monotonic() + 20
    while not _row(viewer, "SEG")["shown"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [layer["name"] for layer in viewer.layers] == ["Bleed"]

    # The KOS file went missing after the folder was indexed.
    (folder / "kos.dcm").unlink()
    viewer.show_study_object(_row(viewer, "KO")["id"], True)
    row = _row(viewer, "KO")
    assert row["state"] == "failed" and not row["shown"]
    assert row["message"].startswith("Could not be shown:")
    with pytest.raises(KeyError, match="no study object 99"):
        viewer.show_study_object(99, True)


def test_layers_from_the_page_may_only_switch_visibility(opened) -> None:
    viewer, _, _ = opened
    viewer.show_study_object(_row(viewer, "SEG")["id"], True)
    viewer.layers = [
        {"id": 0, "visible": False, "name": "<img src=x>", "color": [0, 0, 0]}
    ]
    (layer,) = viewer.layers
    assert (layer["name"], layer["visible"]) == ("Bleed", False)
    assert layer["color"] != [0, 0, 0]
    with pytest.raises(traitlets.TraitError, match="names no overlay layer"):
        viewer.layers = [{"id": 5, "visible": True}]
    state = viewer.get_state()
    state.pop("_esm")
    assert all(not isinstance(v, bytes | memoryview) for v in state.values())


@pytest.mark.orthanc
def test_streamed_open_lists_the_objects_once_the_first_image_is_shown(
    orthanc_factory,
) -> None:
    from viewerlib.sources.dicomweb import ArchiveQuirks, DICOMwebSource

    images, _ = phantom()
    objects, _ = _objects(images)
    server = orthanc_factory("objects").start()
    report = server.load_datasets([*images, objects["rtstruct"], objects["seg"]])
    assert report.stored == len(images) + 2, report
    source = DICOMwebSource(
        server.dicomweb_url, "Main PACS", quirks=ArchiveQuirks.for_orthanc_1_10()
    )

    viewer = viewerlib.open(images[0].StudyInstanceUID, source)

    assert isinstance(viewer, AnnotatedStackViewer)
    assert viewer.wait_for_study_objects(30)
    assert sorted(r["modality"] for r in viewer.study_objects) == ["RTSTRUCT", "SEG"]
    viewer.show_study_object(_row(viewer, "RTSTRUCT")["id"], True)
    assert viewer.loading["state"] == "complete"
    assert [layer["name"] for layer in viewer.layers] == ["Tumour"]
    assert viewer.overlay_layers[0].masks[2][4:8, 3:7].all()
