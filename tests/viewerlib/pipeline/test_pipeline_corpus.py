"""Every file of the shared real corpus displays or fails with a clear error."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from viewerlib import read_instance
from viewerlib.errors import DecodingError

pytestmark = pytest.mark.extra_data

_CORPUS = os.environ.get("LIGHTBOX_EXTRA_DATA", "")
_FILES = (
    sorted(p for p in Path(_CORPUS).rglob("*") if p.is_file()) if _CORPUS else []
)
_SAMPLE = _FILES


def _clear_error(err: Exception) -> bool:
    """True for the errors viewerlib documents, with a message saying what."""
    return isinstance(err, DecodingError | ValueError | NotImplementedError) and (
        len(str(err)) > 20
    )


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
        assert _clear_error(err), f"{type(err).__name__}: {err}"
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
