"""A folder with a broken or stray file: one cause, one name, told once, every way.

The folder holds the CT head phantom (Test^Case, synthetic: 16 x 16, 8 slices 4 mm
apart) with slice STRAY's file broken one way. ``read_series(folder)``,
``open_volume(folder)`` and ``open(folder)`` must give the same cause for it and name
the file by its path in the folder (never the folders above it, nor an instance
UID); and each problem reaches the reader once:
``read_series`` and ``open_volume`` return a volume nothing shows yet, so they warn;
``open`` shows it on the viewer's alert line, and does not warn besides.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pydicom
import pytest

import viewerlib
from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.sources.local import FolderSource
from viewerlib.volume.diagnosis import NOT_DICOM
from viewerlib.volume.volume import read_series

SLICES = 8
STRAY = 3  # an inner slice
NAME = f"{STRAY + 1:03d}.dcm"


def _write(folder: Path) -> Path:
    folder.mkdir()
    for ds in ct_head_phantom("current", rows=16, columns=16, number_of_slices=SLICES,
                              slice_spacing_mm=4.0).datasets:
        ds.save_as(folder / f"{ds.InstanceNumber:03d}.dcm", enforce_file_format=True)
    return folder / NAME


def _another_orientation(path: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.save_as(path)


def _wrong_rows(path: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.Rows = 17
    ds.save_as(path)


def _garbled(path: Path) -> None:
    data = bytearray(path.read_bytes())
    start = 132 + 12 + int.from_bytes(data[140:144], "little")
    data[start:start + 40] = b"\xff\x13" * 20
    path.write_bytes(bytes(data))


def _cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


ORIENTATION = ("another orientation: (0020,0037) Image Orientation (Patient) "
               "0\\1\\0\\0\\0\\-1 (sagittal), not 1\\0\\0\\0\\1\\0 (axial)")
WRONG_ROWS = (
    "its header does not match its pixel data: (0028,0010) Rows 17 x (0028,0011) "
    "Columns 16 x (0028,0100) Bits Allocated 16 needs 544 bytes and 512 are there, "
    "the whole (7FE0,0010) Pixel Data. The file is not cut short: it was written "
    "inconsistent, and every copy of it is the same, so copying it again will not "
    "help; ask the sender for the original image")
GARBLED = (
    "its data set is damaged: the File Meta (group 0002) is whole, but the bytes "
    "after it are no DICOM element of its transfer syntax, Explicit VR Little "
    "Endian: the first, at byte 350, has the bytes ff 13 where the VR (PS3.5 6.2) "
    "of (13FF,13FF) belongs (pydicom then reads them as implicit VR, and finds no "
    "element it can use). The bytes are garbled, not cut short: copy the file "
    "again from its source; if that copy is damaged too, ask the sender for the "
    "file again")
CUT_SHORT = ("the file is cut short: its pixel data needs 512 bytes and 412 are "
             "there; copy it again from its source")
UNEVEN = "Uneven slice spacing (4.000 to 8.000 mm)"
# The stray slice and the gap it leaves in the stack shown: one file, one alert.
LEFT_OUT_IN_GAP = ("1 file(s) of another stack not shown, where the spacing is "
                   "uneven (4.000 to 8.000 mm)")
BLANK = f"1 of {SLICES} slices not decoded (blank)"
# How the file is broken -> the cause every route names, and the alert lines open
# shows above the image.
CASES = {
    "another orientation": (_another_orientation, ORIENTATION, [LEFT_OUT_IN_GAP]),
    "wrong rows": (_wrong_rows, WRONG_ROWS, [BLANK]),
    "garbled data set": (_garbled, GARBLED,
                         ["1 file(s) of the folder unreadable", UNEVEN]),
    "cut short": (_cut_short, CUT_SHORT, [BLANK]),
}


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize(("damage", "cause", "alerts"), CASES.values(), ids=CASES)
def test_every_way_of_reading_a_folder_names_one_cause(tmp_path, damage, cause,
                                                       alerts):
    broken = _write(tmp_path / "cd")
    damage(broken)

    volumes, by_read_series = _caught(lambda: read_series(broken.parent))
    volume, by_open_volume = _caught(
        lambda: viewerlib.viewer.open_volume(broken.parent))
    viewer, by_open = _caught(lambda: viewerlib.open(broken.parent))

    # One cause, whichever way the folder is read.
    for notes in ([n for v in volumes for n in v.warnings], volume.warnings,
                  viewer.volume.warnings):
        assert any(cause in note for note in notes), notes
    # Every route names the file by its path in the folder: no folder above it, no
    # instance UID.
    for notes in ([n for v in volumes for n in v.warnings], volume.warnings,
                  viewer.volume.warnings):
        named = [note for note in notes if cause in note]
        assert all(re.search(rf"'?{NAME}'?[ :()]", note) for note in named), named
        assert not any(str(tmp_path) in note or "SOP Instance UID" in note
                       for note in named)
    # Told once: read_series and open_volume warn, each problem one time...
    for warned, notes in ((by_read_series, [n for v in volumes for n in v.warnings]),
                          (by_open_volume, volume.warnings)):
        assert warned and len(warned) == len(set(warned))
        assert set(warned) <= set(notes)
    # ... open warns not at all: its viewer's alert line shows each problem.
    assert by_open == []
    assert [row["text"] for row in viewer.alerts] == alerts


def test_open_names_the_stacks_it_leaves_out_and_what_to_do(tmp_path):
    broken = _write(tmp_path / "cd")
    _another_orientation(broken)

    volume, warned = _caught(lambda: viewerlib.viewer.open_volume(broken.parent))

    # One warning for the one stray file: the gap it leaves in the stack shown is
    # told with it, not put down to a missing file, nor told again.
    (left_out,) = warned
    assert left_out == (
        "Not shown: 1 file(s) in 1 other stack(s) of this series. Shown is the "
        f"largest stack, {SLICES - 1} file(s); left out: '{NAME}' (another "
        "orientation: (0020,0037) Image Orientation (Patient) 0\\1\\0\\0\\0\\-1 "
        "(sagittal), not 1\\0\\0\\0\\1\\0 (axial)). Where it lies, the stack "
        "shown has uneven slice spacing (4.000 to 8.000 mm): measurements and MPR "
        "use each slice's true position (slice_positions_mm), and the affine's mean "
        "step is only an approximation. To see a stack left out, "
        "viewerlib.read_series(folder) returns each stack as a volume, and "
        "viewerlib.open(volume) shows one")
    assert left_out in volume.warnings
    assert not any(w.startswith("Non-uniform") for w in volume.warnings)
    assert not volume.affine_is_exact
    # read_series gives every stack, the stray one saying why it is apart; the
    # gap of the largest is put down to it there.
    volumes = _caught(lambda: read_series(broken.parent))[0]
    stray, series = sorted(volumes, key=lambda v: v.shape[0])
    assert stray.shape[0] == 1
    assert any(w.startswith("Set apart") for w in stray.warnings)
    (uneven,) = [w for w in series.warnings if w.startswith("Non-uniform")]
    assert f"in a gap lies '{NAME}' of this series, set apart by another" in uneven


def test_a_gap_the_stray_file_does_not_fill_is_told_apart(tmp_path):
    broken = _write(tmp_path / "cd")
    _another_orientation(broken)
    (broken.parent / "007.dcm").unlink()  # a second gap, with nothing in it

    viewer, warned = _caught(lambda: viewerlib.open(broken.parent))

    # A file may be missing besides: the spacing is told as a problem of its own.
    assert warned == []
    assert [row["text"] for row in viewer.alerts] == [
        "1 file(s) of another stack not shown", UNEVEN]
    (uneven,) = [w for w in viewer.volume.warnings if w.startswith("Non-uniform")]
    assert "other wide gaps hold no file of this series (a file missing" in uneven


def test_a_series_of_one_stack_has_no_note_of_stacks(tmp_path):
    _write(tmp_path / "cd")

    volume = viewerlib.viewer.open_volume(tmp_path / "cd")  # warnings fail here

    assert volume.shape[0] == SLICES
    assert not any(w.startswith(("Not shown", "Set apart")) for w in volume.warnings)


def test_stacks_alike_in_size_say_which_one_is_shown(tmp_path):
    # A second echo of every slice: two stacks of 8, kept apart by Echo Numbers.
    folder = tmp_path / "cd"
    folder.mkdir()
    for echo in (1, 2):
        for ds in ct_head_phantom("current", rows=16, columns=16,
                                  number_of_slices=SLICES).datasets:
            ds.EchoNumbers = echo
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.InstanceNumber += (echo - 1) * SLICES
            ds.save_as(folder / f"e{echo}-{ds.InstanceNumber:03d}.dcm",
                       enforce_file_format=True)

    volume, warned = _caught(lambda: viewerlib.viewer.open_volume(folder))

    (left_out,) = warned
    assert left_out.startswith(
        f"Not shown: {SLICES} file(s) in 1 other stack(s) of this series. Shown is "
        f"the first of 2 stacks of {SLICES} slices, {SLICES} file(s); left out: "
        "'e2-009.dcm', 'e2-010.dcm', 'e2-011.dcm', 'e2-012.dcm', 'e2-013.dcm' and 3 "
        "more (another echo: (0018,0086) Echo Numbers 2, not 1)")
    assert volume.shape[0] == SLICES and left_out in volume.warnings


def _write_cd(folder: Path, datasets) -> None:
    """Write `datasets` as a CD: a DICOMDIR and PT*/ST*/SE*/IM* files."""
    from pydicom.fileset import FileSet

    files = FileSet()
    for ds in datasets:
        files.add(ds)
    files.write(folder)
    files._stage["t"].cleanup()  # pydicom's staging folder, removed now


def test_on_a_cd_the_stacks_left_out_are_read_by_read_series_of_the_folder(tmp_path):
    # read_series(folder) reads the files a DICOMDIR references, as open(folder)
    # does: the note sends the reader there, and it gives every stack.
    datasets = ct_head_phantom("current", rows=16, columns=16, number_of_slices=SLICES,
                               slice_spacing_mm=4.0).datasets
    datasets[STRAY].ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    cd = tmp_path / "cd"
    _write_cd(cd, datasets)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume = viewerlib.viewer.open_volume(cd)
        volumes = read_series(cd)

    (note,) = [w for w in volume.warnings if w.startswith("Not shown")]
    assert "viewerlib.read_series(folder) returns each stack" in note, note
    assert re.search(r"'PT\d+/ST\d+/SE\d+/IM\d+'", note), note
    assert sorted(v.shape[0] for v in volumes) == [1, SLICES - 1]


@pytest.mark.parametrize("given", ["folder", "DICOMDIR", "a sub-folder"])
def test_read_series_of_a_cd_reads_the_images(tmp_path, given):
    cd = tmp_path / "cd"
    _write_cd(cd, ct_head_phantom("current", rows=16, columns=16,
                                  number_of_slices=SLICES).datasets)
    path = {"folder": cd, "DICOMDIR": cd / "DICOMDIR",
            "a sub-folder": next(cd.glob("PT*"))}[given]

    (volume,) = read_series(path)  # warnings fail here

    assert volume.shape == (SLICES, 16, 16)
    assert volume.warnings == []


def test_read_series_of_a_cd_names_a_file_its_dicomdir_lists_but_lacks(tmp_path):
    cd = tmp_path / "cd"
    _write_cd(cd, ct_head_phantom("current", rows=16, columns=16,
                                  number_of_slices=SLICES).datasets)
    gone = sorted(cd.rglob("IM*"))[-1]
    gone.unlink()

    with pytest.warns(UserWarning, match="left out 1 unreadable") as warned:
        (volume,) = read_series(cd)

    (message,) = [str(w.message) for w in warned]
    assert f"'{gone.relative_to(cd).as_posix()}': no such file" in message
    assert "DICOMDIR" not in message
    assert volume.shape[0] == SLICES - 1


def test_a_dicomdir_among_the_files_is_not_named_as_damaged(tmp_path):
    cd = tmp_path / "cd"
    _write_cd(cd, ct_head_phantom("current", rows=16, columns=16,
                                  number_of_slices=SLICES).datasets)
    files = sorted(path for path in cd.rglob("*") if path.is_file())
    assert cd / "DICOMDIR" in files

    (volume,) = read_series(files)  # warnings fail here

    assert volume.shape[0] == SLICES and volume.warnings == []


def test_a_dicomdir_alone_in_a_list_stands_for_its_images(tmp_path):
    cd = tmp_path / "cd"
    _write_cd(cd, ct_head_phantom("current", rows=16, columns=16,
                                  number_of_slices=SLICES).datasets)

    (volume,) = read_series([cd / "DICOMDIR"])  # warnings fail here

    assert volume.shape[0] == SLICES


def test_a_compressed_file_cut_inside_its_pixel_data_is_named_cut_short(tmp_path):
    # pydicom reads such a file as no data set at all: it was blamed on the
    # bulk data, or on the file having been overwritten since it was indexed.
    broken = _write(tmp_path / "cd")
    for path in sorted(broken.parent.iterdir()):
        ds = pydicom.dcmread(path)
        ds.compress(pydicom.uid.RLELossless)
        ds.save_as(path, enforce_file_format=True)
    broken.write_bytes(broken.read_bytes()[:-60])

    volumes, _ = _caught(lambda: read_series(broken.parent))
    volume, _ = _caught(lambda: viewerlib.viewer.open_volume(broken.parent))

    (series,) = volumes
    assert series.missing_slices == [STRAY]  # blank in its place
    (note,) = [w for w in series.warnings if w.startswith("Missing slice")]
    assert ("the file is cut short: it ends at byte" in note
            and "inside its compressed (7FE0,0010) Pixel Data" in note), note
    assert "bulk data" not in note
    (arrived,) = [w for w in volume.warnings if "could not be read" in w]
    assert f"{NAME} (cut short or damaged in its pixel data" in arrived, arrived
    assert "overwritten" not in arrived


# What a CD carries beside its images: no DICOM, and not meant to be.
COMPANIONS = {
    "README.TXT": b"Images of Test^Case. Run VIEWER.EXE to see them.\r\n",
    "AUTORUN.INF": b"[autorun]\r\nopen=VIEWER.EXE\r\n",
    "INDEX.HTM": b"<html><body>Test^Case</body></html>",
    "VIEWER.EXE": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(64),
    "MANUAL.PDF": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
}
SKIPPED = ("skipped 5 file(s) that are not DICOM (no 'DICM' marker, no DICOM "
           "element): a CD's README, autorun or viewer files, say; no image is "
           "missing for them")


def _every_route(folder: Path, caplog) -> dict[str, tuple[list[str], list[str]]]:
    """Per route: the notes a reader may see (warned or on screen), and the log."""
    seen = {}
    for route in ("read_series", "open_volume", "open", "open_mpr", "open_3d"):
        caplog.clear()
        with caplog.at_level("INFO", logger="viewerlib"):
            call = (read_series if route == "read_series" else
                    getattr(viewerlib.viewer, route))
            result, warned = _caught(lambda: call(folder))
        volume = (result[0] if route == "read_series" else result.volume
                  if route != "open_volume" else result)
        shown = [row["detail"] for row in getattr(result, "alerts", [])]
        seen[route] = (warned + shown + volume.warnings,
                       [r.getMessage() for r in caplog.records])
    return seen


def test_files_beside_the_images_that_are_no_dicom_are_skipped_quietly(tmp_path,
                                                                       caplog):
    broken = _write(tmp_path / "cd")
    for name, data in COMPANIONS.items():
        (broken.parent / name).write_bytes(data)

    for route, (notes, logged) in _every_route(broken.parent, caplog).items():
        # No alert, no warning, no note: nothing is missing from the series...
        assert notes == [], route
        # ... and one line in the log, alike on every route, without the folder.
        assert logged.count(SKIPPED) == 1, (route, logged)
        assert not any(str(tmp_path) in line for line in logged)
    assert FolderSource(broken.parent).not_dicom == sorted(
        str(broken.parent / name) for name in COMPANIONS)


def test_a_file_named_dicom_that_holds_none_is_named_alike_on_every_route(tmp_path,
                                                                          caplog):
    # A download that failed, say: its name says it should be an image.
    broken = _write(tmp_path / "cd")
    (broken.parent / "009.dcm").write_text("<html>502 Bad Gateway</html>")

    for route, (notes, _) in _every_route(broken.parent, caplog).items():
        named = [note for note in notes if f"009.dcm: {NOT_DICOM}" in note
                 or f"'009.dcm': {NOT_DICOM}" in note]
        assert named, (route, notes)
        assert not any(str(tmp_path) in note for note in named)


@pytest.mark.parametrize("how", ["without preamble", "cut in its preamble", "empty"])
def test_dicom_without_preamble_is_read_and_a_file_cut_in_its_preamble_is_named(
        tmp_path, how):
    broken = _write(tmp_path / "cd")
    whole = broken.read_bytes()
    if how == "without preamble":
        # PS3.10 7.1 asks for one; some writers leave it out (and the File Meta).
        ds = pydicom.dcmread(broken)
        del ds.file_meta
        ds.preamble = None
        broken.unlink()
        ds.save_as(broken.with_suffix(""), enforce_file_format=False,
                   implicit_vr=True, little_endian=True)
        assert broken.with_suffix("").read_bytes()[:4] == b"\x08\x00\x05\x00"
    else:
        broken.write_bytes(whole[:100] if how != "empty" else b"")

    volumes, warned = _caught(lambda: read_series(broken.parent))

    if how == "without preamble":
        assert volumes[0].shape[0] == SLICES and warned == []
    else:
        # Lost in copying: no README, but a slice of the series gone.
        assert volumes[0].shape[0] == SLICES - 1
        assert any(w.startswith("left out 1 unreadable input(s): '004.dcm'")
                   for w in warned), warned


def test_stacks_apart_for_one_reason_give_it_once(tmp_path):
    broken = _write(tmp_path / "cd")
    for path in sorted(broken.parent.iterdir())[1::3]:
        _another_orientation(path)

    volume, _ = _caught(lambda: viewerlib.viewer.open_volume(broken.parent))

    (note,) = [w for w in volume.warnings if w.startswith("Not shown")]
    assert "in 3 other stack(s)" in note and note.count("another orientation") == 1


def test_open_mpr_and_open_3d_tell_a_slice_not_decoded_once(tmp_path):
    broken = _write(tmp_path / "cd")
    _cut_short(broken)
    (broken.parent / "007.dcm").unlink()  # uneven gaps: both viewers resample

    mpr, by_mpr = _caught(lambda: viewerlib.open_mpr(broken.parent))
    rendering, by_3d = _caught(lambda: viewerlib.open_3d(broken.parent))

    # The MPR's line above the planes names the blank slice and shows the
    # uneven spacing too: nothing is warned besides.
    assert mpr.warning.startswith(f"Im 4/{SLICES - 1} could not be decoded")
    assert "Uneven slice spacing" in mpr.warning.splitlines()[1]
    assert by_mpr == []
    # The 3D viewer has no such line: the slice is warned once, not again for
    # the slices resampled from it (its note stays in the volume's warnings).
    assert [w.split(":")[0] for w in by_3d] == [
        "Non-uniform slice spacing", f"Missing slice(s) 4 of {SLICES - 1} (counted "
        "from 1, as the viewer's Im counter)"]
    assert CUT_SHORT in by_3d[1]
    for viewer in (mpr, rendering):
        assert any(w.startswith("Missing slice(s) after resampling")
                   for w in viewer.volume.warnings)


def test_an_empty_file_is_named_empty_on_every_route(tmp_path) -> None:
    # A copy that failed leaves 0 bytes: the same words whichever way it is read.
    ct_head_phantom("current", rows=16, columns=16, number_of_slices=4).save(tmp_path)
    (tmp_path / "IM0009").write_bytes(b"")
    empty = "the file is empty (0 bytes): copy it again from its source"

    assert FolderSource(tmp_path).unreadable == [(str(tmp_path / "IM0009"), empty)]
    viewer = viewerlib.open(tmp_path)
    (alert,) = viewer.alerts
    assert f"IM0009: {empty}" in alert["detail"]
    with pytest.warns(UserWarning) as told:
        read_series(tmp_path)
    assert any(f"'IM0009': not a DICOM file: {empty}" in str(w.message) for w in told)


def test_read_series_of_a_folder_whose_dicomdir_is_garbled_reads_every_file(tmp_path):
    cd = tmp_path / "cd"
    _write_cd(cd, ct_head_phantom("current", rows=16, columns=16,
                                  number_of_slices=SLICES).datasets)
    (cd / "DICOMDIR").write_bytes(b"\0" * 200)

    with pytest.warns(UserWarning, match="'DICOMDIR' could not be read .*every file"):
        (volume,) = read_series(cd)

    assert volume.shape[0] == SLICES and volume.warnings == []


# open_with_report and compare take a folder as open does; no archives configured,
# so a folder that fell through to them would fail.
@pytest.fixture
def no_archives(monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTBOX_ARCHIVES", str(tmp_path / "no-archives.toml"))


def test_open_with_report_of_a_folder_shows_its_study(tmp_path, no_archives):
    _write(tmp_path / "cd")

    shown = viewerlib.open_with_report(tmp_path / "cd")

    assert shown.images.volume.shape[0] == SLICES
    assert shown.report is None and shown.reports == []


def test_open_with_report_of_a_folder_names_a_file_it_could_not_read(
        tmp_path, no_archives):
    _write(tmp_path / "cd")
    (tmp_path / "cd" / "extra.dcm").write_bytes(b"\0" * 200)

    shown = viewerlib.open_with_report(str(tmp_path / "cd"))

    assert any("could not be read" in w for w in shown.images.volume.warnings)


@pytest.mark.parametrize(("given", "error", "match"), [
    (lambda folder: folder / NAME, ValueError, "is one file, and a study's report"),
    (lambda folder: read_series(folder)[0], TypeError, "not a Volume, which carries"),
], ids=["file", "volume"])
def test_open_with_report_of_what_holds_no_report_raises(tmp_path, no_archives,
                                                         given, error, match):
    _write(tmp_path / "cd")
    with pytest.raises(error, match=match):
        viewerlib.open_with_report(given(tmp_path / "cd"))


def test_compare_of_two_folders_reads_each(tmp_path, no_archives):
    for kind in ("current", "prior"):
        ct_head_phantom(kind, rows=16, columns=16, number_of_slices=SLICES).save(
            tmp_path / kind)

    pair = viewerlib.compare(tmp_path / "current", str(tmp_path / "prior"))

    assert pair.current.volume.shape[0] == pair.prior.volume.shape[0] == SLICES
    assert pair.current.sync_group == pair.prior.sync_group != ""


def test_compare_of_a_folder_without_a_prior_raises(tmp_path, no_archives):
    _write(tmp_path / "cd")
    with pytest.raises(ValueError, match=r"give the prior too, e\.g\. compare\("):
        viewerlib.compare(tmp_path / "cd")
