"""Reports in the viewer: structured reports as a tree of text.

An SR's content items (PS3.3 C.17.3) become a nested dict of plain strings, which the
front end shows with ``textContent`` (never as HTML). Encapsulated PDFs (PS3.3 A.45)
are shown by :class:`viewerlib.widgets.document.DocumentViewer`, which draws their
pages in the kernel so the PDF never reaches the browser.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import traitlets

from viewerlib.widgets._frontend import FrontEndWidget, esm_trait, front_end
from viewerlib.widgets.stack import overlay_texts

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

# Deeper trees are cut here, so a malformed or hostile file cannot exhaust memory.
_MAX_DEPTH = 32


def _meaning(item: Dataset, keyword: str) -> str:
    codes = item.get(keyword) or []
    return str(codes[0].get("CodeMeaning", "")) if codes else ""


def content_value(item: Dataset) -> str:
    """The value of one SR content item as text, by (0040,A040) *Value Type*."""
    kind = str(item.get("ValueType", ""))
    if kind == "TEXT":
        return str(item.get("TextValue", ""))
    if kind == "CODE":
        return _meaning(item, "ConceptCodeSequence")
    if kind == "NUM":
        measured = (item.get("MeasuredValueSequence") or [None])[0]
        if measured is None:
            return ""
        unit = _meaning(measured, "MeasurementUnitsCodeSequence")
        return f"{measured.get('NumericValue', '')} {unit}".strip()
    if kind == "PNAME":
        return str(item.get("PersonName", "")).replace("^", " ").strip()
    if kind in ("DATE", "TIME", "DATETIME"):
        return str(
            item.get({"DATE": "Date", "TIME": "Time", "DATETIME": "DateTime"}[kind], "")
        )
    if kind == "UIDREF":
        return str(item.get("UID", ""))
    if kind in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        references = item.get("ReferencedSOPSequence") or []
        return (
            f"{kind.lower()} {references[0].get('ReferencedSOPInstanceUID', '')}"
            if references
            else kind.lower()
        )
    return ""


def report_tree(ds: Dataset, depth: int = 0) -> dict[str, Any]:
    """Content items of an SR (or of one container) as a tree of plain strings.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0040,A040) *Value Type*, (0040,A043) *Concept Name Code Sequence*,
        (0040,A010) *Relationship Type*, the value elements and (0040,A730)
        *Content Sequence*.

    Returns
    -------
    dict
        ``name``, ``value``, ``value_type``, ``relationship`` and ``children``.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> root, item = Dataset(), Dataset()
    >>> item.ValueType, item.TextValue = "TEXT", "No bleed"
    >>> root.ValueType, root.ContentSequence = "CONTAINER", [item]
    >>> report_tree(root)["children"][0]["value"]
    'No bleed'
    """
    children = []
    if depth < _MAX_DEPTH:
        children = [
            report_tree(child, depth + 1) for child in ds.get("ContentSequence") or []
        ]
    return {
        "name": _meaning(ds, "ConceptNameCodeSequence"),
        "value": content_value(ds),
        "value_type": str(ds.get("ValueType", "")),
        "relationship": str(ds.get("RelationshipType", "")),
        "children": children,
    }


class ReportViewer(FrontEndWidget):
    """A structured report as an indented tree of text.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        An SR (any SR Storage SOP Class).

    Raises
    ------
    ValueError
        If ``ds`` is an Encapsulated PDF: use
        :class:`~viewerlib.widgets.document.DocumentViewer` (or
        :func:`viewerlib.open`, which chooses it).
    """

    _esm = esm_trait(front_end("report.js"))
    tree = traitlets.Dict({}).tag(sync=True)
    overlay = traitlets.Dict({}).tag(sync=True)
    #: Always False: PDFs are shown by the DocumentViewer (kept for saved states).
    has_pdf = traitlets.Bool(False).tag(sync=True)

    def __init__(self, ds: Dataset, **kwargs: Any) -> None:
        if str(ds.get("MIMETypeOfEncapsulatedDocument", "")) == "application/pdf":
            raise ValueError(
                "this instance is an Encapsulated PDF; show it with "
                "viewerlib.widgets.document.DocumentViewer(ds) or viewerlib.open"
            )
        super().__init__(
            tree=report_tree(ds) if "ContentSequence" in ds else {},
            overlay=overlay_texts(ds),
            **kwargs,
        )

    def __repr__(self) -> str:
        return "ReportViewer(sr)"
