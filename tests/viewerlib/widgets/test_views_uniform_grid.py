"""MPR and 3D viewers, kernel side: uneven gaps and gantry tilt reach the browser right.

The browser reslices through the affine it is sent (MPR) or draws the voxel
grid as a box of shape x spacing (3D), so what it gets must be a uniform grid:
these tests check the volume each viewer sends, against positions and values
worked by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from viewerlib import read_series
from viewerlib.widgets.mpr import MPRViewer
from viewerlib.widgets.volume3d import VolumeViewer

SERIES_UID, FRAME_UID = generate_uid(), generate_uid()


def ct_slice(hu: np.ndarray, position, orientation=(1, 0, 0, 0, 1, 0),
             spacing=(1.0, 1.0)) -> Dataset:
    """One CT slice holding `hu` (stored HU + 1024, intercept -1024)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.SeriesInstanceUID, ds.FrameOfReferenceUID = SERIES_UID, FRAME_UID
    ds.Modality, ds.ImageType = "CT", ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in spacing]
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    ds.PixelData = (hu + 1024).astype("<i2").tobytes()
    return ds


@pytest.fixture(scope="module")
def gap_volume():
    """Slices at z = 0, 1, 2 and 5 mm, HU 10 * z: a 3 mm gap after slice 2."""
    slices = [ct_slice(np.full((3, 4), 10 * z), (0, 0, z)) for z in (0, 1, 2, 5)]
    with pytest.warns(UserWarning, match="Non-uniform"):
        return read_series(slices)[0]


@pytest.fixture(scope="module")
def tilted_volume():
    """Tilt acos(0.8) about x; origins 3 mm apart along z; HU = 5 z."""
    slices = []
    r = np.arange(4)[:, None] * np.ones((1, 5))
    for k in range(5):
        # Row r of slice k is at z = 3 k + 3 r (5 mm rows, column cosines
        # (0, 0.8, 0.6)).
        slices.append(ct_slice(5 * (3 * k + 3 * r), (0, 0, 3 * k),
                               (1, 0, 0, 0, 0.8, 0.6), spacing=(5.0, 1.0)))
    with pytest.warns(UserWarning, match="Gantry tilt"):
        return read_series(slices)[0]


def test_mpr_viewer_sends_uneven_gaps_on_a_uniform_grid(gap_volume):
    viewer = MPRViewer(gap_volume)

    # 1 mm planes at z = 0 .. 5, HU 10 * z; the 3 mm gap is a hole (two
    # slices' worth): z 3 and 4 are blank, not made up from z 2 and 5.
    assert viewer.shape == [6, 3, 4]
    assert viewer.volume.voxels[:, 0, 0].tolist() == [0, 10, 20, 0, 0, 50]
    assert viewer.volume.missing_slices == [3, 4]
    affine = np.array(viewer.affine).reshape(4, 4)
    np.testing.assert_allclose(affine[:3, 0], [0, 0, 1])
    assert any(w.startswith("Resampled from 4 slices to 6")
               for w in viewer.volume.warnings)
    # On screen: the line above the planes, and both edges of the hole marked.
    assert viewer.warning.splitlines() == [
        "No images in 1 gap(s) of up to 3.0 mm: 2 slices blank",
        "Uneven slice spacing (1.000 to 3.000 mm)"]
    (band,) = viewer.missing_planes
    assert band["band"] and band["half_mm"] == pytest.approx(1.5)
    np.testing.assert_allclose(band["point"][2], 3.5)
    assert band["text"].startswith("No image between Im 3/4 and Im 4/4 (3.0 mm)")


def test_mpr_viewer_keeps_an_even_tilted_volume_and_its_shear(tilted_volume):
    # The browser samples through the sheared affine, as the kernel does.
    viewer = MPRViewer(tilted_volume)
    assert viewer.volume is tilted_volume
    affine = np.array(viewer.affine).reshape(4, 4)
    np.testing.assert_allclose(affine[:3, 0], [0, 0, 3])


def test_volume_viewer_resamples_a_tilted_volume_before_the_texture(tilted_volume):
    viewer = VolumeViewer(tilted_volume, max_side=64)

    shown = viewer.volume
    assert shown is not tilted_volume
    assert shown.warnings[-1].startswith("Resampled")
    linear = shown.affine[:3, :3]
    gram = linear.T @ linear
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-9)
    # The box is the resampled grid: planes 3 * 0.8 = 2.4 mm apart along the
    # normal (0, -0.6, 0.8), 5 mm rows, 1 mm columns.
    assert shown.spacing_mm == pytest.approx((2.4, 5.0, 1.0))
    assert viewer.extent_mm == pytest.approx(
        [n * s for n, s in zip(shown.shape, shown.spacing_mm, strict=True)])
    assert viewer.texture_shape == list(shown.shape)
    # A voxel of the new grid inside the data reads HU 5 z at its own z.
    inside = np.argwhere(shown.voxels > shown.voxels.min())
    s, r, c = inside[len(inside) // 2]
    z = shown.index_to_lps([s, r, c])[2]
    assert shown.voxels[s, r, c] == pytest.approx(5 * z, abs=0.51)


def test_volume_viewer_resamples_uneven_gaps(gap_volume):
    # No line of its own: the hole left blank is warned, once.
    with pytest.warns(UserWarning, match="Gap.s. in the series") as caught:
        viewer = VolumeViewer(gap_volume, max_side=64)
    assert len(caught) == 1
    # Six 1 mm planes, not four planes of the 1 mm median gap; z 3, 4 blank.
    assert viewer.extent_mm == pytest.approx([6.0, 3.0, 4.0])
    assert viewer.volume.voxels[:, 0, 0].tolist() == [0, 10, 20, 0, 0, 50]
