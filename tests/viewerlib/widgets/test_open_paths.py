"""viewerlib.open of a file or folder named by a Path or a string, and what it says.

The files are the 16 x 16 x 4 CT phantom of ``tests/viewerlib/objects`` written to a
folder; a second study (the widget builders' prior of Test^Case) makes a folder
that holds two.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "objects"))
from object_builders import SLICES, phantom  # noqa: E402
from widget_builders import prior_study, write  # noqa: E402

import viewerlib  # noqa: E402
from viewerlib.pipeline.instance import NotAnImageError  # noqa: E402
from viewerlib.sources.local import FolderSource  # noqa: E402
from viewerlib.widgets.overlays import AnnotatedStackViewer  # noqa: E402


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    images, _ = phantom()
    write(images, tmp_path / "ct")
    return tmp_path / "ct"


@pytest.mark.parametrize("kind", [Path, str], ids=["Path", "str"])
def test_a_folder_opens_its_study_in_the_stack_viewer(folder, kind) -> None:
    viewer = viewerlib.open(kind(folder))

    assert isinstance(viewer, AnnotatedStackViewer)
    assert viewer.number_of_slices == SLICES


@pytest.mark.parametrize("kind", [Path, str], ids=["Path", "str"])
def test_a_file_opens_as_one_instance(folder, kind) -> None:
    path = sorted(folder.iterdir())[0]

    viewer = viewerlib.open(kind(path))

    assert isinstance(viewer, AnnotatedStackViewer) and viewer.number_of_slices == 1


@pytest.mark.parametrize("kind", [Path, str], ids=["Path", "str"])
def test_an_empty_file_says_it_is_empty_raises(tmp_path, kind) -> None:
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")

    with pytest.raises(NotAnImageError, match=r"the file is empty \(0 bytes\)"):
        viewerlib.open(kind(empty))


@pytest.mark.parametrize("given", ["/tmp/lightbox-no-such-folder/ct.dcm",
                                   "no-such-file.dcm", "~/no-such-folder"])
def test_a_path_with_nothing_there_says_so_raises(given) -> None:
    with pytest.raises(FileNotFoundError, match="no file or folder .*check the path"):
        viewerlib.open(given)


def test_a_string_of_digits_and_dots_stays_a_study_instance_uid(folder) -> None:
    images, _ = phantom()

    viewer = viewerlib.open(str(images[0].StudyInstanceUID), FolderSource(folder))

    assert isinstance(viewer, AnnotatedStackViewer)


def test_a_folder_of_two_studies_lists_them_raises(folder) -> None:
    prior = prior_study(rows=16, slices=2)
    write(prior, folder / "prior")
    images, _ = phantom()

    with pytest.raises(LookupError, match="holds 2 studies") as caught:
        viewerlib.open(folder)

    for uid in (images[0].StudyInstanceUID, prior[0].StudyInstanceUID):
        assert uid in str(caught.value)


def test_a_folder_without_dicom_says_so_raises(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not an image", encoding="utf-8")

    with pytest.raises(LookupError, match="holds no DICOM study"):
        viewerlib.open(tmp_path)


def test_a_folder_and_a_source_together_raises(folder) -> None:
    with pytest.raises(ValueError, match="give a folder or a source, not both"):
        viewerlib.open(folder, FolderSource(folder))


@pytest.mark.parametrize("kind", [Path, str], ids=["Path", "str"])
def test_open_volume_mpr_and_3d_take_a_folder(folder, kind) -> None:
    from viewerlib.volume.volume import read_series

    (expected,) = read_series(sorted(folder.iterdir()))

    volume = viewerlib.viewer.open_volume(kind(folder))
    mpr = viewerlib.open_mpr(kind(folder))
    rendering = viewerlib.open_3d(kind(folder))

    assert volume.voxels.shape == (SLICES, 16, 16)
    for built in (volume, mpr.volume, rendering.volume):
        assert (built.voxels == expected.voxels).all()


def test_open_volume_of_one_file_is_its_slice(folder) -> None:
    path = sorted(folder.iterdir())[0]

    assert viewerlib.viewer.open_volume(path).voxels.shape == (1, 16, 16)
    with pytest.raises(ValueError, match="one file, so source= and series= do not"):
        viewerlib.viewer.open_volume(path, series="1.2.3")


def test_open_volume_of_a_missing_folder_or_two_studies_says_so_raises(folder) -> None:
    with pytest.raises(FileNotFoundError, match="check the path"):
        viewerlib.open_mpr(folder / "nothing-here")
    write(prior_study(rows=16, slices=2), folder / "prior")
    with pytest.raises(LookupError, match="holds 2 studies"):
        viewerlib.viewer.open_volume(folder)


def test_a_folder_names_its_unreadable_files_in_the_viewer(folder) -> None:
    (folder / "notes.dcm").write_text("not an image", encoding="utf-8")
    first = sorted(folder.iterdir())[0]
    (folder / "cut-header.dcm").write_bytes(first.read_bytes()[:200])

    # Told once, on the viewer's alert line: no UserWarning besides.
    viewer = viewerlib.open(folder)
    volume = viewer.volume

    note = next(w for w in volume.warnings if "of the folder could not" in w)
    assert note.startswith("2 file(s) of the folder could not be read")
    assert "notes.dcm" in note and "cut-header.dcm" in note
    # The cause read_series would give: the header ends inside an element.
    assert "cut-header.dcm: the file is cut short: it ends at byte 200" in note
    assert "2 file(s) of the folder unreadable" in [row["text"] for row in viewer.alerts]
    # The good slices are all there.
    assert viewer.number_of_slices == SLICES


@pytest.mark.parametrize("opener", ["open", "read_instance"])
def test_a_text_file_gets_the_same_error_from_open_and_read_instance_raises(
        tmp_path, opener) -> None:
    notes = tmp_path / "notes.dcm"
    notes.write_text("not an image", encoding="utf-8")

    with pytest.raises(NotAnImageError, match=r"'.*notes.dcm' is not a DICOM file: "
                       r".*copy it again from its source"):
        getattr(viewerlib, opener)(notes)


def test_a_missing_file_raises_file_not_found_everywhere(tmp_path) -> None:
    missing = tmp_path / "no-such.dcm"
    for read in (viewerlib.read_instance, lambda p: viewerlib.read_series([p]),
                 viewerlib.open):
        with pytest.raises(FileNotFoundError, match="check the path"):
            read(missing)
