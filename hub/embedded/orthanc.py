"""The embedded archive: Orthanc with its DICOMweb plugin, bound to loopback.

Debian's Orthanc 1.10 listens on every interface and crashes in GDCM with its default
thread stacks, so it runs with a small preloaded shim (``loopback_shim.c``) that fixes
both. The demo and the tests start it as a plain process, never as a system service.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import requests
from pydicom.dataset import Dataset

from lightbox_hub.embedded.ports import free_port
from lightbox_hub.embedded.process import EmbeddedServiceError, ManagedProcess

logger = logging.getLogger(__name__)

PLUGIN_DIRECTORY = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN = "libOrthancDicomWeb.so"
GDCM_PLUGIN = "libOrthancGdcm.so"
_SHIM_SOURCE = Path(__file__).with_name("loopback_shim.c")


def orthanc_program() -> str | None:
    """Where Orthanc is: Debian puts it in /usr/sbin, which many users lack on PATH."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which("Orthanc", path=search)


def orthanc_missing() -> str | None:
    """Say which piece of the embedded archive is missing, or ``None`` if none is."""
    if orthanc_program() is None:
        return "Orthanc is not installed (Debian package 'orthanc')"
    if not (PLUGIN_DIRECTORY / DICOMWEB_PLUGIN).exists():
        return "Orthanc's DICOMweb plugin is not installed (Debian package 'orthanc-dicomweb')"
    if shutil.which("gcc") is None:
        return "gcc is needed to build the loopback shim for Orthanc (Debian package 'gcc')"
    return None


def build_shim(directory: Path) -> Path:
    """Compile the loopback / stack-size shim into ``directory`` (once) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    library = directory / "lightbox_loopback_shim.so"
    if library.exists() and library.stat().st_mtime >= _SHIM_SOURCE.stat().st_mtime:
        return library
    command = ["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-o", str(library),
               str(_SHIM_SOURCE), "-ldl", "-lpthread"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise EmbeddedServiceError(
            f"could not build the Orthanc loopback shim with gcc: {result.stderr.strip()}")
    return library


@dataclass
class UploadReport:
    """What loading files into the archive did."""

    stored: int
    rejected: list[tuple[str, str]]


class EmbeddedOrthanc:
    """One Orthanc server on 127.0.0.1 with DICOMweb, its own storage folder and ports.

    Parameters
    ----------
    state_directory : Path
        Folder for the configuration, the database and the log (the archive itself).
    name : str
        Short name, used for the folder and the DICOM AE title.
    credentials : tuple of str, optional
        ``(user, password)`` to require HTTP basic authentication.
    http_port : int, optional
        Port for HTTP; a free one is chosen when not given.
    """

    def __init__(self, state_directory: Path, name: str = "archive",
                 credentials: tuple[str, str] | None = None,
                 http_port: int | None = None) -> None:
        self.directory = Path(state_directory) / name
        self.name = name
        self.credentials = credentials
        self._fixed_http_port = http_port is not None
        self.http_port = http_port or free_port()
        self.dicom_port = self._other_free_port()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def _session(self) -> requests.Session:
        session = requests.Session()
        if self.credentials:
            session.auth = self.credentials
        return session

    def _write_configuration(self) -> Path:
        plugins = [str(PLUGIN_DIRECTORY / DICOMWEB_PLUGIN)]
        if (PLUGIN_DIRECTORY / GDCM_PLUGIN).exists():
            plugins.append(str(PLUGIN_DIRECTORY / GDCM_PLUGIN))
        database = self.directory / "db"
        database.mkdir(parents=True, exist_ok=True)
        configuration = {
            "Name": f"lightbox-{self.name}",
            "StorageDirectory": str(database),
            "IndexDirectory": str(database),
            "StorageCompression": False,
            "Plugins": plugins,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": self.credentials is not None,
            "RegisteredUsers": dict([self.credentials]) if self.credentials else {},
            "HttpCompressionEnabled": False,
            "WebDavEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.name.upper()[:16],
            "DicomPort": self.dicom_port,
            "DicomModalities": {},
            "ConcurrentJobs": 2,
            # Orthanc answers QIDO-RS in this character set. Its default, Latin-1
            # (ISO_IR 100), drops the letters of Greek, Cyrillic, Japanese, ...
            # patient names, which then cannot be found by name
            # (tests/viewerlib/sources/test_patient_names_orthanc.py).
            "DefaultEncoding": "Utf8",
            "DicomWeb": {
                "Enable": True, "Root": "/dicom-web/", "EnableWado": True,
                "WadoRoot": "/wado", "Ssl": False,
                # Host is copied into every RetrieveURL and BulkDataURI it writes.
                "Host": f"127.0.0.1:{self.http_port}",
                "StudiesMetadata": "Full", "SeriesMetadata": "Full",
            },
            "Gdcm": {"Enable": True, "Throttling": 2},
        }
        path = self.directory / "orthanc.json"
        path.write_text(json.dumps(configuration, indent=2))
        return path

    def _other_free_port(self) -> int:
        # free_port() may hand out the same number twice in a row.
        port = free_port()
        while port == self.http_port:
            port = free_port()
        return port

    def start(self, timeout: float = 60.0, attempts: int = 3) -> EmbeddedOrthanc:
        """Start Orthanc and wait until DICOMweb answers.

        A free port can be taken by another program between choosing it and Orthanc
        binding it; Orthanc then exits at once, and it is started again on new ports
        (``attempts`` times at most, only for ports chosen here).
        """
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except EmbeddedServiceError as err:
                if "exited during start-up" not in str(err) or attempt == attempts:
                    raise
                logger.warning("Orthanc '%s' exited at start-up; trying new ports",
                               self.name)
                if not self._fixed_http_port:
                    self.http_port = free_port()
                self.dicom_port = self._other_free_port()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> EmbeddedOrthanc:
        missing = orthanc_missing()
        if missing:
            raise EmbeddedServiceError(
                f"{missing}: run 'sudo apt-get install orthanc orthanc-dicomweb' "
                "(make demo does this when run as root)")
        shim = build_shim(self.directory.parent / "shim")
        configuration = self._write_configuration()
        env = dict(os.environ, LD_PRELOAD=str(shim))
        self.process = ManagedProcess(
            f"Orthanc '{self.name}'",
            [str(orthanc_program()), f"--logdir={self.directory}", str(configuration)],
            self.directory / "stdout.log", env=env)
        self.process.start()
        session = self._session()

        def answers() -> bool:
            return session.get(f"{self.dicomweb_url}/studies", timeout=2).status_code == 200

        seconds = self.process.wait_until(answers, timeout, "DICOMweb answering")
        logger.info("Orthanc '%s' ready on %s after %.2f s", self.name, self.url, seconds)
        return self

    def stop(self) -> None:
        # Orthanc holds an SQLite lock: wait for the exit before anything reuses the index.
        if self.process:
            self.process.stop()

    def load_files(self, paths: Iterable[Path]) -> UploadReport:
        """Store DICOM files through Orthanc's REST API (it accepts files without meta).

        Files the archive refuses (not DICOM, no UIDs) are listed with the reason.
        """
        report = UploadReport(0, [])
        session = self._session()
        for path in paths:
            try:
                data = Path(path).read_bytes()
            except OSError as err:
                report.rejected.append((str(path), str(err)))
                continue
            self._store(session, str(path), data, report)
        return report

    def load_datasets(self, datasets: Iterable[Dataset]) -> UploadReport:
        """Store datasets held in memory (generated phantoms) without touching disk."""
        report = UploadReport(0, [])
        session = self._session()
        for ds in datasets:
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            self._store(session, str(ds.SOPInstanceUID), buffer.getvalue(), report)
        return report

    def _store(self, session: requests.Session, label: str, data: bytes,
               report: UploadReport) -> None:
        response = session.post(f"{self.url}/instances", data=data, timeout=60,
                                headers={"Content-Type": "application/dicom"})
        if response.ok:
            report.stored += 1
            return
        try:
            reason = response.json().get("Message", "")
        except ValueError:
            reason = ""
        report.rejected.append((label, f"HTTP {response.status_code} {reason}".strip()))

    def __enter__(self) -> EmbeddedOrthanc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

