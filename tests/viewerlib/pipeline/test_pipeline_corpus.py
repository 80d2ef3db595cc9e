"""Every file of the shared real corpus displays or fails with a named, clear error."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from viewerlib import read_instance
from viewerlib.errors import DecodingError
from viewerlib.pipeline.instance import NotAnImageError

pytestmark = pytest.mark.extra_data

_CORPUS = os.environ.get("LIGHTBOX_EXTRA_DATA", "")
_FILES = (
    sorted(p for p in Path(_CORPUS).rglob("*") if p.is_file()) if _CORPUS else []
)
_SAMPLE = _FILES


def _header(path: Path) -> pydicom.Dataset | None:
    """The file's header as pydicom reads it, or None when it is not DICOM."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - not DICOM at all
        return None


def _clear_error(err: Exception, path: Path) -> str | None:
    """Return why `err` is not one of the named, clear errors, or None if it is.

    Only the library's named errors pass, each naming what it is about:
    DecodingError the transfer syntax (UID or name), NotAnImageError the SOP
    class of the object (or that the file is not DICOM), NotImplementedError
    the (0028,0004) Photometric Interpretation it does not support. A bare
    ValueError, KeyError or anything else from deeper down fails.
    """
    message = str(err)
    header = _header(path)
    if isinstance(err, DecodingError):
        meta = getattr(header, "file_meta", None) if header is not None else None
        tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
        if tsyntax is None:
            return None if "Transfer Syntax UID" in message else (
                "a DecodingError for a file without a transfer syntax must say so")
        if str(tsyntax) in message or tsyntax.name in message:
            return None
        return f"the DecodingError does not name the transfer syntax {tsyntax}"
    if isinstance(err, NotAnImageError):
        sop_class = header.get("SOPClassUID") if header is not None else None
        if sop_class is None:
            return None if "not a DICOM file" in message else (
                "a NotAnImageError for a non-DICOM file must say it is not DICOM")
        if sop_class.name in message or str(sop_class) in message:
            return None
        return f"the NotAnImageError does not name the SOP class {sop_class.name}"
    if type(err) is NotImplementedError:
        photometric = str(header.get("PhotometricInterpretation", "")) if (
            header is not None) else ""
        if photometric and photometric in message:
            return None
        return "the NotImplementedError does not name the photometric interpretation"
    return f"{type(err).__name__} is not one of viewerlib's named errors"


_ABSENT = pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(
    reason="LIGHTBOX_EXTRA_DATA not set: point it at the shared real DICOM corpus "
    "(e.g. /work/shared/data/dicom) to run the corpus test"))


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(_CORPUS)))
                                  for p in _SAMPLE] or [_ABSENT])
def test_every_corpus_file_displays_or_raises_clearly(path):
    try:
        with warnings.catch_warnings():
            # pydicom warns about odd real-world headers (character sets, VRs);
            # that is not what this test is about.
            warnings.simplefilter("ignore")
            instance = read_instance(path)
            last = instance.number_of_frames - 1
            shown = instance.display_frame(last)
            stored = instance.dataset
    except Exception as err:  # noqa: BLE001 - the test sorts errors itself
        problem = _clear_error(err, path)
        assert problem is None, f"{problem}: {type(err).__name__}: {err}"
        return

    rows, columns = int(stored.Rows), int(stored.Columns)
    assert shown.dtype == np.uint8
    assert shown.shape in ((rows, columns), (rows, columns, 3))
    # A constant display is only right where the frame itself is constant.
    if shown.min() == shown.max():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from viewerlib.pipeline.decode import decode_frame

            raw = decode_frame(stored, last).pixels
        assert raw.min() == raw.max(), "display is constant but the data is not"


def test_only_named_errors_that_say_what_count_as_clear(tmp_path):
    from pydicom.data import get_testdata_file

    ct = Path(get_testdata_file("CT_small.dcm", download=False))
    plan = Path(get_testdata_file("rtplan.dcm", download=False))
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM")
    syntax = "'Explicit VR Little Endian' (1.2.840.10008.1.2.1)"

    # What the library raises on purpose, naming what it is about, passes ...
    assert _clear_error(DecodingError(f"cut short ({syntax})"), ct) is None
    assert _clear_error(NotAnImageError("The instance (RT Plan Storage) has no "
                                        "pixel data"), plan) is None
    assert _clear_error(NotAnImageError("'notes.txt' is not a DICOM file"),
                        text) is None
    # ... a long bare ValueError, or a named error that does not say what, fails.
    assert _clear_error(ValueError("x" * 200), ct) is not None
    assert _clear_error(KeyError("PixelData is missing from this dataset"),
                        ct) is not None
    assert _clear_error(DecodingError("the pixel data could not be decoded at all"),
                        ct) is not None
    assert _clear_error(NotAnImageError("this object cannot be displayed here"),
                        plan) is not None
    assert _clear_error(NotImplementedError("not supported, sorry, not at all"),
                        ct) is not None
