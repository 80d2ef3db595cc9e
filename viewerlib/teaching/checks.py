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


# -- generic checks: every one says "not answered yet" for None, never raises -------

NOT_ANSWERED = ("not answered yet: put your answer in the variable above and run "
                "this cell again.")


def _not_answered(answer: Any) -> bool:
    return answer is None or (isinstance(answer, str) and not answer.strip())


def check_number(answer: Any, expected: float, tolerance: float, unit: str,
                 what: str, hint: str = "") -> CheckResult:
    """Is ``answer`` within ``tolerance`` of ``expected``?

    Parameters
    ----------
    answer : float or None
        The learner's number; ``None`` means not answered yet.
    expected, tolerance : float
        The truth and how far from it an answer may be (same unit).
    unit, what : str
        Words for the feedback, e.g. ``"mm"`` and ``"the diameter"``.
    hint : str
        Said when the answer is wrong, after how far off it is.

    Examples
    --------
    >>> check_number(21.0, 22.0, 2.0, "mm", "the diameter").correct
    True
    >>> str(check_number(None, 22.0, 2.0, "mm", "the diameter"))[:7]
    'Not yet'
    """
    if _not_answered(answer):
        return CheckResult(False, NOT_ANSWERED)
    if isinstance(answer, bool):
        return CheckResult(False, f"{what} is a number in {unit}, not True or False.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return CheckResult(False, f"{what} should be a number in {unit}; you gave "
                           f"{answer!r}.")
    if not np.isfinite(value):
        return CheckResult(False, f"{what} should be a finite number, not {value}.")
    if abs(value - expected) <= tolerance:
        return CheckResult(True, f"{what} is {expected:g} {unit}; your {value:g} "
                           f"{unit} is within {tolerance:g} {unit}.")
    direction = "too high" if value > expected else "too low"
    return CheckResult(False, f"{value:g} {unit} is {direction} for {what}. "
                       + (hint or "Measure again on the images."))


def check_choice(answer: Any, expected: Any, what: str, explanation: str,
                 choices: tuple[Any, ...] = ()) -> CheckResult:
    """Is ``answer`` the expected choice (strings compared without case or spaces)?

    Examples
    --------
    >>> check_choice("Right ", "right", "the side", "the M1 is cut off").correct
    True
    """
    if _not_answered(answer):
        return CheckResult(False, NOT_ANSWERED)

    def norm(value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    if choices and norm(answer) not in {norm(c) for c in choices}:
        return CheckResult(False, f"{what} is one of {', '.join(map(repr, choices))}; "
                           f"you gave {answer!r}.")
    if norm(answer) == norm(expected) and type(answer) is type(expected):
        return CheckResult(True, explanation)
    return CheckResult(False, f"{answer!r} is not {what}. Look again: the answer is "
                       "on the images or in the output above.")


def check_window(viewer: Any, preset: str) -> CheckResult:
    """Does ``viewer`` show the named window preset (center and width within 1)?

    Parameters
    ----------
    viewer : StackViewer
        The learner's viewer; its ``presets`` rows are [name, center, width, ...].
    preset : str
        Name of the preset, e.g. ``"Stroke"`` (case does not matter).
    """
    if viewer is None:
        return CheckResult(False, NOT_ANSWERED)
    rows = {str(row[0]).upper(): row for row in getattr(viewer, "presets", [])}
    row = rows.get(preset.upper())
    if row is None:
        return CheckResult(False, f"this viewer offers no {preset} preset; open a CT "
                           "study with viewerlib.open(...).")
    center, width = float(viewer.window_center), float(viewer.window_width)
    if abs(center - float(row[1])) <= 1 and abs(width - float(row[2])) <= 1:
        return CheckResult(True, f"{preset} window: center {row[1]:g}, width "
                           f"{row[2]:g} HU.")
    return CheckResult(False, f"the viewer shows center {center:g}, width {width:g}; "
                       f"the {preset} preset is center {row[1]:g}, width {row[2]:g}. "
                       "Press its button, or set window_center and window_width.")


# -- radiologist ----------------------------------------------------------------------

def check_haemorrhage_diameter(answer: Any) -> CheckResult:
    """The diameter of the teaching haemorrhage in mm (within 3 mm)."""
    return check_number(answer, HAEMORRHAGE.diameter_mm, 3.0, "mm",
                        "the haemorrhage's diameter",
                        "Measure across the widest part, on the slice where it is "
                        "largest, with the Bone window off (Brain window).")


def check_haemorrhage_density(answer: Any) -> CheckResult:
    """Mean HU inside the teaching haemorrhage (within 8 HU)."""
    return check_number(answer, HAEMORRHAGE.hounsfield_units, 8.0, "HU",
                        "the mean density of the haemorrhage",
                        "Put the region well inside the lesion, away from its edge.")


def check_new_since_prior(answer: Any) -> CheckResult:
    """Is the haemorrhage new since the prior? (True)"""
    if _not_answered(answer):
        return CheckResult(False, NOT_ANSWERED)
    if answer is True:
        return CheckResult(True, "the prior of six months ago shows normal brain "
                           "where the current study shows the haemorrhage: it is new.")
    return CheckResult(False, "compare the same position in both studies: does the "
                       "prior show the bright lesion?")


def check_key_images(answer: Any, volume: Any) -> CheckResult:
    """Do the key images (slice indexes) include the haemorrhage's largest slice?"""
    if _not_answered(answer) or (isinstance(answer, list | tuple) and not answer):
        return CheckResult(False, NOT_ANSWERED)
    if volume is None:
        return CheckResult(False, "open the current study first.")
    try:
        indexes = [int(i) for i in answer]
    except (TypeError, ValueError):
        return CheckResult(False, "key images are a list of slice indexes, e.g. "
                           "[22, 23].")
    target = finding_slice_index(volume)
    if any(abs(i - target) <= 1 for i in indexes):
        return CheckResult(True, "your key images include the slice where the "
                           "haemorrhage is largest.")
    return CheckResult(False, "none of these slices shows the haemorrhage at its "
                       "largest; a key image shows the finding the report names.")


# -- emergency ------------------------------------------------------------------------

def check_accession_number(answer: Any) -> CheckResult:
    """The accession number the EHR link carries (LBXACC01)."""
    return check_choice(answer, "LBXACC01", "the accession number of the link",
                        "the link names accession LBXACC01, the current CT head.")


#: When to call radiology, for the three scenarios of the emergency lesson.
CALL_RADIOLOGY_ANSWERS = {"A": True, "B": False, "C": True}


def check_call_radiology(answer: Any) -> CheckResult:
    """``{"A": bool, "B": bool, "C": bool}``: which scenarios need a call?"""
    if not isinstance(answer, dict) or any(
            answer.get(k) is None for k in CALL_RADIOLOGY_ANSWERS):
        return CheckResult(False, NOT_ANSWERED + " (answer True or False for A, B "
                           "and C)")
    wrong = [k for k, v in CALL_RADIOLOGY_ANSWERS.items() if answer.get(k) is not v]
    if not wrong:
        return CheckResult(True, "call when what you see and the report disagree (A) "
                           "or no report exists for a decision now (C); a final "
                           "report that fits the images (B) needs no call.")
    return CheckResult(False, f"think again about scenario {', '.join(wrong)}.")


# -- neurologist ----------------------------------------------------------------------

def check_time_to_image(answer: Any, stopwatch: Any) -> CheckResult:
    """Did the learner read the stopwatch right (seconds, within 0.05 s)?"""
    if _not_answered(answer):
        return CheckResult(False, NOT_ANSWERED)
    seconds = getattr(stopwatch, "seconds", None)
    if seconds is None:
        return CheckResult(False, "run the drill first: the stopwatch has not seen "
                           "both the search and the first image.")
    result = check_number(answer, seconds, 0.05, "s", "the time from search to first "
                          "image", "Print stopwatch.seconds and copy it.")
    if result.correct:
        verdict = ("well within" if seconds < 10 else "outside")
        return CheckResult(True, f"{seconds:.2f} s from search to first image, "
                           f"{verdict} the 10 s a telestroke consultation can afford.")
    return result


def check_hyperdense_vessel_side(answer: Any) -> CheckResult:
    """Which side is the hyperdense middle cerebral artery on? (right)"""
    from viewerlib.samples.stroke import MCA_OCCLUSION

    return check_choice(answer, MCA_OCCLUSION.side, "the side of the hyperdense "
                        "vessel", "the right M1 is dense: a clot. Remember the "
                        "patient's right is on the left of the screen.",
                        ("left", "right"))


def check_occlusion_cutoff(answer: Any) -> CheckResult:
    """How far from the midline does contrast stop in the right MCA? (22 mm +- 4)"""
    from viewerlib.samples.stroke import MCA_OCCLUSION

    return check_number(answer, abs(MCA_OCCLUSION.cutoff_lps_mm[0]), 4.0, "mm",
                        "the distance from the midline to the cut-off",
                        "On the slab MIP, measure from the midline to where the "
                        "right middle cerebral artery stops.")


# -- orthopaedics ---------------------------------------------------------------------

def _fracture(study: str) -> Any:
    from viewerlib.samples.fracture import FRACTURES

    if study not in FRACTURES:
        raise ValueError(f"study must be 'current' or 'prior', not {study!r}")
    return FRACTURES[study]


def check_fracture_level(answer: Any, study: str = "current") -> CheckResult:
    """The height (LPS z, mm) of the fracture gap (within 4 mm)."""
    return check_number(answer, _fracture(study).level_lps_mm[2], 4.0, "mm",
                        "the level of the fracture (z)",
                        "Find the gap in the cortex on the coronal reformat and "
                        "read its z from the affine.")


def check_fracture_gap(answer: Any, study: str = "current") -> CheckResult:
    """The gap between the fragments along the shaft, in mm (within 1.5 mm)."""
    return check_number(answer, _fracture(study).gap_mm, 1.5, "mm",
                        f"the fracture gap on the {study} study",
                        "Measure along the shaft, from the end of one fragment's "
                        "cortex to the start of the other's.")


def check_fracture_angulation(answer: Any, study: str = "current") -> CheckResult:
    """The angle between the shaft axes of the fragments, in degrees (within 3)."""
    return check_number(answer, _fracture(study).angulation_deg, 3.0, "degrees",
                        f"the angulation on the {study} study",
                        "Measure the angle between the two shaft axes, not between "
                        "a shaft and the image edge.")


def check_angulation_change(answer: Any) -> CheckResult:
    """How many degrees the angulation improved from prior to current (within 4)."""
    change = _fracture("prior").angulation_deg - _fracture("current").angulation_deg
    return check_number(answer, change, 4.0, "degrees", "the correction since the "
                        "day of injury", "Subtract the current angle from the prior.")


# -- researcher -----------------------------------------------------------------------

def check_count(answer: Any, expected: int, what: str) -> CheckResult:
    """Is ``answer`` the whole number ``expected``?"""
    if _not_answered(answer):
        return CheckResult(False, NOT_ANSWERED)
    if isinstance(answer, bool) or not isinstance(answer, int | np.integer):
        return CheckResult(False, f"{what} is a whole number; you gave {answer!r}.")
    if int(answer) == int(expected):
        return CheckResult(True, f"{what}: {expected}.")
    return CheckResult(False, f"{answer} is not {what}; count again from the "
                       "output above.")


def check_voxel_volume(answer: Any, volume: Any) -> CheckResult:
    """The volume of one voxel in mm^3, from the volume's spacing (within 1%)."""
    if volume is None:
        return CheckResult(False, "open a volume first.")
    expected = float(np.prod(volume.spacing_mm))
    return check_number(answer, expected, expected * 0.01, "mm³",
                        "the volume of one voxel",
                        "Multiply the three spacings of volume.spacing_mm.")


def check_haemorrhage_volume_ml(answer: Any) -> CheckResult:
    """The haemorrhage volume in millilitres (within 20% of the true sphere)."""
    radius = HAEMORRHAGE.diameter_mm / 2.0
    expected = 4.0 / 3.0 * np.pi * radius**3 / 1000.0
    return check_number(answer, round(expected, 2), round(0.2 * expected, 2), "mL",
                        "the haemorrhage volume",
                        "Count the voxels of the labelled region and multiply by "
                        "the voxel volume; 1 mL is 1000 mm³.")


def check_deidentified(folder: Any, original_values: tuple[str, ...] = (
        "Test^Case", "LBX-0001")) -> CheckResult:
    """Does ``folder`` hold DICOM files with no patient name or ID left in them?

    Every file is read with pydicom: (0010,0010) *Patient's Name* and (0010,0020)
    *Patient ID* must be absent or replaced, and none of ``original_values`` may
    appear anywhere in the file's bytes (private tags and descriptions included).
    """
    from pathlib import Path

    import pydicom

    if _not_answered(folder):
        return CheckResult(False, NOT_ANSWERED)
    root = Path(folder)
    files = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
    if not files:
        return CheckResult(False, f"{root} holds no files; write the de-identified "
                           "copies there first.")
    for path in files:
        raw = path.read_bytes()
        for value in original_values:
            if value.encode() in raw:
                return CheckResult(False, f"{path.name} still contains {value!r} "
                                   "somewhere in the file.")
        try:
            ds = pydicom.dcmread(path)
        except Exception as err:  # noqa: BLE001 - any unreadable file fails the check
            return CheckResult(False, f"{path.name} is not readable DICOM ({err}).")
        for keyword in ("PatientName", "PatientID"):
            if str(ds.get(keyword, "")) in original_values:
                return CheckResult(False, f"{path.name} keeps its {keyword}.")
    return CheckResult(True, f"{len(files)} files, none with the patient's name or "
                       "ID.")


# -- PACS administrator ---------------------------------------------------------------

def check_archives_file(answer: Any, archive_name: str) -> CheckResult:
    """Does the archives file at ``answer`` load and include ``archive_name``?"""
    from viewerlib.sources.config import ArchivesConfigError, load_sources

    if _not_answered(answer):
        return CheckResult(False, NOT_ANSWERED)
    try:
        sources = load_sources(answer)
    except (ArchivesConfigError, OSError) as err:
        return CheckResult(False, f"the file does not load: {err}")
    names = [source.name for source in sources]
    if archive_name in names:
        return CheckResult(True, f"{len(names)} archives load, {archive_name!r} "
                           "among them.")
    return CheckResult(False, f"the file loads, but names only {names}; add an "
                       f"[[archive]] entry with name = {archive_name!r}.")


def check_down_archives(answer: Any, health: dict[str, Any]) -> CheckResult:
    """Are ``answer`` exactly the archives whose health is ``'down'``?"""
    if _not_answered(answer):
        return CheckResult(False, NOT_ANSWERED)
    if isinstance(answer, str):
        answer = [answer]
    expected = sorted(n for n, h in health.items() if getattr(h, "state", h) == "down")
    if sorted(answer) == expected:
        return CheckResult(True, f"down: {', '.join(expected) or 'none'}.")
    return CheckResult(False, "look at the state of each archive in "
                       "results.source_health; list the names that are 'down'.")


def check_transfer_syntax(answer: Any, path: Any) -> CheckResult:
    """Is ``answer`` the (0002,0010) *Transfer Syntax UID* of the file at ``path``?"""
    import pydicom

    if _not_answered(answer):
        return CheckResult(False, NOT_ANSWERED)
    expected = str(pydicom.dcmread(path, stop_before_pixels=True)
                   .file_meta.TransferSyntaxUID)
    if str(answer).strip() == expected:
        return CheckResult(True, f"{expected} is in the file meta: no installed "
                           "decoder knows it, so the archive or the modality must "
                           "send the image in another transfer syntax.")
    return CheckResult(False, "copy the UID from the error message or from "
                       "file_meta.TransferSyntaxUID (digits and dots).")


# -- security administrator ---------------------------------------------------------

def check_role(answer: Any, groups: list[str]) -> CheckResult:
    """The curriculum a user with ``groups`` opens on (first role in table order)."""
    from lightbox_hub.roles import role_for_groups

    role = role_for_groups(groups)
    expected = role.curriculum if role else "none"
    return check_choice(answer, expected, "the curriculum for these groups",
                        f"the first job role in the table that the groups grant is "
                        f"{expected}.")


def check_audit_count(answer: Any, path: Any, event: str) -> CheckResult:
    """The number of ``event`` records in the JSON-lines audit log at ``path``."""
    import json
    from pathlib import Path

    lines = Path(path).read_text(encoding="utf-8").splitlines() if path else []
    expected = sum(1 for line in lines if line.strip()
                   and json.loads(line).get("event") == event)
    return check_count(answer, expected, f"the number of {event!r} records")


def check_audit_distinct_users(answer: Any, path: Any, event: str = "sign-in"
                               ) -> CheckResult:
    """The number of different users with at least one ``event`` in the log."""
    import json
    from pathlib import Path

    lines = Path(path).read_text(encoding="utf-8").splitlines() if path else []
    users = {json.loads(line).get("user") for line in lines if line.strip()
             and json.loads(line).get("event") == event}
    return check_count(answer, len(users), f"the number of different users who "
                       f"had a {event!r}")


def check_purge_receipt(answer: Any, receipt: Any) -> CheckResult:
    """How many cached items the purge removed, from its receipt."""
    if receipt is None:
        return CheckResult(False, "run viewerlib.purge() and keep its receipt.")
    return check_count(answer, int(receipt.items), "the number of items purged")


def check_nothing_left(answer: Any, folder: Any) -> CheckResult:
    """The number of DICOM files under ``folder`` (the learner should find 0)."""
    from viewerlib.teaching.drills import find_dicom_files

    found = len(find_dicom_files(folder)) if folder else 0
    result = check_count(answer, found, "the number of DICOM files left")
    if result.correct and found:
        return CheckResult(False, f"you counted right, but {found} DICOM files are "
                           "still there: delete them.")
    return result


# -- network administrator ------------------------------------------------------------

def check_throughput(answer: Any, measurement: Any) -> CheckResult:
    """MB/s of a timed retrieval (``bytes / seconds / 1e6``, within 5%)."""
    if measurement is None:
        return CheckResult(False, "time a retrieval first.")
    expected = measurement.megabytes_per_second
    return check_number(answer, expected, 0.05 * expected, "MB/s",
                        "the measured throughput",
                        "Divide the bytes by the seconds, then by 1,000,000.")


def check_server_memory_gb(answer: Any, users: int, studies_per_user: int,
                           volume_mb: float, kernel_overhead_mb: float) -> CheckResult:
    """Memory for ``users`` concurrent users, in GB (within 10%)."""
    expected = users * (studies_per_user * volume_mb + kernel_overhead_mb) / 1000.0
    return check_number(answer, round(expected, 2), round(0.1 * expected, 2), "GB",
                        "the memory the server needs",
                        "users x (studies x MB per volume + kernel overhead), "
                        "then / 1000.")


# -- project lead ---------------------------------------------------------------------

def check_following(follower: Any, presenter: Any) -> CheckResult:
    """Does the attendee's viewer show the presenter's slice and window?"""
    if follower is None:
        return CheckResult(False, NOT_ANSWERED)
    fields = ("slice_index", "window_center", "window_width")
    differ = [f for f in fields if getattr(follower, f) != getattr(presenter, f)]
    if not differ:
        return CheckResult(True, f"the attendee is on image {presenter.slice_index + 1}"
                           f" with the presenter's window.")
    return CheckResult(False, f"the attendee's {', '.join(differ)} differ: is the "
                       "attendee following the same session?")


def check_mean_rating(answer: Any, ratings: list[int]) -> CheckResult:
    """The mean of the feedback ratings (within 0.05)."""
    if not ratings:
        return CheckResult(False, "there are no ratings yet.")
    return check_number(answer, round(float(np.mean(ratings)), 2), 0.05, "points",
                        "the mean rating", "Add the ratings and divide by how many.")
