"""Files read by the tight reader give the very volumes pydicom's route gives.

read_series reads plain explicit VR little endian files with
:class:`viewerlib.volume.files.FileReader` and their pixel data straight into
the volume; everything else goes through pydicom. Each test reads the same
inputs both ways (``_READ_FILES_FAST`` on and off) and compares everything a
caller can see: voxels, affine, spacing, order, positions, windows, the
volume's warnings and missing slices, every element of every header, the
warnings issued and the log.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_files
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)
from volume_builders import build_slice

from viewerlib.sources import layout as layout_module
from viewerlib.sources.layout import fast_dataset
from viewerlib.volume import files, volume
from viewerlib.volume.reading import modality_into

# --- reading both ways -----------------------------------------------------------


def _describe_header(ds: Dataset) -> tuple[Any, ...]:
    meta = getattr(ds, "file_meta", None)
    return (type(ds).__name__,
            [(int(e.tag), e.VR, repr(e.value)) for e in ds],
            None if meta is None else [(int(e.tag), e.VR, repr(e.value)) for e in meta],
            ds.original_encoding, repr(ds.original_character_set),
            str(getattr(ds, "filename", None)))


def _describe(volumes: list[volume.Volume]) -> list[dict[str, Any]]:
    out = []
    for v in volumes:
        out.append(dict(
            voxels=(v.voxels.dtype.str, v.voxels.shape, v.voxels.tobytes()),
            affine=v.affine.tobytes(), spacing=v.spacing_mm,
            source_order=v.source_order, source_frames=v.source_frames,
            positions=v.slice_positions_mm.tobytes(), modality=v.modality,
            presets=repr(v.window_presets), window=repr(v.default_window),
            frame_of_reference=v.frame_of_reference_uid, warnings=v.warnings,
            missing=v.missing_slices,
            # Which slices share one header object, and what every header holds.
            shared=[next(j for j, d in enumerate(v.datasets) if d is ds)
                    for ds in v.datasets],
            headers=[_describe_header(ds) for ds in v.datasets]))
    return out


class _Log(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelname, record.getMessage()))


def _read(inputs: Any, fast: bool, monkeypatch: pytest.MonkeyPatch,
          workers: int = 1) -> dict[str, Any]:
    """read_series one way; everything it gives, raises, warns and logs."""
    monkeypatch.setattr(volume, "_READ_FILES_FAST", fast)
    log = _Log()
    logger = logging.getLogger("viewerlib")
    logger.addHandler(log)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome: Any = _describe(volume.read_series(inputs, workers=workers))
            except Exception as err:  # noqa: BLE001 - compared between the routes
                outcome = (type(err).__name__, str(err))
    finally:
        logger.removeHandler(log)
    ours = [str(w.message) for w in caught if "pydicom" not in w.filename]
    # pydicom warns each time it converts a bad value: once per header on its
    # own route, once per distinct value where headers share it.
    theirs = sorted({str(w.message) for w in caught if "pydicom" in w.filename})
    return {"outcome": outcome, "warnings": ours, "pydicom warnings": theirs,
            "log": log.records}


class _Count:
    """Counts the files the tight reader took and the frames read into voxels."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files = self.frames = 0
        read, read_frame = files.FileReader.read, files.FilePixels.read_frame

        def counted_read(reader: files.FileReader, path: Any) -> Any:
            found = read(reader, path)
            self.files += found is not None
            return found

        def counted_frame(pixels: files.FilePixels, *args: Any) -> Any:
            self.frames += 1
            return read_frame(pixels, *args)

        monkeypatch.setattr(files.FileReader, "read", counted_read)
        monkeypatch.setattr(files.FilePixels, "read_frame", counted_frame)


def _same_both_ways(inputs: Any, monkeypatch: pytest.MonkeyPatch,
                    workers: int = 1) -> _Count:
    """Assert both routes agree on `inputs`; return what the fast one took."""
    slow = _read(inputs, False, monkeypatch, workers)
    count = _Count(monkeypatch)
    fast = _read(inputs, True, monkeypatch, workers)
    for key in slow:
        assert fast[key] == slow[key], key
    return count


# --- files written here ----------------------------------------------------------


def _save(folder: Path, datasets: list[Dataset], name: str = "slice",
          **options: Any) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, ds in enumerate(datasets):
        path = folder / f"{name}-{index:03d}.dcm"
        ds.save_as(path, enforce_file_format=True, **options)
        paths.append(path)
    return paths


def _series(count: int = 6, rows: int = 6, columns: int = 5, *,
            stored: Callable[[int], np.ndarray] | None = None,
            **elements: Any) -> list[Dataset]:
    """Axial slices 2.5 mm apart; slice k holds `stored(k)` (default a ramp)."""
    out = []
    for k in range(count):
        values = (stored(k) if stored is not None
                  else np.arange(rows * columns).reshape(rows, columns) + 10 * k)
        ds = build_slice(values, (-10.0, -20.0, 2.5 * k), **elements)
        ds.InstanceNumber = k + 1
        # UIDs of one length (generate_uid's vary): files laid out alike.
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID[:40]}.{10 ** 6 + k}"
        out.append(ds)
    return out


def _pixels(ds: Dataset, values: np.ndarray, bits_allocated: int, bits_stored: int,
            signed: bool) -> Dataset:
    """Give `ds` these stored values (already with any bits above Bits Stored)."""
    ds.BitsAllocated, ds.BitsStored = bits_allocated, bits_stored
    ds.HighBit, ds.PixelRepresentation = bits_stored - 1, int(signed)
    kind = "i" if signed else "u"
    ds.PixelData = values.astype(f"<{kind}{bits_allocated // 8}").tobytes()
    return ds


def _defined_lengths(ds: Dataset) -> Dataset:
    """Write every sequence and item of `ds` with a defined length."""
    for element in ds.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = False
            for item in element.value:
                item.is_undefined_length_sequence_item = False
    return ds


def _with_sequence(ds: Dataset, undefined: bool) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = generate_uid()
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "T-A0100", "SRT"
    item.PurposeOfReferenceCodeSequence = Sequence([code])
    ds.ReferencedImageSequence = Sequence([item])
    if not undefined:
        return _defined_lengths(ds)
    ds["ReferencedImageSequence"].is_undefined_length = True
    return ds


def _with_private(ds: Dataset, blob: int = 37) -> Dataset:
    block = ds.private_block(0x0009, "LIGHTBOX TEST", create=True)
    block.add_new(0x01, "OB", bytes(range(256)) * (blob // 256) + bytes(blob % 256))
    block.add_new(0x02, "LO", "private text")
    block.add_new(0x03, "UN", b"\x01\x02\x03\x04")
    return ds


def _odd_lengths(path: Path) -> None:
    """Make the private OB value and the private creator's odd in length."""
    data = path.read_bytes()
    creator = b"\x09\x00\x10\x00LO\x0e\x00LIGHTBOX TEST "
    blob = b"\x09\x00\x01\x10OB\x00\x00\x26\x00\x00\x00"
    assert data.count(creator) == 1 and data.count(blob) == 1
    at = data.index(blob) + len(blob)
    data = data[:at - 12] + b"\x09\x00\x01\x10OB\x00\x00\x25\x00\x00\x00" + data[
        at:at + 37] + data[at + 38:]
    data = data.replace(creator, b"\x09\x00\x10\x00LO\x0d\x00LIGHTBOX TEST")
    path.write_bytes(data)


def _garbage_above(values: np.ndarray, bits_stored: int, seed: int) -> np.ndarray:
    """`values` (within Bits Stored) with random bits above Bits Stored."""
    rng = np.random.default_rng(seed)
    stored = values.astype(np.int64) & ((1 << bits_stored) - 1)
    junk = rng.integers(0, 1 << (16 - bits_stored), values.shape) << bits_stored
    return (stored | junk).astype("<u2")


def _multi_frame(frames: int = 3, rows: int = 4, columns: int = 5) -> Dataset:
    """One instance of several frames, placed by its per-frame functional groups."""
    ds = build_slice(np.zeros((rows, columns)), (0.0, 0.0, 0.0))
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        delattr(ds, keyword)
    ds.NumberOfFrames = frames
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.8], 2.0
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    # Frames stored out of order along z.
    for z in (4.0, 0.0, 2.0)[:frames]:
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [-10.0, -20.0, z]
        item.PlanePositionSequence = Sequence([position])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    values = np.arange(frames * rows * columns).reshape(frames, rows, columns) - 7
    ds.PixelData = values.astype("<i2").tobytes()
    return _defined_lengths(ds)


def _case_plain(folder: Path) -> list[Path]:
    return _save(folder, _series())


def _case_sequence_defined(folder: Path) -> list[Path]:
    return _save(folder, [_with_sequence(ds, False) for ds in _series()])


def _case_sequence_undefined(folder: Path) -> list[Path]:
    return _save(folder, [_with_sequence(ds, True) for ds in _series()])


def _case_private_tags(folder: Path) -> list[Path]:
    return _save(folder, [_with_private(ds) for ds in _series()])


def _case_odd_lengths(folder: Path) -> list[Path]:
    paths = _save(folder, [_with_private(ds) for ds in _series()])
    for path in paths:
        _odd_lengths(path)
    return paths


def _case_large_header(folder: Path) -> list[Path]:
    # More than the first read of a file (32 KB) before the pixel data.
    return _save(folder, [_with_private(ds, blob=100_001) for ds in _series(3)])


def _case_signed_with_bits_above(folder: Path) -> list[Path]:
    # 12 bits stored, signed: negative values, random bits above bit 11.
    datasets = _series(stored=lambda k: np.arange(30).reshape(6, 5) - 15 + k)
    for k, ds in enumerate(datasets):
        values = np.frombuffer(ds.PixelData, "<i2").reshape(6, 5)
        _pixels(ds, _garbage_above(values, 12, k).view("<i2"), 16, 12, True)
    return _save(folder, datasets)


def _case_unsigned_with_bits_above(folder: Path) -> list[Path]:
    datasets = _series()
    for k, ds in enumerate(datasets):
        values = np.arange(30).reshape(6, 5) * 100 + k
        _pixels(ds, _garbage_above(values, 12, k), 16, 12, False)
    return _save(folder, datasets)


def _case_eight_bit(folder: Path) -> list[Path]:
    # Voxels of another width than the stored values: read through a buffer.
    datasets = _series()
    for k, ds in enumerate(datasets):
        _pixels(ds, np.arange(30).reshape(6, 5) * 8 + k, 8, 8, False)
    return _save(folder, datasets)


def _case_fractional_rescale(folder: Path) -> list[Path]:
    return _save(folder, _series(RescaleSlope="0.5", RescaleIntercept="-3.25"))


def _case_widened(folder: Path) -> list[Path]:
    # The header allows more than int16; the later slices need it.
    datasets = _series(RescaleSlope="2", RescaleIntercept="-1024")
    for k, ds in enumerate(datasets):
        _pixels(ds, np.full((6, 5), 100 + 6000 * k), 16, 16, False)
    return _save(folder, datasets)


def _case_thirty_two_bit(folder: Path) -> list[Path]:
    datasets = _series()
    for k, ds in enumerate(datasets):
        _pixels(ds, np.arange(30).reshape(6, 5) * 70_000 + k, 32, 32, False)
    return _save(folder, datasets)


def _case_several_frames(folder: Path) -> list[Path]:
    return _save(folder, [_multi_frame(), _multi_frame()])


def _case_layouts(folder: Path) -> list[Path]:
    # Files of one size whose elements lie at other offsets: a description
    # before the geometry, as long as another element after it is short.
    datasets = _series(6)
    for k, ds in enumerate(datasets):
        ds.StudyDescription = "d" * (2 + 2 * (k % 3))
        whole = len(str(int(2.5 * k)))
        ds.SliceLocation = f"{2.5 * k:.{10 - 2 * (k % 3) - whole - 1}f}"
    return _save(folder, datasets)


def _case_facts_vary(folder: Path) -> list[Path]:
    # Files laid out alike (values of the same lengths) that differ in what a
    # fact worked out once for files alike reads (FilePixels.shared_fact): the
    # rescale, the bits stored, the orientation, the spacing, the image type,
    # the echo; and one slice without a position.
    datasets = _series(9)
    datasets[1].RescaleIntercept = "-1000"
    datasets[2].RescaleSlope = "2"
    datasets[3].ImageOrientationPatient = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    datasets[4].PixelSpacing = [0.8, 0.5]
    datasets[5].ImageType = ["ORIGINAL", "PRIMARY", "LOCALI"]
    datasets[6].EchoNumbers = "2"
    datasets[7].BitsStored, datasets[7].HighBit = 12, 11
    del datasets[8].ImagePositionPatient
    for ds in datasets[:7]:
        ds.EchoNumbers = ds.get("EchoNumbers", "1")
    return _save(folder, datasets)


def _case_unusable_geometry(folder: Path) -> list[Path]:
    # Orientations whose rows and columns are parallel, and a position that is
    # no number: each file's geometry is unusable, and logged as such once.
    datasets = _series(4, ImageOrientationPatient=[1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    datasets += _series(2)
    datasets[-1].ImagePositionPatient = [-10.0, -20.0, 7.5]
    paths = _save(folder, datasets)
    data = paths[-1].read_bytes()
    paths[-1].write_bytes(data.replace(b"-10.0\\-20.0\\7.5", b"-x0.0\\-20.0\\7.5"))
    return paths


def _case_reversed(folder: Path) -> list[Path]:
    return _save(folder, _series())[::-1]


def _case_two_stacks(folder: Path) -> list[Path]:
    # An axial series and a localizer of another orientation and size.
    localizer = build_slice(np.arange(42).reshape(7, 6), (0.0, 0.0, 0.0),
                            orientation=(0, 1, 0, 0, 0, -1),
                            ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    return _save(folder, [*_series(4), localizer, *_series(3, rows=6, columns=5)])


def _case_cut_short(folder: Path) -> list[Path]:
    paths = _save(folder, _series())
    paths[2].write_bytes(paths[2].read_bytes()[:-7])
    return paths


def _case_trailing_padding(folder: Path) -> list[Path]:
    datasets = _series()
    for ds in datasets:
        ds.DataSetTrailingPadding = b"\0" * 6
    return _save(folder, datasets)


def _case_other_syntaxes(folder: Path) -> list[Path]:
    # Explicit VR little endian beside every other kind: one series.
    datasets = _series(8)
    for index, ds in enumerate(datasets[:4]):
        if index == 0:
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        elif index == 1:
            ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
        elif index == 2:
            ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        else:
            ds.compress(RLELossless)
    paths = _save(folder, datasets[4:], "plain")
    for index, ds in enumerate(datasets[:4]):
        path = folder / f"other-{index}.dcm"
        if index == 1:
            buffer = io.BytesIO()
            ds.save_as(buffer, implicit_vr=False, little_endian=False)
            path.write_bytes(buffer.getvalue())
        else:
            ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _case_character_sets(folder: Path) -> list[Path]:
    # The same bytes mean other characters under another character set.
    datasets = _series(4, WindowCenter="40", WindowWidth="400")
    for k, ds in enumerate(datasets):
        ds.SpecificCharacterSet = "ISO_IR 100" if k % 2 else "ISO_IR 192"
        ds["WindowCenterWidthExplanation"] = pydicom.DataElement(
            0x00281055, "LO", "Gehirn Größe".encode())
        ds.RescaleType = "HU"
    paths = _save(folder, datasets)
    return paths


def _case_no_preamble(folder: Path) -> list[Path]:
    paths = _save(folder, _series(3))
    for path in paths[:1]:
        path.write_bytes(path.read_bytes()[132 + 4:])
    return paths


_CASES = {name[len("_case_"):]: case for name, case in globals().items()
          if name.startswith("_case_")}
# Cases whose files are all, or in part, read by the tight reader.
_NOT_FAST = {"sequence_undefined", "trailing_padding"}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_written_series_read_alike_both_ways(name, tmp_path, monkeypatch):
    paths = _CASES[name](tmp_path / name)
    count = _same_both_ways(paths, monkeypatch)
    if name in _NOT_FAST:
        assert count.files == 0
    else:
        assert count.files > 0 and count.frames > 0


@pytest.mark.parametrize("name", ["plain", "widened", "eight_bit", "cut_short"])
def test_written_series_read_alike_with_workers(name, tmp_path, monkeypatch):
    paths = _CASES[name](tmp_path / name)
    _same_both_ways(paths * 3, monkeypatch, workers=2)


def test_file_changed_after_its_header_was_read_is_read_again(tmp_path, monkeypatch):
    # Cut inside its pixel data between the two reads: the slice is kept blank
    # and named, as when pydicom's route finds it so.
    paths = _case_plain(tmp_path / "series")
    read = files.FileReader.read

    def read_then_cut(reader: files.FileReader, path: Any) -> Any:
        found = read(reader, path)
        if Path(path) == paths[3]:
            Path(path).write_bytes(Path(path).read_bytes()[:-7])
        return found

    monkeypatch.setattr(files.FileReader, "read", read_then_cut)
    fast = _read(paths, True, monkeypatch)
    monkeypatch.undo()
    slow = _read(paths, False, monkeypatch)
    assert fast == slow
    assert fast["outcome"][0]["missing"] == [3]
    assert "cut short" in " ".join(fast["outcome"][0]["warnings"])


# --- pydicom's test files and the corpus -----------------------------------------


def _pydicom_files() -> list[str]:
    return sorted(get_testdata_files()) + sorted(get_charset_files())


@pytest.mark.filterwarnings("ignore")
def test_pydicom_test_files_read_alike_both_ways(monkeypatch):
    taken = 0
    for path in _pydicom_files():
        taken += _same_both_ways([path], monkeypatch).files
    # Most of them are explicit VR little endian: the tight reader took many.
    assert taken > 50


@pytest.mark.extra_data
@pytest.mark.filterwarnings("ignore")
def test_corpus_series_read_alike_both_ways(monkeypatch):
    root = os.environ.get("LIGHTBOX_EXTRA_DATA")
    if not root:
        pytest.skip("LIGHTBOX_EXTRA_DATA not set: point it at the shared real DICOM "
                    "corpus (e.g. /work/shared/data/dicom) to run the corpus tests")
    folders = sorted({p.parent for p in Path(root).rglob("*") if p.is_file()})
    taken = 0
    for folder in folders:
        paths = sorted(p for p in folder.iterdir() if p.is_file())
        taken += _same_both_ways(paths, monkeypatch).files
        taken += _same_both_ways(paths[::-1], monkeypatch).files
    assert taken > 0


# --- the pieces --------------------------------------------------------------------


def test_files_laid_out_alike_are_walked_once(tmp_path, monkeypatch):
    paths = _case_plain(tmp_path / "series")
    # One slice with a longer value: another layout, walked once more.
    ds = pydicom.dcmread(paths[-1])
    ds.SeriesDescription = "a longer description"
    ds.save_as(paths[-1], enforce_file_format=True)
    walks = []
    walk = layout_module._walk
    monkeypatch.setattr(layout_module, "_walk",
                        lambda *args: walks.append(1) or walk(*args))
    reader = files.FileReader([0x00200032, 0x0008103E])
    read = [reader.read(path) for path in paths]
    assert len(walks) == 2
    for path, pixels in zip(paths, read, strict=True):
        whole = pydicom.dcmread(path)
        assert pixels is not None and pixels.header.ImagePositionPatient == (
            whole.ImagePositionPatient)
        assert pixels.volume_header().get("SeriesDescription") == whole.get(
            "SeriesDescription")
        data = path.read_bytes()
        assert data[pixels.value_offset:] == whole.PixelData


def test_layout_checks_the_file_meta_group_length(tmp_path):
    (path,) = _save(tmp_path, _series(1))
    reader = files.FileReader([])
    assert reader.read(path) is not None
    (layout,) = reader._layouts.of_size(path.stat().st_size)
    data = bytearray(path.read_bytes())
    assert layout.matches(bytes(data))
    data[140] += 2  # (0002,0000) File Meta Information Group Length
    assert not layout.matches(bytes(data))


def test_working_header_looks_up_as_pydicom_does(tmp_path):
    paths = _save(tmp_path, [_with_private(ds) for ds in _series(2)])
    reader = files.FileReader(list(pydicom.dcmread(paths[0]).keys()))
    headers = [reader.read(path).header for path in paths]  # type: ignore[union-attr]
    for path, header in zip(paths, headers, strict=True):
        plain = pydicom.dcmread(path, stop_before_pixels=True)
        for name in ("Rows", "ImagePositionPatient", "RescaleIntercept", "EchoNumbers",
                     "PixelData"):
            assert header.get(name, "absent") == plain.get(name, "absent"), name
            assert (name in header) == (name in plain), name
        assert header.get("NotAKeyword", "absent") == "absent"
        assert header.Rows == plain.Rows and header[0x00091001] == plain[0x00091001]
        with pytest.raises(AttributeError):
            header.EchoNumbers  # noqa: B018


def test_unsigned_values_far_from_zero_fit_without_widening():
    # Values of 20000 less 40000 fit int16, though 0 less 40000 would not: the
    # bound 0 that spares the minimum's pass must not widen the volume.
    stored = np.full((6, 5), 20000, np.uint16)
    out = np.empty((6, 5), np.int16)
    assert modality_into(stored, Dataset(), 0, out, rescale=(1, -40000, 0, 65535))
    assert (out == -20000).all()
    stored[0, 0] = 1000
    assert not modality_into(stored, Dataset(), 0, out, rescale=(1, -40000, 0, 65535))


def test_a_series_with_an_intercept_beyond_int16_is_read_exactly(tmp_path, monkeypatch):
    datasets = _series(RescaleIntercept="-40000")
    for k, ds in enumerate(datasets):
        _pixels(ds, np.full((6, 5), 20000 + k), 16, 16, False)
    paths = _save(tmp_path, datasets)
    _same_both_ways(paths, monkeypatch)
    (read,) = volume.read_series(paths)
    assert read.voxels.dtype == np.int16 and not read.warnings
    assert read.voxels[:, 0, 0].tolist() == [-20000 + k for k in range(6)]


@pytest.mark.parametrize(("stored", "out_dtype"), [
    (np.array([[0, 4095], [17, 0x7123]], "<u2"), np.int16),    # bits above 12
    (np.array([[0, 40000], [17, 65535]], "<u2"), np.int16),    # beyond int16
    (np.array([[-2048, 2047], [-1, 0x4001]], "<i2"), np.int16),
], ids=["bits-above", "beyond-int16", "signed"])
def test_modality_into_its_own_bytes_equals_into_a_copy(stored, out_dtype):
    ds = Dataset()
    ds.BitsStored = 12 if stored.dtype.kind == "i" or stored.max() < 40000 else 16
    ds.PixelRepresentation = int(stored.dtype.kind == "i")
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    expected = np.empty(stored.shape, out_dtype)
    fits = modality_into(stored.copy(), ds, 0, expected)
    out = stored.copy().view(out_dtype)
    assert modality_into(out.view(stored.dtype), ds, 0, out) == fits
    if fits:
        np.testing.assert_array_equal(out, expected)
    else:
        np.testing.assert_array_equal(out.view(stored.dtype), stored)  # untouched


class _Recording(Dataset):
    """A header that notes the tag of every element asked for."""

    def __init__(self, ds: Dataset) -> None:
        super().__init__(ds)
        self.file_meta = ds.file_meta
        self.__dict__["asked"] = set()

    def _asked(self, key: Any) -> None:
        tag = pydicom.datadict.tag_for_keyword(key) if isinstance(key, str) else key
        if tag is not None:
            self.__dict__["asked"].add(int(tag))

    def get(self, key: Any, default: Any = None) -> Any:
        self._asked(key)
        return super().get(key, default)

    def __getattr__(self, name: str) -> Any:
        self._asked(name)
        return super().__getattr__(name)

    def __contains__(self, key: Any) -> bool:
        self._asked(key)
        return super().__contains__(key)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int):
            self._asked(key)
        return super().__getitem__(key)


def _headers_of_every_kind() -> list[Dataset]:
    """A plain slice, a Modality LUT, multi-frames placed and rescaled by their
    functional groups."""
    plain = _series(1)[0]
    lut = _series(1)[0]
    del lut.RescaleSlope, lut.RescaleIntercept
    item = Dataset()
    item.LUTDescriptor, item.LUTData, item.ModalityLUTType = [4, 0, 16], [1, 2, 3, 4], "HU"
    lut.ModalityLUTSequence = Sequence([item])
    enhanced = _multi_frame()
    transformation = Dataset()
    transformation.RescaleSlope, transformation.RescaleIntercept = "1", "-1024"
    transformation.RescaleType = "HU"
    enhanced.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence = (
        Sequence([transformation]))
    return [plain, lut, _multi_frame(), enhanced]


@pytest.mark.parametrize("fact", ["plain layout", "integer rescale", "value range",
                                  "orientation", "stack key"])
def test_a_fact_shared_by_files_alike_reads_only_its_tags(fact):
    """A fact shared by files whose elements at its tags are alike
    (FilePixels.shared_fact) must read no other element: one it read but did
    not name could differ between two files and the second get the first's
    answer."""
    from viewerlib.volume.geometry import frame_geometry, plane_orientation, stack_key
    from viewerlib.volume.reading import RESCALE_TAGS, integer_rescale

    facts: dict[str, tuple[Callable[[Dataset, int], Any], tuple[Any, ...]]] = {
        "plain layout": (lambda ds, f: files._plain_layout(ds, 10 ** 9),
                         files._PLAIN_LAYOUT_TAGS),
        "integer rescale": (integer_rescale, RESCALE_TAGS),
        "value range": (volume._value_range, volume._VALUE_RANGE_TAGS),
        "orientation": (plane_orientation, volume._ORIENTATION_TAGS),
        "stack key": (lambda ds, f: stack_key(ds, f, geometry=frame_geometry(ds, f)),
                      volume._STACK_KEY_TAGS + (volume._POSITION_TAG,)),
    }
    work, tags = facts[fact]
    for ds in _headers_of_every_kind():
        for frame_index in range(int(ds.get("NumberOfFrames", 1))):
            recording = _Recording(ds)
            try:
                work(recording, frame_index)
            except ValueError:
                pass  # what it asked for before it gave up still counts
            unnamed = recording.asked - {int(tag) for tag in tags}
            assert not unnamed, [pydicom.datadict.keyword_for_tag(t) for t in unnamed]


@pytest.mark.parametrize("kind", [Dataset, pydicom.dataset.FileMetaDataset,
                                  files._WorkingHeader])
def test_datasets_made_fast_are_those_pydicom_makes(kind):
    """fast_dataset copies a blank dataset's attributes instead of running
    pydicom's __init__: the same attributes, and no container shared."""
    meta = pydicom.dataset.FileMetaDataset()
    elements = {} if kind is pydicom.dataset.FileMetaDataset else {
        0x00280010: pydicom.dataelem.DataElement(0x00280010, "US", 6)}
    fast = fast_dataset(kind, dict(elements), "iso8859", meta)
    usual = kind(dict(elements))
    usual.set_original_encoding(False, True, "iso8859")
    usual.file_meta = meta
    assert type(fast) is kind
    assert fast.__dict__.keys() == usual.__dict__.keys()
    for name, value in usual.__dict__.items():
        assert fast.__dict__[name] == value, name
    other = fast_dataset(kind, {}, None, None)
    shared = [name for name, value in fast.__dict__.items()
              if isinstance(value, dict | list | set) and other.__dict__.get(name) is value]
    assert shared == []
