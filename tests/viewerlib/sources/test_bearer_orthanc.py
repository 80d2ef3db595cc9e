"""Bearer tokens against a real Orthanc behind a loopback gateway that checks them.

Orthanc 1.10 has no bearer-token check of its own (its Lua request filter can only
answer 403, not the 401 of RFC 6750), so :class:`BearerTokenGateway` stands in
front of it as the resource server, and issues the tokens as the hub would hand
them down.
"""

from __future__ import annotations

import pydicom
import pytest
from lightbox_source_testing import BearerTokenGateway, ManualClock, make_ct_series

from viewerlib.errors import SourceAuthenticationError
from viewerlib.sources.auth import AccessTokenProvider
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.quirks import ArchiveQuirks

pytestmark = pytest.mark.orthanc

CT = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"),
                     stop_before_pixels=True)
CT_UIDS = (str(CT.StudyInstanceUID), str(CT.SeriesInstanceUID),
           str(CT.SOPInstanceUID))


@pytest.fixture
def gateway(archives):
    port = int(archives.a.url.rsplit(":", 1)[1])
    with BearerTokenGateway(port, ManualClock(), ttl_s=300) as gateway:
        yield gateway


def _source(gateway: BearerTokenGateway, **provider_options: object
            ) -> tuple[DICOMwebSource, AccessTokenProvider]:
    provider = AccessTokenProvider(fetch=gateway.fetch_token, clock=gateway.clock,
                                   **provider_options)
    source = DICOMwebSource(gateway.url(), "a-token", auth=provider,
                            quirks=ArchiveQuirks.for_orthanc_1_10(), use_cache=False)
    return source, provider


def test_without_a_token_the_gateway_refuses(gateway):
    source = DICOMwebSource(gateway.url(), "a-none",
                            quirks=ArchiveQuirks.for_orthanc_1_10())
    with pytest.raises(SourceAuthenticationError, match="a-none: .*HTTP 401"):
        source.search_for_studies()


def test_token_is_refreshed_before_it_expires_without_a_refusal(gateway):
    source, _ = _source(gateway, refresh_margin_s=60)
    assert len(source.search_for_studies(study_instance_uid=CT_UIDS[0])) == 1
    assert len(gateway.issued) == 1

    before = len(gateway.seen)

    # 250 s later the token has 50 s left, less than the 60 s margin.
    gateway.clock.advance(250)
    assert len(source.search_for_studies(study_instance_uid=CT_UIDS[0])) == 1
    assert len(gateway.issued) == 2
    assert {token for token, _ in gateway.seen[:before]} == {gateway.issued[0]}
    assert {token for token, _ in gateway.seen[before:]} == {gateway.issued[1]}
    assert gateway.refusals() == 0

    # Past the first token's expiry: only the fresh one is in use.
    gateway.clock.advance(100)
    source.retrieve_instance_metadata(*CT_UIDS)
    assert gateway.refusals() == 0 and len(gateway.issued) == 2


def test_refused_token_is_refreshed_once_and_the_request_sent_again(gateway):
    source, _ = _source(gateway)
    assert len(source.search_for_studies(study_instance_uid=CT_UIDS[0])) == 1
    # The identity provider revoked the token (e.g. the session was rotated).
    gateway.revoked.add(gateway.issued[-1])
    before = len(gateway.seen)
    studies = source.search_for_studies(study_instance_uid=CT_UIDS[0])
    assert [s.StudyInstanceUID for s in studies] == [CT_UIDS[0]]
    # Refused once, sent again with the fresh token, which the rest then use.
    assert gateway.seen[before] == (gateway.issued[0], 401)
    assert set(gateway.seen[before + 1:]) == {(gateway.issued[1], 200)}
    assert len(gateway.issued) == 2

    # Streamed and binary retrievals take the same path.
    gateway.revoked.add(gateway.issued[-1])
    [dataset] = list(source.iter_series(*CT_UIDS[:2]))
    assert dataset.SOPInstanceUID == CT_UIDS[2]
    gateway.revoked.add(gateway.issued[-1])
    [frame] = source.retrieve_instance_frames(*CT_UIDS, [1])
    assert len(frame) == CT.Rows * CT.Columns * CT.BitsAllocated // 8
    assert gateway.refusals() == 3 and len(gateway.issued) == 4


def test_large_upload_is_sent_again_after_a_refusal(gateway):
    source, _ = _source(gateway)
    source.search_for_studies(limit=1)
    gateway.revoked.add(gateway.issued[-1])
    # 3 x 512 x 512 x 2 bytes: over the 256 KiB chunk size, so streamed.
    new = make_ct_series(3, patient_id="TEST-BEARER", rows=512)
    report = source.store_instances(new)
    assert report.ok and len(report.stored) == 3
    assert gateway.refusals() == 1
    assert len(source.search_for_studies(patient_id="TEST-BEARER")) == 1


def test_token_refused_twice_raises_naming_the_archive(gateway):
    source, _ = _source(gateway)
    gateway.refuse_everything = True  # the account lost access to this archive
    with pytest.raises(SourceAuthenticationError,
                       match=r"a-token: .*refused the access token \(HTTP 401\).*"
                             r"fresh one.*Sign in to the hub again.*archive 'a-token'"):
        source.search_for_studies()
    # One refusal, one retry with a fresh token, then the error: never a loop.
    assert gateway.refusals() == 2 and len(gateway.issued) == 2


def test_fixed_token_is_not_retried_raises(gateway):
    source = DICOMwebSource(gateway.url(), "a-fixed", auth="not-issued-here",
                            quirks=ArchiveQuirks.for_orthanc_1_10())
    with pytest.raises(SourceAuthenticationError,
                       match="a-fixed: .*HTTP 401.*token_env / token_file"):
        source.search_for_studies()
    assert gateway.refusals() == 1


def test_token_service_failing_raises_naming_the_archive(gateway):
    def broken_fetch():
        raise ConnectionError("hub unreachable")

    provider = AccessTokenProvider(fetch=broken_fetch)
    source = DICOMwebSource(gateway.url(), "a-nohub", auth=provider,
                            quirks=ArchiveQuirks.for_orthanc_1_10())
    with pytest.raises(SourceAuthenticationError,
                       match="a-nohub: no access token .*hub unreachable.*Sign in"):
        source.search_for_studies()
    assert gateway.seen == []
