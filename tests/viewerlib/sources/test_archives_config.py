"""The archives configuration file: parsing, secrets from env, clear errors."""

from __future__ import annotations

import json

import pytest

from viewerlib.sources.config import ArchivesConfigError, connect, load_sources
from viewerlib.sources.dicomweb import DICOMwebSource
from viewerlib.sources.federated import FederatedSource
from viewerlib.sources.local import FolderSource

GOOD = """
[[archive]]
name = "pacs"
type = "dicomweb"
url = "http://127.0.0.1:8042/dicom-web"
quirks = "orthanc-1.10"
auth = "basic"
username = "viewer"
password_env = "LIGHTBOX_TEST_PACS_PASSWORD"
timeout_s = 5

[[archive]]
name = "cd"
type = "folder"
path = "{folder}"

[[archive]]
name = "cloud"
type = "dicomweb"
url = "https://127.0.0.1:9443/dicom-web"
auth = "bearer"
token_env = "LIGHTBOX_TEST_TOKEN"
"""


def test_toml_builds_every_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTBOX_TEST_PACS_PASSWORD", "pw-from-env")
    path = tmp_path / "archives.toml"
    path.write_text(GOOD.format(folder=tmp_path))
    pacs, cd, cloud = load_sources(path)
    assert isinstance(pacs, DICOMwebSource) and pacs.quirks.name == "orthanc-1.10"
    assert pacs.session.auth.password == "pw-from-env"
    assert pacs.timeout == 5
    assert isinstance(cd, FolderSource) and cd.path == tmp_path
    assert cloud.quirks.name == "standard"


def test_env_var_names_the_file_and_connect_federates(tmp_path, monkeypatch):
    path = tmp_path / "archives.json"
    path.write_text(json.dumps({"archive": [
        {"name": "cd", "type": "folder", "path": str(tmp_path)}]}))
    monkeypatch.setenv("LIGHTBOX_ARCHIVES", str(path))
    federation = connect()
    assert isinstance(federation, FederatedSource)
    assert [s.name for s in federation.sources] == ["cd"]


def _write(tmp_path, entry: str):
    path = tmp_path / "archives.toml"
    path.write_text("[[archive]]\n" + entry)
    return path


@pytest.mark.parametrize(("entry", "match"), [
    ('name = "x"\ntype = "dicomweb"\n', r"archive #1 \('x'\), key 'url': missing"),
    ('name = "x"\ntype = "pacs"\n', r"key 'type': unknown type 'pacs'"),
    ('name = "x"\ntype = "dicomweb"\nurl = "http://127.0.0.1/dw"\npassword = "pw"\n',
     r"key 'password': secrets must not be written in this file"),
    ('name = "x"\ntype = "dicomweb"\nurl = "http://127.0.0.1/dw"\nquirks = "v9"\n',
     r"key 'quirks': unknown preset 'v9'"),
    ('name = "x"\ntype = "dicomweb"\nurl = "http://127.0.0.1/dw"\nauth = "basic"\n'
     'username = "u"\npassword_env = "LIGHTBOX_TEST_UNSET"\n',
     r"key 'password_env': names the environment variable LIGHTBOX_TEST_UNSET"),
    ('name = "x"\ntype = "folder"\npath = "/x"\nurl = "http://h"\n',
     r"key 'url': not a setting for type='folder'"),
    ('name = "x"\ntype = "dicomweb"\nurl = "ftp://127.0.0.1/dw"\n',
     r"key 'url': DICOMweb url must be http"),
    ('name = "x"\ntype = "dicomweb"\nurl = "http://127.0.0.1/dw"\ntimeout_s = "5"\n',
     r"key 'timeout_s': must be int or float"),
], ids=["missing-url", "bad-type", "secret-in-file", "bad-quirks", "unset-env",
        "wrong-key", "bad-scheme", "bad-timeout"])
def test_invalid_entries_name_file_entry_and_key_raises(tmp_path, monkeypatch, entry,
                                                        match):
    monkeypatch.delenv("LIGHTBOX_TEST_UNSET", raising=False)
    path = _write(tmp_path, entry)
    with pytest.raises(ArchivesConfigError, match=match) as caught:
        load_sources(path)
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize(("key", "advice"), [
    ("password", "name that variable with 'password_env' (e.g. password_env = "),
    ("token", "name that variable with 'token_env' (or 'token_file'"),
    ("secret", "name that variable with 'password_env' (auth = \"basic\") or "
               "'token_env' (auth = \"bearer\""),
])
def test_secret_in_the_file_names_the_key_to_use_instead_raises(tmp_path, key,
                                                                advice):
    path = _write(tmp_path, 'name = "x"\ntype = "dicomweb"\n'
                  f'url = "http://127.0.0.1/dw"\n{key} = "pw"\n')
    with pytest.raises(ArchivesConfigError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert f"key '{key}': secrets must not be written in this file" in message
    assert advice in message
    # Each suggested key is named once (no "'password_env' or 'password_env'").
    for suggested in ("'password_env'", "'token_env'", "'token_file'"):
        assert message.count(suggested) <= 1


def test_duplicate_names_raises(tmp_path):
    path = tmp_path / "archives.toml"
    path.write_text('[[archive]]\nname = "x"\ntype = "folder"\npath = "/a"\n'
                    '[[archive]]\nname = "x"\ntype = "folder"\npath = "/b"\n')
    with pytest.raises(ArchivesConfigError, match=r"archive #2 \('x'\), key 'name'"):
        load_sources(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(ArchivesConfigError, match="LIGHTBOX_ARCHIVES"):
        load_sources(tmp_path / "none.toml")


def test_broken_toml_raises(tmp_path):
    path = tmp_path / "archives.toml"
    path.write_text("[[archive]\nname=")
    with pytest.raises(ArchivesConfigError, match="not valid TOML"):
        load_sources(path)


@pytest.mark.parametrize("url", [
    "http://viewer:s3cret-pw@127.0.0.1:8042/dicom-web",
    "https://viewer@pacs.example.org/dicom-web",
    "http://:s3cret-pw@127.0.0.1/dicom-web",
], ids=["user-and-password", "user-only", "password-only"])
def test_credentials_in_the_url_raises(tmp_path, url):
    path = _write(tmp_path, f'name = "x"\ntype = "dicomweb"\nurl = "{url}"\n')
    with pytest.raises(ArchivesConfigError, match=r"archive #1 \('x'\), key 'url': "
                       "holds a user name or password") as caught:
        load_sources(path)
    message = str(caught.value)
    assert "'username_env' and 'password_env'" in message
    assert 'auth = "basic"' in message
    # The message never repeats the secret (nor the url that holds it).
    assert "s3cret-pw" not in message and "viewer@" not in message
    assert caught.value.__cause__ is None
