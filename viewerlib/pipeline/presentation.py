"""Presentation LUT stage: VOI output to P-values, inverting where called for."""

from __future__ import annotations

import enum
import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)


class PresentationLUTShape(enum.Enum):
    """(2050,0020) *Presentation LUT Shape*, PS3.3 C.11.6.1.2."""

    IDENTITY = "IDENTITY"
    INVERSE = "INVERSE"


def should_invert(ds: Dataset) -> bool:
    """Return True if the VOI output must be inverted for display.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Uses (0028,0004) *Photometric Interpretation* and (2050,0020)
        *Presentation LUT Shape*.

    Returns
    -------
    bool
        True for MONOCHROME1 (minimum value is white, PS3.3 C.7.6.3.1.2) and
        for a Presentation LUT Shape of INVERSE.

    Notes
    -----
    One inversion, never two: the DX and MG IODs require INVERSE together
    with MONOCHROME1 (PS3.3 C.8.11.7.1.1) to say what MONOCHROME1 already
    says, so MONOCHROME1 with INVERSE is inverted once. MONOCHROME2 with INVERSE
    is inverted. A (2050,0010) *Presentation LUT Sequence* is not applied
    (see :func:`apply_presentation_lut`).
    """
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    shape = str(ds.get("PresentationLUTShape", "")).strip()
    return photometric == "MONOCHROME1" or shape == PresentationLUTShape.INVERSE.value


def apply_presentation_lut(
    values: np.ndarray,
    ds: Dataset,
    output_range: tuple[float, float] = (0.0, 255.0),
) -> np.ndarray:
    """Apply the Presentation LUT to VOI output; call it after the VOI LUT.

    Parameters
    ----------
    values : numpy.ndarray
        Output of :func:`~viewerlib.pipeline.voi.apply_windowing` or
        :func:`~viewerlib.pipeline.voi.apply_voi_lut`, in `output_range`.
    ds : pydicom.dataset.Dataset
        Uses the elements listed in :func:`should_invert`.
    output_range : tuple of float, optional
        The range `values` lie in. Default (0, 255).

    Returns
    -------
    numpy.ndarray
        float32 P-values in `output_range`: ``y_max + y_min - values`` when the
        image is to be inverted, else `values` unchanged.

    Warns
    -----
    UserWarning
        If the dataset has a (2050,0010) *Presentation LUT Sequence*, which is not
        applied (only the shape is).

    Notes
    -----
    PS3.3 C.11.6: the Presentation LUT follows the VOI LUT. Inverting the
    stored values before the window would also invert which side of the window
    clips, so a window chosen for MONOCHROME2 (or read from the file) would show
    the wrong tissue; the inversion is therefore done here, on VOI output.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.PhotometricInterpretation = "MONOCHROME1"
    >>> apply_presentation_lut(np.array([0.0, 55.0, 255.0]), ds).tolist()
    [255.0, 200.0, 0.0]
    """
    if "PresentationLUTSequence" in ds:
        message = (
            "(2050,0010) 'Presentation LUT Sequence' is not applied (not "
            "implemented); only (2050,0020) 'Presentation LUT Shape' is used"
        )
        logger.warning(message)
        warnings.warn(message, UserWarning, stacklevel=2)

    out = np.asarray(values, dtype=np.float32)
    if should_invert(ds):
        y_min, y_max = (float(v) for v in output_range)
        return (y_max + y_min) - out
    return out
