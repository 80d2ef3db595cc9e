"""Events of viewerlib that code outside it may listen to, such as an audit log.

viewerlib knows nothing of the hub: the hub's kernel start-up registers a listener
here, and viewerlib calls it with UIDs only. A failing listener is logged and never
stops the viewer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

SeriesOpenedListener = Callable[[str, str], object]
_series_opened: list[SeriesOpenedListener] = []


def on_series_opened(listener: SeriesOpenedListener) -> None:
    """Call ``listener(study_instance_uid, series_instance_uid)`` whenever a series
    is retrieved to be shown. Registering the same listener twice has no effect."""
    if listener not in _series_opened:
        _series_opened.append(listener)


def series_opened(study_instance_uid: str, series_instance_uid: str) -> None:
    """Tell every listener that a series of a study was opened."""
    for listener in list(_series_opened):
        try:
            listener(study_instance_uid, series_instance_uid)
        except Exception as err:  # the audit must never break the viewer
            logger.warning("a series-opened listener failed: %s", type(err).__name__)
