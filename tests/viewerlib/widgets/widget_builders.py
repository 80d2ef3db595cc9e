"""Build small studies for the widget tests: cine loops, linked patients, priors.

Every patient is obviously fake (Test^Case and spellings of it). Legend of the
patient identifiers (the archives link them through issuer and Other Patient IDs,
never through the name):

=========  ==========  ============================================================
ID         issuer      who
=========  ==========  ============================================================
A-1        HOSP-A      the patient, in the main archive; lists B-9 as another ID
B-9        HOSP-B      the same patient in the outside archive (name spelt
                       ``TEST^CASE^Q``)
C-3        HOSP-C      another patient called ``Test^Case``: never the same patient
=========  ==========  ============================================================

The prior of A-1 is in the outside archive with three series, so that only the
hanging protocol picks the right one: the axial series that matches the current
one ("Axial head 4 mm"), a sagittal series with more images (the series a
choose-the-largest rule would pick) and a coronal scout.
"""

from __future__ import annotations

import atexit
import copy
import socket
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from viewerlib.samples.phantom import ct_head_phantom

# US Multi-frame Image Storage (PS3.4 B.5).
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
# Solid colours a cine loop steps through, one per frame.
CINE_COLORS = [
    (200, 40, 40),
    (40, 200, 40),
    (40, 40, 200),
    (220, 200, 40),
    (40, 200, 200),
    (200, 40, 200),
]
CURRENT_DATE, PRIOR_DATE, DECOY_DATE = "20261102", "20260504", "20260801"


def us_cine(
    colors: Sequence[tuple[int, int, int]] = CINE_COLORS,
    frame_time_ms: float | None = 100.0,
    cine_rate: float | None = None,
    study_instance_uid: str | None = None,
    rows: int = 24,
    columns: int = 32,
) -> Dataset:
    """A colour ultrasound cine loop: one solid RGB colour per frame.

    (0018,1063) *Frame Time* and (0018,0040) *Cine Rate* as given (None leaves
    them out).
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = US_MULTIFRAME
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "US"
    ds.PatientName, ds.PatientID = "Test^Case", "A-1"
    ds.StudyInstanceUID = study_instance_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = CURRENT_DATE, "090000"
    ds.StudyDescription, ds.SeriesDescription = "Echo", "Apical four chamber"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = len(colors)
    if frame_time_ms is not None:
        ds.FrameTime = frame_time_ms
        ds.FrameIncrementPointer = 0x00181063
    if cine_rate is not None:
        ds.CineRate = cine_rate
    frames = np.stack(
        [np.full((rows, columns, 3), color, np.uint8) for color in colors]
    )
    ds.PixelData = frames.tobytes()
    return ds


def _as_patient(
    datasets: list[Dataset],
    name: str,
    patient_id: str,
    issuer: str,
    other_ids: Sequence[tuple[str, str]] = (),
) -> list[Dataset]:
    for ds in datasets:
        ds.PatientName, ds.PatientID, ds.IssuerOfPatientID = name, patient_id, issuer
        if other_ids:
            items = []
            for other_id, other_issuer in other_ids:
                item = Dataset()
                item.PatientID, item.IssuerOfPatientID = other_id, other_issuer
                items.append(item)
            ds.OtherPatientIDsSequence = DicomSequence(items)
    return datasets


def _new_study(datasets: list[Dataset], date: str, description: str) -> list[Dataset]:
    study_uid = generate_uid()
    for ds in datasets:
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyDescription = (
            study_uid,
            date,
            description,
        )
    return datasets


def _reseries(datasets: list[Dataset], description: str, number: int) -> list[Dataset]:
    series_uid = generate_uid()
    for ds in datasets:
        ds.SeriesInstanceUID, ds.SeriesDescription = series_uid, description
        ds.SeriesNumber = number
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return datasets


# The phantom's field of view (mm), whatever the number of rows.
_FIELD_OF_VIEW_MM = 230.0


def current_ct(rows: int = 32, slices: int = 8) -> list[Dataset]:
    """The current CT head of patient A-1 (HOSP-A), who is also B-9 (HOSP-B)."""
    datasets = ct_head_phantom(
        "current",
        rows=rows,
        columns=rows,
        number_of_slices=slices,
        pixel_spacing_mm=_FIELD_OF_VIEW_MM / rows,
    ).datasets
    datasets = _new_study(datasets, CURRENT_DATE, "CT HEAD")
    return _as_patient(datasets, "Test^Case", "A-1", "HOSP-A", [("B-9", "HOSP-B")])


def _planes(
    template: Dataset,
    count: int,
    orientation: list[float],
    positions: list[list[float]],
    description: str,
    number: int,
) -> list[Dataset]:
    """`count` images like `template` in another plane: stripes of 0 to 80 HU."""
    datasets = []
    intercept = float(template.RescaleIntercept)
    for index in range(count):
        ds = copy.deepcopy(template)
        ds.ImageOrientationPatient = orientation
        ds.ImagePositionPatient = positions[index]
        ds.InstanceNumber = index + 1
        hu = (np.add.outer(np.arange(ds.Rows), np.arange(ds.Columns)) + index) % 9 * 10
        ds.PixelData = (hu - intercept).astype(np.uint16).tobytes()
        datasets.append(ds)
    return _reseries(datasets, description, number)


def prior_study(rows: int = 32, slices: int = 8) -> list[Dataset]:
    """The prior of patient B-9 (HOSP-B): axial, sagittal (more images), scout."""
    axial = ct_head_phantom(
        "prior",
        rows=rows,
        columns=rows,
        number_of_slices=slices,
        pixel_spacing_mm=_FIELD_OF_VIEW_MM / rows,
    ).datasets
    axial = _reseries(axial, "Axial head 4 mm", 2)
    template = axial[0]
    # The sagittal series: rows run head to feet, columns front to back.
    sagittal = _planes(
        template,
        2 * slices,
        [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
        [[-20.0 + 2.5 * k, -14.0, 40.0] for k in range(2 * slices)],
        "Sagittal head 2 mm",
        3,
    )
    scout = _planes(
        template, 1, [1.0, 0.0, 0.0, 0.0, 0.0, -1.0], [[-14.0, 0.0, 40.0]], "Scout", 1
    )
    datasets = _new_study(axial + sagittal + scout, PRIOR_DATE, "CT HEAD")
    return _as_patient(datasets, "TEST^CASE^Q", "B-9", "HOSP-B")


def decoy_study(rows: int = 32, slices: int = 4) -> list[Dataset]:
    """Another patient with the same name (C-3, HOSP-C), between the two dates."""
    datasets = ct_head_phantom(
        "prior", rows=rows, columns=rows, number_of_slices=slices
    ).datasets
    datasets = _reseries(
        _new_study(datasets, DECOY_DATE, "CT HEAD"), "Axial head 4 mm", 2
    )
    return _as_patient(datasets, "Test^Case", "C-3", "HOSP-C")


# Basic Text SR Storage (PS3.4 B.5).
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def _code(value: str, scheme: str, meaning: str) -> DicomSequence:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = (
        value, scheme, meaning)
    return DicomSequence([item])


def text_report(images: Sequence[Dataset], findings: Sequence[str],
                date: str = CURRENT_DATE, time: str = "120000",
                title: str = "Imaging report") -> Dataset:
    """A Basic Text SR of the study of ``images``: one TEXT item per finding.

    Built with pydicom as ``tests/viewerlib/objects/object_builders.py`` builds its
    RTSTRUCT and PDF: the study, patient and Frame of Reference of ``images``, a
    series of its own (Modality SR), content dated ``date`` ``time``.
    """
    first = images[0]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID",
                    "AccessionNumber", "StudyDescription"):
        if keyword in first:
            setattr(ds, keyword, first.get(keyword))
    ds.Modality = "SR"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 900
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = date, time
    # PS3.3 C.17.3: the root container names the document; its items hold the text.
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = _code("18748-4", "LN", title)
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    items = []
    for text in findings:
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
        item.ConceptNameCodeSequence = _code("121071", "DCM", "Finding")
        item.TextValue = text
        items.append(item)
    ds.ContentSequence = DicomSequence(items)
    return ds


# 12-lead ECG Waveform Storage (PS3.4 B.5).
TWELVE_LEAD_ECG = "1.2.840.10008.5.1.4.1.1.9.1.1"


def ecg_waveform(study_instance_uid: str, samples: int = 50) -> Dataset:
    """A 12-lead ECG of patient Test^Case in study `study_instance_uid`.

    Built with pydicom: SOP Class 12-lead ECG Waveform Storage, Modality ECG, a
    (5400,0100) *Waveform Sequence* of one multiplex group with one channel (lead
    I) of `samples` signed 16-bit samples at 500 Hz: a small sine, no pixel data.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = TWELVE_LEAD_ECG
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientID = "Test^Case", "A-1"
    ds.StudyInstanceUID = study_instance_uid
    ds.StudyDate, ds.StudyDescription = CURRENT_DATE, "Resting ECG"
    ds.Modality = "ECG"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.SeriesDescription = "12-lead ECG"
    # PS3.3 C.10.9: one multiplex group, its channels and their samples.
    group = Dataset()
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = 1
    group.NumberOfWaveformSamples = samples
    group.SamplingFrequency = 500
    channel = Dataset()
    channel.ChannelSourceSequence = _code("5.6.3-9-1", "SCPECG", "Lead I (Einthoven)")
    channel.WaveformBitsStored = 16
    group.ChannelDefinitionSequence = DicomSequence([channel])
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    values = np.rint(200 * np.sin(np.linspace(0, 4 * np.pi, samples))).astype("<i2")
    group.WaveformData = values.tobytes()
    ds.WaveformSequence = DicomSequence([group])
    return ds


def write(datasets: Sequence[Dataset], folder: Path) -> list[Path]:
    """Write `datasets` as DICOM files in `folder` (made if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# Bound, never listening, kept for the whole run: see closed_port.
_CLOSED: list[socket.socket] = []


def closed_port() -> int:
    """A loopback port nothing listens on (an archive that is down).

    Its socket stays bound and never listens: a connection is refused, and
    neither a server nor an outgoing connection's own end can take the port
    while the tests run (a port let go could be either, and then answer).
    """
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    if not _CLOSED:
        atexit.register(lambda: [held.close() for held in _CLOSED])
    _CLOSED.append(probe)
    return int(probe.getsockname()[1])
