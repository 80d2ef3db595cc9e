"""The generated values load into KubeSpawner and the authenticator, without a cluster.

A fresh interpreter builds the hub's config the way the chart does for the keys the
values use (hub.config verbatim; singleuser.image, cmd, cpu, memory, lifecycleHooks,
profileList mapped to their KubeSpawner traits; then hub.extraConfig), with a real
OpenID Connect discovery document served on loopback. It then instantiates
KubeSpawner (``_mock``, with a kubeconfig naming an API on loopback that is never
called) and the authenticator, refusing any unknown
trait or logged warning, runs the pre-spawn hook for a radiologist and builds the pod.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightbox_hub.deployment import unpack

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "kubernetes" / "values.yaml"

_PROBE = r'''
import asyncio, json, logging, os, sys, threading, warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
warnings.simplefilter("error")
import yaml
from traitlets.config import Config

class Discovery(BaseHTTPRequestHandler):
    def do_GET(self):
        base = f"http://127.0.0.1:{self.server.server_port}"
        body = json.dumps({"issuer": base, "authorization_endpoint": base + "/auth",
                           "token_endpoint": base + "/token",
                           "userinfo_endpoint": base + "/userinfo",
                           "end_session_endpoint": base + "/logout"}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
threading.Thread(target=server.serve_forever, daemon=True).start()
with open(sys.argv[1]) as file:
    values = yaml.safe_load(file)
hub, single = values["hub"], values["singleuser"]
for item in hub["extraEnv"]:
    if "value" in item:
        os.environ[item["name"]] = item["value"]
    else:  # a Kubernetes Secret in the cluster
        os.environ[item["name"]] = "test-only-" + "x" * 32
os.environ["LIGHTBOX_OIDC_ISSUER"] = f"http://127.0.0.1:{server.server_port}"
os.environ["LIGHTBOX_STATE_DIR"] = sys.argv[2]
os.environ["LIGHTBOX_ARCHIVES"] = sys.argv[3]

records = []
class Keep(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            records.append(record.getMessage())
logging.getLogger().addHandler(Keep())
logging.getLogger().setLevel(logging.WARNING)
for name in ("traitlets", "KubeSpawner", "JupyterHub"):
    logging.getLogger(name).addHandler(Keep())

# The chart's mapping, for the keys these values use.
c = Config()
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
k = c.KubeSpawner
k.image = f"{single['image']['name']}:{single['image']['tag']}"
k.cmd = single["cmd"]
k.default_url = single["defaultUrl"]
k.uid, k.fs_gid = single["uid"], single["fsGid"]
k.cpu_guarantee, k.cpu_limit = single["cpu"]["guarantee"], single["cpu"]["limit"]
k.mem_guarantee, k.mem_limit = single["memory"]["guarantee"], single["memory"]["limit"]
k.lifecycle_hooks = single["lifecycleHooks"]
k.profile_list = single["profileList"]
for section, settings in hub["config"].items():
    c[section].update(settings)
for name in sorted(hub["extraConfig"]):
    exec(compile(hub["extraConfig"][name], name, "exec"), {"c": c})

from jupyterhub.app import JupyterHub
from kubespawner import KubeSpawner
from lightbox_hub.deployment import load_local_config
auth_class = c.JupyterHub.authenticator_class
unknown = {}
def check(cls, sections):
    accepted = set(cls.class_trait_names(config=True))
    for section in sections:
        extra = set(c[section]) - accepted
        if extra:
            unknown[section] = sorted(extra)
check(JupyterHub, ["JupyterHub"])
check(KubeSpawner, ["KubeSpawner"])
check(auth_class, [k.__name__ for k in auth_class.__mro__ if k.__name__ in c])
authenticator = auth_class(config=c)

class Group:
    def __init__(self, name): self.name = name
class User:
    name, id, url, escaped_name = "rad1", 7, "/user/rad1/", "rad1"
    groups = [Group("radiologist")]
    def __init__(self): self.spawners = {}
    def url_for(self, *a): return self.url
async def build():
    spawner = KubeSpawner(_mock=True, config=c, user=User())
    spawner.api_token = "test-token"
    spawner.pre_spawn_hook(spawner)
    profiles = spawner.profile_list(spawner)
    spawner.user_options = {"profile": profiles[0]["slug"]}
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    return spawner, profiles, pod
spawner, profiles, pod = asyncio.run(build())
container = pod.spec.containers[0]
env = {e.name: e.value for e in container.env}
local = load_local_config()
def same(carried, value):
    # Functions (hooks) come from two loads of the file: compare what they are.
    if callable(value):
        return getattr(carried, "__qualname__", None) == value.__qualname__
    return repr(carried) == repr(value)
with open(os.environ["LIGHTBOX_STATE_DIR"] + "/audit.jsonl") as file:
    audit = file.read()
print(json.dumps({
    "unknown": unknown, "warnings": records,
    "authenticator": auth_class.__name__,
    "allowed_groups": sorted(authenticator.allowed_groups),
    "admin_groups": sorted(authenticator.admin_groups),
    "same_auth": {key: same(c[auth_class.__name__][key], value)
                  for key, value in local[auth_class.__name__].items()},
    "handlers": [h[0] for h in c.JupyterHub.extra_handlers],
    "headers": c.JupyterHub.tornado_settings["headers"],
    "local_headers": local.JupyterHub.tornado_settings["headers"],
    "services": [s["name"] for s in c.JupyterHub.services],
    "profiles": [p["slug"] for p in profiles],
    "resources": {"requests": container.resources.requests,
                  "limits": container.resources.limits},
    "args": container.args, "lifecycle": container.lifecycle,
    "env": env, "default_url": spawner.default_url,
    "grace": spawner.delete_grace_period,
    "local_term_timeout": local.LocalProcessSpawner.term_timeout,
    "audit": audit,
}, default=str))
'''


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("kube")
    archives = folder / "archives.toml"
    archives.write_text('[[archive]]\nname = "Main PACS"\ntype = "dicomweb"\n'
                        'url = "https://pacs.example.org/dicom-web"\n\n'
                        '[[archive]]\nname = "Teaching archive"\ntype = "folder"\n'
                        'path = "/srv/teaching"\n')
    # KubeSpawner builds (never calls) an API client: an unroutable loopback API.
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: none\n"
        "clusters: [{name: none, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: none, user: {token: none}}]\n"
        "contexts: [{name: none, context: {cluster: none, user: none}}]\n")
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("LIGHTBOX_", "JUPYTERHUB_", "KUBERNETES_"))}
    environment["KUBECONFIG"] = str(kubeconfig)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(VALUES), str(folder / "state"),
         str(archives)], capture_output=True, text=True, env=environment,
        timeout=120, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_setting_is_a_trait_and_nothing_warns(loaded: dict) -> None:
    assert loaded["unknown"] == {}
    assert loaded["warnings"] == []


def test_sign_on_is_the_local_one(loaded: dict) -> None:
    assert loaded["authenticator"] == "LightboxOIDCAuthenticator"
    assert all(loaded["same_auth"].values()), loaded["same_auth"]
    assert {"radiologist", "lightbox-admins"} <= set(loaded["allowed_groups"])
    assert loaded["admin_groups"] == ["lightbox-admins"]
    assert loaded["headers"] == loaded["local_headers"]
    assert "lightbox/launch" in loaded["handlers"]
    assert "api/lightbox/audit" in loaded["handlers"]


def test_chart_culler_replaces_the_local_one(loaded: dict) -> None:
    assert "idle-culler" not in loaded["services"]


def test_presenter_relay_runs_in_the_hub_pod_for_the_user_pods(loaded: dict) -> None:
    assert "presenter" in loaded["services"]
    # Kernels reach it through the chart's "hub" service, not the hub's loopback.
    assert loaded["env"]["LIGHTBOX_PRESENTER_URL"] == (
        "http://hub:8765/services/presenter/")


def test_radiologist_gets_only_the_radiologist_profile(loaded: dict) -> None:
    assert loaded["profiles"] == ["radiologist"]
    # KubeSpawner writes bytes (M and G are binary multiples) and cores.
    assert loaded["resources"] == {"requests": {"cpu": 1.0, "memory": 1536 * 2**20},
                                   "limits": {"cpu": 2.0, "memory": 4 * 2**30}}


def test_pod_receives_role_archives_headers_and_startup_file(loaded: dict) -> None:
    env = loaded["env"]
    assert env["LIGHTBOX_ROLE"] == "radiologist"
    archives = json.loads(unpack(env["LIGHTBOX_ROLE_ARCHIVES_CONTENT"]))
    assert [a["name"] for a in archives["archive"]] == ["Main PACS",
                                                         "Teaching archive"]
    server = json.loads(unpack(env["LIGHTBOX_SERVER_CONFIG_CONTENT"]))
    assert "frame-ancestors" in server["ServerApp"]["tornado_settings"]["headers"][
        "Content-Security-Policy"]
    assert env["PYTHONSTARTUP"].endswith("lightbox_hub/kernel_startup.py") or env[
        "PYTHONSTARTUP"].endswith("hub/kernel_startup.py")
    assert Path(env["PYTHONSTARTUP"]).is_file()
    # Nothing on the hub's disk is named to the pod.
    assert not any("state" in value for value in env.values() if value)
    assert "LIGHTBOX_AUDIT_LOG" not in env
    assert loaded["default_url"].startswith("/lab/tree/radiologist/")


def test_pod_command_stop_hook_and_grace_period(loaded: dict) -> None:
    assert loaded["args"][:5] == ["python", "-m", "lightbox_hub.deployment",
                                  "pod-start", "--"]
    assert "--allow-root" not in loaded["args"]
    assert "/home/jovyan/ehr-launch" in loaded["lifecycle"] and "pre_stop" in loaded[
        "lifecycle"]
    assert loaded["grace"] > loaded["local_term_timeout"]


def test_server_start_is_audited(loaded: dict) -> None:
    record = json.loads(loaded["audit"].splitlines()[-1])
    assert record["event"] == "server-started" and record["role"] == "radiologist"
