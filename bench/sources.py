"""Source benchmarks of issue #3: time to the first frame and to the whole series.

Run ``python -m bench.sources --quick`` or ``python -m bench.sources``. A real Orthanc
on loopback holds a 140-slice CT (the corpus series when ``LIGHTBOX_EXTRA_DATA`` is
set, a 512 x 512 phantom otherwise). Three routes are measured in alternation, after a
warm-up, on the same archive in the same run:

- naive: plain dicomweb-client as a viewer would use it without thought: QIDO for
  the instance list, then one WADO-RS frames request per instance;
- limit: the archive's fastest streamed route, one WADO-RS series request read raw
  with requests (first instance complete / every byte arrived), no parsing at all;
- Lightbox: ``DICOMwebSource.iter_series`` (first dataset, decoded to a display
  frame) and ``retrieve_series`` (every dataset in memory).

Ratios are Lightbox / limit (goals: first frame <= 1.5, whole series <= 1.25) and
naive / Lightbox for the speed-up (goal >= 10). Exit status 1 only when a median
misses its goal by more than 15 %.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from dicomweb_client.api import DICOMwebClient

import viewerlib
from bench.pixels import _SLACK, _versions, ct_series
from lightbox_hub.embedded.orthanc import EmbeddedOrthanc
from viewerlib.sources.dicomweb import ArchiveQuirks, DICOMwebSource

_RESULTS = Path(__file__).resolve().parent / "results"
_SERIES_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def alternate(routes: dict[str, Callable[[], object]], pairs: int) -> dict[str, list[float]]:
    """Run every route once per round, rotating the order; return seconds per route."""
    names = list(routes)
    for name in names:  # warm-up: caches of the archive and of the OS
        routes[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(pairs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_seconds(routes[name]))
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
    pairs = 7 if quick else 15
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
                                      len(series_files), pairs)
        finally:
            archive.stop()

    result = {"profile": "quick" if quick else "full", "instances": len(series_files),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cpus": os.cpu_count(), "versions": _versions(), "median_ms": absolute,
              "results": rows}
    _RESULTS.mkdir(exist_ok=True)
    out = _RESULTS / f"sources-{result['profile']}-{time.strftime('%Y%m%d-%H%M%S')}.json"
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
    return 0 if all(r["within_slack"] for r in rows) else 1


def _measure(base_url: str, study: str, series: str, count: int,
             pairs: int) -> tuple[list[dict[str, object]], dict[str, float]]:
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
        # The first part is complete once the second boundary has been seen.
        with raw.get(series_url, headers={"Accept": _SERIES_ACCEPT},
                     stream=True) as response:
            boundary = response.headers["Content-Type"].split("boundary=")[1]
            marker = b"--" + boundary.strip('"').encode()
            seen = b""
            for chunk in response.iter_content(65536):
                seen += chunk
                if seen.count(marker) >= 2:
                    return

    def limit_whole() -> None:
        # Large reads, nothing kept: the cost of the bytes arriving and no more.
        with raw.get(series_url, headers={"Accept": _SERIES_ACCEPT},
                     stream=True) as response:
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
    whole = alternate({"naive": naive_whole, "limit": limit_whole,
                       "lightbox": lightbox_whole}, max(3, pairs // 2))
    rows = [
        _ratio_row("first frame: Lightbox / streamed first instance",
                   first["lightbox"], first["limit"], 1.5, "<="),
        _ratio_row("first frame: naive / Lightbox (speed-up)",
                   first["naive"], first["lightbox"], 10.0, ">="),
        _ratio_row("whole series: Lightbox / fastest streamed route",
                   whole["lightbox"], whole["limit"], 1.25, "<="),
        _ratio_row("whole series: naive / Lightbox (speed-up, info)",
                   whole["naive"], whole["lightbox"], 1.0, ">="),
    ]
    absolute = {f"{kind} {name}": 1000 * statistics.median(values)
                for kind, table in (("first", first), ("whole", whole))
                for name, values in table.items()}
    return rows, absolute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="7 rounds instead of 15")
    sys.exit(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
