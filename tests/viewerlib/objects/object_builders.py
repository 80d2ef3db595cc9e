"""Build small non-image objects on the CT head phantom, for the tests.

SEG, GSPS and KOS are made with highdicom; RT Structure Sets and the Encapsulated
PDF with pydicom (the PDF's pages with Pillow). The phantom here has 16 x 16 pixels
of 0.9 mm (pixel centres from -6.75 mm in x and y) on 4 axial slices 4 mm apart
(slice ``s`` at z = 4 + 4 s mm), so positions in the tests can be worked by hand:
pixel (row r, column c) has its centre at x = -6.75 + 0.9 c, y = -6.75 + 0.9 r.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import highdicom as hd
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume.volume import Volume, read_series

ROWS = COLUMNS = 16
SLICES = 4
PIXEL_MM = 0.9
FIRST_CENTRE_MM = -6.75


def phantom() -> tuple[list[Dataset], Volume]:
    """The phantom's CT datasets (slice order) and its volume."""
    study = ct_head_phantom("current", rows=ROWS, columns=COLUMNS,
                            number_of_slices=SLICES)
    volume = read_series(study.datasets)[0]
    by_uid = {ds.SOPInstanceUID: ds for ds in study.datasets}
    return [by_uid[h.SOPInstanceUID] for h in volume.datasets], volume


def x_mm(column: float) -> float:
    """Patient x of a (fractional) column index."""
    return FIRST_CENTRE_MM + PIXEL_MM * column


def y_mm(row: float) -> float:
    """Patient y of a (fractional) row index."""
    return FIRST_CENTRE_MM + PIXEL_MM * row


def z_mm(slice_index: int) -> float:
    """Patient z of a slice."""
    return 4.0 + 4.0 * slice_index


def _equipment() -> dict[str, object]:
    return {"manufacturer": "Lightbox tests", "manufacturer_model_name": "builder",
            "software_versions": "1", "device_serial_number": "1"}


def segmentation(images: Sequence[Dataset], masks: np.ndarray,
                 labels: Sequence[str],
                 lab_colors: Sequence[tuple[float, float, float]],
                 fractional: bool = False) -> Dataset:
    """A SEG of ``images`` with one segment per ``masks[..., k]``."""
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k + 1, segment_label=label,
            segmented_property_category=hd.sr.CodedConcept(
                "49755003", "SCT", "Morphologically Altered Structure"),
            segmented_property_type=hd.sr.CodedConcept("50960005", "SCT",
                                                       "Hemorrhage"),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            display_color=hd.color.CIELabColor(*lab))
        for k, (label, lab) in enumerate(zip(labels, lab_colors, strict=True))]
    return hd.seg.Segmentation(
        source_images=list(images), pixel_array=masks,
        segmentation_type=(hd.seg.SegmentationTypeValues.FRACTIONAL if fractional
                           else hd.seg.SegmentationTypeValues.BINARY),
        segment_descriptions=descriptions, series_instance_uid=generate_uid(),
        series_number=100, sop_instance_uid=generate_uid(), instance_number=1,
        omit_empty_frames=True, **_equipment())


def structure_set(images: Sequence[Dataset],
                  rois: Sequence[tuple[str, tuple[int, int, int],
                                       list[tuple[int | None, list[tuple[float, float]],
                                                  int]]]]) -> Dataset:
    """An RTSTRUCT: ``rois`` of (name, colour, contours).

    Each contour is (slice index to reference by UID or None, [(x, y) mm], slice
    whose z the points take).
    """
    first = images[0]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "RTSTRUCT"
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate"):
        setattr(ds, keyword, first.get(keyword))
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "TEST"
    frame = first.FrameOfReferenceUID
    roi_items, contour_items = [], []
    for number, (name, color, contours) in enumerate(rois, start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, name
        roi.ReferencedFrameOfReferenceUID = frame
        roi_items.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        item.ROIDisplayColor = list(color)
        sequence = []
        for referenced, points, on_slice in contours:
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [v for x, y in points for v in (x, y, z_mm(on_slice))]
            if referenced is not None:
                image = Dataset()
                image.ReferencedSOPClassUID = images[referenced].SOPClassUID
                image.ReferencedSOPInstanceUID = images[referenced].SOPInstanceUID
                contour.ContourImageSequence = DicomSequence([image])
            sequence.append(contour)
        item.ContourSequence = DicomSequence(sequence)
        contour_items.append(item)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    return ds


def presentation_state(images: Sequence[Dataset], window: tuple[float, float],
                       annotations: Sequence[hd.pr.GraphicAnnotation] = ()) -> Dataset:
    """A GSPS of ``images`` with a window and annotations on layer ``LAYER1``."""
    layer = hd.pr.GraphicLayer(layer_name="LAYER1", order=1,
                               display_color=hd.color.CIELabColor(100.0, 0.0, 0.0))
    return hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=list(images), series_instance_uid=generate_uid(),
        series_number=200, sop_instance_uid=generate_uid(), instance_number=1,
        content_label="TEST", graphic_layers=[layer],
        graphic_annotations=list(annotations),
        voi_lut_transformations=[hd.pr.SoftcopyVOILUTTransformation(
            window_center=window[0], window_width=window[1])],
        **_equipment())


def key_objects(images: Sequence[Dataset], key: Sequence[int]) -> Dataset:
    """A KOS ("Of Interest") naming the slices ``key`` of ``images``."""
    content = hd.ko.KeyObjectSelection(
        document_title=hd.sr.CodedConcept("113000", "DCM", "Of Interest"),
        referenced_objects=[images[i] for i in key],
        description="Bleed <b>here</b>")
    return hd.ko.KeyObjectSelectionDocument(
        evidence=list(images), content=content, series_instance_uid=generate_uid(),
        series_number=300, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer="Lightbox tests")


def pdf_bytes(colors: Sequence[tuple[int, int, int]], size: tuple[int, int] = (200, 100)
              ) -> bytes:
    """A PDF with one page per colour, each page filled with it (Pillow)."""
    # Palette images are stored losslessly (Flate); RGB ones would be JPEG.
    pages = [Image.new("RGB", size, color).convert("P") for color in colors]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:],
                  resolution=72.0)
    return buffer.getvalue()


def encapsulated_pdf(document: bytes, title: str = "Test report") -> Dataset:
    """An Encapsulated PDF Storage instance holding ``document``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "DOC"
    ds.PatientName = "Test^Case"
    ds.PatientID = "LBX-0001"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.DocumentTitle = title
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    # PS3.3 C.24.2.1: the document is padded to an even length.
    ds.EncapsulatedDocument = document + (b"\0" if len(document) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(document)
    return ds
