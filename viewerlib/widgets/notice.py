"""What a study holds when none of it can be shown, said in words instead of an error.

:func:`viewerlib.open` shows a study's images, or its reports when it has no images.
A study with neither (only an ECG, only an RT plan) opens a :class:`StudyNotice`: what
each of its series holds and where to open it instead. The page sets every text with
``textContent``, never as HTML.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import traitlets
from pydicom.uid import UID

from viewerlib.widgets._frontend import FrontEndWidget, esm_trait, front_end
from viewerlib.widgets.stack import overlay_texts

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewerlib.model import Series

logger = logging.getLogger(__name__)

#: (0008,0060) *Modality* of waveform series (PS3.3 C.7.3.1.1.1): what one holds,
#: and where a clinician opens it instead.
WAVEFORM_MODALITIES: dict[str, tuple[str, str]] = {
    "ECG": ("an ECG waveform", "the cardiology system"),
    "HD": ("a haemodynamic waveform", "the cardiology system"),
    "EPS": ("a cardiac electrophysiology recording", "the cardiology system"),
    "RESP": ("a respiratory waveform", "the system that recorded it"),
    "EEG": ("an EEG recording", "the neurophysiology system"),
    "EMG": ("an EMG recording", "the neurophysiology system"),
    "EOG": ("an EOG recording", "the neurophysiology system"),
    "AU": ("an audio recording", "the system that recorded it"),
}
# Every Waveform Storage SOP Class UID starts so (PS3.4 B.5, PS3.6 annex A).
_WAVEFORM_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.9."
_WAVEFORM_ADVICE = "Lightbox does not display waveforms yet; open it in {where}."
# Series that hold no images and are shown only with images or as a report: what
# one is, and why it is not shown on its own.
_NOT_SHOWN_ALONE: dict[str, tuple[str, str]] = {
    "SEG": ("a segmentation", "it is drawn over images this study does not hold"),
    "RTSTRUCT": ("an RT structure set",
                 "it is drawn over images this study does not hold"),
    "PR": ("a presentation state", "it applies to images this study does not hold"),
    "KO": ("a key object selection", "it marks images this study does not hold"),
    "REG": ("a registration", "Lightbox does not display registrations"),
    "RTPLAN": ("an RT plan", ("Lightbox does not display RT plans; open it in "
                              "the treatment planning system")),
    "DOC": ("a document", "Lightbox shows encapsulated PDF documents only"),
    "SR": ("a structured report", "it could not be read as a report"),
}
_TITLE = "Nothing in this study can be shown as images or as a report; it holds:"


def is_waveform(ds: Dataset | None) -> bool:
    """True for an instance of a Waveform Storage SOP Class (ECG, EEG, audio, ...).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset or None
        Uses (0008,0016) *SOP Class UID*.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.9.1.1"  # 12-lead ECG
    >>> is_waveform(ds)
    True
    """
    if ds is None:
        return False
    return str(ds.get("SOPClassUID", "")).startswith(_WAVEFORM_SOP_CLASS_PREFIX)


def describe_series(series: Series, header: Dataset | None = None) -> str:
    """One sentence: what a series that cannot be shown holds, and what to do.

    Parameters
    ----------
    series : Series
        Uses (0008,0060) *Modality*, (0008,103E) *Series Description* and
        (0020,1209) *Number of Series Related Instances*.
    header : pydicom.dataset.Dataset, optional
        One instance's header: its (0008,0016) *SOP Class UID* names the kind
        of object more exactly, and tells a waveform whatever its modality.

    Examples
    --------
    >>> from viewerlib.model import Series
    >>> what, advice = describe_series(
    ...     Series("1", "1.1", "ECG", NumberOfSeriesRelatedInstances=1)).split(": ")
    >>> what
    'an ECG waveform (ECG, 1 instance)'
    >>> advice
    'Lightbox does not display waveforms yet; open it in the cardiology system.'
    """
    modality = str(series.Modality or "")
    sop_class = str(header.get("SOPClassUID", "")) if header is not None else ""
    details = [UID(sop_class).name if sop_class else modality or "no modality"]
    count = series.NumberOfSeriesRelatedInstances
    if count:
        details.append(f"{count} instance{'' if count == 1 else 's'}")
    if series.SeriesDescription:
        details.append(f"series {series.SeriesDescription!r}")
    if modality in WAVEFORM_MODALITIES or is_waveform(header):
        what, where = WAVEFORM_MODALITIES.get(
            modality, ("a waveform", "the system that recorded it"))
        advice = _WAVEFORM_ADVICE.format(where=where)
    elif modality in _NOT_SHOWN_ALONE:
        what, why = _NOT_SHOWN_ALONE[modality]
        advice = f"{why}."
    else:
        what = f"a {modality} series" if modality else "a series"
        advice = "Lightbox cannot show it."
    return f"{what} ({', '.join(details)}): {advice}"


class StudyNotice(FrontEndWidget):
    """What a study holds, series by series, when none of it can be shown.

    Parameters
    ----------
    lines : sequence of str
        One sentence per series (:func:`describe_series`).
    header : pydicom.dataset.Dataset, optional
        One instance of the study, for the patient and study identity above.
    title : str, optional
        The first line, in bold.

    Attributes
    ----------
    lines : list of str
        As given; shown as text, never as HTML.
    """

    _esm = esm_trait(front_end("notice.js"))
    title = traitlets.Unicode(_TITLE).tag(sync=True)
    lines = traitlets.List(traitlets.Unicode(), []).tag(sync=True)
    overlay = traitlets.Dict({}).tag(sync=True)

    def __init__(self, lines: Sequence[str], header: Dataset | None = None,
                 title: str = _TITLE, **kwargs: Any) -> None:
        super().__init__(
            title=title,
            lines=list(lines),
            overlay=overlay_texts(header) if header is not None else {},
            **kwargs,
        )
        logger.info("a study with nothing to show: said so in %d lines", len(lines))

    def __repr__(self) -> str:
        return f"StudyNotice({len(self.lines)} series)"
