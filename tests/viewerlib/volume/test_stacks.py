"""read_series keeps a misdescribed slice in place and says why a stack is apart.

The series is the CT head phantom (Test^Case, synthetic: 16 x 16, 8 slices 4 mm
apart, written foot to head) in a folder, with slice STRAY broken one way:

- another orientation: it forms a stack of its own, which says why, and the gap it
  leaves in the series is put down to it, not to "a file missing";
- (0028,0010) Rows wrong, larger or smaller than its pixel data: it stays in its
  place, blank and named, as a slice cut short does, with a message that says the
  header is wrong (copying will not help), not that the file is cut short.

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
@pytest.mark.parametrize("rows", [17, 15], ids=["rows-too-large", "rows-too-small"])
def test_a_slice_whose_rows_are_wrong_stays_in_place_blank(tmp_path, how, rows,
                                                           monkeypatch):
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
def test_a_slice_cut_short_still_says_cut_short(tmp_path, how, monkeypatch):
    paths = _write(tmp_path / "series")
    paths[STRAY].write_bytes(paths[STRAY].read_bytes()[:-100])

    volumes, warned = _read(paths, how, monkeypatch)

    (volume,) = volumes
    assert volume.missing_slices == [STRAY]
    (note,) = [w for w in volume.warnings if w.startswith("Missing slice")]
    assert "the file is cut short: its pixel data needs 512 bytes and 412 are " in note
    assert "Copy the file(s) again from their source" in note
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
