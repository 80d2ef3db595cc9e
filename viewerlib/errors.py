"""Exceptions that callers of :mod:`viewerlib` catch."""


class ViewerlibError(Exception):
    """Base class of every error that :mod:`viewerlib` raises on purpose."""


class SourceError(ViewerlibError):
    """An archive or folder could not answer; the message names the source."""

    def __init__(self, source_name: str, message: str) -> None:
        super().__init__(f"{source_name}: {message}")
        self.source_name = source_name


class SourceUnreachableError(SourceError):
    """The archive did not answer at all (connection refused, timeout, DNS)."""


class SourceAuthenticationError(SourceError):
    """The archive refused the credentials (HTTP 401) or the access (HTTP 403)."""


class SourceNotFoundError(SourceError):
    """The archive does not hold the study, series or instance asked for (HTTP 404)."""


class SourceResponseError(SourceError):
    """The archive answered, but the body was malformed or cut short."""


class DecodingError(ViewerlibError):
    """Pixel data could not be decoded; the message names the transfer syntax."""


class PartialSeriesError(SourceError):
    """A series arrived only in part; what did arrive is kept on the error.

    Attributes
    ----------
    datasets : list of pydicom.dataset.Dataset
        The instances that arrived whole, in the order the archive sent them.
    missing_sop_instance_uids : list of str
        (0008,0018) *SOP Instance UID* of every instance the archive lists for the
        series but did not deliver.
    missing_files : list of tuple of str
        For a folder: ``(path, reason)`` of every file of the series that could
        not be read (deleted, unreadable or changed since it was indexed); empty
        for an archive.
    missing_count : int or None
        How many instances are missing. It can be known when their UIDs are not
        (the archive counted the series, then stopped before it could list it),
        so ``missing_sop_instance_uids`` may be empty while this is not;
        ``None`` when not even the count could be learned.
    """

    def __init__(self, source_name: str, message: str, datasets: list,
                 missing_sop_instance_uids: list[str],
                 missing_files: list[tuple[str, str]] | None = None,
                 missing_count: int | None = -1) -> None:
        super().__init__(source_name, message)
        self.datasets = datasets
        self.missing_sop_instance_uids = missing_sop_instance_uids
        self.missing_files = list(missing_files or [])
        # -1 (not given): as many as are named.
        self.missing_count = (len(missing_sop_instance_uids) if missing_count == -1
                              else missing_count)


class UnreadableFilesError(SourceResponseError):
    """Files of a folder could not be read; raised after every readable one.

    Attributes
    ----------
    files : list of tuple of str
        ``(path, reason)`` of each file that could not be read.
    sop_instance_uids : list of str
        (0008,0018) *SOP Instance UID* the index holds for each of those files.
    """

    def __init__(self, source_name: str, message: str,
                 files: list[tuple[str, str]], sop_instance_uids: list[str]) -> None:
        super().__init__(source_name, message)
        self.files = files
        self.sop_instance_uids = sop_instance_uids


class IncompleteResultsWarning(UserWarning):
    """A search of several archives is missing the answer of some of them.

    The results hold what the others found; ``.not_searched`` on the results
    names each archive left out and why.
    """
