"""The Lightbox server extension's endpoints, on a real Jupyter server on loopback."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pydicom
import pydicom.data
import pytest
from server_fixtures import (
    REPOSITORY,
    LightboxServer,
    free_port,
    write_archives,
)


@pytest.fixture(scope="module")
def lightbox_server(
    tmp_path_factory: pytest.TempPathFactory, phantom_archive: tuple[Path, list[str]]
) -> Iterator[LightboxServer]:
    folder = tmp_path_factory.mktemp("lightbox-server")
    archives = write_archives(folder / "archives.toml", phantom_archive[0], free_port())
    server = LightboxServer(
        folder,
        {
            "LIGHTBOX_ARCHIVES": str(archives),
            "LIGHTBOX_ROLE": "radiologist",
            "LIGHTBOX_PANELS": "studies,launcher",
        },
    )
    shutil.copytree(
        REPOSITORY / "notebooks" / "radiologist", server.root / "radiologist"
    )
    server.start()
    yield server
    server.stop()


def test_health_reports_each_archive_with_state_and_latency(
    lightbox_server: LightboxServer,
) -> None:
    reply = lightbox_server.request("GET", "/lightbox/api/health")

    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    archives = {row["name"]: row for row in reply.json()["archives"]}
    assert archives["Teaching folder"]["state"] == "ok"
    assert archives["Teaching folder"]["latency_ms"] >= 0
    assert archives["Closed PACS"]["state"] == "down"
    assert archives["Closed PACS"]["latency_ms"] is None
    assert archives["Closed PACS"]["message"]


def test_search_returns_studies_of_the_reachable_archive_and_the_down_one(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    reply = lightbox_server.request("GET", "/lightbox/api/search?modality=CT")

    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.json()
    assert sorted(s["study_instance_uid"] for s in body["studies"]) == sorted(
        phantom_archive[1]
    )
    assert all(s["locations"] == ["Teaching folder"] for s in body["studies"])
    states = {row["name"]: row["state"] for row in body["archives"]}
    assert states == {"Teaching folder": "ok", "Closed PACS": "down"}
    assert body["complete"] is False


def test_search_matches_the_patient_id(lightbox_server: LightboxServer) -> None:
    reply = lightbox_server.request("GET", "/lightbox/api/search?patient_id=NOBODY-0")

    assert reply.status == 200
    assert reply.json()["studies"] == []


def test_thumbnail_is_a_png_that_is_never_cached(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    uid = phantom_archive[1][0]
    reply = lightbox_server.request(
        "GET", f"/lightbox/api/thumbnail?study_instance_uid={uid}"
    )

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "image/png"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.body.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "query, status",
    [
        ("study_instance_uid=1.2.3.4", 404),
        ("study_instance_uid=not-a-uid", 400),
        ("", 400),
    ],
    ids=["unknown-study", "not-a-uid", "missing"],
)
def test_thumbnail_refusals(
    lightbox_server: LightboxServer, query: str, status: int
) -> None:
    reply = lightbox_server.request("GET", f"/lightbox/api/thumbnail?{query}")

    assert reply.status == status
    assert reply.json()["message"]


def test_open_writes_one_app_view_notebook_in_the_launch_folder(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    first, second = phantom_archive[1]
    earlier = lightbox_server.request(
        "POST", "/lightbox/api/open", {"study_instance_uid": first}
    ).json()
    reply = lightbox_server.request(
        "POST", "/lightbox/api/open", {"study_instance_uid": second, "view": "app"}
    )

    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    opened = reply.json()
    assert opened["path"].startswith("ehr-launch/study-")
    assert opened["url"] == f"/lab/tree/{opened['path']}"
    folder = lightbox_server.root / "ehr-launch"
    # One launch at a time: the earlier notebook is gone.
    assert [p.name for p in folder.glob("*.ipynb")] == [Path(opened["path"]).name]
    assert not (lightbox_server.root / earlier["path"]).exists()
    notebook = json.loads((lightbox_server.root / opened["path"]).read_text())
    assert notebook["metadata"]["lightbox"] == {
        "app_view": True,
        "kind": "study-viewer",
    }
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert any(f'"{second}"' in source for source in code)


def test_open_as_notebook_keeps_the_code_visible(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    reply = lightbox_server.request(
        "POST",
        "/lightbox/api/open",
        {"study_instance_uid": phantom_archive[1][0], "view": "notebook"},
    )

    notebook = json.loads((lightbox_server.root / reply.json()["path"]).read_text())
    assert notebook["metadata"]["lightbox"]["app_view"] is False


def test_open_without_a_view_follows_the_role_panels(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    # This server's role has no app view (LIGHTBOX_PANELS=studies,launcher).
    reply = lightbox_server.request(
        "POST", "/lightbox/api/open", {"study_instance_uid": phantom_archive[1][0]}
    )

    notebook = json.loads((lightbox_server.root / reply.json()["path"]).read_text())
    assert notebook["metadata"]["lightbox"]["app_view"] is False


def test_a_second_open_shuts_the_first_viewers_kernel_down(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    first, second = phantom_archive[1]
    earlier = lightbox_server.request(
        "POST", "/lightbox/api/open", {"study_instance_uid": first}
    ).json()["path"]
    # What JupyterLab does when the notebook opens: a session with a kernel.
    session = lightbox_server.request(
        "POST",
        "/api/sessions",
        {"path": earlier, "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert session.status == 201
    kernel_id = session.json()["kernel"]["id"]

    later = lightbox_server.request(
        "POST", "/lightbox/api/open", {"study_instance_uid": second}
    ).json()["path"]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kernels = [
            k["id"] for k in lightbox_server.request("GET", "/api/kernels").json()
        ]
        sessions = lightbox_server.request("GET", "/api/sessions").json()
        if kernel_id not in kernels and not sessions:
            break
        time.sleep(0.3)
    assert kernel_id not in kernels
    assert [s["path"] for s in sessions] == []
    assert (lightbox_server.root / later).exists()
    assert (
        "shut down 1 kernel(s) of replaced viewers" in lightbox_server.log.read_text()
    )


@pytest.mark.parametrize(
    "body, match",
    [
        ({"study_instance_uid": "1.2.3'; import os"}, "must be a UID"),
        ({}, "must be a UID"),
        ({"study_instance_uid": "1.2.3", "view": "voila"}, "view must be one of"),
    ],
    ids=["injection", "missing-uid", "unknown-view"],
)
def test_open_refusals(
    lightbox_server: LightboxServer, body: dict[str, str], match: str
) -> None:
    reply = lightbox_server.request("POST", "/lightbox/api/open", body)

    assert reply.status == 400
    assert match in reply.json()["message"]


def test_contents_api_never_caches_launch_notebooks_but_may_cache_lessons(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    path = lightbox_server.request(
        "POST", "/lightbox/api/open", {"study_instance_uid": phantom_archive[1][0]}
    ).json()["path"]

    launch = lightbox_server.request("GET", f"/api/contents/{path}")
    folder = lightbox_server.request("GET", "/api/contents/ehr-launch")
    lesson = lightbox_server.request(
        "GET", "/api/contents/radiologist/01-first-study.ipynb"
    )

    assert launch.status == folder.status == lesson.status == 200
    assert launch.headers["Cache-Control"] == "no-store"
    assert folder.headers["Cache-Control"] == "no-store"
    assert lesson.headers.get("Cache-Control") != "no-store"


def test_config_names_the_role_its_panels_and_its_lessons(
    lightbox_server: LightboxServer,
) -> None:
    config = lightbox_server.request("GET", "/lightbox/api/config").json()

    assert config["role"] == "radiologist"
    assert config["role_title"] == "Radiologist"
    assert config["panels"] == ["studies", "launcher"]
    assert [lesson["path"] for lesson in config["lessons"]] == [
        "radiologist/01-first-study.ipynb",
        "radiologist/02-windows-reformats-measurements.ipynb",
        "radiologist/03-priors-and-reports.ipynb",
    ]
    assert all(lesson["title"] for lesson in config["lessons"])
    assert config["autorun_paths"] == ["ehr-launch/"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/lightbox/api/health"),
        ("GET", "/lightbox/api/search"),
        ("GET", "/lightbox/api/config"),
        ("POST", "/lightbox/api/open"),
    ],
    ids=["health", "search", "config", "open"],
)
def test_endpoints_refuse_requests_without_a_token(
    lightbox_server: LightboxServer, method: str, path: str
) -> None:
    reply = lightbox_server.request(
        method, path, {} if method == "POST" else None, token=None
    )

    assert reply.status == 403


def test_without_archives_health_says_what_to_do(tmp_path: Path) -> None:
    server = LightboxServer(
        tmp_path, {"LIGHTBOX_ARCHIVES": str(tmp_path / "missing.toml")}
    ).start()
    try:
        health = server.request("GET", "/lightbox/api/health")
        search = server.request("GET", "/lightbox/api/search")
        config = server.request("GET", "/lightbox/api/config").json()
    finally:
        server.stop()

    assert health.status == 200
    assert health.json()["archives"] == []
    assert "LIGHTBOX_ARCHIVES" in health.json()["message"]
    assert search.status == 503
    assert "No archives are configured" in search.json()["message"]
    assert config["role"] is None
    assert config["panels"] == ["studies", "launcher", "app-view"]
    assert config["lessons"] == []


_ATEXIT_MARKER = """\
import atexit, os, pathlib
marker = pathlib.Path(os.environ["MARKER"])
marker.write_text("started")
atexit.register(lambda: marker.write_text("purged"))
"""


def test_shutdown_stops_kernels_gracefully_and_wipes_launches_and_scratch(
    tmp_path: Path, phantom_archive: tuple[Path, list[str]]
) -> None:
    startup = tmp_path / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    # Stands in for the Lightbox kernel startup file: its purge runs at exit.
    (startup / "00-marker.py").write_text(_ATEXIT_MARKER)
    marker, scratch = tmp_path / "kernel-purged", tmp_path / "scratch"
    (scratch / "work").mkdir(parents=True)
    (scratch / "work" / "frame.raw").write_bytes(b"\0" * 16)
    archives = write_archives(tmp_path / "archives.toml", phantom_archive[0], None)
    server = LightboxServer(
        tmp_path,
        {
            "LIGHTBOX_ARCHIVES": str(archives),
            "LIGHTBOX_SCRATCH_DIR": str(scratch),
            "MARKER": str(marker),
        },
    ).start()
    path = server.request(
        "POST", "/lightbox/api/open", {"study_instance_uid": phantom_archive[1][0]}
    ).json()["path"]
    kernel = server.request("POST", "/api/kernels", {"name": "python3"})
    assert kernel.status == 201
    # The startup file has run once the marker says so.
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.read_text() == "started"
    assert (server.root / path).exists()

    assert server.stop() == 0

    assert marker.read_text() == "purged"
    assert not (server.root / "ehr-launch").exists()
    assert not scratch.exists()
    log = server.log.read_text()
    assert "shut down 1 kernel(s) gracefully" in log


class _AuditReceiver(BaseHTTPRequestHandler):
    """Stands in for the hub's audit endpoint: records what a server posts."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        length = int(self.headers["Content-Length"])
        self.received.append({"path": self.path,
                              "auth": self.headers["Authorization"],
                              "body": json.loads(self.rfile.read(length))})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_shutdown_sends_the_servers_own_purge_receipt_to_the_hub(
    tmp_path: Path, phantom_archive: tuple[Path, list[str]]
) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _AuditReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    archives = write_archives(tmp_path / "archives.toml", phantom_archive[0], None)
    server = LightboxServer(
        tmp_path,
        {
            "LIGHTBOX_ARCHIVES": str(archives),
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{receiver.server_port}/hub/api",
            "JUPYTERHUB_API_TOKEN": "server-token",
        },
    ).start()
    try:
        # A search fills the server's own caches (metadata, thumbnails).
        assert server.request("GET", "/lightbox/api/search?modality=CT").status == 200
        assert server.stop() == 0
    finally:
        server.stop()
        receiver.shutdown()
        receiver.server_close()

    purges = [r for r in _AuditReceiver.received if r["body"]["event"] == "purge"]
    assert len(purges) == 1, _AuditReceiver.received
    assert purges[0]["path"] == "/hub/api/lightbox/audit"
    assert purges[0]["auth"] == "token server-token"
    fields = purges[0]["body"]["fields"]
    assert fields["where"] == "server"
    assert set(fields) == {"kinds", "items", "bytes", "where"}
    assert fields["kinds"] and fields["items"] >= 0


def _phantom_study(folder: Path, kind: str) -> Any:
    """The first data set of the ``kind`` ("current", "prior") phantom study."""
    return pydicom.dcmread(min(folder.glob(f"{kind}-*.dcm")))


def test_search_by_accession_number_finds_that_study_only(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    current = _phantom_study(phantom_archive[0], "current")
    prior = _phantom_study(phantom_archive[0], "prior")
    assert current.AccessionNumber != prior.AccessionNumber

    reply = lightbox_server.request(
        "GET", f"/lightbox/api/search?accession_number={current.AccessionNumber}"
    )

    assert reply.status == 200
    studies = reply.json()["studies"]
    assert [s["study_instance_uid"] for s in studies] == [current.StudyInstanceUID]
    assert studies[0]["accession_number"] == current.AccessionNumber


def test_search_shows_person_names_as_family_comma_given(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    # PS3.5 6.2: family^given^middle^prefix^suffix; the viewer shows "Family, Given".
    raw = str(_phantom_study(phantom_archive[0], "current").PatientName)
    family, given = raw.split("^")[:2]

    reply = lightbox_server.request("GET", "/lightbox/api/search?modality=CT")
    studies = reply.json()["studies"]

    assert {s["patient_name"] for s in studies} == {f"{family}, {given}"}


def test_search_with_one_archive_down_names_it_in_a_notice(
    lightbox_server: LightboxServer,
) -> None:
    body = lightbox_server.request("GET", "/lightbox/api/search?modality=CT").json()
    health = lightbox_server.request("GET", "/lightbox/api/health").json()

    for notice in (body["notice"], health["notice"]):
        assert notice.startswith("Not reachable now: Closed PACS;")
        assert "Teaching folder" not in notice
        assert "tell the archive's administrator" in notice


def test_search_with_every_archive_down_answers_503_saying_which_and_what_to_do(
    tmp_path: Path,
) -> None:
    archives = write_archives(tmp_path / "archives.toml", None, free_port())
    server = LightboxServer(tmp_path, {"LIGHTBOX_ARCHIVES": str(archives)}).start()
    try:
        reply = server.request("GET", "/lightbox/api/search?patient_id=LBX-0001")
    finally:
        server.stop()

    assert reply.status == 503
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.json()
    assert body["message"].startswith(
        "Nothing could be searched: Closed PACS is not reachable now."
    )
    assert "search again in a few minutes" in body["message"]
    assert "Internal Server Error" not in body["message"]
    assert [(a["name"], a["state"]) for a in body["archives"]] == [
        ("Closed PACS", "down")
    ]
    assert body["studies"] == []


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/lightbox/api/health"),
        ("GET", "/lightbox/api/search?modality=CT"),
        ("GET", "/lightbox/api/search?study_date=not-a-date"),
        ("GET", "/lightbox/api/thumbnail?study_instance_uid={uid}"),
        ("GET", "/lightbox/api/thumbnail?study_instance_uid=1.2.3.4"),
        ("GET", "/lightbox/api/config"),
        ("POST", "/lightbox/api/open"),
    ],
    ids=[
        "health",
        "search",
        "search-refused",
        "thumbnail",
        "thumbnail-missing",
        "config",
        "open-refused",
    ],
)
def test_every_extension_response_with_patient_data_is_never_cached(
    lightbox_server: LightboxServer,
    phantom_archive: tuple[Path, list[str]],
    method: str,
    path: str,
) -> None:
    reply = lightbox_server.request(
        method,
        path.format(uid=phantom_archive[1][0]),
        {} if method == "POST" else None,
    )

    assert reply.headers["Cache-Control"] == "no-store"
    assert "Etag" not in reply.headers


@pytest.mark.orthanc
def test_search_refused_by_every_archive_says_sign_in_again_not_down(
    tmp_path: Path, orthanc_factory
) -> None:
    archive = orthanc_factory("guarded", credentials=("viewer", "right-pass")).start()
    archives = tmp_path / "archives.toml"
    archives.write_text(
        '[[archive]]\nname = "Guarded PACS"\ntype = "dicomweb"\n'
        f'url = "{archive.dicomweb_url}"\nquirks = "orthanc-1.10"\n'
        'auth = "basic"\nusername = "viewer"\npassword_env = "GUARDED_PASSWORD"\n'
    )
    server = LightboxServer(
        tmp_path,
        {"LIGHTBOX_ARCHIVES": str(archives), "GUARDED_PASSWORD": "wrong-pass"},
    ).start()
    try:
        reply = server.request("GET", "/lightbox/api/search?modality=CT")
    finally:
        server.stop()

    assert reply.status == 503
    body = reply.json()
    assert body["message"].startswith(
        "Nothing could be searched: Guarded PACS refused your credentials."
    )
    assert "not reachable" not in body["message"]
    assert [(a["name"], a["state"]) for a in body["archives"]] == [
        ("Guarded PACS", "refused")
    ]


# -- Several modalities, and rows that tell alike studies apart -------------------

_MR_SMALL = pydicom.data.get_testdata_file("MR_small.dcm")


def _ids(reply: Any) -> list[str]:
    assert reply.status == 200, reply.body
    return sorted(s["study_instance_uid"] for s in reply.json()["studies"])


@pytest.fixture(scope="module")
def mixed_server(
    tmp_path_factory: pytest.TempPathFactory, phantom_archive: tuple[Path, list[str]]
) -> Iterator[tuple[LightboxServer, dict[str, Any]]]:
    """A folder with the CT phantoms and an MR, and an archive that is down."""
    folder = tmp_path_factory.mktemp("mixed-server")
    archive = folder / "archive"
    shutil.copytree(phantom_archive[0], archive)
    shutil.copy(_MR_SMALL, archive / "mr.dcm")
    archives = write_archives(folder / "archives.toml", archive, free_port())
    server = LightboxServer(folder / "server", {"LIGHTBOX_ARCHIVES": str(archives)})
    server.start()
    uids = {"ct": sorted(phantom_archive[1]),
            "mr": [str(pydicom.dcmread(_MR_SMALL).StudyInstanceUID)]}
    yield server, uids
    server.stop()


@pytest.mark.parametrize(
    "typed",
    ["CT%5CMR", "CT,MR", "ct%2C%20mr", "CT/MR", "MR%5CCT%5CMR"],
    ids=["backslash", "comma", "comma-space-lower-case", "slash", "repeated"],
)
def test_search_for_several_modalities_finds_studies_of_each(
    mixed_server: tuple[LightboxServer, dict[str, Any]], typed: str
) -> None:
    server, uids = mixed_server

    reply = server.request("GET", f"/lightbox/api/search?modality={typed}")

    assert _ids(reply) == sorted(uids["ct"] + uids["mr"])


def test_search_for_one_modality_still_finds_only_that_one(
    mixed_server: tuple[LightboxServer, dict[str, Any]],
) -> None:
    server, uids = mixed_server

    assert _ids(server.request("GET", "/lightbox/api/search?modality=MR")) == uids["mr"]
    assert _ids(server.request("GET", "/lightbox/api/search?modality=ct")) == uids["ct"]


@pytest.mark.parametrize("typed", ["CT%5C%3Cscript%3E", "C*", "TOOLONGMODALITYCODE"])
def test_search_for_a_modality_that_is_no_code_raises(
    mixed_server: tuple[LightboxServer, dict[str, Any]], typed: str
) -> None:
    reply = mixed_server[0].request("GET", f"/lightbox/api/search?modality={typed}")

    assert reply.status == 400
    assert "is not a modality: use codes such as CT" in reply.json()["message"]


def test_search_rows_carry_time_accession_and_counts(
    lightbox_server: LightboxServer, phantom_archive: tuple[Path, list[str]]
) -> None:
    reply = lightbox_server.request("GET", "/lightbox/api/search?modality=CT")

    rows = {s["study_instance_uid"]: s for s in reply.json()["studies"]}
    for kind in ("current", "prior"):
        dataset = _phantom_study(phantom_archive[0], kind)
        row = rows[dataset.StudyInstanceUID]
        files = list(phantom_archive[0].glob(f"{kind}-*.dcm"))
        assert row["study_time"] == dataset.StudyTime
        assert row["accession_number"] == dataset.AccessionNumber
        assert (row["number_of_series"], row["number_of_instances"]) == (1, len(files))


@pytest.mark.orthanc
def test_dicomweb_search_for_several_modalities_sends_a_qido_list(
    tmp_path: Path, orthanc_factory
) -> None:
    archive = orthanc_factory("modalities").start()
    files = [Path(pydicom.data.get_testdata_file(n))
             for n in ("CT_small.dcm", "MR_small.dcm")]
    assert archive.load_files(files).stored == 2
    archives = tmp_path / "archives.toml"
    archives.write_text(
        '[[archive]]\nname = "Orthanc"\ntype = "dicomweb"\n'
        f'url = "{archive.dicomweb_url}"\nquirks = "orthanc-1.10"\n'
    )
    server = LightboxServer(tmp_path, {"LIGHTBOX_ARCHIVES": str(archives)}).start()
    try:
        both = server.request("GET", "/lightbox/api/search?modality=CT%5CMR")
        one = server.request("GET", "/lightbox/api/search?modality=MR")
    finally:
        server.stop()

    expected = sorted(str(pydicom.dcmread(f).StudyInstanceUID) for f in files)
    # Orthanc answers "CT\MR" with nothing: it was sent as QIDO's list, "CT,MR".
    assert _ids(both) == expected
    assert len(_ids(one)) == 1
    row = both.json()["studies"][0]
    assert row["number_of_series"] == 1 and row["number_of_instances"] == 1
    assert row["study_time"]
