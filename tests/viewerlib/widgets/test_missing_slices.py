"""A slice that could not be decoded is named to the page of every viewer showing it.

The series is the CT head phantom (32 x 32, 12 slices 4 mm apart) in a folder, with
the pixel data of one inner slice cut short, as ``tests/viewerlib/volume/
test_bad_slices.py`` cuts it (the file's end, or its RLE fragment): the volume keeps
the slice in place, blank, and names it in ``missing_slices``. The stack viewer,
both panes of a comparison and the MPR viewer must carry that to the page, and the
stack viewer must refuse to measure on it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import RLELossless

import viewerlib
from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume.volume import Volume, read_series
from viewerlib.widgets.mpr import MPRViewer
from viewerlib.widgets.stack import StackViewer

SLICES = 12
BAD = 5  # an inner slice: a gap, not a shorter stack


def _cut_series(folder: Path, compress: bool = False) -> Path:
    """Write the phantom, foot to head, and cut slice BAD's pixel data short.

    Uncompressed, the file itself ends early; compressed (RLE Lossless), its one
    fragment does, inside a file that is whole, as a damaged archive copy would.
    """
    folder.mkdir()
    for ds in ct_head_phantom("current", rows=32, columns=32,
                              number_of_slices=SLICES).datasets:
        if compress:
            ds.compress(RLELossless)
        if compress and ds.InstanceNumber == BAD + 1:
            fragment = next(generate_frames(ds.PixelData, number_of_frames=1))
            ds.PixelData = encapsulate([fragment[: len(fragment) // 3]])
        ds.save_as(folder / f"{ds.InstanceNumber:03d}.dcm", enforce_file_format=True)
    if not compress:
        bad = sorted(folder.iterdir())[BAD]
        bad.write_bytes(bad.read_bytes()[:-100])
    return folder


@pytest.fixture
def cut_folder(tmp_path: Path) -> Path:
    return _cut_series(tmp_path / "series")


@pytest.fixture
def cut_volume(cut_folder: Path) -> Volume:
    with pytest.warns(UserWarning, match="Missing slice"):
        (volume,) = read_series(cut_folder, workers=1)
    assert volume.missing_slices == [BAD]
    return volume


def _sent(viewer: StackViewer) -> list[dict]:
    messages: list[dict] = []
    viewer.send = lambda content, buffers=None: messages.append(content)
    return messages


@pytest.mark.parametrize("compress", [True, False], ids=["rle", "native"])
def test_open_names_the_missing_slice_to_the_page(tmp_path, compress) -> None:
    folder = _cut_series(tmp_path / "series", compress=compress)

    # Told once, on the page: no UserWarning besides (warnings fail this run).
    viewer = viewerlib.open(folder)

    assert viewer.missing_slices == [BAD]
    assert viewer.volume.missing_slices == [BAD]
    assert [row["text"] for row in viewer.alerts] == [
        f"1 of {SLICES} slices not decoded (blank)"]


def test_measuring_on_a_missing_slice_raises(cut_volume) -> None:
    viewer = StackViewer.from_volume(cut_volume)

    with pytest.raises(ValueError, match=rf"Im {BAD + 1}/{SLICES} could not be dec"):
        viewer.measure("distance", BAD, [(4, 4), (4, 20)])

    assert viewer.measurements == []
    # A decoded slice is measured as before.
    assert viewer.measure("distance", BAD + 1, [(4, 4), (4, 20)])["unit"] == "mm"


def test_a_measurement_drawn_on_a_missing_slice_is_refused_with_a_reason(
    cut_volume,
) -> None:
    viewer = StackViewer.from_volume(cut_volume)
    sent = _sent(viewer)

    viewer._handle_message(viewer, {"type": "measure", "tool": "region",
                                    "slice_index": BAD, "points": [[4, 4], [20, 20]]},
                           [])

    assert viewer.measurements == []
    (refusal,) = sent
    assert refusal["type"] == "refused" and "could not be decoded" in refusal["text"]


def test_missing_slices_are_clamped_to_the_stack() -> None:
    viewer = StackViewer(np.zeros((3, 4, 4), np.int16), (1.0, 1.0, 1.0),
                         missing_slices=[2, 7, 2, -1, 0])

    assert viewer.missing_slices == [0, 2]


def test_both_panes_of_a_comparison_name_their_missing_slices(cut_volume) -> None:
    prior = read_series(ct_head_phantom("prior", rows=32, columns=32,
                                        number_of_slices=SLICES).datasets)[0]

    pair = viewerlib.compare(cut_volume, prior)

    assert pair.current.missing_slices == [BAD]
    assert pair.prior.missing_slices == []


def test_the_mpr_warns_and_places_each_missing_slice(cut_volume) -> None:
    viewer = MPRViewer(cut_volume)

    assert viewer.missing_slices == [BAD]
    assert viewer.warning.startswith(f"Im {BAD + 1}/{SLICES} could not be decoded: "
                                     "it is blank in every plane")
    (plane,) = viewer.missing_planes
    assert plane["label"] == f"Im {BAD + 1}/{SLICES}"
    np.testing.assert_allclose(plane["point"], cut_volume.slice_positions_mm[BAD])
    np.testing.assert_allclose(plane["normal"], [0.0, 0.0, 1.0], atol=1e-9)
    assert plane["half_mm"] == pytest.approx(cut_volume.spacing_mm[0] / 2)


def test_a_whole_volume_shows_no_warning(cut_volume) -> None:
    whole = read_series(ct_head_phantom("current", rows=32, columns=32,
                                        number_of_slices=SLICES).datasets)[0]

    assert StackViewer.from_volume(whole).missing_slices == []
    mpr = MPRViewer(whole)
    assert mpr.warning == "" and mpr.missing_planes == []


def test_open_mpr_on_a_folder_missing_a_block_shows_the_hole(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    ct_head_phantom("current", rows=32, columns=32,
                    number_of_slices=SLICES).save(folder)
    for path in sorted(folder.iterdir())[4:8]:  # 4 files gone: a 20 mm hole
        path.unlink()

    with pytest.warns(UserWarning) as caught:
        viewerlib.open_3d(folder)
    # The 3D viewer has no line: uneven spacing, then the hole, once each.
    assert [str(w.message).split(":")[0] for w in caught] == [
        "Non-uniform slice spacing", "Gap(s) in the series"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # each problem on the line, no warning
        mpr = viewerlib.open_mpr(folder)

    assert mpr.volume.missing_slices == [4, 5, 6, 7]
    assert (mpr.volume.voxels[4:8] == mpr.volume.voxels.min()).all()
    assert mpr.warning.splitlines()[0] == (
        "No images in 1 gap(s) of up to 20.0 mm: 4 slices blank")
    assert [plane["label"] for plane in mpr.missing_planes] == [
        "Gap of 20.0 mm after Im 4/8"]
