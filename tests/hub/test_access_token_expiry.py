"""What the hub hands a kernel when the user's access token is dead or missing."""
from __future__ import annotations

import pytest
from tornado import web

from lightbox_hub.handlers import usable_access_token

NOW = 1_800_000_000.0


def test_a_token_still_valid_is_handed_over() -> None:
    state = {"access_token": "t-1", "lightbox_expires_at": NOW + 1}
    assert usable_access_token(state, "rad1", NOW) == "t-1"


def test_a_token_without_a_known_expiry_is_handed_over() -> None:
    assert usable_access_token({"access_token": "t-1"}, "rad1", NOW) == "t-1"


@pytest.mark.parametrize("expires_at", [NOW, NOW - 1, str(NOW - 3600)])
def test_an_expired_token_the_provider_did_not_renew_is_refused(expires_at) -> None:
    state = {"access_token": "t-1", "lightbox_expires_at": expires_at}
    with pytest.raises(web.HTTPError) as refused:
        usable_access_token(state, "rad1", NOW)
    assert refused.value.status_code == 401
    assert "sign in to Lightbox again" in refused.value.log_message % refused.value.args


def test_no_token_at_all_is_not_found() -> None:
    with pytest.raises(web.HTTPError) as refused:
        usable_access_token({}, "rad1", NOW)
    assert refused.value.status_code == 404
