"""viewerlib.open on non-image objects stored in a real Orthanc, over DICOMweb."""

from __future__ import annotations

import numpy as np
import pytest
from object_builders import (
    encapsulated_pdf,
    key_objects,
    pdf_bytes,
    phantom,
    presentation_state,
    segmentation,
)

import viewerlib
from viewerlib.sources.dicomweb import ArchiveQuirks, DICOMwebSource
from viewerlib.widgets.document import DocumentViewer
from viewerlib.widgets.overlays import AnnotatedStackViewer

pytestmark = pytest.mark.orthanc


def test_seg_gsps_kos_and_pdf_open_from_dicomweb(orthanc_factory) -> None:
    images, _ = phantom()
    masks = np.zeros((4, 16, 16, 1), np.uint8)
    masks[1, 3:6, 4:9, 0] = 1
    seg = segmentation(images, masks, ["Bleed"], [(50.0, 60.0, 40.0)])
    gsps = presentation_state(images, (35.0, 90.0))
    kos = key_objects(images, [3])
    pdf = encapsulated_pdf(pdf_bytes([(0, 0, 255), (255, 255, 255)]))
    pdf.StudyInstanceUID = images[0].StudyInstanceUID
    server = orthanc_factory("objects").start()
    report = server.load_datasets([*images, seg, gsps, kos, pdf])
    assert report.stored == len(images) + 4, report
    source = DICOMwebSource(server.dicomweb_url, "objects",
                            quirks=ArchiveQuirks.for_orthanc_1_10())
    study = images[0].StudyInstanceUID
    by_modality = {s.Modality: s for s in source.search_for_series(
        study_instance_uid=study)}

    seg_viewer = viewerlib.open(study, source, series=by_modality["SEG"])
    gsps_viewer = viewerlib.open(study, source, series=by_modality["PR"])
    # A Series Instance UID alone: the modality is looked up in the archive.
    kos_viewer = viewerlib.open(study, source,
                                series=by_modality["KO"].SeriesInstanceUID)
    document = viewerlib.open(study, source, series=by_modality["DOC"])

    assert isinstance(seg_viewer, AnnotatedStackViewer)
    expected = np.zeros((4, 16, 16), bool)
    expected[1, 3:6, 4:9] = True
    np.testing.assert_array_equal(seg_viewer.overlay_layers[0].dense((4, 16, 16)),
                                  expected)
    assert (gsps_viewer.window_center, gsps_viewer.window_width) == (35.0, 90.0)
    assert kos_viewer.key_images == [{"slice_index": 3, "label": "Im 4"}]
    assert isinstance(document, DocumentViewer) and document.number_of_pages == 2
    assert document.page(0)[5, 5].tolist() == [0, 0, 255]
