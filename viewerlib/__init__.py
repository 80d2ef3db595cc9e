"""Lightbox's viewer library: archives to pixels to volumes to viewers, in a kernel.

The public names, in the order data flows through them:

- :func:`connect` opens the configured archives as one federated source;
- :func:`read_instance` and :func:`read_series` turn DICOM into display frames and
  volumes with their geometry;
- :func:`open` shows a study in the stack viewer;
- :func:`purge` empties every cache and says what it removed.
"""

from viewerlib.cache import purge
from viewerlib.pipeline.instance import read_instance
from viewerlib.sources.config import connect
from viewerlib.viewer import open  # noqa: A004
from viewerlib.volume.volume import read_series

__all__ = ["connect", "open", "purge", "read_instance", "read_series"]
