"""The document viewer: an Encapsulated PDF as page images drawn in the kernel.

Each page is rendered by :class:`~viewerlib.objects.document.PdfPages` and sent as a
binary message of RGB pixels when the view asks for it; the browser paints it on a
canvas. The PDF itself never reaches the browser, so there is nothing to download,
no blob URL and nothing in browser storage; the synced state is the page number.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from viewerlib.objects.document import PdfPages, encapsulated_document
from viewerlib.widgets._frontend import FrontEndWidget, esm_trait, front_end
from viewerlib.widgets.stack import overlay_texts

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)


class DocumentViewer(FrontEndWidget):
    """Page through an Encapsulated PDF.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset, optional
        An Encapsulated PDF Storage instance; its identity goes in the header.
    pdf : bytes, optional
        A PDF file instead of ``ds``.
    dpi : float
        Resolution the pages are drawn at.

    Raises
    ------
    ValueError
        If neither or both of ``ds`` and ``pdf`` are given, or the document is not a
        readable PDF.
    """

    _esm = esm_trait(front_end("document.js"))
    #: The page shown, from 0.
    page_index = traitlets.Int(0).tag(sync=True)
    number_of_pages = traitlets.Int(1).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    overlay = traitlets.Dict({}).tag(sync=True)
    dpi = traitlets.Float(110.0).tag(sync=True)

    def __init__(self, ds: Dataset | None = None, pdf: bytes | None = None,
                 dpi: float = 110.0, **kwargs: Any) -> None:
        if (ds is None) == (pdf is None):
            raise ValueError("give either a DICOM instance (ds) or the PDF bytes (pdf)")
        data = encapsulated_document(ds) if ds is not None else bytes(pdf or b"")
        self._pages = PdfPages(data)
        super().__init__(
            number_of_pages=self._pages.number_of_pages,
            title=str(ds.get("DocumentTitle", "")) if ds is not None else "",
            overlay=overlay_texts(ds) if ds is not None else {},
            dpi=dpi,
            **kwargs,
        )
        self.on_msg(self._handle_message)

    @traitlets.validate("page_index")
    def _valid_page(self, proposal: dict[str, Any]) -> int:
        return int(min(max(0, proposal["value"]), self.number_of_pages - 1))

    @traitlets.validate("dpi")
    def _valid_dpi(self, proposal: dict[str, Any]) -> float:
        return float(min(max(36.0, proposal["value"]), 300.0))

    def page(self, page_index: int) -> np.ndarray:
        """Page ``page_index`` (from 0) as (rows, columns, 3) uint8, as shown."""
        return self._pages.render(page_index, self.dpi)

    def _handle_message(
        self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]
    ) -> None:
        if content.get("type") == "page":
            self._send_page(int(content.get("page_index", self.page_index)))

    def _send_page(self, page_index: int) -> None:
        page_index = self._valid_page({"value": page_index})
        rgb = np.ascontiguousarray(self.page(page_index))
        self.send({"type": "page", "page_index": page_index, "rows": rgb.shape[0],
                   "columns": rgb.shape[1]},
                  buffers=[memoryview(rgb).cast("B")])
        logger.debug("sent PDF page %d (%d bytes)", page_index + 1, rgb.nbytes)

    def __repr__(self) -> str:
        """Return the page count and the page shown (cheap)."""
        return (f"DocumentViewer({self.number_of_pages} pages, "
                f"page {self.page_index + 1})")
