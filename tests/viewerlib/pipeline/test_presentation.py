"""Tests of viewerlib.pipeline.presentation: inversion after, not before, the VOI."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
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


def _with_presentation_lut(ds, entries, bits, data, first=0):
    item = Dataset()
    item.LUTDescriptor = [entries, first, bits]
    item.LUTData = list(data)
    ds.PresentationLUTSequence = [item]
    return ds


def test_presentation_lut_sequence_scales_input_and_output():
    # PS3.3 C.11.6.1: VOI output 0..255 is scaled onto entries 0..4095 of a
    # reversed 12-bit ramp, entries then scale back from 0..4095 to 0..255.
    # 51 -> index rint(51 * 4095 / 255) = 819 -> entry 3276 -> 3276 * 255 / 4095.
    ds = _with_presentation_lut(build_image(np.zeros((1, 1))), 4096, 12,
                                range(4095, -1, -1))

    out = apply_presentation_lut(np.array([0.0, 51.0, 255.0]), ds)

    np.testing.assert_allclose(out, [255.0, 204.0, 0.0], atol=1e-4)


def test_presentation_lut_sequence_overrides_monochrome1():
    # PS3.4 N.2.1.4 Note 1: with a Presentation LUT the Photometric
    # Interpretation is overridden, so an identity table does not invert.
    ds = build_image(np.zeros((1, 1)), photometric="MONOCHROME1")
    _with_presentation_lut(ds, 256, 10, [4 * i for i in range(256)])

    out = apply_presentation_lut(np.array([0.0, 255.0]), ds)

    assert should_invert(ds) is False
    np.testing.assert_allclose(out, [0.0, 1020 * 255 / 1023], atol=1e-4)


def test_presentation_lut_sequence_is_used_by_display_frame():
    ds = build_image(np.array([[0, 255]]), bits_allocated=8,
                     WindowCenter=127.5, WindowWidth=256)
    _with_presentation_lut(ds, 256, 10, [1023 - 4 * i for i in range(256)])

    shown = read_instance(ds).display_frame()

    # Stored 0 -> VOI 0 -> entry 1023 -> 255; stored 255 -> entry 3 -> rint(0.75).
    assert shown.tolist() == [[255, 1]]


@pytest.mark.parametrize(
    ("entries", "data", "match"),
    [(256, range(10), "declares 256 entries"), (4, None, "lacks")],
    ids=["short-data", "missing-data"],
)
def test_broken_presentation_lut_sequence_raises(entries, data, match):
    ds = build_image(np.zeros((1, 1)))
    item = Dataset()
    item.LUTDescriptor = [entries, 0, 12]
    if data is not None:
        item.LUTData = list(data)
    ds.PresentationLUTSequence = [item]
    with pytest.raises(ValueError, match=match):
        apply_presentation_lut(np.array([1.0]), ds)
