"""MONOCHROME1 in the MPR and stack viewers: inverted, and after the window.

PS3.3 C.7.6.3.1.2: MONOCHROME1 shows the minimum value white; PS3.3 C.11.6:
the inversion belongs to the Presentation LUT, after the VOI (window). The
volume below holds air (-1000 HU), water (40 HU at the window centre), soft
tissue (100 HU) and bone (1000 HU) under the file's window 40 / 400 (LINEAR,
PS3.3 C.11.2.1.2.1), which gives, worked by hand:

    x = -1000:  below c - 0.5 - (w - 1) / 2 = -160          ->   0
    x =    40:  ((40 - 39.5) / 399 + 0.5) * 255 = 127.82    -> 128
    x =   100:  ((100 - 39.5) / 399 + 0.5) * 255 = 166.17   -> 166
    x =  1000:  above c - 0.5 + (w - 1) / 2 = 239           -> 255

and after the MONOCHROME1 inversion (255 - y, rounded): 255, 127, 89, 0, so
air is white. Inverting before the window instead would show air black.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from viewerlib import read_series
from viewerlib.pipeline.voi import apply_windowing
from viewerlib.widgets.mpr import MPRViewer
from viewerlib.widgets.stack import StackViewer

HU = [-1000, 40, 100, 1000]
SHOWN_MONOCHROME2 = [0, 128, 166, 255]
SHOWN_MONOCHROME1 = [255, 127, 89, 0]
VOI_JS = Path(__file__).resolve().parents[3] / "viewerlib" / "widgets" / "voi.js"


def ct_volume(photometric: str, **elements: object):
    """Three 2 x 4 slices, each row holding the HU values above."""
    series, frame = generate_uid(), generate_uid()
    slices = []
    for z in (0.0, 2.0, 4.0):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series, frame
        ds.Modality = "CT"
        ds.Rows, ds.Columns = 2, 4
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.ImagePositionPatient = [0.0, 0.0, z]
        ds.ImageOrientationPatient = [1.0, 0, 0, 0, 1.0, 0]
        ds.PixelSpacing = [1.0, 1.0]
        ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        for keyword, value in elements.items():
            setattr(ds, keyword, value)
        ds.PixelData = np.tile(np.array(HU, "<i2"), (2, 1)).tobytes()
        slices.append(ds)
    return read_series(slices)[0]


def shown_by_traits(viewer) -> list[int]:
    """The grey levels the viewer's traits call for: window, then inversion."""
    grey = apply_windowing(np.array(HU, float), viewer.window_center,
                           viewer.window_width, viewer.window_function)
    if viewer.invert:
        grey = 255.0 - grey
    return np.rint(grey).astype(int).tolist()


@pytest.mark.parametrize("make_viewer", [MPRViewer, StackViewer.from_volume],
                         ids=["mpr", "stack"])
@pytest.mark.parametrize(("photometric", "elements", "invert", "expected"), [
    ("MONOCHROME1", {}, True, SHOWN_MONOCHROME1),
    ("MONOCHROME2", {}, False, SHOWN_MONOCHROME2),
    # PS3.3 C.11.6.1.2: INVERSE on MONOCHROME2 inverts too.
    ("MONOCHROME2", {"PresentationLUTShape": "INVERSE"}, True, SHOWN_MONOCHROME1),
    # One inversion, never two (PS3.3 C.8.11.7.1.1 pairs them for DX).
    ("MONOCHROME1", {"PresentationLUTShape": "INVERSE"}, True, SHOWN_MONOCHROME1),
], ids=["monochrome1", "monochrome2", "inverse-shape", "monochrome1-inverse"])
def test_viewer_inverts_after_the_window_as_the_file_says(make_viewer, photometric,
                                                          elements, invert,
                                                          expected):
    viewer = make_viewer(ct_volume(photometric, **elements))

    assert viewer.invert is invert
    assert (viewer.window_center, viewer.window_width) == (40.0, 400.0)
    assert viewer.window_function == "LINEAR"
    assert shown_by_traits(viewer) == expected


def test_monochrome1_shows_air_white_and_bone_black():
    viewer = MPRViewer(ct_volume("MONOCHROME1"))
    air, _, _, bone = shown_by_traits(viewer)
    assert (air, bone) == (255, 0)


@pytest.mark.parametrize("make_viewer", [MPRViewer, StackViewer.from_volume],
                         ids=["mpr", "stack"])
def test_an_explicit_invert_wins_over_the_file(make_viewer):
    assert make_viewer(ct_volume("MONOCHROME1"), invert=False).invert is False


def _front_end_grey_levels(center: float, width: float, function: str,
                           invert: bool) -> list[int]:
    """Run voi.js, the windowing every viewer's front end shares, in Node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (make setup installs it)")
    script = f"""
const vm = require("vm");
const fs = require("fs");
vm.runInThisContext(fs.readFileSync({json.dumps(str(VOI_JS))}, "utf8"));
const frame = Int16Array.from({json.dumps(HU)});
const pixels = new Uint8ClampedArray(frame.length * 4);
windowInto(pixels, frame, {json.dumps(function)}, {center}, {width},
           {json.dumps(invert)}, makeLutCache());
const floats = new Uint8ClampedArray(frame.length * 4);
windowInto(floats, Float32Array.from(frame), {json.dumps(function)}, {center},
           {width}, {json.dumps(invert)}, makeLutCache());
console.log(JSON.stringify([Array.from(pixels).filter((_, i) => i % 4 === 0),
                            Array.from(floats).filter((_, i) => i % 4 === 0)]));
"""
    result = subprocess.run([node, "-e", script], capture_output=True, text=True,
                            timeout=60, check=True)
    int16_levels, float_levels = json.loads(result.stdout)
    assert int16_levels == float_levels  # both routes of the front end agree
    return int16_levels


@pytest.mark.parametrize(("photometric", "expected"), [
    ("MONOCHROME1", SHOWN_MONOCHROME1), ("MONOCHROME2", SHOWN_MONOCHROME2)])
def test_front_end_windowing_with_the_mpr_traits_inverts_after_the_window(
        photometric, expected):
    viewer = MPRViewer(ct_volume(photometric))

    levels = _front_end_grey_levels(viewer.window_center, viewer.window_width,
                                    viewer.window_function, viewer.invert)

    assert levels == expected
