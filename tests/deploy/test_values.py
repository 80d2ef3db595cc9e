"""values.yaml is current, has the chart's shape, and comes from Lightbox's source."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from deploy import generate
from lightbox_hub.config import LightboxHub
from lightbox_hub.roles import JOB_ROLES
from chart_schema import SCHEMA

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(generate.VALUES.read_text())


def test_committed_values_are_what_the_generator_renders() -> None:
    assert generate.main(["--check"]) == 0


def test_values_match_the_chart_schema(values: dict) -> None:
    jsonschema.validate(values, SCHEMA)


@pytest.mark.parametrize("path, value", [
    (("singleuser", "cpu", "limit"), "two"),
    (("singleuser", "networkPolicy", "egressAllowRules", "privateIP"), False),
    (("cull", "timeout"), "1h"),
    (("hub", "extraConfig"), "c.X = 1"),
], ids=["cpu-as-text", "misspelt-rule", "timeout-as-text", "extraconfig-as-string"])
def test_a_wrong_shape_is_refused(values: dict, path: tuple[str, ...], value) -> None:
    broken = copy.deepcopy(values)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_chart_settings_come_from_the_hub_traits(values: dict) -> None:
    defaults = LightboxHub(state_dir=generate.STATE_DIR)
    assert values["cull"] == {"enabled": True, "timeout": defaults.idle_timeout_s,
                              "every": defaults.cull_every_s}
    secrets = {e["name"] for e in values["hub"]["extraEnv"] if "valueFrom" in e}
    assert secrets == {defaults.oidc_client_secret_env, defaults.launch_secret_env}
    assert all("value" not in e for e in values["hub"]["extraEnv"]
               if "SECRET" in e["name"])
    assert defaults.audit_log in values["hub"]["extraContainers"][0]["command"]


def test_one_profile_per_role_with_requests_under_limits(values: dict) -> None:
    profiles = values["singleuser"]["profileList"]
    assert sorted(p["slug"] for p in profiles) == sorted(
        [r.group for r in JOB_ROLES] + ["none"])
    for profile in profiles:
        override = profile["kubespawner_override"]
        assert 0 < override["cpu_guarantee"] <= override["cpu_limit"]


def test_user_pods_reach_only_the_archives_and_the_hub(values: dict) -> None:
    policy = values["singleuser"]["networkPolicy"]
    site = tomllib.loads(generate.SITE.read_text())
    assert policy["enabled"]
    assert {k for k, v in policy["egressAllowRules"].items() if v} == {
        "dnsPortsKubeSystemNamespace"}
    archives = [rule for rule in policy["egress"] if "ipBlock" in rule["to"][0]]
    assert [rule["to"][0]["ipBlock"]["cidr"] for rule in archives] == [
        archive["cidr"] for archive in site["archive"]]
    # Beyond the archives, only the hub pod's presenter port (the chart itself
    # allows the hub API port).
    others = [rule for rule in policy["egress"] if rule not in archives]
    assert others == [{"to": [{"podSelector": {"matchLabels": {
        "app": "jupyterhub", "component": "hub"}}}],
        "ports": [{"port": generate.PRESENTER_PORT, "protocol": "TCP"}]}]


def test_presenter_relay_is_reachable_from_user_pods_only(values: dict) -> None:
    hub = values["hub"]
    env = {e["name"]: e.get("value") for e in hub["extraEnv"]}
    port = generate.PRESENTER_PORT
    assert env["LIGHTBOX_PRESENTER_IP"] == "0.0.0.0"
    assert env["LIGHTBOX_PRESENTER_PORT"] == str(port)
    assert env["LIGHTBOX_PRESENTER_SERVICE_URL"] == f"http://hub:{port}"
    assert hub["service"]["extraPorts"] == [
        {"name": "presenter", "port": port, "targetPort": port}]
    assert hub["networkPolicy"]["ingress"] == [{
        "from": [{"podSelector": {"matchLabels": {
            "hub.jupyter.org/network-access-hub": "true"}}}],
        "ports": [{"port": port, "protocol": "TCP"}]}]


def test_tls_terminates_at_the_ingress(values: dict) -> None:
    ingress = values["ingress"]
    assert ingress["enabled"] and ingress["tls"][0]["hosts"] == ingress["hosts"]
    public = next(e["value"] for e in values["hub"]["extraEnv"]
                  if e["name"] == "LIGHTBOX_PUBLIC_URL")
    assert public == f"https://{ingress['hosts'][0]}"


def test_every_local_setting_is_classified(tmp_path: Path) -> None:
    # A setting added to hub/jupyterhub_config.py must be declared carried or
    # machine-only before the Kubernetes hub starts (configure_kubernetes refuses).
    import subprocess
    import sys

    probe = ("from lightbox_hub.deployment import load_local_config, unclassified\n"
             "print(unclassified(load_local_config()))")
    env = {"PATH": "/usr/bin:/bin", "LIGHTBOX_STATE_DIR": str(tmp_path),
           "LIGHTBOX_AUTHENTICATOR": "ldap", "LIGHTBOX_PROXY_COMMAND": "chp"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                            text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_an_unclassified_local_setting_stops_the_kubernetes_hub_raises(
        tmp_path: Path) -> None:
    from traitlets.config import Config

    from lightbox_hub.deployment import configure_kubernetes

    local = tmp_path / "jupyterhub_config.py"
    local.write_text("c = get_config()\nc.JupyterHub.new_setting = 1\n")
    with pytest.raises(RuntimeError, match=r"JupyterHub\.new_setting"):
        configure_kubernetes(Config(), local)
