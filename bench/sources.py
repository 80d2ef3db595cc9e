"""Source benchmarks of issue #3: time to the first frame and to the whole series.

Run ``python -m bench.sources --quick`` or ``python -m bench.sources``. A real Orthanc
on loopback holds a 140-slice CT (the corpus series when ``LIGHTBOX_EXTRA_DATA`` is
set, a 512 x 512 phantom otherwise). Three routes are measured in alternation, after a
warm-up, on the same archive in the same run:

- naive: plain dicomweb-client as a viewer would use it without thought: QIDO for
  the instance list, then one WADO-RS frames request per instance;
- limit: the archive's fastest streamed route, one WADO-RS series request read raw
  with requests, no DICOM parsing at all: for the first frame, until the first part
  is complete (its closing delimiter seen); for the whole series, every byte
  received and kept in memory (the least any client holding the series does). An
  info row also compares with the bytes arriving and being dropped;
- Lightbox: ``DICOMwebSource.iter_series`` (first dataset, decoded to a display
  frame) and ``retrieve_series`` (every dataset in memory).

Ratios are Lightbox / limit (goals: first frame <= 1.5, whole series <= 1.25) and
naive / Lightbox for the speed-up (goal >= 10). Exit status 1 only when a median
misses its goal by more than 15 % (rows marked "info" are not goals).

The first-frame routes run 21 rounds in the quick profile (41 in the full one), the
whole series 13 (21): a first frame takes about 10 ms, so one busy moment of the
shared machine doubles a single ratio, and the median of 7 such ratios moved by a
third between runs. The whole-series rows also record the CPU seconds this process
spent per route (every thread, the archive's excluded).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
from dicomweb_client.api import DICOMwebClient
from lightbox_hub.embedded.orthanc import EmbeddedOrthanc

import viewerlib
from bench.pixels import _SLACK, _versions, ct_series
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.quirks import ArchiveQuirks

_RESULTS = Path(__file__).resolve().parent / "results"
_SERIES_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
# The same request Lightbox sends: no content coding of the series body.
_RAW_HEADERS = {"Accept": _SERIES_ACCEPT, "Accept-Encoding": "identity"}


def read_first_part(session: requests.Session, series_url: str) -> None:
    """The limit for a first image: one series request read raw until its first
    part is complete (the second delimiter seen), with the request Lightbox sends.

    Each chunk is searched once (plus a delimiter's length of overlap), and the
    answer is closed at once after, as Lightbox closes it.
    """
    with session.get(series_url, headers=_RAW_HEADERS, stream=True) as response:
        boundary = response.headers["Content-Type"].split("boundary=")[1]
        marker = b"--" + boundary.strip('"').encode()
        seen = bytearray()
        found = 0
        for chunk in response.raw.stream(65536, decode_content=False):
            start = max(0, len(seen) - len(marker))
            seen += chunk
            while (at := seen.find(marker, start)) >= 0:
                found += 1
                if found == 2:
                    return
                start = at + len(marker)
    raise RuntimeError("the series answer held fewer than one instance")


def settle() -> None:
    """Let the last route's leftovers end before the next route's clock starts.

    After its first image, ``viewerlib.open`` asks the archive for the instance
    count and the study's objects in helper threads; a stream closed early keeps
    the archive writing for a moment; and each route leaves garbage. Without
    this, the next route (whichever it is) paid for them: a garbage collection
    or the archive's work fell inside its time, which moved 10 ms ratios by a
    third.
    """
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(
            thread.name.startswith(("viewerlib-series", "lightbox-series"))
            for thread in threading.enumerate()):
        time.sleep(0.005)
    gc.collect()
    time.sleep(0.01)


def _seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def alternate(routes: dict[str, Callable[[], object]], pairs: int,
              cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Run every route once per round, rotating the order; return seconds per route.

    When ``cpu`` is given it receives this process's CPU seconds per run (every
    thread, the archive's excluded): on a shared machine a wall-clock ratio
    follows the load, the CPU spent here much less so.
    """
    names = list(routes)
    for name in names:  # warm-up: caches of the archive and of the OS
        routes[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(pairs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            settle()
            started_cpu = time.process_time()
            times[name].append(_seconds(routes[name]))
            if cpu is not None:
                cpu.setdefault(name, []).append(time.process_time() - started_cpu)
    return times


def _ratio_row(workload: str, numerator: list[float], denominator: list[float],
               goal: float, sense: str) -> dict[str, object]:
    ratios = [n / d for n, d in zip(numerator, denominator, strict=True)]
    median = statistics.median(ratios)
    met = median <= goal if sense == "<=" else median >= goal
    slack = goal * _SLACK if sense == "<=" else goal / _SLACK
    within = median <= slack if sense == "<=" else median >= slack
    return {"workload": workload, "ratio_median": median, "ratio_min": min(ratios),
            "ratio_max": max(ratios), "goal": f"{sense} {goal}", "met": met,
            "within_slack": within}


def run(quick: bool) -> int:
    # Rounds: a first frame takes about 10 ms, where one busy moment of a shared
    # machine can double one route's time; the median of 7 ratios of such short
    # runs moved by a third from run to run. Short routes get more rounds (the
    # naive route, 0.2 s, sets their cost); the whole series at least 9.
    pairs = 21 if quick else 41
    # The whole series' ratios spread from 0.8 to 1.9 in one quick run when the
    # machine was busy: more rounds keep one busy moment from moving the median.
    whole_pairs = 13 if quick else 21
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        series_files = ct_series(folder, 140)
        archive = EmbeddedOrthanc(folder / "orthanc", "bench").start()
        try:
            report = archive.load_files(series_files)
            if report.rejected:
                raise RuntimeError(f"archive refused {report.rejected[:3]}")
            header = viewerlib.read_instance(series_files[0]).dataset
            study = str(header.StudyInstanceUID)
            series = str(header.SeriesInstanceUID)
            rows, absolute = _measure(archive.dicomweb_url, study, series,
                                      len(series_files), pairs, whole_pairs)
        finally:
            archive.stop()

    result = {"profile": "quick" if quick else "full", "instances": len(series_files),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cpus": os.cpu_count(), "versions": _versions(), "median_ms": absolute,
              "results": rows}
    _RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = _RESULTS / f"sources-{result['profile']}-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, default=float))
    print(f"load average before {load_before}, after {result['load_average_after']}")
    print("median ms: " + ", ".join(f"{k} {v:.1f}" for k, v in absolute.items()))
    print("| workload | median | min | max | goal | met |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        verdict = "yes" if r["met"] else ("within 15%" if r["within_slack"] else "NO")
        print(f"| {r['workload']} | {r['ratio_median']:.2f} | {r['ratio_min']:.2f} | "
              f"{r['ratio_max']:.2f} | {r['goal']} | {verdict} |")
    print(f"JSON: {out}")
    # Rows marked "(info" carry no goal of the issue.
    return 0 if all(r["within_slack"] for r in rows
                    if "(info" not in str(r["workload"])) else 1


def _measure(base_url: str, study: str, series: str, count: int, pairs: int,
             whole_pairs: int) -> tuple[list[dict[str, object]], dict[str, float]]:
    source = DICOMwebSource(base_url, "bench", quirks=ArchiveQuirks.for_orthanc_1_10(),
                            use_cache=False)
    naive = DICOMwebClient(base_url)
    raw = requests.Session()
    series_url = f"{base_url}/studies/{study}/series/{series}"
    frame_types = (("application/octet-stream", "*"),)

    def naive_first() -> None:
        instances = naive.search_for_instances(study, series)
        sop = instances[0]["00080018"]["Value"][0]
        naive.retrieve_instance_frames(study, series, sop, [1], media_types=frame_types)

    def naive_whole() -> None:
        for item in naive.search_for_instances(study, series, get_remaining=True):
            naive.retrieve_instance_frames(study, series, item["00080018"]["Value"][0],
                                           [1], media_types=frame_types)

    def limit_first() -> None:
        read_first_part(raw, series_url)

    def limit_whole() -> None:
        # The series' bytes in memory, as received (large reads, kept): what any
        # client must at least do to hold the series, with no parsing at all.
        with raw.get(series_url, headers=_RAW_HEADERS, stream=True) as response:
            kept = list(response.raw.stream(1 << 20, decode_content=False))
        assert sum(map(len, kept)) > 0

    def arrival_whole() -> None:
        # The bytes arriving and nothing kept: the archive and the network only.
        with raw.get(series_url, headers=_RAW_HEADERS, stream=True) as response:
            for _ in response.raw.stream(1 << 20, decode_content=False):
                pass

    def lightbox_first() -> None:
        stream = source.iter_series(study, series)
        first = next(stream)
        viewerlib.read_instance(first).display_frame()
        stream.close()

    def lightbox_whole() -> None:
        datasets = source.retrieve_series(study, series)
        assert len(datasets) == count

    first = alternate({"naive": naive_first, "limit": limit_first,
                       "lightbox": lightbox_first}, pairs)
    whole_cpu: dict[str, list[float]] = {}
    whole = alternate({"naive": naive_whole, "limit": limit_whole,
                       "arrival": arrival_whole, "lightbox": lightbox_whole},
                      whole_pairs, cpu=whole_cpu)
    rows = [
        _ratio_row("first frame: Lightbox / streamed first instance",
                   first["lightbox"], first["limit"], 1.5, "<="),
        _ratio_row("first frame: naive / Lightbox (speed-up)",
                   first["naive"], first["lightbox"], 10.0, ">="),
        _ratio_row("whole series: Lightbox / fastest streamed route",
                   whole["lightbox"], whole["limit"], 1.25, "<="),
        _ratio_row("whole series: naive / Lightbox (speed-up, info)",
                   whole["naive"], whole["lightbox"], 1.0, ">="),
        _ratio_row("whole series: Lightbox / bytes arriving, none kept (info)",
                   whole["lightbox"], whole["arrival"], 1.25, "<="),
    ]
    absolute = {f"{kind} {name}": 1000 * statistics.median(values)
                for kind, table in (("first", first), ("whole", whole))
                for name, values in table.items()}
    absolute.update({f"whole {name} cpu": 1000 * statistics.median(values)
                     for name, values in whole_cpu.items()})
    return rows, absolute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    sys.exit(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
