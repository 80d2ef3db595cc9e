"""Where studies come from: DICOMweb archives, folders and CDs, or all at once."""

from viewerlib.sources.base import Source, SourceHealth, StoreReport
from viewerlib.sources.config import ArchivesConfigError, connect, load_sources
from viewerlib.sources.auth import AccessToken, AccessTokenProvider, BearerAuth
from viewerlib.sources.dicomweb import ArchiveQuirks, DICOMwebSource
from viewerlib.sources.federated import FederatedResults, FederatedSource, LinkedPatient
from viewerlib.sources.local import FolderSource

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
    "load_sources",
]
