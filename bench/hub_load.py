"""Users per 2-core hub: simulated users open different studies and scroll.

Run ``python -m bench.hub_load --quick`` or ``python -m bench.hub_load``. One real
Orthanc on loopback holds one CT study per simulated user (the teaching phantom,
re-identified with new UIDs so no two users share an archive cache entry). Each user
is its own process, as each JupyterHub user has their own kernel: it streams its
study (time to first image = first instance decoded to a display frame), builds the
volume, then "scrolls" at 20 images per second for a few seconds, each step doing
the kernel's part of a slice change (the slice's bytes made ready to send).

For growing numbers of users, arriving a quarter of a second apart so that each new
one opens a study while the others scroll, the run reports the p95 time to first
image against the p95 of one user alone, measured in the same run. Goal: at
least 8 users before that ratio reaches 2. Exit status 1 only when fewer than 8 / 1.15
(rounded down) users stay under the ratio of 2.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
from typing import Any
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from bench.pixels import _versions
from lightbox_hub.embedded.orthanc import EmbeddedOrthanc
from viewerlib.samples.phantom import ct_head_phantom

_RESULTS = Path(__file__).resolve().parent / "results"
_SCROLL_RATE = 20.0
_GOAL_USERS = 8


def _studies(count: int) -> list[tuple[str, str, list[bytes]]]:
    """``count`` copies of the phantom, each with its own UIDs, as Part 10 bytes."""
    template = ct_head_phantom("current")
    studies = []
    for user in range(count):
        study, series = (generate_uid(entropy_srcs=[f"bench-{user}-{kind}"])
                         for kind in ("study", "series"))
        files = []
        for index, ds in enumerate(template.datasets):
            copy = ds.copy()
            copy.StudyInstanceUID, copy.SeriesInstanceUID = study, series
            sop = generate_uid(entropy_srcs=[f"bench-{user}-{index}"])
            copy.SOPInstanceUID = copy.file_meta.MediaStorageSOPInstanceUID = sop
            buffer = io.BytesIO()
            copy.save_as(buffer, enforce_file_format=True)
            files.append(buffer.getvalue())
        studies.append((study, series, files))
    return studies


def _user(url: str, study: str, series: str, scroll_s: float, delay_s: float,
          ready: Any, go: Any, results: Any) -> None:
    import viewerlib
    from viewerlib.sources.dicomweb import ArchiveQuirks, DICOMwebSource

    # A kernel is already running when its user opens a study: pay the one-time
    # costs (imports, codec discovery) before the clock starts.
    warm = ct_head_phantom("prior", rows=16, columns=16, number_of_slices=2)
    viewerlib.read_instance(warm.datasets[0]).display_frame()
    viewerlib.read_series(warm.datasets, workers=1)

    ready.put(True)
    go.wait()  # every kernel is up; users now arrive one after another
    time.sleep(delay_s)
    began = time.perf_counter()
    source = DICOMwebSource(url, "bench", quirks=ArchiveQuirks.for_orthanc_1_10())
    stream = source.iter_series(study, series)
    datasets = [next(stream)]
    viewerlib.read_instance(datasets[0]).display_frame()
    first_image = time.perf_counter() - began
    datasets.extend(stream)
    volume = viewerlib.read_series(datasets, workers=1)[0]
    ready = time.perf_counter() - began

    # Scrolling: one slice change every 1/20 s, each preparing that slice's bytes.
    steps, late = 0, 0
    tick = time.perf_counter()
    end = tick + scroll_s
    while tick < end:
        index = steps % volume.voxels.shape[0]
        np.ascontiguousarray(volume.voxels[index]).tobytes()
        steps += 1
        tick += 1.0 / _SCROLL_RATE
        pause = tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            late += 1
    results.put({"first_image_s": first_image, "volume_ready_s": ready,
                 "steps": steps, "late_steps": late})


def _round(url: str, studies: list[tuple[str, str, list[bytes]]], users: int,
           scroll_s: float) -> list[dict[str, float]]:
    # Spawned, not forked: each user starts from a clean interpreter, like a kernel.
    context = multiprocessing.get_context("spawn")
    queue, ready, go = context.Queue(), context.Queue(), context.Event()
    processes = [context.Process(target=_user, args=(url, studies[i][0], studies[i][1],
                                                     scroll_s, 0.25 * i, ready, go,
                                                     queue))
                 for i in range(users)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=300)
    go.set()
    outcomes = [queue.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(30)
    return outcomes


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(np.ceil(0.95 * len(ordered))) - 1)]


def run(quick: bool) -> int:
    counts = [1, 2, 4, 8, 12] if quick else [1, 2, 4, 6, 8, 10, 12, 16]
    repeats = 2 if quick else 3
    scroll_s = 2.0 if quick else 5.0
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        studies = _studies(max(counts))
        archive = EmbeddedOrthanc(Path(scratch), "load").start()
        try:
            session = archive._session()
            for _, _, files in studies:
                for data in files:
                    session.post(f"{archive.url}/instances", data=data,
                                 headers={"Content-Type": "application/dicom"})
            alone: list[float] = []
            for users in counts:
                first, ready, late = [], [], 0
                for _ in range(repeats):
                    outcomes = _round(archive.dicomweb_url, studies, users, scroll_s)
                    first += [o["first_image_s"] for o in outcomes]
                    ready += [o["volume_ready_s"] for o in outcomes]
                    late += sum(o["late_steps"] for o in outcomes)
                if users == 1:
                    alone = first
                ratio = _p95(first) / _p95(alone)
                rows.append({"users": users, "p95_first_image_ms": 1000 * _p95(first),
                             "median_first_image_ms": 1000 * statistics.median(first),
                             "p95_volume_ready_ms": 1000 * _p95(ready),
                             "late_scroll_steps": late, "ratio_to_one_user": ratio})
                print(f"  {users:>2} users: p95 first image {1000 * _p95(first):7.1f} ms"
                      f" ({ratio:.2f}x one user), late scroll steps {late}", flush=True)
        finally:
            archive.stop()

    within = [r["users"] for r in rows if r["ratio_to_one_user"] < 2.0]
    supported = max((u for u in within if all(
        r["ratio_to_one_user"] < 2.0 for r in rows if r["users"] <= u)), default=0)
    report = {"profile": "quick" if quick else "full", "rows": rows,
              "users_before_p95_doubles": supported, "goal_users": _GOAL_USERS,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cpus": os.cpu_count(), "versions": _versions()}
    _RESULTS.mkdir(exist_ok=True)
    out = _RESULTS / f"hub_load-{report['profile']}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2, default=float))
    print(f"users before the p95 time to first image doubles: {supported} "
          f"(goal >= {_GOAL_USERS}); JSON: {out}")
    return 0 if supported >= int(_GOAL_USERS / 1.15) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer counts and rounds")
    sys.exit(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
