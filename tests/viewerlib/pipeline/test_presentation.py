"""Tests of viewerlib.pipeline.presentation: inversion after, not before, the VOI."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_builders import build_image

from viewerlib.pipeline.instance import read_instance
from viewerlib.pipeline.presentation import apply_presentation_lut, should_invert


def linear(x: np.ndarray, c: float, w: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 to 0..255, written out."""
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
    y = np.where(x <= c - 0.5 - (w - 1) / 2, 0, y)
    return np.where(x > c - 0.5 + (w - 1) / 2, 255, y)


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_monochrome1_is_inverted_after_the_window(bits):
    allocated = 8 if bits == 8 else 16
    top = 2**bits - 1
    stored = np.array([[0, top // 4, top // 2, top]])
    center, width = top // 4, top // 4
    ds = build_image(stored, bits_allocated=allocated, bits_stored=bits,
                     photometric="MONOCHROME1",
                     WindowCenter=center, WindowWidth=width)

    shown = read_instance(ds).display_frame()

    windowed = linear(stored.astype(float), center, width)
    expected = np.rint(255 - windowed)
    np.testing.assert_array_equal(shown, expected)
    # Inverting the stored values before the window would give another image:
    wrong = np.rint(linear(top - stored.astype(float), center, width))
    assert not np.array_equal(shown, wrong)


@pytest.mark.parametrize(
    ("photometric", "shape", "inverted"),
    [
        ("MONOCHROME2", None, False),
        ("MONOCHROME2", "IDENTITY", False),
        ("MONOCHROME2", "INVERSE", True),
        ("MONOCHROME1", None, True),
        ("MONOCHROME1", "INVERSE", True),  # DX/MG: INVERSE restates MONOCHROME1
    ],
)
def test_inversion_table(photometric, shape, inverted):
    extra = {"PresentationLUTShape": shape} if shape else {}
    ds = build_image(np.zeros((1, 1)), photometric=photometric, **extra)

    out = apply_presentation_lut(np.array([0.0, 55.0]), ds)

    assert should_invert(ds) is inverted
    assert out.tolist() == ([255.0, 200.0] if inverted else [0.0, 55.0])


def test_presentation_lut_sequence_is_reported_not_applied():
    ds = build_image(np.zeros((1, 1)))
    ds.PresentationLUTSequence = []
    with pytest.warns(UserWarning, match="not applied"):
        apply_presentation_lut(np.array([1.0]), ds)
