"""Presenter mode through a real relay on loopback: publish, follow, leave, rejoin."""
from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
import traitlets

from lightbox_extensions.presenter.relay import (
    PresenterRelay,
    RelayServer,
    service_definition,
    service_role,
)
from viewerlib.teaching import presenter


class _Viewer(traitlets.HasTraits):
    """The traits of a StackViewer that presenter mode shares, without a browser."""

    slice_index = traitlets.Int(0)
    window_center = traitlets.Float(40.0)
    window_width = traitlets.Float(80.0)
    window_function = traitlets.Unicode("LINEAR")
    zoom = traitlets.Float(0.0)
    rotation = traitlets.Int(0)
    flip_horizontal = traitlets.Bool(False)
    flip_vertical = traitlets.Bool(False)
    invert = traitlets.Bool(False)
    volume = None


@pytest.fixture
def relay() -> Iterator[RelayServer]:
    server = PresenterRelay(long_poll_s=2.0).serve(port=0)
    yield server
    server.stop()


def _eventually(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_follower_gets_the_presenters_slice_and_window(relay: RelayServer) -> None:
    lead, attendee = _Viewer(), _Viewer()
    talk = presenter.present(lead, "lunch-1", url=relay.url, user="lead")
    following = presenter.follow(attendee, "lunch-1", url=relay.url, user="ann")
    lead.slice_index = 23
    lead.window_center, lead.window_width = 75.0, 215.0
    assert _eventually(lambda: (attendee.slice_index, attendee.window_width) == (23, 215))
    assert attendee.window_center == 75.0
    following.stop()
    talk.stop()


def test_rejoining_attendee_gets_the_current_state_at_once(relay: RelayServer) -> None:
    lead, attendee = _Viewer(), _Viewer()
    talk = presenter.present(lead, "lunch-2", url=relay.url, user="lead")
    presenter.follow(attendee, "lunch-2", url=relay.url, user="ann").stop()
    lead.slice_index = 31
    assert _eventually(lambda: presenter.current_state(
        "lunch-2", url=relay.url).get("slice_index") == 31)
    assert attendee.slice_index == 0  # left: not following any more

    rejoined = presenter.follow(attendee, "lunch-2", url=relay.url, user="ann")
    assert attendee.slice_index == 31  # applied before follow() returned
    rejoined.stop()
    talk.stop()


def test_a_second_presenter_of_the_same_session_raises(relay: RelayServer) -> None:
    presenter.present(_Viewer(), "lunch-3", url=relay.url, user="lead").stop()
    with pytest.raises(presenter.PresenterError, match="presented by lead"):
        presenter.present(_Viewer(), "lunch-3", url=relay.url, user="intruder")


def test_shared_token_is_required_when_set() -> None:
    server = PresenterRelay(token="s3cret", long_poll_s=1.0).serve(port=0)
    try:
        request = urllib.request.Request(server.url + "sessions/x")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 403
        refused.value.close()
        request.add_header("Authorization", "token s3cret")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["version"] == 0
    finally:
        server.stop()


def test_relay_stores_only_display_state(relay: RelayServer) -> None:
    lead = _Viewer()
    talk = presenter.present(lead, "lunch-4", url=relay.url, user="lead")
    relay.relay.put("lunch-4", "lead", {"slice_index": 3, "PatientName": "Test^Case"})
    state = presenter.current_state("lunch-4", url=relay.url)
    assert "PatientName" not in state and state["slice_index"] == 3
    talk.stop()


def test_no_relay_configured_raises_with_the_fix(monkeypatch) -> None:
    monkeypatch.delenv(presenter.URL_ENV, raising=False)
    with pytest.raises(presenter.PresenterError, match="start_practice_relay"):
        presenter.relay_url()


def test_service_definition_runs_on_loopback() -> None:
    service = service_definition(port=8799)
    assert service["url"] == "http://127.0.0.1:8799"
    assert "--port=8799" in service["command"]
    assert service_role()["services"] == ["presenter"]
