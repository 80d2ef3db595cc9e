"""read_series keeps a misdescribed slice in place and says why a stack is apart.

The series is the CT head phantom (Test^Case, synthetic: 16 x 16, 8 slices 4 mm
apart, written foot to head) in a folder, with slice STRAY broken one way:

- another orientation: it forms a stack of its own, which says why, and the gap it
  leaves in the series is put down to it, not to "a file missing";
- (0028,0010) Rows larger than its pixel data holds: it stays in its place, blank
  and named, as a slice cut short does, with a message that says the header is
  wrong (copying will not help), not that the file is cut short;
- pixel data longer than its header needs (Rows too small, or extra bytes): shown
  as pydicom shows it, never blanked;
- a real stack of another size in the same inputs is never merged in.

Each case is read three ways: the tight file reader, pydicom's route, and datasets
in memory read from the files.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume import volume as volume_module
from viewerlib.volume.volume import read_series

SLICES = 8
STRAY = 3  # an inner slice: taking it out leaves a gap
SPACING_MM = 4.0


def _write(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for ds in ct_head_phantom("current", rows=16, columns=16, number_of_slices=SLICES,
                              slice_spacing_mm=SPACING_MM).datasets:
        path = folder / f"{ds.InstanceNumber:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _rewrite(path: Path, **elements: object) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


def _read(paths: list[Path], how: str, monkeypatch) -> tuple[list, list[str]]:
    """read_series one way; the volumes and the UserWarnings it gave."""
    monkeypatch.setattr(volume_module, "_READ_FILES_FAST", how == "fast")
    inputs: list = list(paths)
    if how == "datasets":
        inputs = [pydicom.dcmread(path) for path in paths]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volumes = read_series(inputs, workers=1)
    return volumes, [str(w.message) for w in caught]


ROUTES = ["fast", "pydicom", "datasets"]


@pytest.mark.parametrize("how", ROUTES)
def test_a_slice_of_another_orientation_is_set_apart_and_says_why(tmp_path, how,
                                                                  monkeypatch):
    paths = _write(tmp_path / "series")
    _rewrite(paths[STRAY], ImageOrientationPatient=[0, 1, 0, 0, 0, -1])

    volumes, warned = _read(paths, how, monkeypatch)

    series, stray = sorted(volumes, key=lambda v: -v.shape[0])
    assert series.shape[0] == SLICES - 1 and stray.shape[0] == 1
    # The stray stack says why it is one of its own, naming the element and values.
    (apart,) = [w for w in stray.warnings if w.startswith("Set apart")]
    assert "are not in the largest stack of these inputs (7 file(s))" in apart
    assert ("another orientation: (0020,0037) Image Orientation (Patient) "
            "0\\1\\0\\0\\0\\-1 (sagittal), not 1\\0\\0\\0\\1\\0 (axial)") in apart
    # The series' gap is put down to it, not to a file missing from the series.
    (uneven,) = [w for w in series.warnings if w.startswith("Non-uniform")]
    assert "a file missing" not in uneven
    assert "in a gap lies" in uneven and "set apart by another orientation" in uneven
    if how != "datasets":
        assert f"'{paths[STRAY]}'" in apart and f"'{paths[STRAY]}'" in uneven
    else:
        assert "instance 4 (SOP Instance UID" in uneven
    # Warned once: the note that a reader must not miss, not the note "Set apart".
    assert warned == [uneven]


@pytest.mark.parametrize("how", ROUTES)
def test_a_gap_with_nothing_set_apart_in_it_still_says_a_file_may_be_missing(
        tmp_path, how, monkeypatch):
    paths = _write(tmp_path / "series")
    _rewrite(paths[STRAY], ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    paths[1].unlink()  # another gap, with nothing in it
    del paths[1]

    volumes, _ = _read(paths, how, monkeypatch)

    series = max(volumes, key=lambda v: v.shape[0])
    (uneven,) = [w for w in series.warnings if w.startswith("Non-uniform")]
    assert "in a gap lies" in uneven and "set apart by another orientation" in uneven
    assert "other wide gaps hold no file of this series (a file missing" in uneven


@pytest.mark.parametrize("how", ROUTES)
def test_a_slice_whose_rows_are_too_many_stays_in_place_blank(tmp_path, how,
                                                              monkeypatch):
    rows = 17
    paths = _write(tmp_path / "series")
    expected = [pydicom.dcmread(path).pixel_array for path in paths]
    _rewrite(paths[STRAY], Rows=rows)

    volumes, warned = _read(paths, how, monkeypatch)

    (volume,) = volumes
    assert volume.shape == (SLICES, 16, 16) and volume.missing_slices == [STRAY]
    # The geometry stays true: one 4 mm step, no gap and no spacing alarm.
    np.testing.assert_allclose(np.diff(volume.slice_positions_mm[:, 2]), SPACING_MM)
    assert not any(w.startswith("Non-uniform") for w in volume.warnings)
    others = [k for k in range(SLICES) if k != STRAY]
    lows = [float(volume.voxels[k].min()) for k in others]
    assert (volume.voxels[STRAY] == min(lows)).all()
    # The other slices are the phantom's, stored value - 1024 (its rescale).
    for k in others:
        np.testing.assert_array_equal(volume.voxels[k], expected[k].astype(int) - 1024)
    (note,) = [w for w in volume.warnings if w.startswith("Missing slice")]
    needed = rows * 16 * 2
    assert (f"its header does not match its pixel data: (0028,0010) Rows {rows} x "
            f"(0028,0011) Columns 16 x (0028,0100) Bits Allocated 16 needs {needed} "
            f"bytes and 512 are there") in note
    assert "copying it again will not help; ask the sender for the original" in note
    assert "cut short;" not in note and "Copy the file" not in note
    assert warned == [note]


@pytest.mark.parametrize("how", ROUTES)
def test_pixel_data_longer_than_its_header_needs_is_shown(tmp_path, how, monkeypatch):
    paths = _write(tmp_path / "series")
    ds = pydicom.dcmread(paths[STRAY])
    expected = ds.pixel_array.astype(int) - 1024
    ds.PixelData += b"\0" * 64  # two rows more than Rows says
    ds.save_as(paths[STRAY])

    (volume,), warned = _read(paths, how, monkeypatch)

    assert volume.shape == (SLICES, 16, 16) and volume.missing_slices == []
    np.testing.assert_array_equal(volume.voxels[STRAY], expected)
    assert warned == []


@pytest.mark.parametrize("how", ROUTES)
def test_a_slice_whose_rows_are_too_few_is_set_apart_not_blanked(tmp_path, how,
                                                                 monkeypatch):
    # Its pixel data holds more than its header needs: it is shown as its header
    # says, in a stack of its own, which says why; the series is not told it is
    # missing a file that is there.
    paths = _write(tmp_path / "series")
    _rewrite(paths[STRAY], Rows=15)

    volumes, _ = _read(paths, how, monkeypatch)

    series, stray = sorted(volumes, key=lambda v: -v.shape[0])
    assert series.shape == (SLICES - 1, 16, 16) and stray.shape == (1, 15, 16)
    assert stray.missing_slices == []
    (apart,) = [w for w in stray.warnings if w.startswith("Set apart")]
    assert "another size: (0028,0010) Rows x (0028,0011) Columns 15 x 16" in apart


@pytest.mark.parametrize("how", ROUTES)
def test_two_stacks_of_different_sizes_stay_apart(tmp_path, how, monkeypatch):
    # A real second stack of another size, at the same positions: nothing about
    # it is wrong, so it must not be merged into the larger one.
    paths = _write(tmp_path / "series")
    small = []
    for ds in ct_head_phantom("current", rows=8, columns=8, number_of_slices=3,
                              slice_spacing_mm=SPACING_MM).datasets:
        ds.SeriesInstanceUID = pydicom.dcmread(paths[0]).SeriesInstanceUID
        path = tmp_path / "series" / f"small{ds.InstanceNumber:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        small.append(path)

    volumes, _ = _read(paths + small, how, monkeypatch)

    shapes = sorted(volume.shape for volume in volumes)
    assert shapes == [(3, 8, 8), (SLICES, 16, 16)]
    assert all(volume.missing_slices == [] for volume in volumes)


@pytest.mark.parametrize("how", ROUTES)
def test_a_slice_cut_short_still_says_cut_short(tmp_path, how, monkeypatch):
    paths = _write(tmp_path / "series")
    paths[STRAY].write_bytes(paths[STRAY].read_bytes()[:-100])

    volumes, warned = _read(paths, how, monkeypatch)

    (volume,) = volumes
    assert volume.missing_slices == [STRAY]
    (note,) = [w for w in volume.warnings if w.startswith("Missing slice")]
    assert "the file is cut short: its pixel data needs 512 bytes and 412 are " in note
    # What to do, said once: in the file's reason.
    assert note.count("copy it again from its source") == 1
    assert "Copy the file(s) again" not in note
    assert MISFIT_WORDS not in note
    assert warned == [note]


MISFIT_WORDS = "its header does not match its pixel data"


@pytest.mark.parametrize("how", ["fast", "pydicom"])
def test_a_garbled_data_set_is_named_damaged_without_pydicom_warning(tmp_path, how,
                                                                    monkeypatch):
    paths = _write(tmp_path / "series")
    data = bytearray(paths[STRAY].read_bytes())
    start = 132 + 12 + int.from_bytes(data[140:144], "little")
    data[start:start + 40] = b"\xff\x13" * 20
    paths[STRAY].write_bytes(bytes(data))

    (volume,), warned = _read(paths, how, monkeypatch)

    left_out = next(w for w in warned if w.startswith("left out 1 unreadable"))
    assert f"'{paths[STRAY]}': its data set is damaged: the File Meta" in left_out
    assert "(pydicom then reads them as implicit VR" in left_out
    assert "probably cut short" not in left_out
    # pydicom's own warning is folded into that message, not passed on.
    assert not any("Expected explicit VR" in w for w in warned)
    assert volume.shape[0] == SLICES - 1


def test_a_file_cut_inside_its_header_after_its_sop_class_is_named(tmp_path,
                                                                   monkeypatch):
    # pydicom reads such a file without complaint, and it holds no (0028,0010)
    # Rows: it used to be skipped as "not an image", silently.
    paths = _write(tmp_path / "series")
    paths[STRAY].write_bytes(paths[STRAY].read_bytes()[:500])

    (volume,), warned = _read(paths, "fast", monkeypatch)

    (left_out,) = [w for w in warned if w.startswith("left out")]
    assert f"'{paths[STRAY]}': the file is cut short: it ends at byte 500" in left_out
    assert left_out in volume.warnings


@pytest.mark.parametrize("how", ["fast", "pydicom"])
def test_an_image_garbled_after_its_sop_class_is_named_damaged(tmp_path, how,
                                                              monkeypatch):
    # pydicom reads past the garbage without a word and finds no Rows: the file
    # used to be skipped as "not an image", told nowhere but the debug log.
    paths = _write(tmp_path / "series")
    data = bytearray(paths[STRAY].read_bytes())
    at = data.index(b"Test^Case")
    data[at - 8:at + 32] = b"\xff\x13" * 20
    paths[STRAY].write_bytes(bytes(data))

    (volume,), warned = _read(paths, how, monkeypatch)

    left_out = next(w for w in warned if w.startswith("left out 1 unreadable"))
    assert f"'{paths[STRAY]}': its data set is damaged" in left_out
    assert volume.shape[0] == SLICES - 1
