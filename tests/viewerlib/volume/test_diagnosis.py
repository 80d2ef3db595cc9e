"""Why a file cannot be used: cut short, garbled, or written with a header that lies.

Each file is a slice of the CT head phantom (Test^Case, synthetic), written here and
then broken one way. The cause decides what the message tells the reader to do:
copy a file cut short or garbled again; ask the sender for one written wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from viewerlib.pipeline.decode import (
    MISFIT,
    UNFIT,
    dataset_pixel_problem,
    header_misfit,
    pixel_data_problem,
)
from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume.diagnosis import file_damage, holds_no_dicom, is_companion_file

ROWS = COLUMNS = 16
NEEDED = ROWS * COLUMNS * 2  # Rows x Columns x Bits Allocated / 8


def _slice_file(folder: Path, syntax: str = ExplicitVRLittleEndian) -> Path:
    ds = ct_head_phantom("current", rows=ROWS, columns=COLUMNS,
                         number_of_slices=1).datasets[0]
    ds.file_meta.TransferSyntaxUID = syntax
    path = folder / "slice.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _dataset_start(data: bytes) -> int:
    # PS3.10 7.1: preamble, "DICM", then (0002,0000) whose value is the group's length.
    return 132 + 12 + int.from_bytes(data[140:144], "little")


def _garble_start(path: Path) -> None:
    data = bytearray(path.read_bytes())
    start = _dataset_start(data)
    data[start:start + 40] = b"\xff\x13" * 20
    path.write_bytes(bytes(data))


def _garble_middle(path: Path) -> None:
    # (0008,0020) Study Date's VR bytes overwritten, the file's length kept.
    data = bytearray(path.read_bytes())
    at = data.index(b"\x08\x00\x20\x00DA")
    data[at + 4:at + 6] = b"\x00\x00"
    path.write_bytes(bytes(data))


def _cut_in_header(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:_dataset_start(path.read_bytes()) + 100])


def _cut_in_meta(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:150])


# How the file is broken -> how the message starts, and words it must hold.
DAMAGE = {
    "garbled from the first element": (
        _garble_start, "its data set is damaged: the File Meta (group 0002) is whole",
        ["no DICOM element of its transfer syntax, Explicit VR Little Endian",
         "ff 13", "implicit VR", "not cut short", "copy the file again",
         "ask the sender"]),
    "garbled inside the header": (
        _garble_middle, "its data set is damaged from byte",
        ["(0008,0020)", "not cut short", "copy the file again"]),
    "cut inside the header": (
        _cut_in_header, "the file is cut short: it ends at byte",
        ["inside its element", "copy it again from its source"]),
    "cut inside the File Meta": (
        _cut_in_meta, "the file is cut short: it ends at byte 150, inside its File",
        ["Meta (group 0002)", "copy it again from its source"]),
}


@pytest.mark.parametrize(("damage", "starts", "holds"), DAMAGE.values(), ids=DAMAGE)
def test_file_damage_tells_cut_short_from_garbled(tmp_path, damage, starts, holds):
    path = _slice_file(tmp_path)
    damage(path)

    found = file_damage(path)

    assert found is not None and found.startswith(starts), found
    for words in holds:
        assert words in found


def test_a_garbled_implicit_vr_data_set_is_named_damaged(tmp_path):
    path = _slice_file(tmp_path, ImplicitVRLittleEndian)
    _garble_start(path)

    found = file_damage(path)

    assert found is not None
    assert found.startswith("its data set is damaged")
    assert "Implicit VR Little Endian" in found and "no DICOM element" in found


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_a_whole_file_has_no_damage(tmp_path, syntax):
    assert file_damage(_slice_file(tmp_path, syntax)) is None


def test_a_file_without_part10_preamble_is_left_to_the_caller(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("not an image", encoding="utf-8")

    assert file_damage(path) is None


def _header(rows: int = ROWS, columns: int = COLUMNS) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.SamplesPerPixel = 16, 1
    return ds


# (Rows in the header, bytes there, bytes the element declares) -> message start.
SIZES = {
    "fits": (ROWS, NEEDED, NEEDED, None),
    "one padding byte more": (ROWS, NEEDED + 1, NEEDED + 1, None),
    "cut short": (ROWS, NEEDED - 100, NEEDED, "the file is cut short"),
    "Rows too large": (ROWS + 1, NEEDED, NEEDED, MISFIT),
    # More than the header needs is shown, as pydicom shows it.
    "Rows too small": (ROWS - 1, NEEDED, NEEDED, None),
    "two rows more": (ROWS, NEEDED + 4 * COLUMNS, NEEDED + 4 * COLUMNS, None),
    "short, whole unknown": (ROWS, NEEDED - 100, None, UNFIT),
    "Rows too small, whole unknown": (ROWS - 1, NEEDED, None, None),
}


@pytest.mark.parametrize(("rows", "there", "declared", "starts"), SIZES.values(),
                         ids=SIZES)
def test_pixel_data_problem_names_the_cause(rows, there, declared, starts):
    found = pixel_data_problem(_header(rows), there, declared)

    if starts is None:
        assert found is None
    else:
        assert found is not None and found.startswith(starts), found


def test_a_misfit_names_each_element_and_what_to_do():
    found = header_misfit(_header(ROWS + 1), NEEDED)

    assert found == (
        f"{MISFIT}: (0028,0010) Rows {ROWS + 1} x (0028,0011) Columns {COLUMNS} x "
        f"(0028,0100) Bits Allocated 16 needs {NEEDED + 2 * COLUMNS} bytes and "
        f"{NEEDED} are there, the whole (7FE0,0010) Pixel Data. The file is not cut "
        "short: it was written inconsistent, and every copy of it is the same, so "
        "copying it again will not help; ask the sender for the original image")


def _one_row_too_many(folder: Path) -> Path:
    """A slice file whose (0028,0010) Rows asks for a row more than it holds."""
    path = _slice_file(folder)
    ds = pydicom.dcmread(path)
    ds.Rows = ROWS + 1
    ds.save_as(path)
    return path


def test_a_dataset_read_from_a_file_knows_whether_it_was_cut(tmp_path):
    path = _one_row_too_many(tmp_path)
    written_wrong = dataset_pixel_problem(pydicom.dcmread(path))
    path.write_bytes(path.read_bytes()[:-100])
    cut = dataset_pixel_problem(pydicom.dcmread(path))

    assert written_wrong is not None and written_wrong.startswith(MISFIT)
    assert cut is not None and cut.startswith("the file is cut short")


def test_encapsulated_pixel_data_is_not_measured():
    ds = _header(ROWS + 1)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.5"  # RLE Lossless
    ds.PixelData = np.zeros(8, np.uint8).tobytes()

    assert dataset_pixel_problem(ds) is None


def _rle_file(folder: Path) -> Path:
    path = _slice_file(folder)
    ds = pydicom.dcmread(path)
    ds.compress(pydicom.uid.RLELossless)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_compressed_file_cut_inside_its_pixel_data_is_cut_short(tmp_path):
    # pydicom reads it as no data set at all: only the bytes tell what happened.
    path = _rle_file(tmp_path)
    assert file_damage(path) is None
    path.write_bytes(path.read_bytes()[:-60])

    found = file_damage(path)

    assert found is not None and found.startswith(
        "the file is cut short: it ends at byte"), found
    assert "inside its compressed (7FE0,0010) Pixel Data" in found
    assert "copy it again from its source" in found


def test_compressed_pixel_data_of_no_items_is_garbled(tmp_path):
    path = _rle_file(tmp_path)
    data = bytearray(path.read_bytes())
    first_item = data.index(b"\xfe\xff\x00\xe0", data.index(b"\xe0\x7f\x10\x00"))
    data[first_item:first_item + 4] = b"\x13\xff\x13\xff"
    path.write_bytes(bytes(data))

    found = file_damage(path)

    assert found is not None and found.startswith(
        "its compressed pixel data is damaged: at byte"), found


def test_a_native_file_cut_inside_its_pixel_data_says_where(tmp_path):
    path = _slice_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-100])

    found = file_damage(path)

    assert found == ("the file is cut short: it ends at byte "
                     f"{path.stat().st_size}, inside its (7FE0,0010) Pixel Data, 100 "
                     "byte(s) before its end; copy it again from its source")


def test_one_file_with_too_many_rows_is_not_called_cut_short(tmp_path):
    # read_instance (open of a single file) names the cause as read_series does.
    from viewerlib.errors import DecodingError
    from viewerlib.pipeline.instance import read_instance

    path = _one_row_too_many(tmp_path)

    with pytest.raises(DecodingError, match=MISFIT) as raised:
        read_instance(path).display_frame()

    assert "the file is cut short" not in str(raised.value)
    assert "ask the sender for the original image" in str(raised.value)


def _without_preamble(folder: Path, implicit: bool, little: bool = True) -> bytes:
    ds = pydicom.dcmread(_slice_file(folder))
    del ds.file_meta
    ds.preamble = None
    path = folder / "no-preamble"
    pydicom.dcmwrite(path, ds, implicit_vr=implicit, little_endian=little,
                     force_encoding=True)
    return path.read_bytes()


def _part10(folder: Path) -> bytes:
    return _slice_file(folder).read_bytes()


# What a file holds -> whether it is plainly no DICOM (a companion of the images).
NO_DICOM = {
    "a README": (lambda _: b"Images of Test^Case. Run VIEWER.EXE.\r\n", True),
    "an AUTORUN.INF": (lambda _: b"[autorun]\r\nopen=VIEWER.EXE\r\n", True),
    "an HTML index": (lambda _: b"<html><body>Test^Case</body></html>", True),
    "an XML index": (lambda _: b'<?xml version="1.0"?><index/>', True),
    "a program": (lambda _: b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
                  + bytes(64), True),
    "a PDF manual": (lambda _: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", True),
    "Part 10 DICOM": (_part10, False),
    "implicit VR without preamble": (lambda f: _without_preamble(f, True), False),
    "explicit VR without preamble": (lambda f: _without_preamble(f, False), False),
    "big endian without preamble": (lambda f: _without_preamble(f, False, False),
                                    False),
    "File Meta without preamble": (lambda f: _part10(f)[128:], False),
    "DICM marker damaged": (lambda f: _part10(f)[:128] + b"DIXM" + _part10(f)[132:],
                            False),
    "cut in its preamble": (lambda f: _part10(f)[:100], False),
    "empty": (lambda _: b"", False),
    "a DICOMDIR": (lambda _: Path(pydicom.data.get_testdata_file("DICOMDIR"))
                   .read_bytes(), False),
}


@pytest.mark.parametrize(("content", "expected"), NO_DICOM.values(), ids=NO_DICOM)
def test_a_file_is_no_dicom_only_when_nothing_in_it_is(tmp_path, content, expected):
    path = tmp_path / "FILE"
    path.write_bytes(content(tmp_path))

    assert holds_no_dicom(path) is expected
    assert is_companion_file(path) is expected
    # Named as DICOM, it is meant to be one, and is never a mere companion.
    assert not is_companion_file(path.rename(tmp_path / "FILE.dcm"))
