"""Users per 2-core hub: simulated users open different studies and scroll.

Run ``python -m bench.hub_load --quick`` or ``python -m bench.hub_load``. One real
Orthanc on loopback holds one CT study per simulated user: the 140-slice CT of the
other suites (the corpus series when ``LIGHTBOX_EXTRA_DATA`` is set, a 512 x 512
phantom otherwise), stored again under new UIDs for each user, so that no two users
share a study or a cache entry.

Each user is its own process, as each JupyterHub user has their own kernel, started
once and warmed up before any clock runs: imports, and one open of a small warm-up
series through the same route (a kernel has searched its archive before it opens a
study). A user then opens its study the way the viewer does, ``viewerlib.open(study,
source, series=...)``, and its time to first image is the time until the viewer holds
its first decoded slice (as in ``bench.first_image``); the rest of the series
streams in behind it, as it does for a real user. It then scrolls at 20 images per
second over the slices that have arrived, each step doing the kernel's part of a
slice change (that slice's bytes made ready to send), until its next open.

Between two opens a user scrolls once through its whole study at 20 images per
second (140 slices: a cycle of 7 s), then opens it again; the users' cycles are
evenly phased, so that opens arrive at a steady rate and each one meets the others
scrolling and loading, rather than all users opening in one burst. The p95 time to
first image over all opens of a round with N users is divided by the p95 of one user
alone, measured in rounds of one user interleaved with the others in the same run
(load on a shared machine drifts; the one-user rounds follow it). Goal: at least 8
users before that ratio reaches 2. Exit status 1 only when fewer than 8 / 1.15
(rounded down) users stay under the ratio of 2.

Notes on method (why it is built this way):

- Processes are started and warmed once, before the first round, and reused: a
  kernel's start-up is not part of opening a study, and starting a dozen
  interpreters at the moment of measuring would load the machine with imports.
- The route is the product's (``viewerlib.open``), which shows the first slice
  before the series is whole and builds the volume from the slices already
  decoded. An earlier version streamed the whole series, then decoded it again
  with ``read_series``: twice the work per user, which the viewer never does.
- Each user opens its study with the source's cache off, so every open costs the
  archive and the kernel a whole series, and a study is the size the issue asks
  for (140 slices, not a 48-slice 256 x 256 phantom).
- A p95 needs samples: at least 16 opens per round of N users, and interleaved
  one-user rounds pooled for the denominator (two samples gave a p95 that was their
  maximum). A user alone opens every 1.5 s: alone, its load has long ended by then,
  and a shorter cycle buys more samples in the same time.
- The cycle is the issue's own numbers (a study scrolled through once at 20 images
  per second), not a free parameter; real reading keeps a study open for minutes,
  so the opens here come far faster than on a real hub.
- The archive runs on the same two cores and its work is charged to the hub: a
  pessimistic measure, since a hospital's archive is another machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from lightbox_hub.embedded.orthanc import EmbeddedOrthanc
from pydicom.uid import generate_uid

from bench.pixels import _versions, ct_series
from viewerlib.samples.phantom import ct_head_phantom

_RESULTS = Path(__file__).resolve().parent / "results"
_SCROLL_RATE = 20.0
_GOAL_USERS = 8
_SLACK = 1.15


def _store_studies(archive: EmbeddedOrthanc, series_files: list[Path],
                   count: int) -> list[tuple[str, str]]:
    """Store `count` copies of the series, each under new UIDs; return their UIDs."""
    templates = [pydicom.dcmread(path) for path in series_files]
    studies = []
    for user in range(count):
        study, series = (generate_uid(entropy_srcs=[f"load-{user}-{kind}"])
                         for kind in ("study", "series"))
        copies = []
        for index, template in enumerate(templates):
            copy = template.copy()
            copy.StudyInstanceUID, copy.SeriesInstanceUID = study, series
            sop = generate_uid(entropy_srcs=[f"load-{user}-{index}"])
            copy.SOPInstanceUID = sop
            copy.file_meta = pydicom.dataset.FileMetaDataset(template.file_meta)
            copy.file_meta.MediaStorageSOPInstanceUID = sop
            copies.append(copy)
        report = archive.load_datasets(copies)
        if report.rejected:
            raise RuntimeError(f"archive refused {report.rejected[:3]}")
        studies.append((study, series))
    return studies


def _user(url: str, study: str, series: str, warm: tuple[str, str],
          commands: Any, results: Any) -> None:
    """One kernel: warm up, then run the rounds it is told to, until None."""
    import viewerlib
    from viewerlib.sources.dicomweb import DICOMwebSource
    from viewerlib.sources.quirks import ArchiveQuirks

    source = DICOMwebSource(url, "bench", quirks=ArchiveQuirks.for_orthanc_1_10(),
                            use_cache=False)
    viewer = viewerlib.open(warm[0], source, series=warm[1])
    _ = viewer.volume  # waits for the whole series
    viewer.close()
    results.put(("ready",))

    while (command := commands.get()) is not None:
        start_at, opens, cycle_s = command
        first_images, late = [], 0
        for number in range(opens):
            opens_at = start_at + number * cycle_s
            time.sleep(max(0.0, opens_at - time.time()))
            began = time.perf_counter()
            viewer = viewerlib.open(study, source, series=series)
            viewer.wait_for_slices(1, timeout=120)
            first_images.append(time.perf_counter() - began)

            # Scrolling until the next open: one slice change every 1/20 s, over
            # the slices that have arrived (the whole series once it is in).
            tick, steps = time.perf_counter(), 0
            end = tick + (opens_at + cycle_s - time.time()) - 0.05
            while tick < end:
                # The page sets the slice; the kernel gets that slice's values
                # ready to send (what it does when the page asks for a slice).
                index = steps % max(1, viewer.number_of_slices)
                viewer.slice_index = index
                voxels = viewer.voxels
                np.ascontiguousarray(voxels[min(index, len(voxels) - 1)]).tobytes()
                steps += 1
                tick += 1.0 / _SCROLL_RATE
                pause = tick - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                else:
                    late += 1
            _ = viewer.volume  # the load has ended (normally long before)
            viewer.close()
        results.put(("done", first_images, late))


class _Users:
    """The user processes, started and warmed once (spawned: a clean kernel each)."""

    def __init__(self, url: str, studies: list[tuple[str, str]],
                 warm: tuple[str, str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.results = context.Queue()
        self.commands = [context.Queue() for _ in studies]
        self.processes = [
            context.Process(target=_user, args=(url, study, series, warm,
                                                commands, self.results))
            for (study, series), commands in zip(studies, self.commands, strict=True)]
        for process in self.processes:
            process.start()
        for _ in self.processes:
            self.results.get(timeout=600)

    def round(self, users: int, opens: int, cycle_s: float,
              spacing_s: float | None = None) -> tuple[list[float], int]:
        """`users` users each open their study `opens` times, phased evenly.

        With `spacing_s`, the users' first opens come that far apart instead.
        """
        start = time.time() + 0.5
        spacing = cycle_s / users if spacing_s is None else spacing_s
        for index in range(users):
            self.commands[index].put((start + index * spacing, opens, cycle_s))
        first_images: list[float] = []
        late = 0
        for _ in range(users):
            _, samples, missed = self.results.get(timeout=600)
            first_images += samples
            late += missed
        return first_images, late

    def stop(self) -> None:
        for commands in self.commands:
            commands.put(None)
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.terminate()


def _p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def run(quick: bool) -> int:
    counts = [4, 8, 12] if quick else [2, 4, 6, 8, 10, 12, 16]
    samples_per_round = 16 if quick else 30
    alone_opens, alone_cycle_s = (4, 1.5) if quick else (6, 1.5)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        series_files = ct_series(folder, 140)
        archive = EmbeddedOrthanc(folder / "orthanc", "load").start()
        users = None
        try:
            studies = _store_studies(archive, series_files, max(counts))
            warm = ct_head_phantom("prior", rows=32, columns=32, number_of_slices=3)
            archive.load_datasets(warm.datasets)
            warm_uids = (str(warm.datasets[0].StudyInstanceUID),
                         str(warm.datasets[0].SeriesInstanceUID))
            users = _Users(archive.dicomweb_url, studies, warm_uids)
            # One scroll through the study between two opens.
            cycle_s = len(series_files) / _SCROLL_RATE
            alone: list[float] = []
            burst: list[float] = []
            for count in counts:
                # One user alone, just before: the denominator follows the load.
                samples, _ = users.round(1, alone_opens, alone_cycle_s)
                alone += samples
                opens = max(2, -(-samples_per_round // count))
                first, late = users.round(count, opens, cycle_s)
                rows.append({"users": count, "samples": len(first),
                             "p95_first_image_ms": 1000 * _p95(first),
                             "median_first_image_ms": 1000 * statistics.median(first),
                             "late_scroll_steps": late,
                             "load_average": os.getloadavg()[0]})
                print(f"  {count:>2} users: p95 first image "
                      f"{1000 * _p95(first):7.1f} ms over {len(first)} opens, late "
                      f"scroll steps {late}", flush=True)
            # For information: 8 users opening within 2 s (a quarter of a second
            # apart), once each; not a goal, a burst that real reading never makes.
            burst, _ = users.round(_GOAL_USERS, 1, cycle_s, spacing_s=0.25)
        finally:
            if users is not None:
                users.stop()
            archive.stop()

    one = _p95(alone)
    for row in rows:
        row["ratio_to_one_user"] = row["p95_first_image_ms"] / (1000 * one)
    supported = 0
    for row in rows:
        if row["ratio_to_one_user"] >= 2.0:
            break
        supported = row["users"]
    report = {"profile": "quick" if quick else "full",
              "one_user": {"samples": len(alone), "p95_first_image_ms": 1000 * one,
                           "median_first_image_ms": 1000 * statistics.median(alone)},
              "rows": [{"users": 1, "samples": len(alone),
                        "p95_first_image_ms": 1000 * one,
                        "median_first_image_ms": 1000 * statistics.median(alone),
                        "ratio_to_one_user": 1.0}] + rows,
              "users_before_p95_doubles": supported, "goal_users": _GOAL_USERS,
              "burst_info": {"users": _GOAL_USERS, "spacing_s": 0.25,
                             "p95_first_image_ms": 1000 * _p95(burst),
                             "ratio_to_one_user": _p95(burst) / one},
              "cycle_s": len(series_files) / _SCROLL_RATE,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cpus": os.cpu_count(), "versions": _versions()}
    _RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = _RESULTS / f"hub_load-{report['profile']}-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, default=float))
    print(f"load average before {load_before}, after {report['load_average_after']}")
    print(f"one user: p95 first image {1000 * one:.1f} ms over {len(alone)} opens")
    print("| users | p95 first image ms | ratio to one user | late scroll steps |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['users']} | {row['p95_first_image_ms']:.1f} | "
              f"{row['ratio_to_one_user']:.2f} | {row['late_scroll_steps']} |")
    print(f"(info) {_GOAL_USERS} users opening 0.25 s apart, once each: p95 "
          f"{1000 * _p95(burst):.1f} ms, {_p95(burst) / one:.2f}x one user")
    print(f"users before the p95 time to first image doubles: {supported} "
          f"(goal >= {_GOAL_USERS}); JSON: {out}")
    return 0 if supported >= int(_GOAL_USERS / _SLACK) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer counts and opens")
    sys.exit(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
