"""Presenter relay: one presenter's viewer state, fanned out to attendees' viewers.

The relay is a small HTTP server with long polling (standard library only), run by
JupyterHub as a service on loopback. :mod:`viewerlib.teaching.presenter` is its
client in the kernels. Add it to the hub with one line in ``jupyterhub_config.py``::

    from lightbox_extensions.presenter import configure_hub; configure_hub(c)
"""
from __future__ import annotations

from lightbox_extensions.presenter.relay import (
    PresenterRelay,
    RelayApp,
    configure_hub,
    service_definition,
    service_role,
)

__all__ = ["PresenterRelay", "RelayApp", "configure_hub", "service_definition",
           "service_role"]
