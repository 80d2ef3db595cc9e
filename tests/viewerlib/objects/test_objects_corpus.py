"""Real objects from the shared corpus: dcmqi's liver SEG, ISIC dermoscopy photos."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

import viewerlib
from viewerlib.objects.segmentation import read_segmentation
from viewerlib.sources.local import FolderSource
from viewerlib.volume.volume import read_series
from viewerlib.widgets.media import MediaViewer

pytestmark = pytest.mark.extra_data


def test_dcmqi_liver_seg_lands_on_its_ct_by_uid_and_by_position(
    extra_data: Path,
) -> None:
    folder = extra_data / "dcmqi" / "segmentations"
    volume = read_series(sorted((folder / "ct-3slice").glob("*.dcm")))[0]
    seg = pydicom.dcmread(folder / "liver.dcm")

    (liver,) = read_segmentation(seg, volume)
    unreferenced = copy.deepcopy(seg)
    for item in unreferenced.PerFrameFunctionalGroupsSequence:
        del item.DerivationImageSequence
    (by_position,) = read_segmentation(unreferenced, volume)

    assert liver.name == "Liver"
    shape = volume.voxels.shape
    # Two independent placements (Source Image Sequence, Image Position
    # (Patient)) agree voxel for voxel, and no segmented pixel is lost.
    np.testing.assert_array_equal(liver.dense(shape), by_position.dense(shape))
    assert liver.dense(shape).sum() == int(np.count_nonzero(seg.pixel_array))
    # Each frame lies on the slice whose SOP Instance UID it names.
    for groups, frame in zip(seg.PerFrameFunctionalGroupsSequence, seg.pixel_array,
                             strict=True):
        uid = groups.DerivationImageSequence[0].SourceImageSequence[0]
        slices = [i for i, h in enumerate(volume.datasets)
                  if h.SOPInstanceUID == uid.ReferencedSOPInstanceUID]
        np.testing.assert_array_equal(liver.masks.get(slices[0], 0) > 0, frame > 0)


def test_dermoscopy_jpegs_from_a_folder_show_unchanged(extra_data: Path) -> None:
    folder = extra_data.parent / "non-dicom" / "dermoscopy-isic"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    source = FolderSource(folder)
    (series,) = source.search_for_series()

    viewer = viewerlib.open(series.StudyInstanceUID, source, series=series)

    assert isinstance(viewer, MediaViewer) and viewer.kind == "photo"
    files = sorted(folder.glob("*.jpg"))
    assert viewer.number_of_frames == len(files)
    decoded = [np.asarray(Image.open(path).convert("RGB")) for path in files]
    shown = sorted(viewer.frames, key=lambda f: (f.shape, f[0, 0].tolist()))
    decoded.sort(key=lambda f: (f.shape, f[0, 0].tolist()))
    for frame, original in zip(shown, decoded, strict=True):
        np.testing.assert_array_equal(frame, original)
