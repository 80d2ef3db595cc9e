"""Colours recommended by DICOM objects, as the sRGB a screen shows."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

# PS3.3 C.10.7.1.1: CIELab values are relative to the D50 illuminant.
_D50_WHITE = np.array([0.9642, 1.0, 0.8251])
# Bradford chromatic adaptation from D50 to D65, sRGB's white (Lindbloom's table).
_BRADFORD_D50_TO_D65 = np.array([
    [0.9555766, -0.0230393, 0.0631636],
    [-0.0282895, 1.0099416, 0.0210077],
    [0.0122982, -0.0204830, 1.3299098],
])
# IEC 61966-2-1: XYZ (D65) to linear sRGB.
_XYZ_TO_LINEAR_SRGB = np.array([
    [3.2404542, -1.5371385, -0.4985314],
    [-0.9692660, 1.8760108, 0.0415560],
    [0.0556434, -0.2040259, 1.0572252],
])


def dicom_lab_to_rgb(value: Sequence[int]) -> tuple[int, int, int]:
    """sRGB (0 to 255) of a DICOM-scaled CIELab triplet.

    Parameters
    ----------
    value : sequence of three int
        L*, a*, b* scaled to 0 to 65535 as in (0062,000D) *Recommended Display
        CIELab Value*: L* 0 to 100 and a*, b* -128 to 127 (PS3.3 C.10.7.1.1).

    Returns
    -------
    tuple of int
        Red, green and blue, clipped to the sRGB gamut.

    Raises
    ------
    ValueError
        If the value does not have three components.

    Examples
    --------
    >>> dicom_lab_to_rgb([65535, 32896, 32896])  # L* 100, a* 0, b* 0
    (255, 255, 255)
    >>> dicom_lab_to_rgb([32768, 32896, 32896])  # mid grey, L* 50
    (119, 119, 119)
    """
    if len(value) != 3:
        raise ValueError(
            f"a CIELab value has 3 components (L*, a*, b*), got {list(value)!r}"
        )
    scaled = np.asarray(value, dtype=float)
    lightness = scaled[0] * 100.0 / 65535.0
    a_star, b_star = scaled[1:] * 255.0 / 65535.0 - 128.0

    # CIE 15: Lab to XYZ relative to the white point.
    f_y = (lightness + 16.0) / 116.0
    f = np.array([f_y + a_star / 500.0, f_y, f_y - b_star / 200.0])
    delta = 6.0 / 29.0
    relative = np.where(f > delta, f**3, 3 * delta**2 * (f - 4.0 / 29.0))
    xyz_d65 = _BRADFORD_D50_TO_D65 @ (relative * _D50_WHITE)

    linear = np.clip(_XYZ_TO_LINEAR_SRGB @ xyz_d65, 0.0, 1.0)
    encoded = np.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055
    )
    red, green, blue = (int(round(float(v) * 255.0)) for v in encoded)
    return red, green, blue


def grey_to_rgb(value: int) -> tuple[int, int, int]:
    """sRGB of a (0070,0066) *Graphic Layer Recommended Display Grayscale Value*.

    The value runs from 0 (black) to 65535 (white) in P-values (PS3.3 C.10.7).

    Examples
    --------
    >>> grey_to_rgb(65535)
    (255, 255, 255)
    """
    level = int(round(min(max(int(value), 0), 65535) * 255.0 / 65535.0))
    return level, level, level
