"""Listeners hear which series were opened, and cannot break the viewer."""
from __future__ import annotations

import pytest

from viewerlib import events


@pytest.fixture(autouse=True)
def _no_listeners(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_series_opened", [])


def test_listener_gets_the_uids() -> None:
    heard = []
    events.on_series_opened(lambda study, series: heard.append((study, series)))
    events.series_opened("1.2.3", "1.2.3.4")
    assert heard == [("1.2.3", "1.2.3.4")]


def test_same_listener_registered_twice_is_called_once() -> None:
    heard = []

    def listener(study: str, series: str) -> None:
        heard.append(study)

    events.on_series_opened(listener)
    events.on_series_opened(listener)
    events.series_opened("1.2", "1.2.5")
    assert heard == ["1.2"]


def test_failing_listener_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(study: str, series: str) -> None:
        raise ConnectionError("hub down")

    events.on_series_opened(broken)
    events.series_opened("1.2", "1.2.5")
    assert "ConnectionError" in caplog.text
    assert "1.2.5" not in caplog.text
