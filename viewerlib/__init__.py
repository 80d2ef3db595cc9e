"""Lightbox's viewer library: archives to pixels to volumes to viewers, in a kernel.

The public names, in the order data flows through them:

- :func:`connect` opens the configured archives as one federated source;
- :func:`read_instance` and :func:`read_series` turn DICOM into display frames and
  volumes with their geometry;
- :func:`open`, :func:`open_mpr`, :func:`open_3d` and :func:`compare` show studies in
  the stack, MPR, 3D and side-by-side viewers, and :func:`open_with_report` shows the
  images beside the study's report;
- :func:`purge` empties every cache and says what it removed.
"""

import logging

from viewerlib.cache import purge
from viewerlib.pipeline.instance import read_instance
from viewerlib.sources.config import connect
from viewerlib.viewer import (  # noqa: A004
    compare,
    open,
    open_3d,
    open_mpr,
    open_with_report,
)
from viewerlib.volume.volume import read_series

# A library does not decide where log records go (pydicom does the same).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["compare", "connect", "open", "open_3d", "open_mpr", "open_with_report",
           "purge", "read_instance", "read_series"]
