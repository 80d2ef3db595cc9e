"""Why a file cannot be used: cut short or damaged (a header that does not fit its
pixel data: :func:`viewerlib.pipeline.decode.pixel_data_problem`), or no DICOM at
all (the README, autorun and viewer files a CD carries beside its images).

The cause decides what helps: a file cut short or garbled on its way is copied
again; a file written with a header that does not describe its own pixel data is
the same in every copy, so only its sender can give a good one. These functions
tell them apart, so that every route that reads a file (``read_series``, a
folder opened with ``viewerlib.open``) names the same cause.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from pydicom.datadict import get_entry, keyword_for_tag
from pydicom.uid import UID

from viewerlib.pipeline.decode import CUT_SHORT

# PS3.10 7.1: a 128-byte preamble, "DICM", then the File Meta elements.
_META_START = 132
_PIXEL_DATA_TAG = 0x7FE00010
_UNDEFINED_LENGTH = 0xFFFFFFFF
# PS3.5 7.1.2: VRs whose explicit element header has a 4-byte length (12 bytes).
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_VRS = _LONG_VRS | frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT PN SH SL SS ST TM UI UL US".split())
_IMPLICIT_LITTLE = "1.2.840.10008.1.2"
_EXPLICIT_BIG = "1.2.840.10008.1.2.2"
_DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
# File names that say a file is meant to be DICOM, whatever it holds.
_DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".ima"})
# Bytes read to tell DICOM from other files: the first elements are enough.
_SNIFF_BYTES = 4096
# Why a file named as DICOM but holding none is left out, on every route.
NOT_DICOM = ("not a DICOM file: it has no 'DICM' marker and no DICOM element at its "
             "start, though its name says DICOM; if it should be DICOM it is damaged "
             "(or a download that failed): copy it again from its source")
# What a damaged file needs, in the words of every message that names one.
_COPY_AGAIN = ("copy the file again from its source; if that copy is damaged too, "
               "ask the sender for the file again")


@dataclass(frozen=True)
class _Stop:
    """Where and why a walk of a file's elements stopped.

    ``kind`` is "pixels" (at a whole (7FE0,0010) header), "end" (the file
    ends after a whole element), "undefined" (a length the walk does not
    follow), "cut" (the file ends inside an element) or "garbled" (the bytes
    at ``offset`` are no element; ``why`` says how).
    """

    kind: str
    offset: int
    elements: int
    tag: int | None = None
    missing: int = 0
    why: str = ""


def _tag_text(tag: int) -> str:
    keyword = keyword_for_tag(tag)
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})" + (f" {keyword}" if keyword else "")


def _tag_problem(tag: int, creators: set[tuple[int, int]], first: bool) -> str:
    """Why `tag` cannot start an element here, or "".

    PS3.5 7.8.1: private groups are odd, not 0001 to 0007 or FFFF; a private
    data element (gggg,xxyy) follows its creator (gggg,00xx). The first element
    of an implicit VR data set must be in the data dictionary besides: nothing
    else tells garbage from an element there.
    """
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2:
        if group in (0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF):
            return f"holds the tag {_tag_text(tag)}, in a group no element may have"
        if 0x0010 <= element <= 0x00FF:
            creators.add((group, element))
        elif element >= 0x1000 and (group, element >> 8) not in creators:
            return (f"holds the private tag {_tag_text(tag)} without its private "
                    f"creator ({group:04X},{element >> 8:04X})")
        elif 0x0000 < element < 0x0010 or 0x0100 <= element < 0x1000:
            return f"holds the tag {_tag_text(tag)}, which no private element has"
        return ""
    if first and element != 0:
        try:
            get_entry(tag)  # repeating groups (overlays, curves) included
        except KeyError:
            return f"holds the tag {_tag_text(tag)}, which is no DICOM element"
    return ""


def _walk(data: bytes, start: int, explicit: bool, little: bool,
          group: int | None = None) -> _Stop:
    """Walk the top-level element headers of `data` from `start`.

    With `group`, the walk ends at the first element of another group (the
    File Meta is group 0002). Elements must ascend (PS3.5 7.1); in explicit VR
    each has a VR of PS3.5 6.2; private tags are checked as PS3.5 7.8.1 says
    (see :func:`_tag_problem`).
    """
    order = "<" if little else ">"
    size = len(data)
    position, count, last = start, 0, -1
    creators: set[tuple[int, int]] = set()
    while position < size:
        if position + 8 > size:
            return _Stop("cut", position, count, missing=position + 8 - size)
        high, low = struct.unpack_from(f"{order}HH", data, position)
        tag = high << 16 | low
        if group is not None and high != group:
            return _Stop("end", position, count, last)
        # In explicit VR a VR that is none says the most (pydicom's check too).
        vr = data[position + 4:position + 6] if explicit else b""
        if explicit and vr not in _VRS:
            return _Stop("garbled", position, count, tag, why=(
                f"has the bytes {vr.hex(' ')} where the VR (PS3.5 6.2) of "
                f"{_tag_text(tag)} belongs"))
        if tag <= last:
            return _Stop("garbled", position, count, tag, why=(
                f"holds the tag {_tag_text(tag)} after {_tag_text(last)}, where "
                "elements ascend (PS3.5 7.1)"))
        why = _tag_problem(tag, creators, first=not explicit and count == 0)
        if why:
            return _Stop("garbled", position, count, tag, why=why)
        header = 8
        if explicit:
            if vr in _LONG_VRS:
                if position + 12 > size:
                    return _Stop("cut", position, count, tag,
                                 missing=position + 12 - size)
                (length,) = struct.unpack_from(f"{order}L", data, position + 8)
                header = 12
            else:
                (length,) = struct.unpack_from(f"{order}H", data, position + 6)
        else:
            (length,) = struct.unpack_from(f"{order}L", data, position + 4)
        if tag == _PIXEL_DATA_TAG:
            return _Stop("pixels", position, count, tag)
        if length == _UNDEFINED_LENGTH:
            return _Stop("undefined", position, count, tag)
        end = position + header + length
        if end > size:
            return _Stop("cut", position, count, tag, missing=end - size)
        position, count, last = end, count + 1, tag
    return _Stop("end", position, count, last)


def _syntax_of_meta(data: bytes, meta_end: int) -> str | None:
    """(0002,0010) *Transfer Syntax UID* of a File Meta walked whole, else None."""
    position = _META_START
    while position + 8 <= meta_end:
        high, low = struct.unpack_from("<HH", data, position)
        vr = data[position + 4:position + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<L", data, position + 8)
            value_at = position + 12
        else:
            (length,) = struct.unpack_from("<H", data, position + 6)
            value_at = position + 8
        if (high, low) == (0x0002, 0x0010):
            return data[value_at:value_at + length].rstrip(b"\0 ").decode(
                "ascii", "replace")
        position = value_at + length
    return None


def file_damage(path: str | os.PathLike[str]) -> str | None:
    """Say how a Part-10 file whose header could not be used is damaged.

    For a file already found wanting (no (0008,0016) *SOP Class UID*, or
    unreadable): its elements are walked by their headers, from the File Meta
    on, to tell a file cut short (it ends inside an element) from one garbled
    (bytes that are no element of its transfer syntax), wherever it is read.

    Parameters
    ----------
    path : str or os.PathLike
        The file; it is read whole, once.

    Returns
    -------
    str or None
        What is wrong, where, and what to do. None when the walk finds nothing
        wrong up to the end of the pixel data or of the file, or cannot tell: no
        Part-10 preamble, a deflated data set, an element of undefined length
        before the damage. The caller's own reason then stands.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> meta = (b"\\x02\\x00\\x10\\x00UI\\x14\\x001.2.840.10008.1.2.1\\x00")
    >>> head = (b"\\0" * 128 + b"DICM" + b"\\x02\\x00\\x00\\x00UL\\x04\\x00"
    ...         + len(meta).to_bytes(4, "little") + meta)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "garbled.dcm"
    ...     _ = path.write_bytes(head + b"\\xff\\x13" * 20)
    ...     print(file_damage(path).split(":")[0])
    its data set is damaged
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return None
    size = len(data)
    if size < _META_START or data[128:_META_START] != b"DICM":
        return None
    meta = _walk(data, _META_START, explicit=True, little=True, group=0x0002)
    if meta.kind == "cut":
        return (f"{CUT_SHORT}: it ends at byte {size}, inside its File "
                "Meta (group 0002), before any element of its data set; copy it "
                "again from its source")
    if meta.kind != "end" or meta.elements == 0:
        return ("its File Meta (group 0002) is damaged: the element at byte "
                f"{meta.offset} {meta.why or 'is no File Meta element'}; "
                + _COPY_AGAIN)
    syntax = _syntax_of_meta(data, meta.offset)
    if syntax is None or syntax in _DEFLATED:
        return None
    name = UID(syntax).name
    if meta.offset >= size:
        return (f"{CUT_SHORT}: it ends at byte {size}, right after its "
                "File Meta (group 0002), before any element of its data set; copy "
                "it again from its source")
    explicit = syntax != _IMPLICIT_LITTLE
    stop = _walk(data, meta.offset, explicit, little=syntax != _EXPLICIT_BIG)
    if stop.kind == "garbled":
        if stop.elements == 0:
            # pydicom warns "Expected explicit VR, but found implicit VR" for this
            # and reads on as implicit VR: the same finding, in one message.
            read_as = (" (pydicom then reads them as implicit VR, and finds no "
                       "element it can use)" if stop.why.startswith("has the bytes")
                       else "")
            return ("its data set is damaged: the File Meta (group 0002) is whole, "
                    f"but the bytes after it are no DICOM element of its transfer "
                    f"syntax, {name}: the first, at byte {stop.offset}, {stop.why}"
                    f"{read_as}. The bytes are garbled, not cut short: "
                    + _COPY_AGAIN)
        return (f"its data set is damaged from byte {stop.offset} on: after "
                f"{stop.elements} whole element(s), the next {stop.why}. The bytes "
                "are garbled, not cut short: " + _COPY_AGAIN)
    if stop.kind == "cut":
        where = (f"inside its element {_tag_text(stop.tag)}" if stop.tag is not None
                 else "inside the header of an element")
        return (f"{CUT_SHORT}: it ends at byte {size}, {where}, "
                f"{stop.missing} byte(s) before that element's end; copy it again "
                "from its source")
    if stop.kind == "pixels":
        return _pixel_data_damage(data, stop.offset, explicit, syntax != _EXPLICIT_BIG)
    return None


def _pixel_data_damage(data: bytes, offset: int, explicit: bool,
                       little: bool) -> str | None:
    """Say how the (7FE0,0010) *Pixel Data* element at `offset` is cut or
    garbled, or None.

    A value of defined length must be wholly there; encapsulated (compressed)
    data (PS3.5 A.4) is a sequence of items up to its delimiter, and pydicom
    reads a file cut inside it as no data set at all.
    """
    order = "<" if little else ">"
    size = len(data)
    start = offset + (12 if explicit else 8)
    if start > size:
        return (f"{CUT_SHORT}: it ends at byte {size}, inside the header of its "
                "(7FE0,0010) Pixel Data; copy it again from its source")
    (length,) = struct.unpack_from(f"{order}L", data, start - 4)
    if length != _UNDEFINED_LENGTH:
        if start + length <= size:
            return None
        return (f"{CUT_SHORT}: it ends at byte {size}, inside its (7FE0,0010) "
                f"Pixel Data, {start + length - size} byte(s) before its end; copy it "
                "again from its source")
    position, items = start, 0
    while position + 8 <= size:
        high, low, item_length = struct.unpack_from(f"{order}HHL", data, position)
        tag = high << 16 | low
        if tag == 0xFFFEE0DD:
            return None
        if tag != 0xFFFEE000 or item_length == _UNDEFINED_LENGTH:
            return ("its compressed pixel data is damaged: at byte "
                    f"{position}, after {items} item(s), stands no item of "
                    "(7FE0,0010) Pixel Data (PS3.5 A.4). The bytes are garbled, not "
                    "cut short: " + _COPY_AGAIN)
        if position + 8 + item_length > size:
            break
        position += 8 + item_length
        items += 1
    return (f"{CUT_SHORT}: it ends at byte {size}, inside its compressed (7FE0,0010) "
            f"Pixel Data, after {items} whole item(s) and before the delimiter that "
            "ends them; copy it again from its source")


def holds_no_dicom(path: str | os.PathLike[str]) -> bool:
    """True for a file that is plainly not DICOM, whatever its name.

    No "DICM" marker at byte 128 (PS3.10 7.1), and no DICOM element at its
    start, nor after a preamble: read as implicit and as explicit VR little
    endian (a file without preamble, PS3.5 A.1, A.2) and as explicit VR big
    endian, the first bytes are no standard element of the data dictionary,
    or no whole one. An empty file, and one of nothing but zero bytes, are no
    such file: they are DICOM files lost in copying, damaged.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its first few KiB are read.

    Returns
    -------
    bool
        False when the file cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     readme = Path(folder) / "README.TXT"
    ...     _ = readme.write_text("Images of Test^Case. Run VIEWER.EXE to see them.")
    ...     holds_no_dicom(readme)
    True
    """
    try:
        with open(path, "rb") as file:
            data = file.read(_SNIFF_BYTES)
    except OSError:
        return False
    if not data.strip(b"\0") or data[128:_META_START] == b"DICM":
        return False
    if data.startswith(b"DICM"):
        return False  # a File Meta without its preamble
    # Implicit and explicit VR little endian, and the retired big endian.
    encodings = ((False, True), (True, True), (True, False))
    return not any(_starts_data_set(data, start, explicit, little)
                   for start in (0, _META_START) for explicit, little in encodings)


def _starts_data_set(data: bytes, start: int, explicit: bool, little: bool) -> bool:
    """True when a whole standard element (even group, in the data dictionary
    or a group length) starts at `start`, in the encoding given."""
    if len(data) < start + 8:
        return False
    group, element = struct.unpack_from("<HH" if little else ">HH", data, start)
    if group % 2 or group == 0:
        return False
    if element != 0:
        try:
            get_entry(group << 16 | element)
        except KeyError:
            return False
    stop = _walk(data, start, explicit, little)
    return stop.kind != "garbled" or stop.elements > 0


def is_companion_file(path: str | os.PathLike[str]) -> bool:
    """True for a file beside the images that is no DICOM and is not meant to be.

    A CD or a folder of a study carries such files: README.TXT, AUTORUN.INF,
    an HTML index, a viewer program, a PDF manual. Nothing is wrong with
    them, so they are skipped quietly (:func:`companion_note`), where a file
    that should be DICOM and is not is named as damaged. A file is one when
    it holds no DICOM (:func:`holds_no_dicom`) and its name does not say DICOM
    (.dcm, .dicom, .dic, .ima): a file named so is meant to be one (a download
    that failed, say) and stays named, with :data:`NOT_DICOM`.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for name in ("AUTORUN.INF", "IM0001.dcm"):
    ...         _ = (Path(folder) / name).write_text("[autorun] open=VIEWER.EXE")
    ...     [is_companion_file(Path(folder) / name)
    ...      for name in ("AUTORUN.INF", "IM0001.dcm")]
    [True, False]
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    return suffix not in _DICOM_SUFFIXES and holds_no_dicom(path)


def companion_note(count: int) -> str:
    """What the log says of the companion files skipped, alike on every route.

    Without names or folders, which may name the patient.

    Examples
    --------
    >>> companion_note(2).split(":")[0]
    "skipped 2 file(s) that are not DICOM (no 'DICM' marker, no DICOM element)"
    """
    return (f"skipped {count} file(s) that are not DICOM (no 'DICM' marker, no DICOM "
            "element): a CD's README, autorun or viewer files, say; no image is "
            "missing for them")


__all__ = ["NOT_DICOM", "companion_note", "file_damage", "holds_no_dicom",
           "is_companion_file"]
