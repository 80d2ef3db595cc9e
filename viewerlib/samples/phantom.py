"""Teaching phantoms: a CT head current/prior pair with a known, measurable finding.

The phantoms are made by code, so the demo and the lessons need no downloaded images
and every learner can check an answer against the truth. The current study shows an
acute intraparenchymal haemorrhage in the right frontal lobe that the prior, taken
months earlier, does not show.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from viewerlib.samples._dataset import ISSUER_OF_PATIENT_ID as ISSUER_OF_PATIENT_ID
from viewerlib.samples._dataset import SeriesIdentity, ct_slice, pixel_grid

PATIENT_NAME = "Test^Case"
PATIENT_ID = "LBX-0001"


@dataclass(frozen=True)
class Finding:
    """Ground truth of the phantom's lesion, for self-checks in the lessons.

    ``center_lps_mm`` is in patient coordinates (LPS: +x left, +y posterior, +z head).
    """

    description: str
    center_lps_mm: tuple[float, float, float]
    diameter_mm: float
    hounsfield_units: float


HAEMORRHAGE = Finding(
    description="acute intraparenchymal haemorrhage, right frontal lobe",
    center_lps_mm=(-32.0, -38.0, 24.0),
    diameter_mm=22.0,
    hounsfield_units=70.0,
)


@dataclass(frozen=True)
class PhantomStudy(Sequence[Dataset]):
    """One generated study: its identity and the slices' datasets.

    The study is a sequence of its datasets: ``len(study)``, ``study[0]`` and
    ``for ds in study`` work on ``datasets``, and so does
    :func:`viewerlib.read_series`, and :func:`viewerlib.open` (``open_mpr``,
    ``open_3d``) shows it as it would its folder. :meth:`save` writes it as a
    folder of DICOM files, which :func:`viewerlib.open` opens and an archive loads.

    Examples
    --------
    >>> study = ct_head_phantom("prior", rows=16, columns=16, number_of_slices=3)
    >>> len(study), [int(ds.InstanceNumber) for ds in study]
    (3, [1, 2, 3])
    """

    study_instance_uid: str
    series_instance_uid: str
    study_date: str
    study_description: str
    accession_number: str
    datasets: list[Dataset]

    def __len__(self) -> int:
        return len(self.datasets)

    def __iter__(self) -> Iterator[Dataset]:
        return iter(self.datasets)

    @overload
    def __getitem__(self, index: int) -> Dataset: ...

    @overload
    def __getitem__(self, index: slice) -> list[Dataset]: ...

    def __getitem__(self, index: int | slice) -> Dataset | list[Dataset]:
        return self.datasets[index]

    def file_names(self) -> list[str]:
        """The name :meth:`save` gives each dataset's file, in dataset order.

        ``<Modality>-<series>-<instance>.dcm`` from (0008,0060) *Modality*,
        (0020,0011) *Series Number* (3 digits) and (0020,0013) *Instance Number*
        (4 digits), so that a folder listing sorts by series, then slice.

        Raises
        ------
        ValueError
            If two datasets would get the same name (the same Series Number
            and Instance Number).

        Examples
        --------
        >>> ct_head_phantom(rows=8, columns=8, number_of_slices=2).file_names()
        ['CT-002-0001.dcm', 'CT-002-0002.dcm']
        """
        names = [f"{ds.Modality}-{int(ds.SeriesNumber):03d}-"
                 f"{int(ds.InstanceNumber):04d}.dcm" for ds in self.datasets]
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(
                f"two datasets of the study would both be saved as {twice[0]}: "
                "each needs its own (0020,0011) Series Number and (0020,0013) "
                "Instance Number pair")
        return names

    def save(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write the study into ``folder`` as DICOM files, one per instance.

        The files are DICOM Part 10 (PS3.10 7.1: preamble, ``DICM`` and File
        Meta), named as :meth:`file_names` says, all in ``folder`` itself, so
        ``viewerlib.open(folder)`` shows the study, ``viewerlib.read_series(folder)``
        gives its volumes, and an archive (or a CD tool) can load the folder.

        Parameters
        ----------
        folder : str or os.PathLike
            Made (with its parents) when absent. It must be empty, or hold
            only the files of an earlier save of this study (the same
            (0020,000D) *Study Instance UID* and file names), which are
            replaced: running a lesson's cell again just works.

        Returns
        -------
        list of pathlib.Path
            The files, in the order of ``datasets``.

        Raises
        ------
        FileExistsError
            If ``folder`` holds anything else: another study, another file, or
            an earlier save of this study with more slices. Nothing is written
            then, for a mix of two studies in one folder is not one study any
            more (:func:`viewerlib.open` refuses a folder of several). Choose
            another folder, or empty this one first.
        NotADirectoryError
            If ``folder`` is a file.

        Examples
        --------
        >>> import tempfile, viewerlib
        >>> study = ct_head_phantom("prior", rows=16, columns=16, number_of_slices=3)
        >>> with tempfile.TemporaryDirectory() as scratch:
        ...     paths = study.save(scratch)
        ...     volume, = viewerlib.read_series(scratch)
        >>> [path.name for path in paths][:2], volume.voxels.shape
        (['CT-002-0001.dcm', 'CT-002-0002.dcm'], (3, 16, 16))
        """
        folder = Path(folder).expanduser()
        names = self.file_names()
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{str(folder)!r} is a file: give a folder to "
                                     "save the study in")
        folder.mkdir(parents=True, exist_ok=True)
        left_over, others = self._not_replaced(folder, set(names))
        if others:
            raise FileExistsError(
                f"{str(folder)!r} already holds {len(others)} file(s) that are "
                f"not an earlier save of this study ({_some(others)}); nothing was "
                "written, so that the folder stays one study. Save into a new or "
                "empty folder, e.g. study.save(folder / 'current'), or empty this "
                "one first")
        if left_over:
            # The same study, saved earlier with more slices: the extra files
            # would stay beside the new ones, and the folder would not be this save.
            raise FileExistsError(
                f"{str(folder)!r} holds an earlier save of this study with more "
                f"slices: {len(left_over)} of its files ({_some(left_over)}) are not "
                f"among the {len(names)} this save writes, and would be left over "
                "beside them; nothing was written. Delete those files (or empty the "
                "folder) and save again, or save into a new folder, e.g. "
                "study.save(folder / 'fewer_slices')")

        paths = []
        for ds, name in zip(self.datasets, names, strict=True):
            path = folder / name
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
        return paths

    def _not_replaced(self, folder: Path,
                      names: set[str]) -> tuple[list[str], list[str]]:
        """Names of the entries of ``folder`` that saving here would not replace.

        An entry is replaced when :meth:`save` writes a file of that name and
        the file there now is of this study: an earlier save of it.

        Returns
        -------
        left_over : list of str
            Files of this study (the same (0020,000D) *Study Instance UID*)
            that this save does not write: an earlier save with more slices.
        others : list of str
            Every other entry not replaced: another study, another file.
        """
        left_over, others = [], []
        for entry in folder.iterdir():
            if not entry.is_file():
                others.append(entry.name)
                continue
            try:
                header = pydicom.dcmread(entry, stop_before_pixels=True,
                                         specific_tags=["StudyInstanceUID"])
            except (InvalidDicomError, OSError, ValueError, EOFError):
                others.append(entry.name)
                continue
            if header.get("StudyInstanceUID") != self.study_instance_uid:
                others.append(entry.name)
            elif entry.name not in names:
                left_over.append(entry.name)
        return left_over, others



def _some(names: list[str]) -> str:
    """The first three of `names` in order, then how many more, for a message."""
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(sorted(names)[:3]) + more

def _head_slice(z_mm: float, y_mm: np.ndarray, x_mm: np.ndarray, with_finding: bool,
                rng: np.random.Generator) -> np.ndarray:
    """Hounsfield units of one axial slice of the head at height ``z_mm``."""
    hu = np.full(x_mm.shape, -1000.0)

    # An ellipsoid head centred at z = 0: scalp, skull, then brain inside.
    scale = max(0.0, 1.0 - (z_mm / 95.0) ** 2)
    if scale == 0.0:
        return hu
    radius = np.sqrt((x_mm / (75.0 * np.sqrt(scale))) ** 2
                     + (y_mm / (92.0 * np.sqrt(scale))) ** 2)
    hu[radius < 1.0] = 40.0
    hu[radius < 0.96] = 1100.0
    hu[radius < 0.88] = 32.0

    # Grey matter rim, and the lateral ventricles (CSF) near the middle of the head.
    hu[(radius > 0.80) & (radius < 0.88)] = 40.0
    if abs(z_mm - 10.0) < 18.0:
        for side in (-1.0, 1.0):
            ventricle = (((x_mm - side * 11.0) / 6.0) ** 2
                         + ((y_mm + 5.0) / 24.0) ** 2) < 1.0 - ((z_mm - 10.0) / 18.0) ** 2
            hu[ventricle] = 6.0

    if with_finding:
        cx, cy, cz = HAEMORRHAGE.center_lps_mm
        radius_mm = HAEMORRHAGE.diameter_mm / 2.0
        lesion = ((x_mm - cx) ** 2 + (y_mm - cy) ** 2 + (z_mm - cz) ** 2) < radius_mm**2
        hu[lesion] = HAEMORRHAGE.hounsfield_units

    # Quantum noise of a real scanner, a few HU, only inside the head.
    inside = hu > -500
    hu[inside] += rng.normal(0.0, 3.0, int(inside.sum()))
    return hu


def ct_head_phantom(kind: str = "current", rows: int = 256, columns: int = 256,
                    number_of_slices: int = 48, pixel_spacing_mm: float = 0.9,
                    slice_spacing_mm: float = 4.0) -> PhantomStudy:
    """Build the CT head teaching phantom.

    Parameters
    ----------
    kind : {'current', 'prior'}
        ``'current'`` shows the haemorrhage (:data:`HAEMORRHAGE`); ``'prior'``, dated
        six months earlier, does not.
    rows, columns : int
        (0028,0010) *Rows* and (0028,0011) *Columns* of each slice.
    number_of_slices : int
        Number of axial slices, stored one instance each.
    pixel_spacing_mm, slice_spacing_mm : float
        In-plane (0028,0030) *Pixel Spacing* and the distance between slices.

    Returns
    -------
    PhantomStudy
        The study's UIDs and its CT Image Storage datasets, ordered foot to head;
        ``study.save(folder)`` writes them as files for :func:`viewerlib.open`.

    Examples
    --------
    >>> study = ct_head_phantom("prior", rows=32, columns=32, number_of_slices=4)
    >>> len(study), study[0].Modality
    (4, 'CT')
    """
    if kind not in ("current", "prior"):
        raise ValueError(f"kind must be 'current' or 'prior', not {kind!r}")
    with_finding = kind == "current"
    date = datetime.date(2026, 11, 2) if with_finding else datetime.date(2026, 5, 4)
    identity = SeriesIdentity(
        patient_name=PATIENT_NAME, patient_id=PATIENT_ID, study_key=kind,
        study_date=date.strftime("%Y%m%d"),
        study_description="CT HEAD WITHOUT CONTRAST (teaching phantom)",
        accession_number="LBXACC01" if with_finding else "LBXACC00",
        series_key="axial", series_number=2, series_description="Axial head 4 mm",
        body_part="HEAD", windows=((40.0, 80.0, "BRAIN"), (600.0, 2800.0, "BONE")),
        study_time="081500", study_id="1" if with_finding else "0")
    rng = np.random.default_rng(7 if with_finding else 11)

    # Pixel centres in patient coordinates; the head is centred in the field of view.
    y_mm, x_mm, origin_x, origin_y = pixel_grid(rows, columns, pixel_spacing_mm)
    first_z = -(number_of_slices - 1) * slice_spacing_mm / 2.0 + 10.0
    datasets = []
    for index in range(number_of_slices):
        z_mm = first_z + index * slice_spacing_mm
        hu = _head_slice(z_mm, y_mm, x_mm, with_finding, rng)
        datasets.append(ct_slice(identity, index, hu, (origin_x, origin_y, z_mm),
                                 pixel_spacing_mm, slice_spacing_mm))

    return PhantomStudy(
        study_instance_uid=identity.study_instance_uid,
        series_instance_uid=identity.series_instance_uid,
        study_date=identity.study_date,
        study_description=identity.study_description,
        accession_number=identity.accession_number,
        datasets=datasets,
    )


def teaching_studies() -> Iterator[PhantomStudy]:
    """Every teaching phantom the demo archive and the lessons use.

    The CT head current and prior (:data:`HAEMORRHAGE`), the telestroke study
    (:mod:`viewerlib.samples.stroke`) and the tibial fracture at injury and six weeks
    later (:mod:`viewerlib.samples.fracture`).
    """
    # Imported here: those modules build on this one.
    from viewerlib.samples.fracture import fracture_phantom
    from viewerlib.samples.stroke import stroke_phantom

    yield ct_head_phantom("current")
    yield ct_head_phantom("prior")
    yield stroke_phantom()
    yield fracture_phantom("prior")
    yield fracture_phantom("current")


def write_teaching_set(folder: Path) -> list[Path]:
    """Write every teaching phantom as DICOM files under ``folder``; return the paths."""
    return write_studies(teaching_studies(), folder)


def write_studies(studies: Iterable[PhantomStudy], folder: Path) -> list[Path]:
    """Write ``studies`` under ``folder``, a sub-folder per study; return the paths."""
    paths = []
    for study in studies:
        study_folder = Path(folder) / study.study_instance_uid
        study_folder.mkdir(parents=True, exist_ok=True)
        for ds in study.datasets:
            path = study_folder / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths
