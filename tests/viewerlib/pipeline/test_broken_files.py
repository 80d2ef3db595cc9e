"""Broken files get an error that names the file, what is wrong and what to do."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pydicom.data
import pytest

import viewerlib
from viewerlib.errors import DecodingError
from viewerlib.pipeline.instance import NotAnImageError
from viewerlib.volume.volume import volume_alerts

CT = Path(pydicom.data.get_testdata_file("CT_small.dcm"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = CT.read_bytes()
    shutil.copy(CT, tmp_path / "good.dcm")
    (tmp_path / "half.dcm").write_bytes(data[: len(data) // 2])
    (tmp_path / "cut-early.dcm").write_bytes(data[:300])
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "photo.dcm").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    (tmp_path / "readme.dcm").write_text("not an image")
    return tmp_path


@pytest.mark.parametrize(("name", "error", "says"), [
    ("half.dcm", DecodingError, "cut short: its pixel data needs 32768 bytes"),
    ("cut-early.dcm", DecodingError, "probably cut short"),
    ("empty.dcm", NotAnImageError, "the file is empty"),
    ("photo.dcm", NotAnImageError, "it is a JPEG image, not DICOM"),
    ("readme.dcm", NotAnImageError, "is not a DICOM file"),
], ids=["half", "cut-early", "empty", "jpeg", "text"])
def test_read_instance_says_what_is_wrong_raises(folder: Path, name: str,
                                                 error: type, says: str) -> None:
    with pytest.raises(error, match=says) as caught:
        viewerlib.read_instance(folder / name).display_frame()
    assert name in str(caught.value)
    if error is DecodingError:
        # CT_small.dcm is Explicit VR Little Endian: the message names it.
        assert "'Explicit VR Little Endian' (1.2.840.10008.1.2.1)" in str(caught.value)
    # Named errors stay ValueErrors where they were, for callers that catch those.
    assert error is DecodingError or isinstance(caught.value, ValueError)


def test_read_series_keeps_the_good_files_and_names_the_bad(folder: Path) -> None:
    with pytest.warns(UserWarning) as caught:
        volumes = viewerlib.read_series(sorted(folder.iterdir()))
    assert len(volumes) == 1 and volumes[0].voxels.shape[0] == 1
    message = next(str(w.message) for w in caught if "left out" in str(w.message))
    for name in ("cut-early.dcm", "empty.dcm", "photo.dcm", "readme.dcm"):
        assert name in message
    assert any("left out 4" in w for w in volumes[0].warnings)
    # half.dcm has a whole header, so it is decoded like any slice (a stack of
    # its own: it lies where good.dcm does) and its shortfall is named.
    cut = [str(w.message) for w in caught if "half.dcm" in str(w.message)]
    assert cut and "pixel data needs 32768 bytes and 13303 are there" in cut[0]
    assert cut[0] in volumes[0].warnings
    assert "1 image(s) of another stack not decoded" in [
        alert.text for alert in volume_alerts(volumes[0])]


def test_read_series_of_a_folder_reads_the_files_in_it(folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volumes = viewerlib.read_series(folder)
    assert len(volumes) == 1


def test_read_series_with_only_bad_files_raises_naming_them(folder: Path) -> None:
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="half.dcm"):
        viewerlib.read_series([folder / "half.dcm", folder / "empty.dcm"])


JPEG_LS = Path(pydicom.data.get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))


def _with_codestream(path: Path, change) -> pydicom.Dataset:
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(path)
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    ds.PixelData = encapsulate([bytes(change(frame))])
    return ds


def _zero_second_half(frame: bytearray) -> bytearray:
    half = len(frame) // 2
    frame[half:] = bytes(len(frame) - half)
    return frame


def test_a_jpeg_ls_frame_with_its_end_zeroed_warns(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.dcm"
    _with_codestream(JPEG_LS, _zero_second_half).save_as(damaged)
    instance = viewerlib.read_instance(damaged)
    with pytest.warns(UserWarning, match="End Of Image marker") as caught:
        instance.modality_frame()
    # T.87 / T.81 B.2.1: a codestream ends in FFD9; here its second half is zeros.
    from pydicom.encaps import generate_frames

    original = pydicom.dcmread(JPEG_LS).PixelData
    frame_length = len(next(generate_frames(original, number_of_frames=1)))
    message = str(caught[0].message)
    assert str(damaged) in message and "copy the file again" in message
    assert f"last {frame_length - frame_length // 2} bytes are zero" in message
    assert any("End Of Image" in w for w in instance.warnings)
    # Once per instance: a second look at the frame adds nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        instance.display_frame()
    assert len(instance.warnings) == 1


def test_an_intact_jpeg_ls_frame_and_its_even_padding_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        instance = viewerlib.read_instance(JPEG_LS)
        instance.modality_frame()
        # PS3.5 A.4: a fragment of odd length gets one trailing NUL; some
        # encoders pad with FF instead.
        padded = [viewerlib.read_instance(_with_codestream(JPEG_LS, lambda f, p=p: f + p))
                  for p in (b"\0", b"\xff", b"\xff\0")]
        for each in padded:
            each.modality_frame()
    assert instance.warnings == [] and all(p.warnings == [] for p in padded)


def test_a_damaged_jpeg_ls_slice_is_flagged_on_the_volume(tmp_path: Path) -> None:
    damaged = _with_codestream(JPEG_LS, _zero_second_half)
    with pytest.warns(UserWarning, match="Damaged pixel data"):
        (volume,) = viewerlib.read_series([damaged], workers=1)
    note = next(w for w in volume.warnings if w.startswith("Damaged pixel data"))
    assert f"SOP Instance UID {damaged.SOPInstanceUID}" in note
    assert "End Of Image marker" in note and volume.missing_slices == []


@pytest.mark.parametrize("wrong", [None, 42, b"/tmp/x.dcm"])
def test_read_instance_of_something_else_names_what_it_takes(wrong) -> None:
    with pytest.raises(TypeError, match="path of a DICOM file .* or a pydicom "
                                        "Dataset") as caught:
        viewerlib.read_instance(wrong)
    assert type(wrong).__name__ in str(caught.value)
