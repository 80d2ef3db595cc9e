"""Kernel side of the images-with-report layout (viewerlib.viewer.open_with_report).

The study is the 16 x 16 x 4 CT phantom of ``tests/viewerlib/objects`` in a folder,
with its reports built as ``object_builders`` builds objects: a Basic Text SR
(``widget_builders.text_report``) and an Encapsulated PDF.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ipywidgets
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "objects"))
from object_builders import (  # noqa: E402
    encapsulated_pdf,
    key_objects,
    pdf_bytes,
    phantom,
)
from widget_builders import text_report, write  # noqa: E402

from viewerlib.errors import SourceUnreachableError  # noqa: E402
from viewerlib.sources.local import FolderSource  # noqa: E402
from viewerlib.viewer import open_with_report  # noqa: E402
from viewerlib.widgets.document import DocumentViewer  # noqa: E402
from viewerlib.widgets.overlays import AnnotatedStackViewer  # noqa: E402
from viewerlib.widgets.report import ReportViewer  # noqa: E402
from viewerlib.widgets.report_layout import ImagesWithReport  # noqa: E402

_XSS = "<img src=x onerror=alert(1)>"


def _texts(node: dict) -> list[str]:
    return [node["value"], *(t for child in node["children"] for t in _texts(child))]


def _pdf_of(images) -> object:
    ds = encapsulated_pdf(pdf_bytes([(255, 0, 0)]), title="CT head report")
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID"):
        setattr(ds, keyword, images[0].get(keyword))
    ds.ContentDate = "20261103"
    return ds


def _open(folder: Path, objects, source_class=FolderSource) -> ImagesWithReport:
    images, _ = phantom()
    write([*images, *objects(images)], folder)
    return open_with_report(images[0].StudyInstanceUID, source_class(folder))


def test_open_with_report_puts_the_stack_left_and_the_sr_right(tmp_path) -> None:
    shown = _open(
        tmp_path,
        lambda images: [text_report(images, ["Small left subdural haematoma", _XSS])],
    )

    assert isinstance(shown, ipywidgets.HBox)
    assert isinstance(shown.images, AnnotatedStackViewer)
    assert isinstance(shown.report, ReportViewer)
    left, right = shown.children
    assert left is shown.images and right.children == (shown.report,)
    assert shown.report.tree["name"] == "Imaging report"
    # Text stays the string the file holds; report.js sets it as textContent.
    assert _texts(shown.report.tree)[1:] == ["Small left subdural haematoma", _XSS]
    assert "lbx-with-report" in shown._dom_classes
    assert "lbx-images-pane" in shown.images._dom_classes
    assert "lbx-report-pane" in right._dom_classes


def test_open_with_report_of_a_folder_shows_its_images_and_report(
        tmp_path, monkeypatch) -> None:
    # As viewerlib.open(folder) does: the folder is its own source, no archives.
    monkeypatch.setenv("LIGHTBOX_ARCHIVES", str(tmp_path / "no-archives.toml"))
    images, _ = phantom()
    write([*images, text_report(images, ["Small left subdural haematoma"])],
          tmp_path / "study")

    shown = open_with_report(tmp_path / "study")

    assert isinstance(shown.images, AnnotatedStackViewer)
    assert isinstance(shown.report, ReportViewer)
    assert _texts(shown.report.tree)[1:] == ["Small left subdural haematoma"]


def test_open_with_report_shows_an_encapsulated_pdf_beside_the_images(tmp_path) -> None:
    shown = _open(tmp_path, lambda images: [_pdf_of(images)])

    assert isinstance(shown.report, DocumentViewer)
    assert shown.report.title == "CT head report"
    page = shown.report.page(0)
    assert tuple(page[page.shape[0] // 2, page.shape[1] // 2]) == (255, 0, 0)


def test_the_newest_report_shows_first_and_the_menu_switches(tmp_path) -> None:
    shown = _open(
        tmp_path,
        lambda images: [
            text_report(
                images, ["Earlier reading"], date="20261102", title="Preliminary"
            ),
            _pdf_of(images),
            text_report(images, ["Final reading"], date="20261104", title="Final"),
        ],
    )

    assert [type(v).__name__ for v in (shown.report,)] == ["ReportViewer"]
    assert _texts(shown.report.tree)[1:] == ["Final reading"]
    menu, first = shown.children[1].children
    assert isinstance(menu, ipywidgets.Dropdown)
    assert [label for label, _ in menu.options] == [
        "Final, 2026-11-04 (SR)",
        "CT head report, 2026-11-03 (PDF)",
        "Preliminary, 2026-11-02 (SR)",
    ]

    menu.value = 2
    assert _texts(shown.report.tree)[1:] == ["Earlier reading"]
    assert shown.children[1].children == (menu, shown.report)
    # The replaced viewer is closed, so the page drops its model.
    assert first.comm is None


def test_a_study_without_a_report_says_so_and_a_key_object_is_no_report(
    tmp_path,
) -> None:
    shown = _open(tmp_path, lambda images: [key_objects(images, [1])])

    assert shown.report is None and shown.reports == []
    (note,) = shown.children[1].children
    assert isinstance(note, ipywidgets.Label)
    assert note.value == "No structured report or PDF report was found in this study."


class _ReportsDown(FolderSource):
    """A folder whose report series cannot be retrieved, as an archive that fails."""

    def retrieve_series(self, study_instance_uid, series_instance_uid, *args, **kwargs):
        datasets = super().retrieve_series(
            study_instance_uid, series_instance_uid, *args, **kwargs
        )
        if datasets and datasets[0].Modality == "SR":
            raise SourceUnreachableError("Reports", "connection refused")
        return datasets


def test_a_report_that_cannot_be_retrieved_is_named_beside_the_images(tmp_path) -> None:
    shown = _open(
        tmp_path,
        lambda images: [text_report(images, ["Lost"])],
        source_class=_ReportsDown,
    )

    assert isinstance(shown.images, AnnotatedStackViewer)
    assert shown.report is None
    (note,) = shown.children[1].children
    assert note.value == (
        "The report could not be retrieved (SourceUnreachableError: "
        "Reports: connection refused). Run the cell again to retry."
    )


def test_images_with_report_takes_only_reports_raises() -> None:
    images, volume = phantom()
    viewer = AnnotatedStackViewer.from_volume(volume)
    with pytest.raises(ValueError, match="only SR documents and Encapsulated PDFs"):
        ImagesWithReport(viewer, [images[0]])


def test_show_report_out_of_range_raises() -> None:
    images, volume = phantom()
    shown = ImagesWithReport(
        AnnotatedStackViewer.from_volume(volume), [text_report(images, ["One"])]
    )
    with pytest.raises(IndexError, match="this study has 1"):
        shown.show_report(1)
