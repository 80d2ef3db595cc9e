"""Memory and bytes of one active viewer: a kernel that opens a 512 x 512 x 140 CT.

Run ``python -m deploy.measure_viewer``; it prints one JSON object that SIZING.md
quotes. Each figure is measured in a fresh interpreter, like a kernel: resident memory
(``ru_maxrss``) after the imports a kernel makes, after the study is read from Part 10
files, and after the stack viewer holds the volume; plus the bytes of the files (what
the archive sends) and of the voxels (what the browser receives, once).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    slices = int(sys.argv[1]) if len(sys.argv) > 1 else 140
    started = time.process_time()
    import viewerlib
    from viewerlib.widgets.stack import StackViewer

    from bench.pixels import ct_series

    after_import = _rss_mb()
    with tempfile.TemporaryDirectory() as folder:
        paths = ct_series(Path(folder), slices)
        file_bytes = sum(p.stat().st_size for p in paths)
        began = time.process_time()
        volume = viewerlib.read_series(paths, workers=1)[0]
        read_cpu_s = time.process_time() - began
        after_read = _rss_mb()
        viewer = StackViewer(volume.voxels, volume.spacing_mm, volume.affine)
        after_viewer = _rss_mb()
    print(json.dumps({
        "slices": slices, "shape": list(volume.voxels.shape),
        "voxel_dtype": str(volume.voxels.dtype), "voxel_mb": volume.voxels.nbytes / 1e6,
        "part10_mb": file_bytes / 1e6, "rss_after_import_mb": after_import,
        "rss_after_read_mb": after_read, "rss_with_viewer_mb": after_viewer,
        "viewer": repr(viewer), "read_cpu_s": read_cpu_s,
        "total_cpu_s": time.process_time() - started, "cpus": os.cpu_count(),
        "load_average": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
