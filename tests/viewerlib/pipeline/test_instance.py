"""Tests of viewerlib.pipeline.instance: the path users call."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pipeline_builders import build_image
from pydicom.data import get_testdata_file

from viewerlib import read_instance


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
    with pytest.raises(ValueError, match="RT Plan Storage.*no \\(7FE0,0010\\)"):
        read_instance(get_testdata_file("rtplan.dcm", download=False))


def test_non_dicom_file_raises(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    with pytest.raises(ValueError, match="not a DICOM file"):
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
