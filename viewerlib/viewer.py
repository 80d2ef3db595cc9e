"""``viewerlib.open``: from a study in an archive to a viewer on screen, in one call.

This is the one place where the layers meet: a source finds and retrieves the series,
the pipeline and volume turn it into modality values with geometry, and the widget
shows it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from viewerlib import events
from viewerlib.model import Series, Study
from viewerlib.volume.volume import Volume, read_series
from viewerlib.widgets.compare import Comparison
from viewerlib.widgets.compare import compare as _compare
from viewerlib.widgets.mpr import MPRViewer
from viewerlib.widgets.stack import StackViewer
from viewerlib.widgets.volume3d import VolumeViewer

if TYPE_CHECKING:
    from viewerlib.sources.base import Source

logger = logging.getLogger(__name__)

# Modalities whose series are not image stacks (reports, annotations, states).
_NON_IMAGE_MODALITIES = {"SR", "PR", "KO", "SEG", "RTSTRUCT", "RTPLAN", "REG", "DOC"}


def choose_series(series: list[Series]) -> Series:
    """The series a reader looks at first: the image series with the most instances.

    Raises
    ------
    LookupError
        If the study has no image series.
    """
    if not series:
        raise LookupError("no archive holds a series of this study: check the Study "
                          "Instance UID, or whether your role may use the archive "
                          "that has it")
    images = [s for s in series if s.Modality not in _NON_IMAGE_MODALITIES]
    if not images:
        raise LookupError(
            "the study holds no image series (only "
            + ", ".join(sorted({s.Modality for s in series}))
            + ")"
        )
    return max(images, key=lambda s: s.NumberOfSeriesRelatedInstances or 0)


def open_volume(
    study: Study | str, source: Source | None = None, series: Series | str | None = None
) -> Volume:
    """Retrieve one series of ``study`` and return it as a :class:`Volume`.

    Parameters
    ----------
    study : Study or str
        A study from a search, or its (0020,000D) *Study Instance UID*.
    source : Source, optional
        Where to retrieve from; the configured archives (:func:`viewerlib.connect`)
        when not given.
    series : Series or str, optional
        The series, or its (0020,000E) *Series Instance UID*; by default the image
        series with the most instances (:func:`choose_series`).

    Returns
    -------
    Volume
        The largest stack of the series when it splits into several (for example a
        localizer and the axial images).
    """
    if source is None:
        from viewerlib.sources.config import connect

        source = connect()
    study_instance_uid = study if isinstance(study, str) else study.StudyInstanceUID
    if series is None:
        series = choose_series(
            source.search_for_series(study_instance_uid=study_instance_uid)
        )
    series_instance_uid = (
        series if isinstance(series, str) else series.SeriesInstanceUID
    )
    datasets = source.retrieve_series(study_instance_uid, series_instance_uid)
    events.series_opened(str(study_instance_uid), str(series_instance_uid))
    volumes = read_series(datasets)
    if not volumes:
        raise LookupError(f"series {series_instance_uid} holds no displayable images")
    return max(volumes, key=lambda v: v.voxels.shape[0])


def open(
    study: Study | str,
    source: Source | None = None,
    series: Series | str | None = None,
    **viewer_options: Any,
) -> StackViewer:
    """Open a study in the stack viewer.

    Parameters
    ----------
    study, source, series
        As for :func:`open_volume`.
    **viewer_options
        Passed to :class:`~viewerlib.widgets.stack.StackViewer`, e.g. ``window``.

    Returns
    -------
    StackViewer
        The viewer; its ``volume`` attribute holds the voxels as a numpy array with
        their geometry (``affine``, ``spacing_mm``) for analysis.
    """
    volume = open_volume(study, source, series)
    return StackViewer.from_volume(volume, **viewer_options)


def open_mpr(
    study: Study | str | Volume,
    source: Source | None = None,
    series: Series | str | None = None,
    **viewer_options: Any,
) -> MPRViewer:
    """Open a study (or a volume) in the MPR viewer: three linked planes.

    Parameters are those of :func:`open`; ``viewer_options`` go to
    :class:`~viewerlib.widgets.mpr.MPRViewer`, e.g. ``slab_thickness_mm=10``.
    """
    volume = study if isinstance(study, Volume) else open_volume(study, source, series)
    return MPRViewer(volume, **viewer_options)


def open_3d(
    study: Study | str | Volume,
    source: Source | None = None,
    series: Series | str | None = None,
    **viewer_options: Any,
) -> VolumeViewer:
    """Open a study (or a volume) in the 3D viewer (volume rendering, presets).

    Parameters are those of :func:`open`; ``viewer_options`` go to
    :class:`~viewerlib.widgets.volume3d.VolumeViewer`, e.g. ``preset="CT bone"``.
    """
    volume = study if isinstance(study, Volume) else open_volume(study, source, series)
    return VolumeViewer(volume, **viewer_options)


def compare(
    current: Any, prior: Any = None, source: Source | None = None, **viewer_options: Any
) -> Comparison:
    """Show a current study beside a prior, scrolled and windowed together.

    ``current`` and ``prior`` are studies, Study Instance UIDs, volumes or stack
    viewers; without ``prior`` the patient's latest earlier study is found in the
    archives. See :func:`viewerlib.widgets.compare.compare`.

    Examples
    --------
    >>> from viewerlib.samples.phantom import ct_head_phantom
    >>> from viewerlib.volume.volume import read_series
    >>> now, then = (read_series(ct_head_phantom(kind, rows=16, columns=16,
    ...              number_of_slices=4).datasets)[0] for kind in ("current", "prior"))
    >>> pair = compare(now, then)
    >>> pair.current.sync_group == pair.prior.sync_group != ""
    True
    """
    return _compare(current, prior, source, **viewer_options)
