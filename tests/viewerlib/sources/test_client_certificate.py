"""TLS client certificates against a real TLS server that requires one.

Debian's Orthanc 1.10.1 crashes (a civetweb worker calls a null function) on its
first HTTPS connection, with or without SslVerifyPeers and with EC or RSA keys,
so the archive here is a real Orthanc behind a Python TLS server on 127.0.0.1
that asks for a client certificate (CERT_REQUIRED) and trusts one test CA.
Certificates are made for the test with ``cryptography``.
"""

from __future__ import annotations

import ssl

import pydicom
import pytest
from lightbox_source_testing import ArchiveGateway, make_tls_files
from pydicom.data import get_testdata_file

from viewerlib.errors import SourceAuthenticationError, SourceUnreachableError
from viewerlib.sources.config import load_sources
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.quirks import ArchiveQuirks

pytestmark = pytest.mark.orthanc


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_archive(archives, tls_files):
    """Archive ``a`` behind HTTPS that requires a certificate of the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.server)
    context.load_verify_locations(tls_files.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    with ArchiveGateway(int(archives.a.url.rsplit(":", 1)[1]), tls=context) as gateway:
        yield gateway


def _source(gateway, **kwargs) -> DICOMwebSource:
    kwargs.setdefault("verify", None)
    return DICOMwebSource(gateway.url(), "secure-pacs",
                          quirks=ArchiveQuirks.for_orthanc_1_10(), retries=0,
                          **kwargs)


def test_the_right_certificate_searches_and_retrieves(tls_archive, tls_files):
    source = _source(tls_archive, verify=str(tls_files.ca),
                     client_certificate=(str(tls_files.client_cert),
                                         str(tls_files.client_key)))
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    studies = source.search_for_studies(study_instance_uid=str(ct.StudyInstanceUID))
    assert [s.PatientID for s in studies] == [str(ct.PatientID)]
    dataset = source.retrieve_instance(str(ct.StudyInstanceUID),
                                       str(ct.SeriesInstanceUID),
                                       str(ct.SOPInstanceUID))
    assert dataset.PixelData == ct.PixelData
    assert source.health().state == "ok"
    assert tls_archive.requests  # the requests did go through the TLS server


def test_no_certificate_says_to_set_one_raises(tls_archive, tls_files):
    source = _source(tls_archive, verify=str(tls_files.ca))
    with pytest.raises(SourceAuthenticationError) as caught:
        source.search_for_studies(patient_id="SECRET-ID")
    message = str(caught.value)
    assert message.startswith("secure-pacs: https://127.0.0.1:")
    assert "asks for a client certificate, and none is set" in message
    assert "auth = \"certificate\" with 'cert_file' and 'key_file'" in message
    assert "SECRET-ID" not in message
    assert tls_archive.requests == []  # refused before any request was read
    assert source.health().state == "down"


def test_a_certificate_the_archive_does_not_trust_raises(tls_archive, tls_files):
    source = _source(tls_archive, verify=str(tls_files.ca),
                     client_certificate=(str(tls_files.stranger_cert),
                                         str(tls_files.stranger_key)))
    with pytest.raises(SourceAuthenticationError,
                       match=r"^secure-pacs: .* did not accept the client "
                       r"certificate .*'cert_file' and 'key_file'.*trusts the CA"):
        source.search_for_studies()
    assert tls_archive.requests == []


def test_an_archive_certificate_not_trusted_here_names_ca_bundle_raises(
        tls_archive, tls_files):
    # The kernel does not know the test CA (verify=True: the system's CAs).
    source = _source(tls_archive, verify=True,
                     client_certificate=(str(tls_files.client_cert),
                                         str(tls_files.client_key)))
    with pytest.raises(SourceUnreachableError,
                       match=r"^secure-pacs: the TLS certificate of https://.* could "
                       r"not be verified .*'ca_bundle'"):
        source.search_for_studies()


def test_archives_file_with_certificate_auth_reaches_the_archive(
        tls_archive, tls_files, tmp_path):
    path = tmp_path / "archives.toml"
    path.write_text(f"""
[[archive]]
name = "secure-pacs"
type = "dicomweb"
url = "{tls_archive.url()}"
quirks = "orthanc-1.10"
auth = "certificate"
cert_file = "{tls_files.client_cert}"
key_file = "{tls_files.client_key}"
ca_bundle = "{tls_files.ca}"
""")
    [source] = load_sources(path)
    assert len(source.search_for_studies(modality="CT")) >= 1
