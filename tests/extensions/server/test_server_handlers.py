"""The Lightbox server extension's endpoints, on a real Jupyter server on loopback."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_fixtures import (
    REPOSITORY,
    LightboxServer,
    free_port,
    write_archives,
    write_phantom_folder,
)


@pytest.fixture(scope="session")
def phantom_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("phantom-archive")
    return folder, write_phantom_folder(folder)


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
