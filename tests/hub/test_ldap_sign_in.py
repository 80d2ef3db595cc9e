"""Sign-in through LDAP: the directory's groups decide the job role, admin and refusal.

A real OpenLDAP ``slapd`` (Debian package ``slapd``) runs as a plain process on
127.0.0.1 with its own configuration folder; the people are loaded with ``slapadd``,
the groups are added over LDAP so that slapd's memberof overlay fills ``memberOf`` as
Active Directory does. The hub is ``hub/jupyterhub_config.py`` with
``LIGHTBOX_AUTHENTICATOR=ldap`` and a site file, and users sign in through the hub's
own login form. Each configuration is tried with ``memberOf`` and with a group search.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import socket
import subprocess
import urllib.error
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from live_hub import login_form, operator, wait_until_ready

from lightbox_hub.audit import AuditLog
from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.ports import free_port
from lightbox_hub.embedded.process import ManagedProcess
from lightbox_hub.roles import ADMIN_GROUP, ROLE_BY_GROUP

with warnings.catch_warnings():
    # ldap3 2.9 still uses pyasn1 names that pyasn1 has deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
# Who is in which directory group (fake people; the groups are what matters).
MEMBERSHIP = {
    "radiologist": ["alice"],
    "project-lead": ["pat"],
    ADMIN_GROUP: ["pat"],
    "billing": ["mallory"],
}
PEOPLE_NAMES = ("alice", "pat", "mallory")


def _require_slapd() -> None:
    if SLAPD.exists() and SLAPADD.exists():
        return
    what = ("slapd is not installed (Debian package 'slapd'; "
            "scripts/install-system-packages.sh installs it)")
    if os.environ.get("CI") or os.geteuid() == 0:
        pytest.fail(f"{what}; as root it must be installed (make setup)")
    pytest.skip(what)


def _ssha(password: str) -> str:
    # RFC 2307 style salted SHA-1, the scheme slapd checks for {SSHA}.
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


class Directory:
    """slapd on 127.0.0.1 with :data:`MEMBERSHIP`; passwords made at random."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.admin_dn = f"cn=admin,{SUFFIX}"
        self.admin_password = secrets.token_urlsafe(12)
        self.passwords = {name: secrets.token_urlsafe(12) for name in PEOPLE_NAMES}
        self.process: ManagedProcess | None = None

    def start(self) -> Directory:
        (self.folder / "db").mkdir(parents=True)
        config = self.folder / "slapd.conf"
        schemas = "".join(f"include /etc/ldap/schema/{name}.schema\n"
                          for name in ("core", "cosine", "nis", "inetorgperson"))
        config.write_text(
            schemas
            + "modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n"
            + f"pidfile {self.folder}/slapd.pid\nargsfile {self.folder}/slapd.args\n"
            + f'database mdb\nsuffix "{SUFFIX}"\nrootdn "{self.admin_dn}"\n'
            + f"rootpw {_ssha(self.admin_password)}\ndirectory {self.folder}/db\n"
            + "overlay memberof\n"
            + "access to attrs=userPassword by self write by anonymous auth by * none\n"
            + "access to * by * read\n")
        entries = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
                   "o: Example\ndc: example\n"]
        for unit in ("people", "groups"):
            entries.append(f"dn: ou={unit},{SUFFIX}\nobjectClass: organizationalUnit\n"
                           f"ou: {unit}\n")
        for name in PEOPLE_NAMES:
            entries.append(f"dn: uid={name},{PEOPLE}\nobjectClass: inetOrgPerson\n"
                           f"uid: {name}\ncn: Test {name.title()}\nsn: Case\n"
                           f"userPassword: {_ssha(self.passwords[name])}\n")
        ldif = self.folder / "people.ldif"
        ldif.write_text("\n".join(entries))
        subprocess.run([str(SLAPADD), "-f", str(config), "-l", str(ldif)],
                       check=True, capture_output=True, timeout=60)
        self.process = ManagedProcess(
            "slapd", [str(SLAPD), "-f", str(config), "-h",
                      f"ldap://127.0.0.1:{self.port}/", "-d", "0"],
            self.folder / "slapd.log")
        self.process.start()
        self.process.wait_until(self._answers, 30, "LDAP bind")

        # Groups are added over LDAP: the memberof overlay then writes memberOf.
        connection = self._bind()
        assert connection is not None
        for group, members in MEMBERSHIP.items():
            assert connection.add(
                f"cn={group},{GROUPS}", ["groupOfNames"],
                {"cn": group, "member": [f"uid={m},{PEOPLE}" for m in members]}
            ), connection.result
        connection.unbind()
        return self

    def _bind(self) -> ldap3.Connection | None:
        try:
            return ldap3.Connection(ldap3.Server("127.0.0.1", port=self.port),
                                    self.admin_dn, self.admin_password,
                                    auto_bind=True)
        except ldap3.core.exceptions.LDAPException:
            return None

    def _answers(self) -> bool:
        # ldap3 leaves the socket of a refused connection open: knock first.
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                return False
        connection = self._bind()
        if connection is None:
            return False
        connection.unbind()
        return True

    def member_of(self, name: str) -> list[str]:
        connection = self._bind()
        assert connection is not None
        connection.search(f"uid={name},{PEOPLE}", "(objectClass=*)",
                          attributes=["memberOf"])
        values = connection.entries[0].entry_attributes_as_dict.get("memberOf", [])
        connection.unbind()
        return sorted(str(v) for v in values)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    _require_slapd()
    ldap = Directory(tmp_path_factory.mktemp("slapd"))
    try:
        yield ldap.start()
    finally:
        ldap.stop()


# How the hub finds a user's groups: the directory's memberOf, or a search of the
# groups that list the user (for directories without memberOf).
MODES = {
    "memberOf": 'c.LightboxLDAPAuthenticator.member_of_attribute = "memberOf"\n',
    "group search": ('c.LightboxLDAPAuthenticator.member_of_attribute = ""\n'
                     f'c.LightboxLDAPAuthenticator.group_search_base = "{GROUPS}"\n'),
}


@pytest.fixture(scope="module", params=list(MODES), ids=list(MODES))
def hub(request: pytest.FixtureRequest, directory: Directory,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHub]:
    root = tmp_path_factory.mktemp("ldap-hub")
    site = root / "site_config.py"
    site.write_text(
        'c.LDAPAuthenticator.server_address = "127.0.0.1"\n'
        f"c.LDAPAuthenticator.server_port = {directory.port}\n"
        # Loopback only; a hospital uses "on_connect" (ldaps) or "before_bind".
        'c.LDAPAuthenticator.tls_strategy = "insecure"\n'
        f'c.LDAPAuthenticator.bind_dn_template = ["uid={{username}},{PEOPLE}"]\n'
        + MODES[request.param])
    (root / "empty").mkdir()
    archives = root / "archives.toml"
    archives.write_text(f'[[archive]]\nname = "Empty"\ntype = "folder"\n'
                        f'path = "{root / "empty"}"\n')
    started = EmbeddedHub(root / "hub", "", archives, extra_env={
        "LIGHTBOX_AUTHENTICATOR": "ldap", "LIGHTBOX_HUB_CONFIG": str(site)})
    try:
        yield started.start()
    finally:
        started.stop()


def sign_in(session: requests.Session, hub: EmbeddedHub, name: str, password: str
            ) -> requests.Response:
    """Fill in and send the hub's login form, as a browser does."""
    page = session.get(hub.url + "/hub/login", timeout=60)
    action, method, fields = login_form(page)
    assert method == "post" and "username" in fields and "password" in fields
    fields.update(username=name, password=password)
    return session.post(action, data=fields, timeout=120)


def test_directory_keeps_memberof_for_its_groups(directory: Directory) -> None:
    # The premise of the memberOf mode: the overlay wrote the attribute.
    assert directory.member_of("pat") == [f"cn={ADMIN_GROUP},{GROUPS}",
                                          f"cn=project-lead,{GROUPS}"]


@pytest.mark.parametrize(("name", "role", "admin"), [
    ("alice", "radiologist", False),
    ("pat", "project-lead", True),
], ids=["radiologist", "project lead and admin"])
def test_member_lands_in_the_workspace_of_their_role(
        hub: EmbeddedHub, directory: Directory, name: str, role: str,
        admin: bool) -> None:
    session = requests.Session()
    try:
        sign_in(session, hub, name, directory.passwords[name])
        model = operator(hub, f"/users/{name}")
        expected_groups = sorted(g for g, members in MEMBERSHIP.items()
                                 if name in members)
        assert sorted(model["groups"]) == expected_groups
        assert model["admin"] is admin
        wait_until_ready(hub, name)
        landing = session.get(f"{hub.url}/user/{name}/", timeout=120)
        curriculum = ROLE_BY_GROUP[role].curriculum
        assert landing.status_code == 200
        assert re.fullmatch(rf".*/user/{name}/lab/tree/{curriculum}(/[^/]+\.ipynb)?",
                            landing.url), landing.url
    finally:
        session.close()
        operator(hub, f"/users/{name}/server", "DELETE")


def test_user_outside_the_allowed_groups_gets_a_page_that_says_why(
        hub: EmbeddedHub, directory: Directory) -> None:
    with requests.Session() as session:
        page = sign_in(session, hub, "mallory", directory.passwords["mallory"])
    assert page.status_code == 403
    assert "in no Lightbox job role (your groups: billing)" in page.text
    assert "Ask your Lightbox administrator" in page.text
    # Refused before the hub made an account for them, and written to the audit.
    with pytest.raises(urllib.error.HTTPError, match="404"):
        operator(hub, "/users/mallory")
    refusals = [r for r in AuditLog(hub.directory / "audit.jsonl").read()
                if r["event"] == "sign-in-refused" and r["user"] == "mallory"]
    assert refusals and refusals[-1]["reason"] == "no-job-role"
    assert refusals[-1]["client_ip"] == "127.0.0.1"


def test_wrong_password_is_refused_without_naming_groups(
        hub: EmbeddedHub, directory: Directory) -> None:
    with requests.Session() as session:
        page = sign_in(session, hub, "alice", "not-" + directory.passwords["alice"])
    assert page.status_code == 403
    assert "Invalid username or password" in page.text
    assert "your groups" not in page.text
    # A wrong password proves nothing about who typed the name: no audit record.
    assert not [r for r in AuditLog(hub.directory / "audit.jsonl").read()
                if r["event"] == "sign-in-refused" and r["user"] == "alice"]


@pytest.mark.browser
def test_in_chromium_a_member_lands_in_lab_and_an_outsider_reads_why(
        browser, hub: EmbeddedHub, directory: Directory) -> None:
    def sign_in_in_browser(page, name: str) -> None:
        page.goto(hub.url + "/hub/login")
        page.get_by_label("Username").fill(name)
        page.get_by_label("Password").fill(directory.passwords[name])
        page.get_by_role("button", name="Sign in").click()

    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in_in_browser(page, "alice")
        page.wait_for_url(re.compile(r".*/user/alice/lab/tree/radiologist(/.*\.ipynb)?$"),
                          timeout=90_000)
        page.context.clear_cookies()
        sign_in_in_browser(page, "mallory")
        page.get_by_text("in no Lightbox job role (your groups: billing)").wait_for(
            timeout=30_000)
    finally:
        context.close()
        operator(hub, "/users/alice/server", "DELETE")
