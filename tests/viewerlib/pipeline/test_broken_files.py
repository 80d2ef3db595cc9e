"""Broken files get an error that names the file, what is wrong and what to do."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pydicom.data
import pytest

import viewerlib
from viewerlib.errors import DecodingError

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
    ("cut-early.dcm", ValueError, "probably cut short"),
    ("empty.dcm", ValueError, "the file is empty"),
    ("photo.dcm", ValueError, "it is a JPEG image, not DICOM"),
    ("readme.dcm", ValueError, "is not a DICOM file"),
], ids=["half", "cut-early", "empty", "jpeg", "text"])
def test_read_instance_says_what_is_wrong_raises(folder: Path, name: str,
                                                 error: type, says: str) -> None:
    with pytest.raises(error, match=says) as caught:
        viewerlib.read_instance(folder / name).display_frame()
    assert name in str(caught.value) or error is DecodingError and name in str(
        caught.value)


def test_read_series_keeps_the_good_files_and_names_the_bad(folder: Path) -> None:
    with pytest.warns(UserWarning, match="left out 5 unreadable input") as caught:
        volumes = viewerlib.read_series(sorted(folder.iterdir()))
    assert len(volumes) == 1 and volumes[0].voxels.shape[0] == 1
    message = next(str(w.message) for w in caught if "left out" in str(w.message))
    for name in ("half.dcm", "cut-early.dcm", "empty.dcm", "photo.dcm", "readme.dcm"):
        assert name in message
    assert any("left out 5" in w for w in volumes[0].warnings)


def test_read_series_of_a_folder_reads_the_files_in_it(folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volumes = viewerlib.read_series(folder)
    assert len(volumes) == 1


def test_read_series_with_only_bad_files_raises_naming_them(folder: Path) -> None:
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="half.dcm"):
        viewerlib.read_series([folder / "half.dcm", folder / "empty.dcm"])
