"""Tests of viewerlib.pipeline.modality: Bits Stored, rescale and Modality LUT."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from pipeline_builders import build_image
from pydicom.dataset import Dataset

from viewerlib.pipeline.decode import decode_frame
from viewerlib.pipeline.modality import (
    apply_modality_lut,
    clean_stored_values,
    rescale_parameters,
)


def twos_complement(value: int, bits: int) -> int:
    """Encode `value` in `bits` bits the way a writer would."""
    return value & ((1 << bits) - 1)


CASES = [
    # (bits allocated, bits stored, signed, true stored value)
    (8, 6, False, 45),
    (8, 6, True, -20),
    (16, 12, False, 4000),
    (16, 12, True, -5),
    (16, 10, True, -512),
    (16, 16, True, -32768),
]


@pytest.mark.parametrize(("allocated", "stored", "signed", "value"), CASES)
def test_garbage_above_bits_stored_is_removed(allocated, stored, signed, value):
    # Put ones in every bit above Bits Stored (an overlay or junk would).
    garbage = ((1 << allocated) - 1) ^ ((1 << stored) - 1)
    word = twos_complement(value, stored) | garbage
    raw = np.array([[word, twos_complement(value, stored)]], f"<u{allocated // 8}")
    ds = build_image(raw, bits_allocated=allocated, bits_stored=stored,
                     signed=signed, raw_bytes=raw.tobytes())

    modality = apply_modality_lut(decode_frame(ds).pixels, ds)

    assert modality.tolist() == [[value, value]]


@pytest.mark.parametrize(("allocated", "stored", "signed", "value"), CASES)
def test_cleaning_works_without_pydicom_having_done_it(
    allocated, stored, signed, value
):
    garbage = ((1 << allocated) - 1) ^ ((1 << stored) - 1)
    word = twos_complement(value, stored) | garbage
    raw = np.array([word], f"<u{allocated // 8}")
    ds = build_image(raw.reshape(1, 1), bits_allocated=allocated, bits_stored=stored,
                     signed=signed)
    if signed:
        raw = raw.view(f"<i{allocated // 8}")

    assert clean_stored_values(raw, ds).tolist() == [value]


def test_clean_values_are_not_copied_twice():
    ds = build_image(np.zeros((1, 2)), bits_stored=12)
    clean = np.array([0, 4095], np.uint16)
    assert clean_stored_values(clean, ds) is clean


def test_rescale_uses_the_decimal_text():
    ds = build_image(np.zeros((1, 3)), bits_stored=12,
                     RescaleSlope="0.5", RescaleIntercept="-10.25")

    params = rescale_parameters(ds)
    values = apply_modality_lut(np.array([0, 1, 101], np.uint16), ds)

    assert (params.slope, params.intercept) == (Decimal("0.5"), Decimal("-10.25"))
    # m * SV + b by hand: 0.5*0 - 10.25, 0.5*1 - 10.25, 0.5*101 - 10.25
    assert values.tolist() == [-10.25, -9.75, 40.25]
    assert values.dtype == np.float32


@pytest.mark.parametrize("bits", [8, 12, 16])
@pytest.mark.parametrize("signed", [False, True])
def test_integer_rescale_is_exact_at_the_extremes(bits, signed):
    allocated = 8 if bits == 8 else 16
    low, high = ((-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed
                 else (0, 2**bits - 1))
    ds = build_image(np.zeros((1, 2)), bits_allocated=allocated, bits_stored=bits,
                     signed=signed, RescaleSlope="2", RescaleIntercept="-1024")
    dtype = f"{'i' if signed else 'u'}{allocated // 8}"

    values = apply_modality_lut(np.array([low, high], dtype), ds)

    assert values.tolist() == [2 * low - 1024, 2 * high - 1024]


def test_enhanced_multiframe_rescale_is_per_frame():
    ds = build_image(np.zeros((2, 1, 1)), bits_stored=12)
    shared = Dataset()
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = "1", "-1000"
    shared.PixelValueTransformationSequence = [transform]
    ds.SharedFunctionalGroupsSequence = [shared]
    frame_1 = Dataset()
    own = Dataset()
    own.RescaleSlope, own.RescaleIntercept = "3", "7"
    frame_1.PixelValueTransformationSequence = [own]
    ds.PerFrameFunctionalGroupsSequence = [Dataset(), frame_1]

    stored = np.array([10], np.uint16)

    assert apply_modality_lut(stored, ds, frame_index=0).tolist() == [-990.0]
    assert apply_modality_lut(stored, ds, frame_index=1).tolist() == [37.0]
    assert rescale_parameters(ds, 0).source == "shared"
    assert rescale_parameters(ds, 1).source == "per-frame"


def test_modality_lut_sequence_clamps_outside_its_range():
    ds = build_image(np.zeros((1, 1)), bits_stored=12)
    item = Dataset()
    item.LUTDescriptor = [4, 10, 16]
    item.LUTData = [100, 200, 300, 400]
    item.ModalityLUTType = "OD"
    ds.ModalityLUTSequence = [item]

    values = apply_modality_lut(np.array([5, 10, 11, 13, 20], np.uint16), ds)

    # Below the first mapped value -> first entry; above the last -> last entry.
    assert values.tolist() == [100, 100, 200, 400, 400]
