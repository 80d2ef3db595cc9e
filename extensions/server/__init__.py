"""Lightbox inside each user's Jupyter server: study search, health, launches, purge.

Endpoints, all under the server's base URL:

``GET  /lightbox/api/health``     each configured archive: ok, slow or down, latency
``GET  /lightbox/api/search``     a federated study search (patient_name, patient_id,
                                  modality, study_date, accession_number)
``GET  /lightbox/api/thumbnail``  a PNG of the middle image of one study
``POST /lightbox/api/open``       write a viewer notebook for one study; its path
``GET  /lightbox/api/config``     the role, the panels it sees and its lessons

Besides, notebooks are saved without outputs (:mod:`.outputs`) and the server's logs
carry no query strings and no token headers (:mod:`.logs`).

The extension is enabled by the ``jupyter_server_config.d`` file the package installs;
:class:`~lightbox_extensions.server.app.LightboxServerExtension` documents its settings.
"""

from __future__ import annotations

from typing import Any

from lightbox_extensions.server.app import LightboxServerExtension


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "lightbox_extensions.server", "app": LightboxServerExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "../labextension/dist", "dest": "@lightbox/lab"}]


__all__ = ["LightboxServerExtension"]
