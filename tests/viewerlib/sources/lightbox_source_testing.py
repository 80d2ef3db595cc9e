"""Test helpers for sources: synthetic DICOM, a recording HTTP server, a TCP proxy.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

# The basic-auth archive's account, the series length of the CT in both archives,
# and a JPEG-LS file the archive may send as stored, never encode into.
CREDENTIALS = ("viewer", "secret")
SERIES_LENGTH = 12
JPEG_LS_FILE = "emri_small_jpeg_ls_lossless.dcm"

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


class ManualClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class BearerTokenGateway:
    """A loopback reverse proxy that lets a request through only with a valid token.

    It plays both parts an OpenID Connect deployment has around an archive: the
    token endpoint (``POST /token`` issues a random token valid for ``ttl_s`` by
    ``clock``, answered as in RFC 6749 5.1) and the resource server in front of
    the archive, which answers 401 with ``WWW-Authenticate: Bearer`` (RFC 6750 3)
    to a missing, unknown, expired or revoked token and passes every other
    request on to the archive.

    Attributes
    ----------
    issued : list of str
        Tokens issued, oldest first.
    seen : list of tuple
        ``(token, status)`` of every request to the archive side.
    refuse_everything : bool
        Refuse even valid tokens (an account that lost access to the archive).
    """

    def __init__(self, target_port: int, clock: ManualClock, ttl_s: float = 300.0,
                 ) -> None:
        import http.client
        import json
        import secrets

        self.clock, self.ttl_s = clock, ttl_s
        self.issued: list[str] = []
        self.expires: dict[str, float] = {}
        self.revoked: set[str] = set()
        self.seen: list[tuple[str, int]] = []
        self.refuse_everything = False
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, headers: dict[str, str],
                       body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _issue(self) -> None:
                token = secrets.token_urlsafe(24)
                outer.issued.append(token)
                outer.expires[token] = outer.clock() + outer.ttl_s
                self._reply(200, {"Content-Type": "application/json",
                                  "Cache-Control": "no-store"},
                            json.dumps({"access_token": token, "token_type": "Bearer",
                                        "expires_in": outer.ttl_s}).encode())

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self._read_chunked()
                else:
                    body = self.rfile.read(length) if length else b""
                if self.command == "POST" and self.path == "/token":
                    self._issue()
                    return
                scheme, _, token = self.headers.get("Authorization", "").partition(" ")
                valid = (scheme == "Bearer" and token in outer.expires
                         and token not in outer.revoked
                         and outer.expires[token] > outer.clock()
                         and not outer.refuse_everything)
                if not valid:
                    outer.seen.append((token, 401))
                    self._reply(401, {"WWW-Authenticate":
                                      'Bearer error="invalid_token"'}, b"")
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", target_port,
                                                      timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("authorization", "host",
                                                "transfer-encoding", "connection")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                outer.seen.append((token, answer.status))
                self._reply(answer.status, {
                    k: v for k, v in answer.getheaders()
                    if k.lower() not in ("content-length", "connection",
                                         "transfer-encoding")}, data)

            def _read_chunked(self) -> bytes:
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return bytes(body)
                    body += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/dicom-web") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def fetch_token(self) -> object:
        """Get a token from ``/token`` the way the hub hands one to a kernel."""
        import requests

        from viewerlib.sources.auth import AccessToken

        answer = requests.post(self.url("/token"), timeout=5).json()
        return AccessToken(answer["access_token"],
                           self.clock() + float(answer["expires_in"]))

    def refusals(self) -> int:
        return sum(1 for _, status in self.seen if status == 401)

    def __enter__(self) -> BearerTokenGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


DROP = Reply(status=0)
"""What an :class:`ArchiveGateway` rule returns to drop the connection unanswered."""


class ArchiveGateway:
    """A loopback HTTP reverse proxy in front of one archive, with rules.

    Every request is recorded and, unless a rule says otherwise, passed on to the
    archive unchanged; the archive's answer is passed back whole.

    Parameters
    ----------
    target_port : int
        The archive's HTTP port on 127.0.0.1.
    rewrite : callable, optional
        ``rewrite(path) -> path``: the request path (with its raw query string)
        as passed on, e.g. to cap ``limit`` the way some archives do.
    answer : callable, optional
        ``answer(recorded) -> Reply | None``: a reply of the gateway's own
        instead of the archive's (:data:`DROP` closes the connection), or
        ``None`` to pass the request on.
    cut_after : callable, optional
        ``cut_after(recorded) -> int | None``: pass on only that many bytes of
        the archive's answer body (its headers announce all of it), then close
        the connection. ``None`` passes the answer on whole.
    die_at_cut : bool
        At a cut, die too: every connection open is closed unanswered, and the
        port stops accepting, as when the archive's process ends.
    tls : ssl.SSLContext, optional
        Serve HTTPS with this server-side context (e.g. one that requires a
        client certificate); the handshake runs in the connection's thread.

    Attributes
    ----------
    requests, answered : list of Recorded
        Every request received, and every request answered in full.
    dead : threading.Event
        Set once the gateway has died.
    """

    def __init__(self, target_port: int,
                 rewrite: Callable[[str], str] | None = None,
                 answer: Callable[[Recorded], Reply | None] | None = None,
                 cut_after: Callable[[Recorded], int | None] | None = None,
                 die_at_cut: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        import http.client

        self.requests: list[Recorded] = []
        self.answered: list[Recorded] = []
        self.dead = threading.Event()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _drop(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if outer.dead.is_set():
                    self._drop()
                    return
                recorded = Recorded(self.command, self.path, dict(self.headers), body)
                outer.requests.append(recorded)
                reply = answer(recorded) if answer else None
                if reply is DROP or outer.dead.is_set():
                    self._drop()
                    return
                if reply is None:
                    upstream = http.client.HTTPConnection("127.0.0.1", target_port,
                                                          timeout=30)
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in ("host", "connection")}
                    path = rewrite(self.path) if rewrite else self.path
                    upstream.request(self.command, path, body=body or None,
                                     headers=headers)
                    response = upstream.getresponse()
                    reply = Reply(response.status, {
                        k: v for k, v in response.getheaders()
                        if k.lower() not in ("content-length", "connection",
                                             "transfer-encoding")}, response.read())
                    upstream.close()
                cut = cut_after(recorded) if cut_after else None
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if cut is None:
                    self.wfile.write(reply.body)
                    outer.answered.append(recorded)
                    return
                self.wfile.write(reply.body[:cut])
                self.wfile.flush()
                if die_at_cut:
                    outer.die()
                self._drop()

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                if tls is None:
                    super().finish_request(request, client_address)
                    return
                # A refused handshake ends here, in this connection's thread.
                with tls.wrap_socket(request, server_side=True) as secure:
                    super().finish_request(secure, client_address)

            def handle_error(self, request: object, client_address: object) -> None:
                # A client that went away while the gateway died: expected here.
                pass

        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.scheme = "https" if tls is not None else "http"
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self._closed = threading.Lock()

    def url(self, path: str = "/dicom-web") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def die(self) -> None:
        """Stop as a crashed archive does: nothing more is answered or accepted."""
        if self.dead.is_set():
            return
        self.dead.set()
        # shutdown() waits for serve_forever, which may be this thread's caller.
        threading.Thread(target=self._close, daemon=True).start()

    def _close(self) -> None:
        with self._closed:
            if self.server.socket.fileno() == -1:
                return
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> ArchiveGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.dead.set()
        self._close()


@dataclass
class TlsFiles:
    """PEM files for a TLS archive that asks for client certificates.

    ``ca`` signed the server's and the client's certificates; ``server`` holds
    the server's certificate and key together (as Orthanc wants them);
    ``stranger_cert`` / ``stranger_key`` are a client certificate from a CA the
    archive does not trust.
    """

    ca: Path
    server: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A test CA, a server certificate for 127.0.0.1 and client certificates."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey,
                    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
                    usage: x509.ObjectIdentifier | None) -> x509.Certificate:
        issuer_name, issuer_key = issuer or (name(subject), key)
        builder = (x509.CertificateBuilder().subject_name(name(subject))
                   .issuer_name(issuer_name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)))
        if usage is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True,
                                                                  path_length=0),
                                            critical=True).add_extension(
                x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                              crl_sign=True, content_commitment=False,
                              key_encipherment=False, data_encipherment=False,
                              key_agreement=False, encipher_only=False,
                              decipher_only=False), critical=True)
        else:
            builder = builder.add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def pem(value: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
        if isinstance(value, x509.Certificate):
            return value.public_bytes(serialization.Encoding.PEM)
        return value.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())

    directory.mkdir(parents=True, exist_ok=True)
    keys = {role: ec.generate_private_key(ec.SECP256R1())
            for role in ("ca", "server", "client", "other-ca", "stranger")}
    ca = certificate("Lightbox test CA", keys["ca"], None, None)
    other_ca = certificate("Someone else's CA", keys["other-ca"], None, None)
    signed_by_ca = (ca.subject, keys["ca"])
    server = certificate("127.0.0.1", keys["server"], signed_by_ca,
                         ExtendedKeyUsageOID.SERVER_AUTH)
    client = certificate("Lightbox test viewer", keys["client"], signed_by_ca,
                         ExtendedKeyUsageOID.CLIENT_AUTH)
    stranger = certificate("Stranger", keys["stranger"],
                           (other_ca.subject, keys["other-ca"]),
                           ExtendedKeyUsageOID.CLIENT_AUTH)
    files = TlsFiles(*(directory / n for n in (
        "ca.pem", "server.pem", "client.pem", "client-key.pem", "stranger.pem",
        "stranger-key.pem")))
    files.ca.write_bytes(pem(ca))
    files.server.write_bytes(pem(server) + pem(keys["server"]))
    files.client_cert.write_bytes(pem(client))
    files.client_key.write_bytes(pem(keys["client"]))
    files.stranger_cert.write_bytes(pem(stranger))
    files.stranger_key.write_bytes(pem(keys["stranger"]))
    for path in (files.server, files.client_key, files.stranger_key):
        path.chmod(0o600)
    return files
