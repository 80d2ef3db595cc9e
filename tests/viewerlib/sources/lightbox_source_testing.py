"""Test helpers for sources: synthetic DICOM, a recording HTTP server, a TCP proxy.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

# Legend: every synthetic patient is obviously fake.
FAKE_PATIENT = "Test^Case"


def make_ct_series(count: int = 6, patient_name: str = FAKE_PATIENT,
                   patient_id: str = "TEST-0001", study_date: str = "20240102",
                   rows: int = 32, study_instance_uid: str | None = None,
                   issuer: str | None = None,
                   other_ids: list[tuple[str, str]] | None = None,
                   accession_number: str = "ACC-TEST-1") -> list[Dataset]:
    """A small multi-slice CT series (uint16 ramps, one value offset per slice)."""
    study_uid = study_instance_uid or generate_uid()
    series_uid = generate_uid()
    datasets = []
    for number in range(1, count + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        sop_uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.PatientName, ds.PatientID = patient_name, patient_id
        if issuer:
            ds.IssuerOfPatientID = issuer
        if other_ids:
            items = []
            for other_id, other_issuer in other_ids:
                item = Dataset()
                item.PatientID, item.IssuerOfPatientID = other_id, other_issuer
                items.append(item)
            ds.OtherPatientIDsSequence = items
        ds.StudyDate, ds.StudyTime = study_date, "101500"
        ds.AccessionNumber, ds.StudyID = accession_number, "1"
        ds.StudyDescription = "Synthetic phantom"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 7, number
        ds.ImagePositionPatient = [0.0, 0.0, float(number)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 1.0
        ds.Rows = ds.Columns = rows
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        pixels = (np.arange(rows * rows, dtype=np.uint16).reshape(rows, rows)
                  + number * 10)
        ds.PixelData = pixels.tobytes()
        datasets.append(ds)
    return datasets


def write_datasets(datasets: list[Dataset], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, ds in enumerate(datasets, start=1):
        path = directory / f"slice{number:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@dataclass
class Recorded:
    """One request the recording server received."""

    method: str
    path: str  # with the raw query string, exactly as it came over the wire
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class RecordingServer:
    """A loopback HTTP server that answers from a handler and records requests.

    ``handler(recorded) -> Reply``; the default answers 200 with ``[]``.
    """

    def __init__(self, handler: Callable[[Recorded], Reply] | None = None) -> None:
        self.requests: list[Recorded] = []
        self.handler = handler or (lambda r: Reply(200, {
            "Content-Type": "application/dicom+json"}, b"[]"))
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, dict(self.headers), body)
                outer.requests.append(recorded)
                reply = outer.handler(recorded)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web"

    def __enter__(self) -> RecordingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class LoopbackProxy:
    """A TCP proxy on 127.0.0.1 in front of one server, for slow or broken links.

    Parameters
    ----------
    target_port : int
        The server's port on 127.0.0.1.
    delay_s : float
        Wait this long before passing on the first byte of each answer.
    hold_after_bytes : int, optional
        Pass on this many answer bytes, then hold the rest until
        :attr:`release` is set (or ``hold_timeout_s`` passes).
    cut_after_bytes : int, optional
        Pass on this many answer bytes, then close both connections.
    """

    def __init__(self, target_port: int, delay_s: float = 0.0,
                 hold_after_bytes: int | None = None,
                 cut_after_bytes: int | None = None,
                 hold_timeout_s: float = 10.0) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.hold_after_bytes = hold_after_bytes
        self.cut_after_bytes = cut_after_bytes
        self.hold_timeout_s = hold_timeout_s
        self.release = threading.Event()
        self.held = threading.Event()
        self.hold_timed_out = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def url(self, path: str = "/dicom-web") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket,
              answer: bool) -> None:
        sent = 0
        first = True
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if answer and first and self.delay_s:
                    time.sleep(self.delay_s)
                first = False
                if answer and self.cut_after_bytes is not None:
                    if sent + len(data) >= self.cut_after_bytes:
                        target.sendall(data[:self.cut_after_bytes - sent])
                        break
                if (answer and self.hold_after_bytes is not None
                        and sent + len(data) > self.hold_after_bytes
                        and not self.release.is_set()):
                    keep = max(self.hold_after_bytes - sent, 0)
                    target.sendall(data[:keep])
                    sent += keep
                    data = data[keep:]
                    self.held.set()
                    if not self.release.wait(self.hold_timeout_s):
                        self.hold_timed_out.set()
                target.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def __enter__(self) -> LoopbackProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._stop.set()
        self._thread.join(timeout=2)
        self.listener.close()
