"""Build small non-image objects on the CT head phantom, for the tests.

SEG, GSPS and KOS are made with highdicom; RT Structure Sets and the Encapsulated
PDF with pydicom (the PDF's pages with Pillow); videos with PyAV. The phantom here
has 16 x 16 pixels of 0.9 mm (pixel centres from -6.75 mm in x and y) on 4 axial
slices 4 mm apart (slice ``s`` at z = 4 + 4 s mm), so positions in the tests can be
worked by hand:
pixel (row r, column c) has its centre at x = -6.75 + 0.9 c, y = -6.75 + 0.9 r.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import av
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
                 fractional: bool = False, labelmap: bool = False,
                 **geometry: object) -> Dataset:
    """A SEG of ``images`` with one segment per ``masks[..., k]``.

    ``labelmap`` makes a LABELMAP SEG (the segments may not overlap); ``geometry``
    (``plane_positions``, ``pixel_measures``, ``plane_orientation``) puts the
    frames on a grid of their own instead of the images'.
    """
    kind = (hd.seg.SegmentationTypeValues.FRACTIONAL if fractional
            else "LABELMAP" if labelmap else hd.seg.SegmentationTypeValues.BINARY)
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
        source_images=list(images), pixel_array=masks, segmentation_type=kind,
        segment_descriptions=descriptions, series_instance_uid=generate_uid(),
        series_number=100, sop_instance_uid=generate_uid(), instance_number=1,
        omit_empty_frames=True, **geometry, **_equipment())


def frame_geometry(position: tuple[float, float, float], spacing: float,
                   orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
                   ) -> dict[str, object]:
    """The ``geometry`` of :func:`segmentation` for one frame of its own grid."""
    return {
        "plane_positions": [hd.PlanePositionSequence(
            coordinate_system="PATIENT", image_position=position)],
        "pixel_measures": hd.PixelMeasuresSequence(
            pixel_spacing=(spacing, spacing), slice_thickness=4.0,
            spacing_between_slices=4.0),
        "plane_orientation": hd.PlaneOrientationSequence(
            coordinate_system="PATIENT", image_orientation=orientation),
    }


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


def voi_lut_presentation_state(images: Sequence[Dataset], first: int,
                               entries: Sequence[int], bits: int = 8,
                               explanation: str = "TEST LUT") -> Dataset:
    """A GSPS whose Softcopy VOI LUT item is a table instead of a window.

    (0028,3002) LUT Descriptor is [len(entries), first, bits]: modality value
    ``first + k`` maps to ``entries[k]``.
    """
    ps = presentation_state(images, (40.0, 80.0))
    item = ps.SoftcopyVOILUTSequence[0]
    for keyword in ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation",
                    "VOILUTFunction"):
        if keyword in item:
            delattr(item, keyword)
    table = Dataset()
    table.LUTDescriptor = [len(entries), first, bits]
    table.LUTData = [int(v) for v in entries]
    table.LUTExplanation = explanation
    item.VOILUTSequence = DicomSequence([table])
    return ps


def set_presentation_lut(ds: Dataset, entries: Sequence[int], bits: int = 10) -> None:
    """Give a GSPS a (2050,0010) Presentation LUT Sequence table instead of a shape."""
    table = Dataset()
    table.LUTDescriptor = [len(entries), 0, bits]
    table.LUTData = [int(v) for v in entries]
    table.LUTExplanation = "TEST P-LUT"
    ds.PresentationLUTSequence = DicomSequence([table])
    if "PresentationLUTShape" in ds:
        del ds.PresentationLUTShape


def set_bitmap_shutter(ds: Dataset, overlay: bytes, rows: int, columns: int,
                       origin: tuple[int, int] = (1, 1),
                       lab: Sequence[int] | None = None, group: int = 0x6000) -> None:
    """Give a GSPS a BITMAP shutter: the overlay plane ``group`` holding ``overlay``.

    ``overlay`` is (60xx,3000) Overlay Data as stored: one bit per pixel, rows in
    order, from the lowest bit of each byte.
    """
    ds.ShutterShape = "BITMAP"
    ds.ShutterOverlayGroup = group
    ds.ShutterPresentationValue = 0
    if lab is not None:
        ds.ShutterPresentationColorCIELabValue = list(lab)
    tag = group << 16
    ds.add_new(tag | 0x0010, "US", rows)
    ds.add_new(tag | 0x0011, "US", columns)
    ds.add_new(tag | 0x0040, "CS", "G")
    ds.add_new(tag | 0x0050, "SS", list(origin))
    ds.add_new(tag | 0x0100, "US", 1)
    ds.add_new(tag | 0x0102, "US", 0)
    ds.add_new(tag | 0x3000, "OW", overlay + (b"\0" if len(overlay) % 2 else b""))


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


def numbered_video(count: int, container: str, key_every: int) -> bytes:
    """Return a 64 x 48 H.264 clip whose frame ``i`` shows ``i`` in binary.

    Eight bands of 8 columns, band ``b`` white when bit ``b`` of ``i`` is set;
    ``container`` is ``'mp4'`` or ``'h264'`` (a bare stream, as in a DICOM
    video). B-frames reorder the stream, so decoding order is not frame order.
    """
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"crf": "10", "g": str(key_every), "bf": "2"}
        for index in range(count):
            bands = [255 if index >> band & 1 else 0 for band in range(8)]
            rgb = np.repeat(np.repeat(np.array(bands, np.uint8), 8)[None, :, None],
                            48, axis=0).repeat(3, axis=2)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb),
                                               format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def video_frame_number(frame: np.ndarray) -> int:
    """The frame index a frame of :func:`numbered_video` shows."""
    return sum(1 << band for band in range(8) if frame[24, 8 * band + 4, 1] > 128)


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
