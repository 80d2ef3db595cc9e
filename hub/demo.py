"""The embedded default: identity provider, archive with sample studies, and the hub.

``lightbox demo`` runs it in the foreground; the browser tests start the same thing on
free ports. Everything listens on 127.0.0.1 only.
"""
from __future__ import annotations

import logging
import os
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
from viewerlib.samples.phantom import teaching_studies, write_teaching_set

logger = logging.getLogger(__name__)

# Real images that come with pydicom, so a fresh machine has more than phantoms.
PYDICOM_SAMPLES = ("CT_small.dcm", "MR_small.dcm")
# Researchers see only the de-identified teaching archive (the synthetic phantoms as
# a folder); every other role sees the clinical demo archive.
DEMO_ROLE_ARCHIVES = '{"researcher": ["Teaching archive"], "*": ["Demo archive"]}'


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

    def _start_archive(self) -> Path:
        archives_file = self.state_directory / "archives.toml"
        teaching = self.state_directory / "teaching-archive"
        write_teaching_set(teaching)
        teaching_entry = ('[[archive]]\nname = "Teaching archive"\ntype = "folder"\n'
                          f'path = "{teaching}"\n')
        missing = orthanc_missing()
        if missing:
            # Same source interface, read from a folder: the demo still shows images.
            folder = self.state_directory / "sample-folder"
            write_teaching_set(folder)
            self.notices.append(f"{missing}: showing a folder of sample files instead "
                                "of a DICOMweb archive")
            archives_file.write_text(
                '[[archive]]\nname = "Demo archive"\ntype = "folder"\n'
                f'path = "{folder}"\n\n' + teaching_entry)
            return archives_file

        self.archive = EmbeddedOrthanc(self.state_directory / "orthanc", "demo").start()
        report = self.archive.load_datasets(
            ds for study in teaching_studies() for ds in study.datasets)
        samples = self.archive.load_files(
            Path(pydicom.data.get_testdata_file(name)) for name in PYDICOM_SAMPLES)
        report.stored += samples.stored
        report.rejected += samples.rejected
        if self.load_extra_data:
            extra = self.archive.load_files(extra_data_files())
            report.stored += extra.stored
            report.rejected += extra.rejected
        self.uploads = report
        archives_file.write_text(
            '[[archive]]\nname = "Demo archive"\ntype = "dicomweb"\n'
            f'url = "{self.archive.dicomweb_url}"\nquirks = "orthanc-1.10"\n\n'
            + teaching_entry)
        return archives_file

    def stop(self) -> None:
        for service in (self.hub, self.identity_provider, self.archive):
            if service is not None:
                service.stop()
