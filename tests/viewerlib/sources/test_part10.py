"""Finding the pixel data value of a Part-10 file while it arrives (PS3.5 7.1)."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from lightbox_source_testing import make_ct_series
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from viewerlib.sources.part10 import (
    PixelDataPlace,
    dataset_from_pieces,
    find_pixel_data,
    read_explicit_little,
)

# Element header lengths, PS3.5 7.1.2 and 7.1.3: tag 4 + VR 2 + reserved 2 +
# length 4 for OB/OW in explicit VR; tag 4 + length 4 in implicit VR.
EXPLICIT_LONG_HEADER, IMPLICIT_HEADER = 12, 8


def _file(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _walk(data: bytes) -> tuple[PixelDataPlace | None, int]:
    """Feed ``data`` as the walk asks; return the place and the most bytes asked."""
    buffer = bytearray()
    walk = find_pixel_data(buffer)
    asked = 0
    try:
        need = next(walk)
        while True:
            assert need > len(buffer), "asked for bytes it already had"
            asked = max(asked, need)
            if need > len(data):
                return None, asked
            buffer += data[len(buffer):need]
            need = walk.send(None)
    except StopIteration as done:
        return done.value, asked


def _with_nested_sequence(dataset: Dataset, undefined: bool) -> Dataset:
    inner = Dataset()
    inner.CodeValue, inner.CodeMeaning = "T-A0100", "Brain"
    item = Dataset()
    item.CodeValue = "1"
    item.ConceptNameCodeSequence = Sequence([inner])
    dataset.AnatomicRegionSequence = Sequence([item])
    dataset["AnatomicRegionSequence"].is_undefined_length = undefined
    item["ConceptNameCodeSequence"].is_undefined_length = undefined
    return dataset


@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
def test_explicit_vr_file_splits_before_the_pixel_value(undefined):
    dataset = _with_nested_sequence(make_ct_series(1)[0], undefined)
    data = _file(dataset)
    place, asked = _walk(data)
    # Pixel Data is the last element: its value is the file's last bytes.
    value_offset = len(data) - len(dataset.PixelData)
    assert place == PixelDataPlace(value_offset - EXPLICIT_LONG_HEADER, value_offset,
                                   len(dataset.PixelData), "OW")
    assert asked == value_offset  # never a byte of the value itself
    rebuilt = dataset_from_pieces(data[:value_offset], place, data[value_offset:])
    whole = pydicom.dcmread(io.BytesIO(data))
    assert rebuilt == whole and rebuilt.file_meta == whole.file_meta
    assert rebuilt.original_encoding == whole.original_encoding == (False, True)


def test_implicit_vr_file_splits_and_pixel_data_is_ow():
    dataset = make_ct_series(1)[0]
    dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    data = _file(dataset)
    place, _ = _walk(data)
    value_offset = len(data) - len(dataset.PixelData)
    assert place is not None and place.value_offset == value_offset
    assert place.element_offset == value_offset - IMPLICIT_HEADER
    assert place.vr == ""
    rebuilt = dataset_from_pieces(data[:value_offset], place, data[value_offset:])
    assert rebuilt["PixelData"].VR == "OW"
    assert rebuilt.PixelData == dataset.PixelData
    assert rebuilt.original_encoding == (True, True)
    assert rebuilt == pydicom.dcmread(io.BytesIO(data))


def test_elements_after_the_pixel_data_go_in_the_tail():
    dataset = make_ct_series(1)[0]
    dataset.DataSetTrailingPadding = b"\0" * 6
    data = _file(dataset)
    place, _ = _walk(data)
    assert place is not None
    end = place.value_offset + place.value_length
    assert len(data) - end == EXPLICIT_LONG_HEADER + 6
    rebuilt = dataset_from_pieces(data[:place.value_offset], place,
                                  data[place.value_offset:end], data[end:])
    assert rebuilt == pydicom.dcmread(io.BytesIO(data))


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "MR_small_bigendian.dcm"],
                         ids=["encapsulated", "big-endian"])
def test_files_not_split_return_none(name):
    place, _ = _walk(Path(get_testdata_file(name)).read_bytes())
    assert place is None


def test_file_without_pixel_data_asks_past_its_end():
    dataset = make_ct_series(1)[0]
    del dataset.PixelData
    data = _file(dataset)
    place, asked = _walk(data)
    assert place is None and asked > len(data)


def test_big_endian_written_here_is_not_split():
    dataset = make_ct_series(1)[0]
    dataset.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, little_endian=False, implicit_vr=False)
    assert _walk(buffer.getvalue())[0] is None


def _same_raw_elements(ours: Dataset, pydicoms: Dataset) -> bool:
    """Same tags, and the same raw elements wherever both are still raw.

    ``value_tell`` is left out: it counts from the file's start in pydicom's
    reading and from the part's data set here.
    """
    # keys(): iterating a Dataset gives its elements, parsed.
    if set(ours.keys()) != set(pydicoms.keys()):
        return False
    for tag in ours.keys():  # noqa: SIM118
        mine, theirs = ours.get_item(tag), pydicoms.get_item(tag)
        if (isinstance(mine, RawDataElement) and isinstance(theirs, RawDataElement)
                and mine._replace(value_tell=0) != theirs._replace(value_tell=0)):
            return False
    return True


# Explicit VR little endian files with private groups, sequences of defined and
# undefined length, empty values and character sets other than the default.
_READ_AS_PYDICOM_DOES = ["CT_small.dcm", "MR_small.dcm", "rtdose.dcm",
                         "chrFren.dcm", "chrH31.dcm", "chrX1.dcm", "chrGreek.dcm"]


# pydicom warns about a UID of one test file when it converts the value, in
# both readings alike.
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize("name", _READ_AS_PYDICOM_DOES)
def test_split_files_read_element_for_element_as_pydicom_reads_them(name):
    # The fast reader of plain explicit VR little endian elements must give the
    # very raw elements, encoding and values that pydicom's reader gives.
    path = (get_charset_files(name)[0] if name.startswith("chr")
            else get_testdata_file(name))
    data = Path(path).read_bytes()
    place, _ = _walk(data)
    if place is None:
        pytest.skip(f"{name} is not split (no pixel data of defined length)")
    end = place.value_offset + place.value_length
    rebuilt = dataset_from_pieces(data[:place.value_offset], place,
                                  data[place.value_offset:end], data[end:])
    whole = pydicom.dcmread(io.BytesIO(data))
    assert _same_raw_elements(rebuilt, whole)
    assert _same_raw_elements(rebuilt.file_meta, whole.file_meta)
    assert [(e.tag, e.VR, e.value) for e in rebuilt.file_meta] == [
        (e.tag, e.VR, e.value) for e in whole.file_meta]
    assert rebuilt.original_encoding == whole.original_encoding
    assert rebuilt.original_character_set == whole.original_character_set
    assert [(e.tag, e.VR, e.value) for e in rebuilt if e.tag != 0x7FE00010] == [
        (e.tag, e.VR, e.value) for e in whole if e.tag != 0x7FE00010]
    assert rebuilt.PixelData == whole.PixelData


@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
def test_sequences_read_as_pydicom_reads_them(undefined):
    # A sequence of undefined length is left to pydicom's reader.
    data = _file(_with_nested_sequence(make_ct_series(1)[0], undefined))
    place, _ = _walk(data)
    assert place is not None
    rebuilt = dataset_from_pieces(data[:place.value_offset], place,
                                  data[place.value_offset:])
    whole = pydicom.dcmread(io.BytesIO(data))
    assert _same_raw_elements(rebuilt, whole)
    assert (rebuilt.AnatomicRegionSequence[0].ConceptNameCodeSequence[0].CodeMeaning
            == "Brain")
    assert rebuilt == whole


def _dataset_start(data: bytes) -> int:
    # PS3.10 7.1: preamble, "DICM", then (0002,0000) UL whose value is the
    # length of the rest of the File Meta group.
    return 144 + int.from_bytes(data[140:144], "little")


def test_tight_reader_keeps_what_it_is_asked_for_and_skips_the_rest():
    data = _file(_with_nested_sequence(make_ct_series(1)[0], undefined=False))
    start = _dataset_start(data)
    place, _ = _walk(data)
    assert place is not None
    read = read_explicit_little(data, start, len(data))
    assert read is not None
    everything, stop = read
    assert stop == place.element_offset  # it stops at the pixel data
    keep = {0x00280010, 0x00200032, 0x00082218}  # Rows, position, a sequence
    offsets: list[int] = []
    some = read_explicit_little(data, start, len(data), keep, offsets)
    assert some is not None and some[1] == stop
    assert some[0] == {tag: e for tag, e in everything.items() if tag in keep}
    # Every element walked, kept or not, in the order of the file.
    assert [int.from_bytes(data[at:at + 2], "little") << 16
            | int.from_bytes(data[at + 2:at + 4], "little")
            for at in offsets] == list(everything)


def test_tight_reader_stops_before_an_element_the_bytes_cut():
    data = _file(make_ct_series(1)[0])
    start = _dataset_start(data)
    read = read_explicit_little(data, start, len(data))
    assert read is not None
    elements, stop = read
    last_value = list(elements.values())[-1]
    cut = start + last_value.value_tell + 1  # inside the last element's value
    shorter = read_explicit_little(data, start, cut)
    assert shorter is not None
    assert list(shorter[0]) == list(elements)[:-1]
    assert shorter[1] == start + last_value.value_tell - 8


def test_tight_reader_leaves_undefined_lengths_to_pydicom():
    data = _file(_with_nested_sequence(make_ct_series(1)[0], undefined=True))
    assert read_explicit_little(data, _dataset_start(data), len(data)) is None


def test_file_meta_is_read_by_its_group_length_or_left_to_pydicom():
    """The File Meta is read tightly when (0002,0000) ends the group where
    pydicom's reader ends it; otherwise pydicom reads it, and both give the
    same elements."""
    from viewerlib.sources.part10 import file_meta as _file_meta

    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    place, _ = _walk(data)
    assert place is not None
    read = _file_meta(data)
    assert read is not None
    whole = pydicom.dcmread(io.BytesIO(data))
    assert [int(tag) for tag in read[0]] == [int(e.tag) for e in whole.file_meta]
    # A group length one element short: the tight read would stop early.
    cut = bytearray(data)
    length = int.from_bytes(cut[140:144], "little")
    last = whole.file_meta[list(whole.file_meta.keys())[-1]]
    cut[140:144] = (length - 8 - len(last.value)).to_bytes(4, "little")
    assert _file_meta(bytes(cut)) is None
    rebuilt = dataset_from_pieces(bytes(cut[:place.value_offset]), place,
                                  bytes(cut[place.value_offset:]))
    # All the same but the group length changed here.
    assert [(e.tag, e.value) for e in rebuilt.file_meta][1:] == [
        (e.tag, e.value) for e in whole.file_meta][1:]
