"""Where studies come from: DICOMweb archives, folders and CDs, or all at once."""

from viewerlib.sources.auth import (
    AccessToken,
    AccessTokenProvider,
    BearerAuth,
    fetch_hub_access_token,
)
from viewerlib.sources.base import Source, SourceHealth, StoreReport
from viewerlib.sources.config import ArchivesConfigError, connect, load_sources
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.federated import (
    FederatedResults,
    FederatedSource,
    LinkedPatient,
    not_searched_note,
)
from viewerlib.sources.local import FolderSource
from viewerlib.sources.quirks import ArchiveQuirks

__all__ = [
    "AccessToken",
    "AccessTokenProvider",
    "ArchiveQuirks",
    "ArchivesConfigError",
    "BearerAuth",
    "DICOMwebSource",
    "FederatedResults",
    "FederatedSource",
    "FolderSource",
    "LinkedPatient",
    "Source",
    "SourceHealth",
    "StoreReport",
    "connect",
    "fetch_hub_access_token",
    "load_sources",
    "not_searched_note",
]
