"""Tests of viewerlib.pipeline.instance: the path users call."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
from pipeline_builders import build_image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from viewerlib import read_instance
from viewerlib.pipeline.instance import NotAnImageError
from viewerlib.pipeline.voi import VOILUTFunction, VOILUTPreset, WindowPreset


def test_display_frame_of_a_multiframe_picks_the_frame():
    stored = np.stack([np.full((2, 2), 100), np.array([[0, 100], [200, 300]])])
    ds = build_image(stored, bits_stored=12)

    instance = read_instance(ds)
    shown = instance.display_frame(1)

    assert instance.number_of_frames == 2
    # Data range 0..300 with LINEAR_EXACT: ((x - 150) / 300 + 0.5) * 255.
    assert shown.tolist() == [[0, 85], [170, 255]]


def test_window_argument_overrides_the_files_window():
    stored = np.array([[0, 50, 100]])
    ds = build_image(stored, bits_stored=12, WindowCenter=1000, WindowWidth=10)

    shown = read_instance(ds).display_frame(window=(50.5, 100))

    # LINEAR c=50.5, w=100: ((x - 50) / 99 + 0.5) * 255; 0 -> 0, 100 -> 255.
    assert shown.tolist() == [[0, 128, 255]]


def test_signed_ct_shows_hounsfield_window():
    stored = np.array([[-2000, -1000, 0, 1000]])
    ds = build_image(stored, signed=True, RescaleSlope="1", RescaleIntercept="-1024",
                     WindowCenter=-1024 + 40, WindowWidth=400)
    instance = read_instance(ds)

    np.testing.assert_array_equal(instance.modality_frame(),
                                  [[-3024, -2024, -1024, -24]])
    # LINEAR c=-984, w=400 ramps from -1184 to -785: -1024 is inside it,
    # ((-1024 + 984.5) / 399 + 0.5) * 255 = 102.26.
    assert instance.display_frame().tolist() == [[0, 0, 102, 255]]


def test_windows_list_every_pair():
    ds = build_image(np.zeros((1, 1)), WindowCenter=[40, 300], WindowWidth=[80, 1500],
                     WindowCenterWidthExplanation=["BRAIN", "BONE"])
    assert read_instance(ds).windows == [(40.0, 80.0, "BRAIN"), (300.0, 1500.0, "BONE")]


@pytest.mark.parametrize(
    ("elements", "spacing", "source"),
    [
        ({"PixelSpacing": [0.5, 0.25]}, (0.5, 0.25), "PixelSpacing"),
        ({"ImagerPixelSpacing": [0.2, 0.3]}, (0.2, 0.3), "ImagerPixelSpacing"),
        ({"PixelSpacing": [0.5, 0.25], "ImagerPixelSpacing": [1, 1]}, (0.5, 0.25),
         "PixelSpacing"),
        ({"PixelAspectRatio": [4, 3]}, (4 / 3, 1.0), "PixelAspectRatio"),
        ({}, None, ""),
    ],
    ids=["pixel", "imager", "pixel-first", "aspect-ratio", "none"],
)
def test_non_square_pixel_spacing_sources(elements, spacing, source):
    instance = read_instance(build_image(np.zeros((1, 1)), **elements))
    assert instance.pixel_spacing_mm == spacing
    assert instance.pixel_spacing_source == source


def test_unusable_pixel_spacing_falls_back_and_is_reported():
    ds = build_image(np.zeros((1, 1)), PixelSpacing=[0.2, 0, 0.2],
                     ImagerPixelSpacing=[0.3, 0.3])
    instance = read_instance(ds)
    assert instance.pixel_spacing_mm == (0.3, 0.3)
    assert any("not two positive numbers" in w for w in instance.warnings)


def test_colour_modality_frame_raises():
    ds = build_image(np.zeros((1, 1, 3)), bits_allocated=8, photometric="RGB")
    with pytest.raises(ValueError, match="MONOCHROME1/2"):
        read_instance(ds).modality_frame()


def test_instance_without_pixels_raises():
    with pytest.raises(NotAnImageError, match="RT Plan Storage.*no \\(7FE0,0010\\)"):
        read_instance(get_testdata_file("rtplan.dcm", download=False))


def test_non_dicom_file_raises(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    with pytest.raises(NotAnImageError, match="not a DICOM file"):
        read_instance(path)


def test_file_without_preamble_or_file_meta_is_read_and_shown(tmp_path):
    # An ACR-NEMA style file: the bare dataset in Implicit VR Little Endian.
    ds = build_image(np.array([[0, 10], [20, 30]]), bits_stored=12)
    del ds.file_meta
    path = tmp_path / "acr-nema"
    ds.save_as(path, implicit_vr=True, little_endian=True,
               enforce_file_format=False)
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(path)

    shown = read_instance(path).display_frame()

    assert shown.tolist() == [[0, 85], [170, 255]]


def test_bad_window_argument_raises():
    with pytest.raises(ValueError, match="center, width"):
        read_instance(build_image(np.zeros((1, 1)))).display_frame(window=(1,))


def _voi_lut(first: int, entries: list[int], bits: int = 8,
             explanation: str | None = None) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(entries), first, bits]
    item.LUTData = entries
    if explanation is not None:
        item.LUTExplanation = explanation
    return item


def test_every_voi_lut_is_offered_as_a_preset_after_the_windows():
    ds = build_image(np.zeros((1, 1)), WindowCenter=[40, 300], WindowWidth=[80, 1500],
                     WindowCenterWidthExplanation=["BRAIN", "BONE"])
    ds.VOILUTSequence = [_voi_lut(0, [0, 255], explanation="HARD"),
                         _voi_lut(0, [255, 0])]

    presets = read_instance(ds).voi_presets()

    assert presets == [
        WindowPreset(40.0, 80.0, "BRAIN"), WindowPreset(300.0, 1500.0, "BONE"),
        VOILUTPreset(0, "HARD"), VOILUTPreset(1, "VOI LUT 2")]
    # `windows` stays the (center, width, explanation) of the windows alone.
    assert read_instance(ds).windows == [(40.0, 80.0, "BRAIN"),
                                         (300.0, 1500.0, "BONE")]


def test_display_frame_reaches_a_voi_lut_when_the_file_also_has_windows():
    stored = np.array([[99, 100, 101, 102, 103, 500]])
    ds = build_image(stored, bits_stored=12, WindowCenter=2000, WindowWidth=10)
    ds.VOILUTSequence = [_voi_lut(100, [0, 60, 200, 255]),
                         _voi_lut(100, [255, 200, 60, 0])]
    instance = read_instance(ds)

    # The file's window (2000 / 10) makes every value here black.
    assert instance.display_frame().tolist() == [[0] * 6]
    # PS3.3 C.11.2.1.1: values below the first mapped value (100) take the
    # first entry, values past the last (103) the last.
    assert instance.display_frame(window=VOILUTPreset(0)).tolist() == [
        [0, 0, 60, 200, 255, 255]]
    assert instance.display_frame(window=instance.voi_presets()[2]).tolist() == [
        [255, 255, 200, 60, 0, 0]]


def test_unknown_voi_lut_index_raises():
    ds = build_image(np.zeros((1, 1)))
    ds.VOILUTSequence = [_voi_lut(0, [0, 255])]
    with pytest.raises(ValueError, match="lut_index 3.*has 1"):
        read_instance(ds).display_frame(window=VOILUTPreset(3))


@pytest.mark.parametrize("bits_allocated", [8, 16], ids=["table-8", "table-16"])
def test_monochrome1_voi_lut_is_inverted_after_the_lut(bits_allocated):
    stored = np.array([[99, 100, 101, 102, 103, 200]])
    ds = build_image(stored, bits_allocated=bits_allocated,
                     photometric="MONOCHROME1")
    ds.VOILUTSequence = [_voi_lut(100, [0, 60, 200, 255])]

    shown = read_instance(ds).display_frame()

    # LUT output 0, 0, 60, 200, 255, 255; MONOCHROME1 (PS3.3 C.7.6.3.1.2)
    # then shows 255 - y.
    assert shown.tolist() == [[255, 255, 195, 55, 0, 0]]


def test_monochrome1_16_bit_voi_lut_entries_are_scaled_then_inverted():
    # 16-bit entries span 0..65535 (PS3.3 C.11.2.1.1): 13107 -> 51, inverted 204.
    ds = build_image(np.array([[0, 1, 2]]), photometric="MONOCHROME1")
    ds.VOILUTSequence = [_voi_lut(0, [0, 13107, 65535], bits=16)]

    assert read_instance(ds).display_frame().tolist() == [[255, 204, 0]]


_X = [-100, -25, 0, 25, 100]


@pytest.mark.parametrize(("function", "photometric", "expected"), [
    # PS3.3 C.11.2.1.3.1, y = 255 / (1 + exp(-4 x / 100)): 4.59, 68.58, 127.5,
    # 186.42, 250.41, rounded half to even.
    ("SIGMOID", "MONOCHROME2", [5, 69, 128, 186, 250]),
    # Inverted after the function: 255 - y = 250.41, 186.42, 127.5, ...
    ("SIGMOID", "MONOCHROME1", [250, 186, 128, 69, 5]),
    # PS3.3 C.11.2.1.3.2, y = (x / 100 + 0.5) * 255: 0, 63.75, 127.5, 191.25, 255.
    ("LINEAR_EXACT", "MONOCHROME2", [0, 64, 128, 191, 255]),
])
def test_voi_lut_function_is_read_from_the_file(function, photometric, expected):
    ds = build_image(np.array([_X]), signed=True, photometric=photometric,
                     WindowCenter=0, WindowWidth=100, VOILUTFunction=function)
    instance = read_instance(ds)

    assert instance.window_presets()[0].function is VOILUTFunction(function)
    assert instance.display_frame().tolist() == [expected]
    # The sigmoid by hand at x = -25, to show where the expected values come from.
    assert 255 / (1 + math.exp(1)) == pytest.approx(68.58, abs=0.01)


@pytest.mark.parametrize(("bits_stored", "vr", "written"), [
    (16, "SS", -2000),
    (16, "US", 63536),  # -2000 written as unsigned: 0xF830
    (12, "US", 2096),  # -2000 in 12 bits: 0x830
], ids=["ss", "us-16", "us-12"])
def test_signed_pixel_padding_value_is_left_out_of_the_default_window(
        bits_stored, vr, written):
    stored = np.array([[-2000, -2000, 0, 100, 200]])
    ds = build_image(stored, bits_stored=bits_stored, signed=True)
    ds.add_new(0x00280120, vr, written)  # (0028,0120) Pixel Padding Value

    instance = read_instance(ds)

    # Without the padding the data range is 0..200: LINEAR_EXACT c = 100,
    # w = 200 gives ((x - 100) / 200 + 0.5) * 255 -> 0, 127.5, 255; the
    # padding (-2000) lies below the window.
    assert instance.display_frame().tolist() == [[0, 0, 0, 128, 255]]
