"""Encapsulated PDF (PS3.3 A.45.1) rendered to page images in the kernel.

The browser is given pixels, not the PDF: a PDF handed to the browser's own viewer
offers to download or print it and may keep it in its cache, and the report would
leave the kernel. pypdfium2 (PDFium, the engine Chromium uses) draws each page.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from viewerlib.objects.sop import ObjectKind, object_kind

try:
    import pypdfium2
except ImportError:  # pragma: no cover - a dependency; guarded for a clear message
    pypdfium2 = None

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

# Points per inch of PDF user space (ISO 32000-1 8.3.2.3).
_POINTS_PER_INCH = 72.0
# Pages larger than this many pixels at the asked resolution are drawn smaller.
_MAX_PAGE_PIXELS = 12_000_000


def encapsulated_document(ds: Dataset) -> bytes:
    """The PDF bytes of an Encapsulated PDF instance, without the padding byte.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0042,0011) *Encapsulated Document*, (0042,0012) *MIME Type of
        Encapsulated Document* and (0042,0015) *Encapsulated Document Length*.

    Raises
    ------
    ValueError
        If ``ds`` is not an Encapsulated PDF or holds no document.
    """
    mime = str(ds.get("MIMETypeOfEncapsulatedDocument", ""))
    if object_kind(ds) is not ObjectKind.ENCAPSULATED_PDF and mime != "application/pdf":
        raise ValueError(
            f"(0008,0016) SOP Class UID {ds.get('SOPClassUID', '')} is not "
            "Encapsulated PDF Storage (1.2.840.10008.5.1.4.1.1.104.1)"
        )
    if "EncapsulatedDocument" not in ds:
        raise ValueError("the instance has no (0042,0011) Encapsulated Document; "
                         "retrieve the whole instance, not only its metadata")
    data = bytes(ds.EncapsulatedDocument)
    length = ds.get("EncapsulatedDocumentLength")
    # PS3.3 C.24.2.1: the value is padded to even length; the length says by how much.
    if length is not None and 0 < int(length) <= len(data):
        data = data[: int(length)]
    return data


class PdfPages:
    """The pages of one PDF, drawn on request.

    Parameters
    ----------
    data : bytes
        The PDF file.

    Raises
    ------
    ImportError
        If pypdfium2 is not installed.
    ValueError
        If the bytes are not a PDF that PDFium can open.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (144, 72), (255, 0, 0)).save(buffer, "PDF", resolution=72.0)
    >>> pages = PdfPages(buffer.getvalue())
    >>> pages.number_of_pages, pages.render(0, dpi=72).shape
    (1, (72, 144, 3))
    """

    def __init__(self, data: bytes) -> None:
        if pypdfium2 is None:
            raise ImportError("showing PDFs needs pypdfium2: pip install pypdfium2")
        # PDFium is not thread safe; one lock per document keeps its calls apart.
        self._lock = threading.Lock()
        self._data = bytes(data)
        try:
            self._document = pypdfium2.PdfDocument(self._data)
        except pypdfium2.PdfiumError as err:
            raise ValueError(
                f"the encapsulated document is not a readable PDF ({err}); check "
                "(0042,0012) MIME Type of Encapsulated Document"
            ) from err

    @property
    def number_of_pages(self) -> int:
        """How many pages the PDF has."""
        with self._lock:
            return len(self._document)

    def page_size_points(self, page_index: int) -> tuple[float, float]:
        """(width, height) of a page in points (1/72 inch); ``page_index`` from 0."""
        with self._lock:
            width, height = self._document[self._checked(page_index)].get_size()
        return float(width), float(height)

    def render(self, page_index: int, dpi: float = 110.0) -> np.ndarray:
        """Draw one page as (rows, columns, 3) uint8 sRGB on white.

        Parameters
        ----------
        page_index : int
            The page, from 0.
        dpi : float
            Pixels per inch; very large pages are drawn at less.
        """
        index = self._checked(page_index)
        with self._lock:
            page = self._document[index]
            width, height = page.get_size()
            scale = dpi / _POINTS_PER_INCH
            pixels = width * height * scale * scale
            if pixels > _MAX_PAGE_PIXELS:
                scale *= (_MAX_PAGE_PIXELS / pixels) ** 0.5
            bitmap = page.render(scale=scale, rev_byteorder=True)
            rgb = np.array(bitmap.to_numpy()[..., :3], dtype=np.uint8)
        logger.debug("drew PDF page %d at %.0f dpi", index + 1, scale * 72)
        return rgb

    def _checked(self, page_index: int) -> int:
        count = len(self._document)
        if not 0 <= int(page_index) < count:
            raise IndexError(
                f"page_index {page_index} is outside 0 to {count - 1} (the PDF has "
                f"{count} pages)"
            )
        return int(page_index)

    def close(self) -> None:
        """Release PDFium's copy of the document."""
        with self._lock:
            self._document.close()

    def __repr__(self) -> str:
        """Return the size of the document."""
        return f"PdfPages({len(self._data)} bytes)"
