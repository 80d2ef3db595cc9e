"""Self-checks accept the right answer and reject wrong ones in plain words."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from viewerlib.samples.phantom import HAEMORRHAGE
from viewerlib.teaching.checks import check_finding_slice, finding_slice_index


def _volume(slice_step_z: float = 4.0, first_z: float = -84.0) -> SimpleNamespace:
    # Axial: slice axis along +z (or -z when the step is negative).
    affine = np.eye(4)
    affine[:3, :3] = [[0, 0, 0.9], [0, 0.9, 0], [slice_step_z, 0, 0]]
    affine[:3, 3] = [-114.75, -114.75, first_z]
    return SimpleNamespace(affine=affine)


def _viewer(slice_index: int, volume=None) -> SimpleNamespace:
    return SimpleNamespace(volume=volume or _volume(), slice_index=slice_index,
                           number_of_slices=48)


def test_finding_slice_index_from_the_affine() -> None:
    assert finding_slice_index(_volume()) == round((HAEMORRHAGE.center_lps_mm[2] + 84) / 4)


def test_right_slice_is_accepted() -> None:
    target = finding_slice_index(_volume())
    result = check_finding_slice(_viewer(target))
    assert result.correct
    assert "Correct" in str(result)


@pytest.mark.parametrize("offset", [-10, -2, 2, 15])
def test_wrong_slice_is_rejected_with_the_way_to_go(offset: int) -> None:
    target = finding_slice_index(_volume())
    result = check_finding_slice(_viewer(target + offset))
    assert not result.correct
    expected = "towards the head" if offset < 0 else "towards the feet"
    assert expected in result.feedback


def test_direction_follows_the_slice_axis_not_the_index() -> None:
    volume = _volume(slice_step_z=-4.0, first_z=104.0)
    target = finding_slice_index(volume)
    assert "towards the feet" in check_finding_slice(_viewer(target - 5, volume)).feedback


def test_without_a_viewer_the_learner_is_told_what_to_do() -> None:
    result = check_finding_slice(SimpleNamespace(slice_index=0, number_of_slices=1))
    assert not result.correct and "viewerlib.open" in result.feedback
