"""MPR and 3D viewers, kernel side: geometry, validation, what is sent."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets

from viewerlib.samples.phantom import ct_head_phantom
from viewerlib.volume.volume import read_series
from viewerlib.widgets.mpr import MPRViewer
from viewerlib.widgets.volume3d import VolumeViewer, downsample


@pytest.fixture(scope="module")
def volume():
    # A coarse grid, so that the field of view holds air around the head.
    return read_series(
        ct_head_phantom(
            rows=32, columns=40, number_of_slices=6, pixel_spacing_mm=7.0
        ).datasets
    )[0]


def _sent(viewer, monkeypatch) -> list[tuple[dict, list]]:
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(
        viewer, "send", lambda content, buffers=None: sent.append((content, buffers))
    )
    viewer._handle_message(viewer, {"type": "ready"}, [])
    return sent


def test_mpr_sends_the_whole_volume_as_binary_once(volume, monkeypatch) -> None:
    viewer = MPRViewer(volume)
    sent = _sent(viewer, monkeypatch)
    data = b"".join(bytes(buffers[0]) for _, buffers in sent)
    assert data == volume.voxels.astype("<i2").tobytes()
    state = viewer.get_state()
    state.pop("_esm")
    assert all(not isinstance(v, bytes | memoryview) for v in state.values())
    assert len(repr(state)) < 3_000


def test_mpr_starts_at_the_volume_centre_with_its_geometry(volume) -> None:
    viewer = MPRViewer(volume)
    corners = np.array(
        [[s, r, c, 1.0] for s in (0, 5) for r in (0, 31) for c in (0, 39)]
    )
    centre = (volume.affine @ corners.T).T[:, :3].mean(axis=0)
    assert viewer.center_mm == pytest.approx(centre.tolist())
    inverse = np.array(viewer.inverse_affine).reshape(4, 4)
    assert inverse @ np.array(viewer.affine).reshape(4, 4) == pytest.approx(np.eye(4))


def test_mpr_validates_slab(volume) -> None:
    viewer = MPRViewer(volume)
    viewer.slab_thickness_mm = -3
    assert viewer.slab_thickness_mm == 0
    viewer.slab_mode = "MinIP"
    assert viewer.slab_mode == "minip"
    with pytest.raises(ValueError, match="max"):
        viewer.slab_mode = "max"


def test_downsample_keeps_the_mean_and_bounds_the_size() -> None:
    voxels = np.arange(4 * 300 * 200, dtype=np.float32).reshape(4, 300, 200)
    small = downsample(voxels, 128)
    assert small.shape == (4, 100, 100)
    assert small[0, 0, 0] == pytest.approx(voxels[0, :3, :2].mean())


def test_volume_viewer_sends_an_8_bit_texture_of_the_ct_range(
    volume, monkeypatch
) -> None:
    viewer = VolumeViewer(volume, max_side=16)
    assert viewer.value_range == [-1024.0, 3071.0]
    sent = _sent(viewer, monkeypatch)
    texture = np.frombuffer(bytes(sent[0][1][0]), np.uint8).reshape(
        viewer.texture_shape
    )
    assert max(viewer.texture_shape) <= 16
    # Air (-1000 HU) maps near level 1.5, bone (1100 HU) near 133.
    assert texture.min() <= 3 and texture.max() >= 100
    assert viewer.extent_mm == pytest.approx(
        [n * s for n, s in zip(volume.shape, volume.spacing_mm)]
    )


def test_volume_viewer_rejects_an_unknown_preset(volume) -> None:
    with pytest.raises(traitlets.TraitError, match="CT bone"):
        VolumeViewer(volume, preset="Glass")


def test_report_tree_of_the_sample_sr_keeps_text_and_measurements() -> None:
    import pydicom
    from pydicom.data import get_testdata_file

    from viewerlib.widgets.report import ReportViewer, report_tree

    ds = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    tree = report_tree(ds)
    assert tree["name"] == "Diagnosis"

    def walk(node):
        yield node
        for child in node["children"]:
            yield from walk(child)

    values = [(n["name"], n["value"]) for n in walk(tree)]
    assert ("Diameter", "3 Length Unit") in values
    assert ("Some UID", "1.2.3.4.5") in values
    viewer = ReportViewer(ds)
    assert not viewer.has_pdf and viewer.tree == tree


def test_study_browser_searches_renders_thumbnails_and_opens(tmp_path) -> None:
    from viewerlib.sources.local import FolderSource
    from viewerlib.widgets.browser import StudyBrowser

    for kind in ("current", "prior"):
        study = ct_head_phantom(kind, rows=24, columns=24, number_of_slices=3)
        for index, ds in enumerate(study.datasets):
            ds.save_as(tmp_path / f"{kind}-{index}.dcm", enforce_file_format=True)
    browser = StudyBrowser(FolderSource(tmp_path, name="Folder"))
    assert browser.table.health == [{"archive": "Folder", "state": "ok", "message": ""}]
    sent: list[dict] = []
    browser.table.send = lambda content, buffers=None: sent.append(content)
    browser._handle_message(
        browser.table,
        {
            "type": "search",
            "patient_id": "LBX-0001",
            "date_from": "20260801",
            "date_to": "",
        },
        [],
    )
    assert [row["date"] for row in browser.table.results] == ["20261102"]
    assert [message["type"] for message in sent] == ["thumbnail"]
    viewer = browser.open_study(browser.table.results[0]["uid"])
    assert viewer.number_of_slices == 3 and browser.progress.value == 1.0
