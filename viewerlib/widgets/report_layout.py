"""A study's images with its report beside them: stack viewer left, report right.

:func:`viewerlib.viewer.open_with_report` builds it. The report is the study's
structured report (SR, shown by :class:`~viewerlib.widgets.report.ReportViewer`) or
Encapsulated PDF (:class:`~viewerlib.widgets.document.DocumentViewer`), the newest
first; when the study holds several, a menu above the report switches between them.
Every text from the files is shown as text, never as HTML: the report viewers set it
with ``textContent`` and the menu's options are plain strings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets

from viewerlib.objects.sop import ObjectKind, object_kind
from viewerlib.widgets.document import DocumentViewer
from viewerlib.widgets.report import ReportViewer

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.model import Series

logger = logging.getLogger(__name__)

#: (0008,0060) *Modality* of the series that may hold a report: SR documents and
#: encapsulated documents (PS3.3 C.7.3.1.1.1). Key object selections (KO) are not
#: reports; they mark images in the stack viewer.
REPORT_MODALITIES = frozenset({"SR", "DOC"})
_REPORT_KINDS = (ObjectKind.STRUCTURED_REPORT, ObjectKind.ENCAPSULATED_PDF)
_NO_REPORT = "No structured report or PDF report was found in this study."


def report_series(series: Sequence[Series]) -> list[Series]:
    """The series of a study that may hold its report, by (0008,0060) *Modality*.

    Examples
    --------
    >>> from viewerlib.model import Series
    >>> found = report_series([Series("1", "1.1", "CT"), Series("1", "1.2", "SR"),
    ...                        Series("1", "1.3", "KO"), Series("1", "1.4", "DOC")])
    >>> [s.SeriesInstanceUID for s in found]
    ['1.2', '1.4']
    """
    return [s for s in series if s.Modality in REPORT_MODALITIES]


def is_report(ds: Dataset) -> bool:
    """True for a structured report or an Encapsulated PDF, by (0008,0016).

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    >>> is_report(ds)
    True
    >>> ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection
    >>> is_report(ds)
    False
    """
    return object_kind(ds) in _REPORT_KINDS


def newest_first(reports: Sequence[Dataset]) -> list[Dataset]:
    """Reports ordered by (0008,0023) *Content Date* and (0008,0033) *Content Time*.

    A report without them sorts by (0008,0021) *Series Date* and (0008,0031)
    *Series Time*, and one without any date comes last; equal dates keep their
    order.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> old, new = Dataset(), Dataset()
    >>> old.ContentDate, new.ContentDate = "20260504", "20261102"
    >>> [r.ContentDate for r in newest_first([old, new])]
    ['20261102', '20260504']
    """

    def when(ds: Dataset) -> tuple[str, str]:
        date = str(ds.get("ContentDate") or ds.get("SeriesDate") or "")
        time = str(ds.get("ContentTime") or ds.get("SeriesTime") or "")
        return date, time

    return sorted(reports, key=when, reverse=True)


def report_title(ds: Dataset) -> str:
    """A short label of a report: its title and date, as plain text.

    The title is the SR document's (0040,A043) *Concept Name Code Sequence*
    meaning, or an Encapsulated PDF's (0042,0010) *Document Title*.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    >>> ds.DocumentTitle, ds.ContentDate = "CT head report", "20261102"
    >>> report_title(ds)
    'CT head report, 2026-11-02 (PDF)'
    """
    if object_kind(ds) is ObjectKind.ENCAPSULATED_PDF:
        title, kind = str(ds.get("DocumentTitle", "")), "PDF"
    else:
        names = ds.get("ConceptNameCodeSequence") or []
        title = str(names[0].get("CodeMeaning", "")) if names else ""
        kind = "SR"
    date = str(ds.get("ContentDate") or ds.get("SeriesDate") or "")
    if len(date) == 8 and date.isdigit():
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    return f"{', '.join(filter(None, (title or 'Report', date)))} ({kind})"


def report_viewer(ds: Dataset) -> ReportViewer | DocumentViewer:
    """The viewer of one report: the PDF's pages, or the SR's content tree.

    Raises
    ------
    ValueError
        If `ds` is neither a structured report nor an Encapsulated PDF.
    """
    kind = object_kind(ds)
    if kind is ObjectKind.ENCAPSULATED_PDF:
        return DocumentViewer(ds)
    if kind is ObjectKind.STRUCTURED_REPORT:
        return ReportViewer(ds)
    raise ValueError(
        f"a {kind.value} is not a report; give an SR document or an Encapsulated "
        "PDF ((0008,0016) SOP Class UID)"
    )


class ReportPane(ipywidgets.VBox):
    """A study's reports, the newest shown, with a menu when there are several.

    The right side of :class:`ImagesWithReport`, and what :func:`viewerlib.open`
    shows for a study that holds reports and no images.

    Parameters
    ----------
    reports : sequence of pydicom.dataset.Dataset
        SR documents and Encapsulated PDFs; the newest is shown
        (:func:`newest_first`). Empty: the pane says that there is no report.
    note : str
        Shown instead of the report when there is none, e.g. why the reports could
        not be retrieved.
    notice : str
        A line above the report, e.g. what else the study holds that is not shown.

    Attributes
    ----------
    reports : list of pydicom.dataset.Dataset
        The reports, newest first.
    report : ReportViewer, DocumentViewer or None
        The viewer of the report shown, None when there is no report.

    Raises
    ------
    ValueError
        If one of `reports` is not a report (:func:`is_report`).
    """

    def __init__(self, reports: Sequence[Dataset] = (), note: str = "",
                 notice: str = "", **kwargs: Any) -> None:
        refused = [
            str(ds.get("SOPClassUID", "")) for ds in reports if not is_report(ds)
        ]
        if refused:
            raise ValueError(
                "only SR documents and Encapsulated PDFs are shown as reports; "
                f"got (0008,0016) SOP Class UID {', '.join(refused)}"
            )
        self.reports = newest_first(reports)
        self.report: ReportViewer | DocumentViewer | None = None
        self._choice: ipywidgets.Dropdown | None = None
        if len(self.reports) > 1:
            # Plain strings: ipywidgets shows each option as text.
            self._choice = ipywidgets.Dropdown(
                options=[(report_title(ds), i) for i, ds in enumerate(self.reports)],
                value=0,
                description="Report",
                layout=ipywidgets.Layout(width="auto"),
            )
            self._choice.observe(self._chosen, "value")
        self._note = ipywidgets.Label(note or _NO_REPORT)
        self._note.add_class("lbx-no-report")
        self._notice: ipywidgets.Label | None = None
        if notice:
            self._notice = ipywidgets.Label(notice)
            self._notice.add_class("lbx-report-notice")
        kwargs.setdefault("layout", ipywidgets.Layout(min_width="0"))
        super().__init__(**kwargs)
        self.show_report(0)

    def show_report(self, index: int) -> None:
        """Show report `index` of :attr:`reports` (0 is the newest).

        Raises
        ------
        IndexError
            If there is no such report (and the study has at least one).
        """
        if not self.reports:
            self.children = [c for c in (self._notice, self._note) if c is not None]
            return
        if not 0 <= index < len(self.reports):
            raise IndexError(
                f"report {index} asked for; this study has {len(self.reports)} "
                f"(0 to {len(self.reports) - 1})"
            )
        previous = self.report
        self.report = report_viewer(self.reports[index])
        self.report.add_class("lbx-report-view")
        self.children = [c for c in (self._notice, self._choice, self.report)
                         if c is not None]
        if self._choice is not None and self._choice.value != index:
            self._choice.value = index
        if previous is not None:
            # A replaced viewer is closed so the page forgets its model.
            previous.close()
        logger.info("showing a report")

    def _chosen(self, change: dict[str, Any]) -> None:
        if self.report is not None and change["new"] != change["old"]:
            self.show_report(int(change["new"]))

    def __repr__(self) -> str:
        return f"ReportPane({len(self.reports)} reports)"


class ImagesWithReport(ipywidgets.HBox):
    """The images on the left and the study's report on the right.

    Parameters
    ----------
    images : ipywidgets.DOMWidget
        The viewer of the images, usually a
        :class:`~viewerlib.widgets.stack.StackViewer`.
    reports : sequence of pydicom.dataset.Dataset
        The study's SR documents and Encapsulated PDFs; the newest is shown
        (:func:`newest_first`). Empty: the right side says that the study has no
        report.
    note : str
        Shown instead of the report when there is none, e.g. why the reports could
        not be retrieved.

    Attributes
    ----------
    images : ipywidgets.DOMWidget
        The images' viewer.
    reports : list of pydicom.dataset.Dataset
        The reports, newest first.
    report : ReportViewer, DocumentViewer or None
        The viewer of the report shown, None when there is no report.

    Raises
    ------
    ValueError
        If one of `reports` is not a report (:func:`is_report`).
    """

    def __init__(
        self,
        images: ipywidgets.DOMWidget,
        reports: Sequence[Dataset] = (),
        note: str = "",
    ) -> None:
        side = ReportPane(reports, note)
        self.images = images
        # Equal height for both sides (stack.js and the report viewers read it).
        images.add_class("lbx-images-pane")
        side.add_class("lbx-report-pane")
        self._side = side
        super().__init__([images, side], layout=ipywidgets.Layout(width="100%"))
        self.add_class("lbx-with-report")

    @property
    def reports(self) -> list[Dataset]:
        """The study's reports, newest first."""
        return self._side.reports

    @property
    def report(self) -> ReportViewer | DocumentViewer | None:
        """The viewer of the report shown, None when there is no report."""
        return self._side.report

    def show_report(self, index: int) -> None:
        """Show report `index` of :attr:`reports` (0 is the newest).

        Raises
        ------
        IndexError
            If there is no such report (and the study has at least one).
        """
        self._side.show_report(index)

    def __repr__(self) -> str:
        return f"ImagesWithReport({self.images!r}, {len(self.reports)} reports)"
