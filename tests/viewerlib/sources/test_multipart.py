"""Reading multipart/related series answers: exact reads, split bodies, read-ahead."""

from __future__ import annotations

import io
import threading
import time

import pydicom
import pytest
import requests
from lightbox_source_testing import RecordingServer, Reply, make_ct_series

from viewerlib.errors import SourceResponseError
from viewerlib.sources.layout import HeaderLayouts
from viewerlib.sources.multipart import (
    READER_THREAD_NAME,
    SplitBody,
    iter_multipart_part10,
    iter_multipart_parts,
    read_ahead,
)

BOUNDARY = "b-42"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'


def _part10(dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _body(parts: list[bytes], lengths: bool, close: bool = True) -> bytes:
    # RFC 2046 5.1.1: delimiter = CRLF "--" boundary; headers; empty line; body.
    body = b"ignored preamble"
    for part in parts:
        headers = b"Content-Type: application/dicom\r\n"
        if lengths:
            headers += b"Content-Length: " + str(len(part)).encode() + b"\r\n"
        body += b"\r\n--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n" + part
    return body + (b"\r\n--" + BOUNDARY.encode() + b"--\r\n" if close else b"")


def _get(server: RecordingServer) -> requests.Response:
    return requests.get(server.url, stream=True, timeout=5,
                        headers={"Accept-Encoding": "identity"})


@pytest.mark.parametrize("lengths", [True, False], ids=["content-length", "search"])
def test_parts_come_back_byte_for_byte(lengths):
    parts = [_part10(d) for d in make_ct_series(3)] + [b"not dicom at all"]
    reply = Reply(200, {"Content-Type": CONTENT_TYPE}, _body(parts, lengths))
    with RecordingServer(lambda r: reply) as server, _get(server) as response:
        assert list(iter_multipart_parts(response, "rec")) == parts


def test_part10_bodies_with_lengths_are_split_at_the_pixel_data():
    # 512 KiB of pixel data each: more than one read of unknown length takes.
    datasets = make_ct_series(4, rows=512)
    parts = [_part10(d) for d in datasets] + [b"not dicom at all"]
    reply = Reply(200, {"Content-Type": CONTENT_TYPE}, _body(parts, lengths=True))
    with RecordingServer(lambda r: reply) as server, _get(server) as response:
        bodies = list(iter_multipart_part10(response, "rec"))
    # Every part is split: the first reads may reach into the pixel data value
    # (the header length is not known yet), and the value is then made of what
    # was read and the rest; from then on the header length of the part before
    # guides the reads and the value is read on its own.
    assert all(isinstance(b, SplitBody) for b in bodies[:4])
    assert all(len(b.head) == b.place.value_offset for b in bodies[:4])
    for body, dataset, part in zip(bodies[:4], datasets, parts[:4], strict=True):
        read = body.to_dataset() if isinstance(body, SplitBody) else (
            pydicom.dcmread(io.BytesIO(body)))
        assert read == pydicom.dcmread(io.BytesIO(part))
        assert read.PixelData == dataset.PixelData
    assert bodies[4] == b"not dicom at all"


@pytest.mark.parametrize("cut", [200, 5000], ids=["in-headers", "in-pixel-data"])
def test_answer_cut_short_raises_after_the_whole_parts(cut):
    parts = [_part10(d) for d in make_ct_series(2, rows=64)]
    body = _body(parts, lengths=True)
    cut_at = len(body) - len(parts[1]) + cut
    reply = Reply(200, {"Content-Type": CONTENT_TYPE}, body[:cut_at])
    received = []
    with RecordingServer(lambda r: reply) as server, _get(server) as response:
        with pytest.raises(SourceResponseError, match="rec: .*cut short"):
            for part in iter_multipart_part10(response, "rec"):
                received.append(part)
    assert len(received) == 1


def test_read_ahead_hands_on_items_and_the_error_after_them():
    def produce():
        yield 1
        yield 2
        raise SourceResponseError("rec", "broken")

    got = []
    with pytest.raises(SourceResponseError, match="broken"):
        for item in read_ahead(produce):
            got.append(item)
    assert got == [1, 2]


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == READER_THREAD_NAME]


def test_read_ahead_closed_early_stops_its_thread_and_closes():
    closed = threading.Event()

    def produce():
        number = 0
        while True:
            number += 1
            yield number

    before = len(_reader_threads())
    stream = read_ahead(produce, depth=2, close=closed.set)
    assert next(stream) == 1
    stream.close()
    assert closed.wait(5)
    deadline = time.monotonic() + 5
    while len(_reader_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_reader_threads()) == before


@pytest.mark.parametrize("rows", [4, 512], ids=["value-in-first-read", "value-after"])
def test_part_read_past_its_pixel_data_start_is_split_with_its_tail(rows):
    # The first part's header length is unknown, so its first reads may take the
    # whole value (a tiny image) or part of it; what follows the value (here a
    # trailing padding element) must end up in the tail, byte for byte.
    datasets = make_ct_series(2, rows=rows)
    for dataset in datasets:
        dataset.DataSetTrailingPadding = b"\0" * 6
    parts = [_part10(d) for d in datasets]
    reply = Reply(200, {"Content-Type": CONTENT_TYPE}, _body(parts, lengths=True))
    with RecordingServer(lambda r: reply) as server, _get(server) as response:
        bodies = list(iter_multipart_part10(response, "rec"))
    for body, part in zip(bodies, parts, strict=True):
        assert isinstance(body, SplitBody)
        assert body.head + body.value + body.tail == part
        assert body.to_dataset() == pydicom.dcmread(io.BytesIO(part))


def test_bodies_laid_out_alike_are_split_and_read_by_an_earlier_layout():
    datasets = make_ct_series(8, rows=64)
    for number, dataset in enumerate(datasets):
        # UIDs of one length: generate_uid's vary, and with them the layout.
        uid = f"1.2.826.0.1.3680043.10.511.{100 + number}"
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = uid
        dataset.SpecificCharacterSet = "ISO_IR 100"
    # The same size, another layout: two values trade two bytes of length.
    datasets[2].AccessionNumber = "ACC-TEST-12"
    datasets[2].StudyDescription = "Synthetic phant"
    datasets[3].SOPInstanceUID += "1"  # another size
    datasets[5].SpecificCharacterSet = "ISO_IR 192"  # another value, the same length
    datasets[6].DataSetTrailingPadding = b"\0" * 6  # something after the pixel data
    parts = [_part10(d) for d in datasets]
    assert len(parts[2]) == len(parts[0])
    reply = Reply(200, {"Content-Type": CONTENT_TYPE}, _body(parts, lengths=True))
    layouts = HeaderLayouts()
    read = []
    bodies = []
    with RecordingServer(lambda r: reply) as server, _get(server) as response:
        for body in iter_multipart_part10(response, "rec", layouts=layouts):
            bodies.append(body)
            read.append(body.to_dataset(layouts))

    assert [body.layout is not None for body in bodies] == [
        False, True, False, False, True, True, False, True]
    for body, dataset, part in zip(bodies, read, parts, strict=True):
        assert body.head + body.value + body.tail == part
        expected = pydicom.dcmread(io.BytesIO(part))
        assert dataset == expected
        assert dataset.file_meta == expected.file_meta
        assert dataset.original_character_set == expected.original_character_set
        assert dataset.PixelData == expected.PixelData
    assert read[5].original_character_set == ["UTF8"]
    for body, dataset, part in zip(bodies, read, parts, strict=True):
        if not body.tail:  # (the pixel data is added last)
            assert list(dataset.keys()) == list(
                pydicom.dcmread(io.BytesIO(part)).keys())
    # No data set shares its list of encodings with another.
    encodings = [dataset.original_character_set for dataset in read]
    assert encodings[4] == encodings[7] and encodings[4] is not encodings[7]
    # Each data set is its own: converting or changing one leaves the others.
    read[4].InstanceNumber = 99
    assert read[1].InstanceNumber == 2 and read[7].InstanceNumber == 8
