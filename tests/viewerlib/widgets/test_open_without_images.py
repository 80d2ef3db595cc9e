"""viewerlib.open of a study without images: its report, or what it holds, in words.

The studies are built as ``object_builders`` builds objects, in a folder: a Basic
Text SR only, an Encapsulated PDF only, a 12-lead ECG only
(``widget_builders.ecg_waveform``), and an SR beside an ECG. Each is opened as a
notebook user would (``viewerlib.open(uid, source)``) and as the Studies panel's
one-click open does (the notebook the server extension writes from its template,
which calls ``viewerlib.open`` on the configured archives).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "objects"))
from object_builders import encapsulated_pdf, pdf_bytes, phantom  # noqa: E402
from widget_builders import ecg_waveform, text_report, write  # noqa: E402

import viewerlib  # noqa: E402
from viewerlib.sources.local import FolderSource  # noqa: E402
from viewerlib.widgets.document import DocumentViewer  # noqa: E402
from viewerlib.widgets.notice import StudyNotice  # noqa: E402
from viewerlib.widgets.report import ReportViewer  # noqa: E402
from viewerlib.widgets.report_layout import ReportPane  # noqa: E402

_XSS = "<img src=x onerror=alert(1)>"


def _sr_only(folder: Path) -> str:
    images, _ = phantom()
    report = text_report(images, ["No intracranial haemorrhage", _XSS])
    write([report], folder)
    return str(report.StudyInstanceUID)


def _pdf_only(folder: Path) -> str:
    pdf = encapsulated_pdf(pdf_bytes([(0, 0, 255)]), title="Outside report")
    write([pdf], folder)
    return str(pdf.StudyInstanceUID)


def _ecg_only(folder: Path) -> str:
    ecg = ecg_waveform("1.2.826.0.1.3680043.8.498.77")
    write([ecg], folder)
    return str(ecg.StudyInstanceUID)


def _texts(node: dict) -> list[str]:
    return [node["value"], *(t for child in node["children"] for t in _texts(child))]


def test_an_sr_only_study_opens_its_report(tmp_path) -> None:
    uid = _sr_only(tmp_path)

    shown = viewerlib.open(uid, FolderSource(tmp_path))

    assert isinstance(shown, ReportPane) and isinstance(shown.report, ReportViewer)
    assert shown.children == (shown.report,)
    # Text stays the string the file holds; report.js sets it as textContent.
    assert _texts(shown.report.tree)[1:] == ["No intracranial haemorrhage", _XSS]


def test_a_pdf_only_study_opens_its_document(tmp_path) -> None:
    uid = _pdf_only(tmp_path)

    shown = viewerlib.open(uid, FolderSource(tmp_path))

    assert isinstance(shown, ReportPane) and isinstance(shown.report, DocumentViewer)
    assert shown.report.title == "Outside report"
    page = shown.report.page(0)
    assert tuple(page[page.shape[0] // 2, page.shape[1] // 2]) == (0, 0, 255)


def test_a_waveform_only_study_says_what_it_holds_and_where_to_open_it(
    tmp_path,
) -> None:
    uid = _ecg_only(tmp_path)

    shown = viewerlib.open(uid, FolderSource(tmp_path))

    assert isinstance(shown, StudyNotice)
    (line,) = shown.lines
    assert line.startswith("an ECG waveform (12-lead ECG Waveform Storage, ")
    assert line.endswith(
        "Lightbox does not display waveforms yet; open it in the cardiology system."
    )
    assert "read_instance" not in line and "Traceback" not in line
    assert shown.overlay["study"] == "2026-11-02 Resting ECG"


def test_a_report_beside_a_waveform_shows_the_report_and_names_the_waveform(
    tmp_path,
) -> None:
    images, _ = phantom()
    report = text_report(images, ["Sinus rhythm"])
    write([report, ecg_waveform(str(report.StudyInstanceUID))], tmp_path)

    shown = viewerlib.open(str(report.StudyInstanceUID), FolderSource(tmp_path))

    assert isinstance(shown, ReportPane) and isinstance(shown.report, ReportViewer)
    notice, viewer = shown.children
    assert viewer is shown.report
    assert notice.value.startswith("This study also holds an ECG waveform (")
    assert "open it in the cardiology system" in notice.value


def test_a_waveform_file_or_dataset_says_what_it_is(tmp_path) -> None:
    ecg = ecg_waveform("1.2.826.0.1.3680043.8.498.78")
    (path,) = write([ecg], tmp_path)

    for given in (ecg, path, str(path)):
        shown = viewerlib.open(given)
        assert isinstance(shown, StudyNotice), given
        assert "open it in the cardiology system" in shown.lines[0]


def test_open_volume_of_a_study_without_images_raises_saying_what_open_does(
    tmp_path,
) -> None:
    uid = _ecg_only(tmp_path)

    with pytest.raises(LookupError, match=r"only ECG\): viewerlib.open\(study\)"):
        viewerlib.viewer.open_volume(uid, FolderSource(tmp_path))


@pytest.mark.parametrize(
    ("build", "expected"),
    [(_sr_only, ReportPane), (_pdf_only, ReportPane), (_ecg_only, StudyNotice)],
    ids=["sr-only", "pdf-only", "waveform-only"],
)
def test_the_studies_panel_notebook_opens_a_study_without_images(
    tmp_path, monkeypatch, build, expected
) -> None:
    """The one-click open runs the server extension's template: no traceback."""
    from lightbox_extensions.server.notebooks import DEFAULT_TEMPLATE, viewer_notebook

    uid = build(tmp_path / "archive")
    archives = tmp_path / "archives.toml"
    archives.write_text(
        f'[[archive]]\nname = "Outside CDs"\ntype = "folder"\n'
        f'path = "{tmp_path / "archive"}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("LIGHTBOX_ARCHIVES", str(archives))
    notebook = viewer_notebook(DEFAULT_TEMPLATE, uid, app_view=True)
    (code,) = [c["source"] for c in notebook["cells"] if c["cell_type"] == "code"]

    namespace: dict = {}
    exec(compile(code, "viewer.ipynb", "exec"), namespace)  # noqa: S102

    assert isinstance(namespace["viewer"], expected)
