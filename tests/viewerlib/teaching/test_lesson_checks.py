"""Every lesson check: None is "not answered yet", wrong is rejected, right accepted."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.sources.base import SourceHealth
from viewerlib.teaching import checks
from viewerlib.teaching.drills import (RetrievalMeasurement, Stopwatch,
                                       write_sample_audit_log)


def _viewer(center: float, width: float) -> SimpleNamespace:
    presets = [["BRAIN", 40, 80, "LINEAR"], ["Subdural", 75, 215, "LINEAR"],
               ["STROKE", 32, 8, "LINEAR"]]
    return SimpleNamespace(presets=presets, window_center=center, window_width=width)


def _volume() -> SimpleNamespace:
    affine = np.eye(4)
    affine[:3, :3] = [[0, 0, 0.9], [0, 0.9, 0], [4.0, 0, 0]]
    affine[:3, 3] = [-114.75, -114.75, -84.0]
    return SimpleNamespace(affine=affine, spacing_mm=(4.0, 0.9, 0.9))


def _stopwatch() -> Stopwatch:
    watch = Stopwatch()
    watch.marks = {"search": 10.0, "first image": 12.5}
    return watch


def _audit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_audit_log(tmp_path_factory.mktemp("audit") / "audit.jsonl")


def _deidentified(tmp_path: Path, keep_name: bool) -> Path:
    for ds in ct_head_phantom(rows=8, columns=8, number_of_slices=2).datasets:
        if not keep_name:
            ds.PatientName, ds.PatientID = "Anonymous", "STUDY-001"
        ds.save_as(tmp_path / f"{ds.InstanceNumber}.dcm", enforce_file_format=True)
    return tmp_path


def _archives_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "archives.toml"
    path.write_text(f'[[archive]]\nname = "{name}"\ntype = "folder"\n'
                    f'path = "{tmp_path}"\n')
    return path


HEALTH = {"Demo archive": SourceHealth("ok", 3.0), "Old PACS": SourceHealth(
    "down", None, "refused")}
MEASUREMENT = RetrievalMeasurement("Demo archive", 48, 6_000_000, 2.0)
RECEIPT = SimpleNamespace(items=12)
PRESENTER = SimpleNamespace(slice_index=27, window_center=40.0, window_width=80.0)

# (id, check called with the answer, right answers, wrong answers)
CASES = [
    ("window", lambda a: checks.check_window(a, "Subdural"),
     [_viewer(75, 215)], [_viewer(40, 80), _viewer(75, 400)]),
    ("stroke-window", lambda a: checks.check_window(a, "Stroke"),
     [_viewer(32, 8)], [_viewer(40, 80)]),
    ("haemorrhage-diameter", checks.check_haemorrhage_diameter, [22, 20.5, 24.9],
     [11, 40, "big", True, float("nan")]),
    ("haemorrhage-density", checks.check_haemorrhage_density, [70, 64], [32, 1000]),
    ("new-since-prior", checks.check_new_since_prior, [True], [False, "yes"]),
    ("key-images", lambda a: checks.check_key_images(a, _volume()),
     [[27], [10, 28]], [[0, 1], ["x"]]),
    ("accession", checks.check_accession_number, ["LBXACC01", " lbxacc01 "],
     ["LBXACC00", "LBX-0001"]),
    ("call-radiology", checks.check_call_radiology,
     [{"A": True, "B": False, "C": True}],
     [{"A": False, "B": False, "C": True}, {"A": True, "B": True, "C": True}]),
    ("time-to-image", lambda a: checks.check_time_to_image(a, _stopwatch()),
     [2.5, 2.52], [1.0, 25.0, "fast"]),
    ("vessel-side", checks.check_hyperdense_vessel_side, ["right", "Right"],
     ["left", "middle"]),
    ("occlusion-cutoff", checks.check_occlusion_cutoff, [22, 24.5], [10, 60]),
    ("fracture-level", checks.check_fracture_level, [0.0, 3.0], [20.0, -40.0]),
    ("fracture-gap", checks.check_fracture_gap, [3.0, 4.2], [8.0, 0.5]),
    ("fracture-gap-prior", lambda a: checks.check_fracture_gap(a, "prior"), [8.0],
     [3.0]),
    ("fracture-angulation", checks.check_fracture_angulation, [6.0, 8.5],
     [16.0, 0.0]),
    ("angulation-change", checks.check_angulation_change, [10.0, 12.0], [0.0, 22.0]),
    ("count", lambda a: checks.check_count(a, 2, "the studies"), [2], [3, 2.0, "2"]),
    ("voxel-volume", lambda a: checks.check_voxel_volume(a, _volume()), [3.24],
     [4.0, 0.81]),
    ("haemorrhage-volume", checks.check_haemorrhage_volume_ml, [5.6, 5.0],
     [5600, 2.0]),
    ("down-archives", lambda a: checks.check_down_archives(a, HEALTH),
     [["Old PACS"], "Old PACS"], [["Demo archive"], ["Old PACS", "Demo archive"]]),
    ("throughput", lambda a: checks.check_throughput(a, MEASUREMENT), [3.0, 3.1],
     [6.0, 0.5]),
    ("server-memory", lambda a: checks.check_server_memory_gb(a, 30, 2, 6.3, 300),
     [9.38, 9.0], [0.38, 18.0]),
    ("purge-receipt", lambda a: checks.check_purge_receipt(a, RECEIPT), [12], [0, 11]),
    ("following", lambda a: checks.check_following(a, PRESENTER),
     [SimpleNamespace(slice_index=27, window_center=40.0, window_width=80.0)],
     [SimpleNamespace(slice_index=20, window_center=40.0, window_width=80.0)]),
    ("mean-rating", lambda a: checks.check_mean_rating(a, [5, 4, 3, 5]), [4.25, 4.2],
     [4.0, 17]),
    ("role", lambda a: checks.check_role(a, ["staff", "neurologist", "radiologist"]),
     ["radiologist"], ["neurologist", "staff"]),
]


@pytest.mark.parametrize(("check", "right", "wrong"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_accepts_right_rejects_wrong_and_waits_for_none(check, right,
                                                              wrong) -> None:
    for answer in right:
        result = check(answer)
        assert result.correct, (answer, result.feedback)
    for answer in wrong:
        result = check(answer)
        assert not result.correct, answer
        assert result.feedback
    unanswered = check(None)
    assert not unanswered.correct
    assert "not answered yet" in unanswered.feedback or "open" in unanswered.feedback


def test_audit_checks_count_from_the_file(tmp_path_factory) -> None:
    path = _audit(tmp_path_factory)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    refused = sum(r["event"] == "sign-in-refused" for r in records)
    users = len({r["user"] for r in records if r["event"] == "sign-in"})
    assert refused > 0 and users > 1
    assert checks.check_audit_count(refused, path, "sign-in-refused").correct
    assert not checks.check_audit_count(refused + 1, path, "sign-in-refused").correct
    assert "not answered" in checks.check_audit_count(None, path, "sign-in").feedback
    assert checks.check_audit_distinct_users(users, path).correct
    assert not checks.check_audit_distinct_users(users - 1, path).correct
    assert not checks.check_audit_distinct_users(None, path).correct


def test_sample_audit_log_holds_no_patient_data(tmp_path_factory) -> None:
    text = _audit(tmp_path_factory).read_text()
    assert "Test^Case" not in text and "LBX-0001" not in text


def test_deidentified_folder_passes_and_original_fails(tmp_path: Path) -> None:
    (tmp_path / "clean").mkdir()
    clean = _deidentified(tmp_path / "clean", keep_name=False)
    assert checks.check_deidentified(clean).correct
    (tmp_path / "raw").mkdir()
    raw = _deidentified(tmp_path / "raw", keep_name=True)
    result = checks.check_deidentified(raw)
    assert not result.correct and "Test^Case" in result.feedback
    assert not checks.check_deidentified(tmp_path / "empty").correct
    assert not checks.check_deidentified(None).correct


def test_archives_file_check(tmp_path: Path) -> None:
    assert checks.check_archives_file(_archives_file(tmp_path, "Outside CDs"),
                                      "Outside CDs").correct
    other = tmp_path / "other"
    other.mkdir()
    assert not checks.check_archives_file(_archives_file(other, "Main PACS"),
                                          "Outside CDs").correct
    broken = tmp_path / "broken.toml"
    broken.write_text("[[archive]]\nname = 'x'\ntype = 'ftp'\n")
    assert "does not load" in checks.check_archives_file(broken, "x").feedback
    assert not checks.check_archives_file(None, "x").correct


def test_transfer_syntax_check(tmp_path: Path) -> None:
    ds = ct_head_phantom(rows=8, columns=8, number_of_slices=1).datasets[0]
    path = tmp_path / "one.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert checks.check_transfer_syntax("1.2.840.10008.1.2.1", path).correct
    assert not checks.check_transfer_syntax("1.2.840.10008.1.2.4.100", path).correct
    assert not checks.check_transfer_syntax(None, path).correct


def test_nothing_left_check(tmp_path: Path) -> None:
    assert checks.check_nothing_left(0, tmp_path).correct
    assert not checks.check_nothing_left(3, tmp_path).correct
    _deidentified(tmp_path, keep_name=False)
    left = checks.check_nothing_left(2, tmp_path)
    assert not left.correct and "delete" in left.feedback
    assert not checks.check_nothing_left(None, tmp_path).correct
