"""Tests of viewerlib.pipeline.display: the whole grayscale chain as one table."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_builders import build_image

from viewerlib.pipeline.display import apply_display_lut, grayscale_display_lut
from viewerlib.pipeline.instance import read_instance
from viewerlib.pipeline.voi import VOILUTFunction, WindowPreset


def shown_by_hand(stored, slope, intercept, c, w, invert):
    """PS3.3 C.11.1.1.2 rescale, C.11.2.1.2.1 LINEAR window, then inversion."""
    x = stored.astype(np.float64) * slope + intercept
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
    y = np.where(x <= c - 0.5 - (w - 1) / 2, 0, y)
    y = np.where(x > c - 0.5 + (w - 1) / 2, 255, y)
    if invert:
        y = 255 - y
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


CASES = [
    # (bits allocated, bits stored, signed, photometric, slope, intercept, c, w)
    (8, 8, False, "MONOCHROME2", 1, 0, 128, 200),
    (8, 7, True, "MONOCHROME1", 2, 10, 0, 100),
    (16, 12, False, "MONOCHROME2", 1, -1024, 40, 400),
    (16, 12, False, "MONOCHROME1", 1, 0, 2048, 4096),
    (16, 16, True, "MONOCHROME2", 1, 0, -500, 3000),
    (16, 16, False, "MONOCHROME2", 0.5, 3, 10000, 20000),
    (16, 10, True, "MONOCHROME1", 3, -7, 50, 1000),
]


@pytest.mark.parametrize(
    ("allocated", "stored_bits", "signed", "photometric", "slope", "intercept",
     "c", "w"),
    CASES,
    ids=[f"{a}-{b}-{'s' if s else 'u'}-{p[-1]}" for a, b, s, p, *_ in CASES],
)
def test_display_table_matches_the_formulas(
    allocated, stored_bits, signed, photometric, slope, intercept, c, w
):
    rng = np.random.default_rng(allocated + stored_bits)
    low = -(2 ** (stored_bits - 1)) if signed else 0
    high = 2 ** (stored_bits - 1) - 1 if signed else 2**stored_bits - 1
    stored = rng.integers(low, high, size=(6, 7), endpoint=True)
    stored[0, :2] = low, high
    ds = build_image(stored, bits_allocated=allocated, bits_stored=stored_bits,
                     signed=signed, photometric=photometric,
                     RescaleSlope=str(slope), RescaleIntercept=str(intercept))

    shown = read_instance(ds).display_frame(window=(c, w))

    expected = shown_by_hand(stored, slope, intercept, c, w,
                             photometric == "MONOCHROME1")
    np.testing.assert_array_equal(shown, expected)


def test_display_table_equals_the_staged_pipeline_for_every_value():
    ds = build_image(np.zeros((1, 1)), bits_stored=12, signed=True,
                     RescaleSlope="1", RescaleIntercept="-1024")
    instance = read_instance(ds)
    every = np.arange(-2048, 2048, dtype=np.int16).reshape(64, 64)
    preset = WindowPreset(40, 80, "", VOILUTFunction.SIGMOID)

    table = grayscale_display_lut(ds, 0, preset, every.dtype)
    fast = apply_display_lut(every, table)
    # The staged path: 32-bit input does not take the table.
    slow = instance.display_stored_frame(every.astype(np.int32), 0, preset)

    np.testing.assert_array_equal(fast, slow)


def test_display_tables_are_cached_per_window():
    instance = read_instance(build_image(np.arange(6).reshape(2, 3)))
    instance.display_frame(window=(2, 4))
    instance.display_frame(window=(2, 4))
    instance.display_frame(window=(3, 4))
    assert len(instance._display_tables) == 2


def test_display_table_of_a_wide_type_raises():
    ds = build_image(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="8- or 16-bit"):
        grayscale_display_lut(ds, 0, WindowPreset(0, 2), np.dtype("i4"))
