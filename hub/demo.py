"""The embedded default: identity provider, archive with sample studies, and the hub.

``lightbox demo`` runs it in the foreground; the browser tests start the same thing on
free ports. Everything listens on 127.0.0.1 only.
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom.data
from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider
from lightbox_hub.embedded.node_idp import EmbeddedNodeIdentityProvider
from lightbox_hub.embedded.orthanc import EmbeddedOrthanc, UploadReport, orthanc_missing
from lightbox_hub.embedded.ports import port_is_free
from lightbox_hub.embedded.process import EmbeddedServiceError

from viewerlib.samples.deidentify import write_deidentified_teaching_set
from viewerlib.samples.phantom import (
    ISSUER_OF_PATIENT_ID,
    PATIENT_ID,
    teaching_studies,
    write_teaching_set,
)

logger = logging.getLogger(__name__)

# Real images that come with pydicom, so a fresh machine has more than phantoms.
PYDICOM_SAMPLES = ("CT_small.dcm", "MR_small.dcm")
DEMO_ARCHIVE = "Demo archive"
TEACHING_ARCHIVE = "Teaching archive"
# Researchers see only the de-identified teaching archive (de-identified copies of
# the phantoms, as a folder); every other role sees the clinical demo archive.
DEMO_ROLE_ARCHIVES = json.dumps({"researcher": [TEACHING_ARCHIVE], "*": [DEMO_ARCHIVE]})
# The running demo's launch secret and hub address, for `lightbox launch-link`.
LAUNCH_SECRET_FILE = "launch-secret"
HUB_URL_FILE = "hub-url"
# The current CT head in the clinical archive: what the demo's example link opens.
EXAMPLE_LAUNCH = {"pid": PATIENT_ID, "iss": ISSUER_OF_PATIENT_ID, "acc": "LBXACC01"}


def folder_archive(name: str, path: Path) -> str:
    """One ``[[archive]]`` table (TOML) for a folder of DICOM files."""
    return f'[[archive]]\nname = "{name}"\ntype = "folder"\npath = "{path}"\n'


def dicomweb_archive(name: str, url: str) -> str:
    """One ``[[archive]]`` table (TOML) for the embedded Orthanc's DICOMweb."""
    return (f'[[archive]]\nname = "{name}"\ntype = "dicomweb"\nurl = "{url}"\n'
            'quirks = "orthanc-1.10"\n')


def write_teaching_archive(folder: Path) -> str:
    """Write the de-identified teaching set to ``folder``; return its archive table."""
    write_deidentified_teaching_set(folder)
    return folder_archive(TEACHING_ARCHIVE, folder)


def load_clinical_studies(archive: EmbeddedOrthanc, load_extra_data: bool = True
                          ) -> UploadReport:
    """Store the phantoms, pydicom's samples and LIGHTBOX_EXTRA_DATA in ``archive``.

    Each file the archive refused is listed by its file name alone (a folder's
    name may be a patient's) with why, for the demo to print.
    """
    phantoms = archive.load_datasets(
        ds for study in teaching_studies() for ds in study.datasets)
    report = UploadReport(phantoms.stored, [
        ("a generated teaching image", refusal_reason(reason))
        for _, reason in phantoms.rejected])
    loads = [archive.load_files(
        Path(pydicom.data.get_testdata_file(name)) for name in PYDICOM_SAMPLES)]
    if load_extra_data:
        loads.append(archive.load_files(extra_data_files()))
    for files in loads:
        report.stored += files.stored
        report.rejected += [(Path(path).name, refusal_reason(reason))
                            for path, reason in files.rejected]
    return report


def refusal_reason(reason: str) -> str:
    """Why a file was refused, without the path an OS error repeats.

    >>> refusal_reason("[Errno 13] Permission denied: '/data/DOE^JOHN/1.dcm'")
    'Permission denied'
    >>> refusal_reason("HTTP 400 Bad file format")
    'HTTP 400 Bad file format'
    """
    return re.sub(r"^\[Errno \d+\]\s*|:\s*'.*'$", "", reason).strip() or reason


def extra_data_files() -> Iterator[Path]:
    """Every file under the folder named by LIGHTBOX_EXTRA_DATA (none if unset)."""
    folder = os.environ.get("LIGHTBOX_EXTRA_DATA")
    if not folder:
        return
    root = Path(folder)
    if not root.is_dir():
        raise EmbeddedServiceError(
            f"LIGHTBOX_EXTRA_DATA names {root}, which is not a folder: correct or unset it")
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() not in {".md", ".txt", ".json"}:
            yield path


@dataclass
class EmbeddedDefault:
    """All services of the demo, started in order and stopped in reverse.

    ``identity_provider_kind`` is ``"mock"`` (oidc-provider-mock: no passwords, no
    login session) or ``"node"`` (npm oidc-provider: passwords and a login session,
    for the single sign-on tests). ``hub_env`` adds environment for the hub.
    """

    state_directory: Path
    hub_port: int | None = None
    load_extra_data: bool = True
    identity_provider_kind: str = "mock"
    hub_env: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    archive: EmbeddedOrthanc | None = None
    identity_provider: EmbeddedIdentityProvider | EmbeddedNodeIdentityProvider | None = None
    hub: EmbeddedHub | None = None
    uploads: UploadReport | None = None

    def start(self) -> EmbeddedDefault:
        self.state_directory = Path(self.state_directory).resolve()
        if self.hub_port is not None and not port_is_free(self.hub_port):
            raise EmbeddedServiceError(
                f"port {self.hub_port} on 127.0.0.1 is already in use: stop the program "
                f"using it or choose another with --port")
        try:
            archives_file = self._start_archive()
            env = {"LIGHTBOX_ROLE_ARCHIVES": DEMO_ROLE_ARCHIVES, **self.hub_env}
            hub = EmbeddedHub(self.state_directory / "hub", "", archives_file,
                              port=self.hub_port, extra_env=env)
            # An operator's own secret wins over the random one, so their EHR's
            # links keep working from one demo start to the next.
            hub.launch_secret = (self.hub_env.get("LIGHTBOX_LAUNCH_SECRET")
                                 or os.environ.get("LIGHTBOX_LAUNCH_SECRET")
                                 or hub.launch_secret)
            hub.extra_env["LIGHTBOX_LAUNCH_SECRET"] = hub.launch_secret
            self._keep_launch_secret(hub)
            if self.identity_provider_kind == "node":
                node = EmbeddedNodeIdentityProvider(self.state_directory / "idp")
                node.register_hub(hub.url)
                self.identity_provider = node.start()
                hub.extra_env["LIGHTBOX_OIDC_CLIENT_SECRET"] = node.client_secret
            else:
                self.identity_provider = EmbeddedIdentityProvider(
                    self.state_directory / "idp").start()
            hub.issuer = self.identity_provider.issuer
            self.hub = hub.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _keep_launch_secret(self, hub: EmbeddedHub) -> None:
        """Keep the secret and address where only this user can read them."""
        secret_file = self.state_directory / LAUNCH_SECRET_FILE
        secret_file.unlink(missing_ok=True)
        descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(hub.launch_secret)
        (self.state_directory / HUB_URL_FILE).write_text(hub.url)

    def example_launch_link(self) -> str:
        """A signed link, as an EHR would send, to the current CT head (one use).

        Its patient context is encrypted, so the address names no patient.
        """
        from lightbox_hub.launch import launch_url, sign_launch

        assert self.hub is not None, "start the demo first"
        params = sign_launch(EXAMPLE_LAUNCH, secret=self.hub.launch_secret.encode(),
                             encrypt=True, lifetime_s=300)
        return launch_url(self.hub.url, params)

    def _start_archive(self) -> Path:
        archives_file = self.state_directory / "archives.toml"
        teaching_entry = write_teaching_archive(self.state_directory / "teaching-archive")
        missing = orthanc_missing()
        if missing:
            # Same source interface, read from a folder: the demo still shows images.
            folder = self.state_directory / "sample-folder"
            write_teaching_set(folder)
            self.notices.append(f"{missing}: showing a folder of sample files instead "
                                "of a DICOMweb archive")
            archives_file.write_text(
                folder_archive(DEMO_ARCHIVE, folder) + "\n" + teaching_entry)
            return archives_file

        self.archive = EmbeddedOrthanc(self.state_directory / "orthanc", "demo").start()
        self.uploads = load_clinical_studies(self.archive, self.load_extra_data)
        archives_file.write_text(
            dicomweb_archive(DEMO_ARCHIVE, self.archive.dicomweb_url) + "\n"
            + teaching_entry)
        return archives_file

    def stop(self) -> None:
        for service in (self.hub, self.identity_provider, self.archive):
            if service is not None:
                service.stop()
