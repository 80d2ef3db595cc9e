"""The archives configuration: one TOML or JSON file naming every source.

Example ``~/.config/lightbox/archives.toml``::

    [[archive]]
    name = "pacs"
    type = "dicomweb"
    url = "https://pacs.example.org/dicom-web"
    quirks = "orthanc-1.10"
    auth = "basic"
    username = "viewer"
    password_env = "PACS_PASSWORD"    # the secret itself never goes in the file

    [[archive]]
    name = "regional"
    type = "dicomweb"
    url = "https://regional.example.org/dicom-web"
    auth = "hub-token"                # the user's sign-on token, from the hub

    [[archive]]
    name = "cd"
    type = "folder"
    path = "/media/cdrom"

Settings of a ``type = "dicomweb"`` archive: ``url`` (required; no user name or
password in it, see ``auth = "basic"``), ``quirks`` (a preset of
:data:`~viewerlib.sources.quirks.QUIRK_PRESETS`), ``timeout_s``, ``retries``,
``slow_after_s``, ``verify`` (``false`` skips the server certificate check) or
``ca_bundle``, and ``auth`` with its keys:

``auth = "none"`` (the default)
    No credentials.
``auth = "basic"``
    HTTP basic: ``username`` or ``username_env``, and ``password_env`` (the name
    of the environment variable holding the password).
``auth = "bearer"``
    ``Authorization: Bearer``, the token read from the environment variable
    ``token_env`` or the file ``token_file``; read again before it expires, and
    once more when the archive answers HTTP 401.
``auth = "hub-token"``
    The user's single sign-on access token, fetched from the Lightbox JupyterHub
    that started the kernel (``GET $JUPYTERHUB_API_URL/lightbox/access-token``
    with the kernel's ``JUPYTERHUB_API_TOKEN``; see
    :func:`~viewerlib.sources.auth.fetch_hub_access_token`) and sent as a bearer
    token. The hub refreshes it; a token the archive refuses is fetched again
    once. No keys. Outside a hub the file still loads, and that archive fails
    with a :class:`~viewerlib.errors.SourceAuthenticationError` saying so.
``auth = "certificate"``
    A TLS client certificate: ``cert_file`` and ``key_file``.

A ``type = "folder"`` archive takes ``path``: a folder, or a CD with a DICOMDIR.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from viewerlib.sources.auth import AccessTokenProvider, fetch_hub_access_token
from viewerlib.sources.base import Source
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.federated import FederatedSource
from viewerlib.sources.local import FolderSource
from viewerlib.sources.quirks import QUIRK_PRESETS, ArchiveQuirks

logger = logging.getLogger(__name__)

ENV_VAR = "LIGHTBOX_ARCHIVES"
DEFAULT_PATH = Path("~/.config/lightbox/archives.toml")

# Keys allowed per archive type and auth kind; one table, checked in one place.
_COMMON_KEYS = {"name", "type"}
_TYPE_KEYS = {
    "dicomweb": {"url", "quirks", "auth", "timeout_s", "retries", "slow_after_s",
                 "verify", "ca_bundle"},
    "folder": {"path"},
}
_AUTH_KEYS = {
    "none": set(),
    "basic": {"username", "username_env", "password_env"},
    "bearer": {"token_env", "token_file"},
    "hub-token": set(),
    "certificate": {"cert_file", "key_file"},
}
_SECRET_KEYS = {"password", "token", "secret", "api_key", "key"}
_ANY_SECRET = ("'password_env' (auth = \"basic\") or 'token_env' (auth = "
               "\"bearer\"; or 'token_file' for a file that holds the token)")
_SECRET_INSTEAD = {
    "password": "'password_env' (e.g. password_env = \"PACS_PASSWORD\")",
    "token": "'token_env' (or 'token_file' for a file that holds the token)",
}


class ArchivesConfigError(ValueError):
    """The archives configuration is invalid; the message names file, entry, key."""


def default_path() -> Path:
    """``$LIGHTBOX_ARCHIVES`` if set, else ``~/.config/lightbox/archives.toml``."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH).expanduser()


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArchivesConfigError(
            f"{path}: no archives configuration there. Create it (see "
            f"viewerlib.sources.config for an example) or set {ENV_VAR} to its "
            "path.") from None
    except OSError as err:
        raise ArchivesConfigError(f"{path}: cannot be read ({err.strerror})") from err
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ArchivesConfigError(f"{path}: not valid "
                                  f"{'JSON' if path.suffix == '.json' else 'TOML'}: "
                                  f"{err}") from err
    if not isinstance(data, dict):
        raise ArchivesConfigError(f"{path}: the top level must be a table/object")
    return data


class _Entry:
    """One ``[[archive]]`` table with error messages that say where."""

    def __init__(self, path: Path, position: int, table: Mapping[str, Any]) -> None:
        self.path, self.table = path, table
        self.label = f"archive #{position}"
        if isinstance(table.get("name"), str):
            self.label += f" ({table['name']!r})"

    def fail(self, key: str | None, problem: str) -> ArchivesConfigError:
        where = f"{self.path}: {self.label}"
        return ArchivesConfigError(f"{where}, key '{key}': {problem}" if key
                                   else f"{where}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], required: bool = False,
            default: Any = None) -> Any:
        if key not in self.table:
            if required:
                raise self.fail(key, "missing; it is required")
            return default
        value = self.table[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            names = (kind.__name__ if isinstance(kind, type)
                     else " or ".join(k.__name__ for k in kind))
            raise self.fail(key, f"must be {names}, got {value!r}")
        return value

    def secret(self, key: str, required: bool = True) -> str | None:
        variable = self.get(key, str, required=required)
        if variable is None:
            return None
        value = os.environ.get(variable)
        if not value:
            raise self.fail(key, f"names the environment variable {variable}, which "
                            "is not set or empty; set it before connecting")
        return value


def _build(entry: _Entry) -> Source:
    table = entry.table
    name = entry.get("name", str, required=True)
    kind = entry.get("type", str, required=True)
    if kind not in _TYPE_KEYS:
        raise entry.fail("type", f"unknown type {kind!r}; use one of "
                         f"{', '.join(sorted(_TYPE_KEYS))}")
    auth_kind = entry.get("auth", str, default="none") if kind == "dicomweb" else "none"
    if auth_kind not in _AUTH_KEYS:
        raise entry.fail("auth", f"unknown auth {auth_kind!r}; use one of "
                         f"{', '.join(sorted(_AUTH_KEYS))}")
    allowed = _COMMON_KEYS | _TYPE_KEYS[kind] | _AUTH_KEYS[auth_kind]
    for key in table:
        if key in _SECRET_KEYS:
            raise entry.fail(key, "secrets must not be written in this file; put the "
                             "value in an environment variable and name that "
                             f"variable with {_SECRET_INSTEAD.get(key, _ANY_SECRET)}")
        if key not in allowed:
            raise entry.fail(key, f"not a setting for type={kind!r}, auth="
                             f"{auth_kind!r}; allowed: {', '.join(sorted(allowed))}")
    if kind == "folder":
        return FolderSource(Path(entry.get("path", str, required=True)).expanduser(),
                            name=name)

    url = entry.get("url", str, required=True)
    if "@" in urlsplit(url).netloc:
        # Never echo the url: the part before "@" is the secret.
        raise entry.fail("url", "holds a user name or password before '@' "
                         "(http://user:secret@host); secrets must not be written in "
                         "this file. Remove them from the url, set auth = \"basic\" "
                         "and name the environment variables that hold them with "
                         "'username_env' and 'password_env'")
    preset = entry.get("quirks", str, default="standard")
    if preset not in QUIRK_PRESETS:
        raise entry.fail("quirks", f"unknown preset {preset!r}; known: "
                         f"{', '.join(sorted(QUIRK_PRESETS))}")
    auth: Any = None
    certificate = None
    if auth_kind == "basic":
        username = entry.get("username", str) or entry.secret("username_env",
                                                               required=False)
        if not username:
            raise entry.fail("username", "basic auth needs 'username' or "
                             "'username_env'")
        auth = (username, entry.secret("password_env"))
    elif auth_kind == "bearer":
        if ("token_env" in table) == ("token_file" in table):
            raise entry.fail("token_env", "bearer auth needs exactly one of "
                             "'token_env' and 'token_file'")
        if "token_env" in table:
            auth = AccessTokenProvider(env_var=entry.get("token_env", str))
        else:
            token_file = Path(entry.get("token_file", str)).expanduser()
            auth = AccessTokenProvider(path=token_file)
    elif auth_kind == "hub-token":
        # Fetched (and refreshed) on first use, so that a file naming such an
        # archive still loads outside a hub; that archive then says why it fails.
        auth = AccessTokenProvider(fetch=fetch_hub_access_token)
    elif auth_kind == "certificate":
        certificate = (str(Path(entry.get("cert_file", str, True)).expanduser()),
                       str(Path(entry.get("key_file", str, True)).expanduser()))
    verify: bool | str = entry.get("verify", bool, default=True)
    if "ca_bundle" in table:
        verify = str(Path(entry.get("ca_bundle", str)).expanduser())
    try:
        return DICOMwebSource(
            url, name=name, auth=auth, quirks=ArchiveQuirks.preset(preset),
            timeout=float(entry.get("timeout_s", (int, float), default=20.0)),
            retries=entry.get("retries", int, default=2),
            client_certificate=certificate, verify=verify,
            slow_after_s=float(entry.get("slow_after_s", (int, float), default=2.0)))
    except ValueError as err:
        raise entry.fail("url", str(err)) from err


def load_sources(path: str | Path | None = None) -> list[Source]:
    """Read the archives configuration and build one source per archive.

    Parameters
    ----------
    path : str or Path, optional
        The file (``.toml`` or ``.json``); :func:`default_path` when not given.

    Returns
    -------
    list of Source
        In the order of the file.

    Raises
    ------
    ArchivesConfigError
        If the file is missing or invalid; the message names the file, the
        archive entry and the key.
    """
    file = Path(path).expanduser() if path is not None else default_path()
    data = _read(file)
    unknown = set(data) - {"archive"}
    if unknown:
        raise ArchivesConfigError(f"{file}: unknown top-level key(s) "
                                  f"{', '.join(sorted(unknown))}; only 'archive' "
                                  "(a list of tables) is allowed")
    tables = data.get("archive")
    if not isinstance(tables, list) or not tables:
        raise ArchivesConfigError(f"{file}: key 'archive' must list at least one "
                                  "archive ([[archive]] tables in TOML)")
    sources: list[Source] = []
    for position, table in enumerate(tables, start=1):
        entry = _Entry(file, position, table if isinstance(table, dict) else {})
        if not isinstance(table, dict):
            raise entry.fail(None, "must be a table/object")
        source = _build(entry)
        if any(s.name == source.name for s in sources):
            raise entry.fail("name", f"{source.name!r} is used by an earlier archive; "
                             "names must be distinct")
        sources.append(source)
    logger.info("loaded %d archives from the archives configuration", len(sources))
    return sources


def connect(path: str | Path | None = None, timeout_s: float = 10.0) -> FederatedSource:
    """Build every configured source and search them as one.

    Parameters
    ----------
    path : str or Path, optional
        See :func:`load_sources`.
    timeout_s : float
        Longest wait for any one archive in a search.

    Returns
    -------
    FederatedSource
    """
    return FederatedSource(load_sources(path), timeout_s=timeout_s)
