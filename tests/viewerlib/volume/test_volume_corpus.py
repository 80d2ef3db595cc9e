"""read_series on real series of the shared corpus (LIGHTBOX_EXTRA_DATA)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from viewerlib import read_series

pytestmark = pytest.mark.extra_data


def _series(relative: str) -> list[Path]:
    root = os.environ.get("LIGHTBOX_EXTRA_DATA")
    if not root:
        pytest.skip("LIGHTBOX_EXTRA_DATA not set: point it at the shared real DICOM "
                    "corpus (e.g. /work/shared/data/dicom) to run the corpus tests")
    folder = Path(root) / relative
    if not folder.is_dir():
        pytest.skip(f"{relative} is not in the corpus")
    return sorted(folder.iterdir())


def test_tilted_ct_series_is_one_sheared_volume():
    with pytest.warns(UserWarning, match="Gantry tilt: .* 18.50 deg"):
        volumes = read_series(_series("dcm_qa_ct/Philips/S21610/S2010"))
    assert len(volumes) == 1
    volume = volumes[0]
    assert volume.voxels.shape == (54, 512, 512)
    assert volume.voxels.dtype == np.int16
    assert volume.spacing_mm[0] == pytest.approx(2.37, abs=0.01)


def test_dual_echo_series_splits_by_echo_and_image_type():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom header remarks
        volumes = read_series(_series("dcm_qa_table/Ph/1301_Dual-echo_iso"))
    assert [v.voxels.shape for v in volumes] == [(30, 96, 96)] * 4
    assert len({tuple(v.datasets[0].ImageType) + (v.datasets[0].EchoNumbers,)
                for v in volumes}) == 4
