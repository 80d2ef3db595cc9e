"""Self-checks for the lessons: plain-language feedback on a learner's answer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from viewerlib.samples.phantom import HAEMORRHAGE, Finding


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a self-check, shown to the learner as one sentence."""

    correct: bool
    feedback: str

    def __str__(self) -> str:
        return ("Correct: " if self.correct else "Not yet: ") + self.feedback

    def _repr_markdown_(self) -> str:
        return f"**{'Correct' if self.correct else 'Not yet'}**: {self.feedback}"


def finding_slice_index(volume: Any, finding: Finding = HAEMORRHAGE) -> int:
    """Index of the slice through the middle of ``finding`` in ``volume``.

    The centre in patient coordinates is mapped through the inverse of the volume's
    affine (LPS millimetres to slice, row, column).
    """
    center = np.array([*finding.center_lps_mm, 1.0])
    index = np.linalg.solve(np.asarray(volume.affine, dtype=float), center)
    return int(round(index[0]))


def check_finding_slice(viewer: Any, finding: Finding = HAEMORRHAGE) -> CheckResult:
    """Is the viewer on the slice where ``finding`` is largest (one slice either way)?

    Parameters
    ----------
    viewer : StackViewer
        The learner's viewer, opened on the study with the finding.
    finding : Finding
        The ground truth of the teaching phantom.
    """
    volume = getattr(viewer, "volume", None)
    if volume is None:
        return CheckResult(False, "open the study with viewerlib.open(...) first.")
    target = finding_slice_index(volume, finding)
    shown = int(viewer.slice_index)
    count = int(viewer.number_of_slices)
    if not 0 <= target < count:
        return CheckResult(False, "this series does not contain the finding: open the "
                           "current study, not the prior.")
    if abs(shown - target) <= 1:
        return CheckResult(True, f"image {shown + 1} cuts through the middle of the "
                           f"{finding.description} ({finding.diameter_mm:.0f} mm).")
    # Which way the slice axis points in the patient (LPS +z is the head).
    towards_head = (target - shown) * float(np.asarray(volume.affine)[2, 0]) > 0
    direction = "towards the head" if towards_head else "towards the feet"
    return CheckResult(False, f"you are on image {shown + 1} of {count}; the finding is "
                       f"largest {abs(target - shown)} images {direction}.")
