"""The stack viewer keeps what a reader must not miss about a series on screen.

``volume.warnings`` can say that the series is partial, that slices are blank, that
the gaps between slices are uneven or that the gantry was tilted. The viewer turns
each such note into one short line (``StackViewer.alerts``, from the one table in
``viewerlib.volume.volume``) that the page keeps above the image, with the notes
behind it, without folders or instance UIDs, on a click. The series are the CT
head phantom (Test^Case), 16 x 16, slices 4 mm apart, changed as each case says.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydicom.fileset import FileSet

import viewerlib
from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume.volume import read_series, volume_alerts
from viewerlib.widgets.stack import StackViewer

SLICES = 8
INNER = 3  # an inner slice: losing it leaves an 8 mm gap between 4 mm ones


def _phantom(**changes: object) -> list:
    return ct_head_phantom("current", rows=16, columns=16, number_of_slices=SLICES,
                           slice_spacing_mm=4.0, **changes).datasets


def _quietly(read, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each case's warnings are what it checks
        return read(*args)


def _whole(tmp_path: Path) -> list:
    return _phantom()


def _gap(tmp_path: Path) -> list:
    return [ds for k, ds in enumerate(_phantom()) if k != INNER]


def _tilted(tmp_path: Path) -> list:
    # Each slice 1 mm further posterior per 4 mm step: atan(1 / 4) = 14.04 deg.
    datasets = _phantom()
    y0 = float(datasets[0].ImagePositionPatient[1])
    for k, ds in enumerate(datasets):
        x, _, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y0 + k, z]
    return datasets


def _blank(tmp_path: Path) -> list:
    # The pixel data of one slice a pixel short: kept in place, blank.
    datasets = _phantom()
    datasets[INNER].PixelData = datasets[INNER].PixelData[:-2]
    return datasets


def _unreadable(tmp_path: Path) -> list:
    # A file cut inside its header: read_series leaves it out, and the gap shows.
    paths = []
    for ds in _phantom():
        path = tmp_path / f"{ds.InstanceNumber:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    paths[INNER].write_bytes(paths[INNER].read_bytes()[:200])
    return paths


# Series -> the lines above the image, most serious first.
CASES = {
    "whole": (_whole, []),
    "file-missing": (_gap, ["Uneven slice spacing (4.000 to 8.000 mm)"]),
    "gantry-tilt": (_tilted, ["Gantry tilt 14.04°"]),
    "blank-slice": (_blank, [f"1 of {SLICES} slices not decoded (blank)"]),
    "unreadable-file": (_unreadable, [
        "Incomplete series: 1 unreadable file(s) left out",
        "Uneven slice spacing (4.000 to 8.000 mm)",
    ]),
}


@pytest.mark.parametrize(("build", "expected"), CASES.values(), ids=CASES.keys())
def test_each_kind_of_problem_gets_one_line_above_the_image(tmp_path, build,
                                                            expected) -> None:
    (volume,) = _quietly(read_series, build(tmp_path))

    viewer = StackViewer.from_volume(volume)

    assert [row["text"] for row in viewer.alerts] == expected
    # Each line's detail is the note behind it, as the volume holds it.
    for row, alert in zip(viewer.alerts, volume_alerts(volume), strict=True):
        assert row == {"text": alert.text, "detail": alert.detail}
        assert row["detail"]


def test_every_note_that_is_warned_about_is_shown(tmp_path) -> None:
    # What read_series warns about and what the page shows come from one table.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (volume,) = read_series(_unreadable(tmp_path))
    warned = {str(w.message) for w in caught}

    detail = "\n".join(row.detail for row in volume_alerts(volume))

    assert len(warned) == 2
    for note in warned:
        assert note.split(":")[0] in detail


def _dicomdir_missing_one(folder: Path) -> Path:
    """A CD of the phantom with its DICOMDIR, the file of slice INNER deleted."""
    files = FileSet()
    for ds in _phantom():
        files.add(ds)
    files.write(folder)
    # pydicom 3 stages the files in a temporary folder it removes only when the
    # FileSet is collected, with a ResourceWarning (an error here): remove it now.
    files._stage["t"].cleanup()
    images = sorted(p for p in folder.rglob("IM*") if p.is_file())
    images[INNER].unlink()
    return images[INNER]


def test_a_dicomdir_listing_a_missing_file_says_the_series_is_incomplete(
    tmp_path,
) -> None:
    gone = _dicomdir_missing_one(tmp_path / "cd")

    # Told once, on the alert line: no UserWarning besides (warnings fail here).
    viewer = viewerlib.open(tmp_path / "cd")

    assert [row["text"] for row in viewer.alerts] == [
        f"Incomplete series: 1 of {SLICES} images missing",
        "Uneven slice spacing (4.000 to 8.000 mm)",
    ]
    detail = viewer.alerts[0]["detail"]
    assert f"could not be read, so {SLICES - 1} of {SLICES} instances arrived" in (
        detail)
    # The file by its name, as on the disc; not the folders above it.
    assert f"{gone.name} (listed in the DICOMDIR but missing" in detail
    assert str(tmp_path) not in detail and str(gone.parent) not in detail


def test_the_details_name_no_folder_and_no_instance_uid(tmp_path) -> None:
    datasets = _blank(tmp_path)
    uid = str(datasets[INNER].SOPInstanceUID)
    (from_datasets,) = _quietly(read_series, datasets)
    folder = tmp_path / "series"
    folder.mkdir()
    for ds in _phantom():
        ds.save_as(folder / f"{ds.InstanceNumber:03d}.dcm", enforce_file_format=True)
    cut = sorted(folder.iterdir())[INNER]
    cut.write_bytes(cut.read_bytes()[:-2])
    (from_files,) = _quietly(read_series, folder)

    by_dataset = StackViewer.from_volume(from_datasets).alerts[0]["detail"]
    by_file = StackViewer.from_volume(from_files).alerts[0]["detail"]

    # The full notes keep the UID, for the notebook; a file of a folder read whole
    # is named by its path in the folder, as viewerlib.open names it.
    assert any(uid in note for note in from_datasets.warnings)
    assert any(f"'{cut.name}'" in note for note in from_files.warnings)
    assert not any(str(folder) in note for note in from_files.warnings)
    assert uid not in by_dataset
    # A dataset in memory: whether it was cut or written so, no file tells.
    assert f"instance {INNER + 1}: its pixel data does not fit its header" in (
        by_dataset)
    assert str(folder) not in by_file
    assert f"'{cut.name}': the file is cut short" in by_file


def test_both_panes_of_a_comparison_keep_their_own_alerts(tmp_path) -> None:
    (whole,) = read_series(_whole(tmp_path))
    (gap,) = _quietly(read_series, _gap(tmp_path))

    pair = viewerlib.compare(whole, gap)

    assert pair.current.alerts == []
    assert [row["text"] for row in pair.prior.alerts] == [
        "Uneven slice spacing (4.000 to 8.000 mm)"]
    # The pane without alerts keeps the line's room: both images at one scale.
    assert pair.current.keep_warning_room and pair.prior.keep_warning_room
    pair.prior.alerts = []
    assert not pair.current.keep_warning_room and not pair.prior.keep_warning_room
    pair.current.missing_slices = [2]
    assert pair.current.keep_warning_room and pair.prior.keep_warning_room


def test_a_viewer_that_loaded_gets_the_alerts_of_the_whole_series(tmp_path) -> None:
    import dataclasses

    (volume,) = _quietly(read_series, _blank(tmp_path))
    plan = dataclasses.replace(volume, voxels=np.zeros_like(volume.voxels),
                               warnings=[], missing_slices=[])
    viewer = StackViewer.from_volume(plan)
    viewer.begin_loading(lambda: volume)
    assert viewer.alerts == []

    viewer.end_loading(volume)

    assert [row["text"] for row in viewer.alerts] == [
        f"1 of {SLICES} slices not decoded (blank)"]


def test_alerts_set_by_hand_are_kept_as_plain_text() -> None:
    viewer = StackViewer(np.zeros((2, 4, 4), np.int16), (1.0, 1.0, 1.0))

    viewer.alerts = [{"text": 7, "detail": None}, {"text": "", "detail": "x"},
                     {"text": "<b>Check</b>"}]

    assert viewer.alerts == [{"text": "7", "detail": "None"},
                             {"text": "<b>Check</b>", "detail": ""}]


@pytest.mark.parametrize("name", ["O'Brien^Test 12345", 'Test "Case" 12345'])
def test_no_folder_reaches_the_log_or_the_page_whatever_its_quotes(tmp_path, caplog,
                                                                  name) -> None:
    # repr() puts a path holding a single quote in double quotes, and escapes
    # a path holding both: the folder, which may name the patient, goes anyway.
    folder = tmp_path / name / "cd"
    folder.mkdir(parents=True)
    for ds in _phantom():
        ds.save_as(folder / f"{ds.InstanceNumber:03d}.dcm", enforce_file_format=True)
    cut = sorted(folder.iterdir())[INNER]
    cut.write_bytes(cut.read_bytes()[:-2])

    # Files given one by one keep their whole paths in the notes: the quoted
    # folder must still be taken out of what is logged and shown.
    with caplog.at_level("DEBUG"):
        (volume,) = _quietly(read_series, sorted(folder.iterdir()))
        (by_folder,) = _quietly(read_series, folder)
    detail = StackViewer.from_volume(volume).alerts[0]["detail"]

    assert any(str(cut) in note for note in volume.warnings)
    # The folder read whole: its files by their path in it, even in the notes.
    assert not any(str(folder) in note for note in by_folder.warnings)
    assert any(repr(cut.name) in note for note in by_folder.warnings)
    for shown in (caplog.text, detail):
        assert "12345" not in shown
    assert cut.name in detail


@pytest.mark.parametrize(("stacks", "said"), [(1, "another stack"),
                                               (2, "2 other stacks")])
def test_the_line_counts_the_stacks_left_out(stacks, said) -> None:
    # A localizer and a stray slice of another orientation are two stacks.
    volume = SimpleNamespace(missing_slices=[], shape=(SLICES, 16, 16), warnings=[
        f"Not shown: 2 file(s) in {stacks} other stack(s) of this series (...)"])
    (alert,) = volume_alerts(volume)  # type: ignore[arg-type]
    assert alert.text == f"2 file(s) of {said} not shown"
