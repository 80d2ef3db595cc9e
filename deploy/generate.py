"""Render deploy/kubernetes/values.yaml for the Zero to JupyterHub chart.

Run ``python -m deploy.generate`` after changing ``deploy/kubernetes/site.toml``, a
``LightboxHub`` default, the job roles or the profile table below; ``--check`` exits 1
when the committed file differs. The hub settings themselves are not copied into the
values: ``hub.extraConfig`` runs ``hub/jupyterhub_config.py`` through
:func:`lightbox_hub.deployment.configure_kubernetes` in the hub pod. What the chart must
know before the hub starts (culler times, secret names, roles' profiles) is read here
from the same traits and tables.
"""
from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from lightbox_hub.auth import LightboxOIDCAuthenticator
from lightbox_hub.config import LightboxHub
from lightbox_hub.roles import JOB_ROLES

HERE = Path(__file__).resolve().parent / "kubernetes"
SITE = HERE / "site.toml"
VALUES = HERE / "values.yaml"
HOME = "/home/jovyan"
STATE_DIR = "/srv/jupyterhub/lightbox"  # on the hub's volume (hub.db sqlite-pvc)
ARCHIVES_FILE = "/etc/lightbox/archives.toml"
PRESENTER_PORT = 8765  # the lunch-and-learn presenter relay, on the hub pod

# One table: CPU (cores) and memory per role, (request, limit). Measured basis in
# deploy/SIZING.md: one open 512 x 512 x 140 CT holds about 100 MB in the kernel on
# top of about 85 MB of imports; the server adds about 100 MB.
PROFILES: dict[str, tuple[tuple[float, str], tuple[float, str]]] = {
    "radiologist": ((1.0, "1536M"), (2.0, "4G")),
    "neurologist": ((1.0, "1536M"), (2.0, "4G")),
    "emergency": ((0.5, "1G"), (2.0, "3G")),
    "orthopaedics": ((0.5, "1G"), (2.0, "3G")),
    "researcher": ((1.0, "2G"), (4.0, "8G")),
    "pacs-admin": ((0.25, "512M"), (1.0, "2G")),
    "security-admin": ((0.25, "512M"), (1.0, "2G")),
    "network-admin": ((0.25, "512M"), (1.0, "2G")),
    "project-lead": ((0.25, "512M"), (1.0, "2G")),
    "none": ((0.1, "256M"), (0.5, "1G")),
}


def _settings() -> LightboxHub:
    # Defaults only: the site's environment must not leak into the committed file.
    saved = {k: os.environ.pop(k) for k in list(os.environ)
             if k.startswith("LIGHTBOX_")}
    try:
        return LightboxHub(state_dir=STATE_DIR)
    finally:
        os.environ.update(saved)


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def profile_list() -> list[dict[str, Any]]:
    """One KubeSpawner profile per job role (and "none"), slug = the role's group."""
    titles = {role.group: role.title for role in JOB_ROLES} | {"none": "No job role"}
    missing = sorted(set(titles) - set(PROFILES))
    if missing:
        raise ValueError(f"PROFILES lacks the roles {missing}")
    profiles = []
    for slug, ((cpu_request, mem_request), (cpu_limit, mem_limit)) in PROFILES.items():
        profiles.append({
            "display_name": titles[slug], "slug": slug,
            "description": f"{cpu_request:g}-{cpu_limit:g} cores, "
                           f"{mem_request}-{mem_limit} memory",
            "kubespawner_override": {
                "cpu_guarantee": cpu_request, "cpu_limit": cpu_limit,
                "mem_guarantee": mem_request, "mem_limit": mem_limit}})
    return profiles


def archives_toml(archives: list[dict[str, Any]]) -> str:
    """The hub's archives file (viewerlib format) for the site's archives."""
    lines = []
    for archive in archives:
        lines += ["[[archive]]", f'name = "{archive["name"]}"', 'type = "dicomweb"',
                  f'url = "{archive["url"]}"', 'quirks = "standard"', ""]
    return "\n".join(lines)


def render(site: dict[str, Any]) -> dict[str, Any]:
    """The values for the chart, from the site input and Lightbox's own defaults."""
    lightbox = _settings()
    host, secret = site["site"]["host"], site["site"]["secret_name"]
    image = {"name": site["image"]["name"], "tag": site["image"]["tag"]}
    egress = [{"to": [{"ipBlock": {"cidr": a["cidr"]}}],
               "ports": [{"port": int(p), "protocol": "TCP"} for p in a["ports"]]}
              for a in site["archive"]]
    authenticator = (f"{LightboxOIDCAuthenticator.__module__}."
                     f"{LightboxOIDCAuthenticator.__name__}")
    return {
        "hub": {
            "image": image,
            "db": {"type": "sqlite-pvc"},
            "config": {"JupyterHub": {"authenticator_class": authenticator}},
            "extraConfig": {"00-lightbox": (
                "# Lightbox: the one-machine configuration, carried over\n"
                "# (lightbox_hub.deployment; python -m deploy.generate renders it)\n"
                "from lightbox_hub.deployment import configure_kubernetes\n"
                "configure_kubernetes(c)\n")},
            "extraEnv": [
                {"name": "LIGHTBOX_STATE_DIR", "value": STATE_DIR},
                {"name": "LIGHTBOX_PUBLIC_URL", "value": f"https://{host}"},
                {"name": "LIGHTBOX_OIDC_ISSUER", "value": site["site"]["oidc_issuer"]},
                {"name": "LIGHTBOX_OIDC_CLIENT_ID",
                 "value": site["site"]["oidc_client_id"]},
                {"name": "LIGHTBOX_FRAME_ANCESTORS",
                 "value": site["site"]["frame_ancestors"]},
                {"name": "LIGHTBOX_ARCHIVES", "value": ARCHIVES_FILE},
                # The presenter relay listens on the hub pod for the user pods,
                # through the chart's "hub" service (extraPorts below).
                {"name": "LIGHTBOX_PRESENTER_IP", "value": "0.0.0.0"},
                {"name": "LIGHTBOX_PRESENTER_PORT", "value": str(PRESENTER_PORT)},
                {"name": "LIGHTBOX_PRESENTER_SERVICE_URL",
                 "value": f"http://hub:{PRESENTER_PORT}"},
                # Never started: the chart runs the proxy in its own pod.
                {"name": "LIGHTBOX_PROXY_COMMAND", "value": "configurable-http-proxy"},
                _secret_env(lightbox.oidc_client_secret_env, secret,
                            "oidc-client-secret"),
                _secret_env(lightbox.launch_secret_env, secret, "launch-secret"),
            ],
            "service": {"extraPorts": [{"name": "presenter", "port": PRESENTER_PORT,
                                        "targetPort": PRESENTER_PORT}]},
            # User pods (the label the chart gives them) may reach the relay.
            "networkPolicy": {"ingress": [{
                "from": [{"podSelector": {"matchLabels": {
                    "hub.jupyter.org/network-access-hub": "true"}}}],
                "ports": [{"port": PRESENTER_PORT, "protocol": "TCP"}]}]},
            "extraFiles": {"lightbox-archives": {
                "mountPath": ARCHIVES_FILE,
                "stringData": archives_toml(site["archive"])}},
            # The audit log stays on the hub's volume; this sidecar streams each new
            # line to its own stdout, where the cluster's log collector picks it up.
            "extraContainers": [{
                "name": "audit-shipper", "image": f"{image['name']}:{image['tag']}",
                "command": ["tail", "-n", "0", "-F", lightbox.audit_log],
                "volumeMounts": [{"name": "pvc", "mountPath": "/srv/jupyterhub",
                                  "readOnly": True}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "100m", "memory": "64Mi"}}}],
        },
        "proxy": {"service": {"type": "ClusterIP"}, "https": {"enabled": False}},
        "ingress": {
            "enabled": True, "ingressClassName": site["site"]["ingress_class"],
            "hosts": [host],
            "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"},
            "tls": [{"hosts": [host], "secretName": site["site"]["tls_secret"]}]},
        "cull": {"enabled": True, "timeout": lightbox.idle_timeout_s,
                 "every": lightbox.cull_every_s},
        "singleuser": {
            "image": image,
            "cmd": ["python", "-m", "lightbox_hub.deployment", "pod-start", "--",
                    "jupyterhub-singleuser"],
            "defaultUrl": "/lab",
            "uid": 1000, "fsGid": 100,
            "storage": {"type": "dynamic", "capacity": "2Gi", "homeMountPath": HOME},
            "cpu": {"guarantee": PROFILES["none"][0][0],
                    "limit": PROFILES["none"][1][0]},
            "memory": {"guarantee": PROFILES["none"][0][1],
                       "limit": PROFILES["none"][1][1]},
            "lifecycleHooks": {"preStop": {"exec": {"command": [
                "rm", "-rf", f"{HOME}/ehr-launch",
                f"{HOME}/.ipython/profile_default/history.sqlite"]}}},
            "profileList": profile_list(),
            "networkPolicy": {
                "enabled": True,
                # Only the hub (always allowed by the chart), DNS and the archives.
                "egressAllowRules": {"cloudMetadataServer": False,
                                     "dnsPortsCloudMetadataServer": False,
                                     "dnsPortsKubeSystemNamespace": True,
                                     "dnsPortsPrivateIPs": False,
                                     "nonPrivateIPs": False, "privateIPs": False},
                "egress": egress + [{
                    "to": [{"podSelector": {"matchLabels": {
                        "app": "jupyterhub", "component": "hub"}}}],
                    "ports": [{"port": PRESENTER_PORT, "protocol": "TCP"}]}]},
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, and no anchors for repeated values."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump(values: dict[str, Any], chart_version: str) -> str:
    header = ("# Generated by `python -m deploy.generate` from deploy/kubernetes/site."
              "toml and\n# Lightbox's traits and tables: do not edit by hand.\n"
              f"# Zero to JupyterHub chart {chart_version}:\n"
              f"#   helm upgrade --install lightbox jupyterhub/jupyterhub --version "
              f"{chart_version} -f values.yaml\n")
    return header + yaml.dump(values, Dumper=_Dumper, sort_keys=False, width=88)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed values.yaml is not current")
    args = parser.parse_args(argv)
    site = tomllib.loads(SITE.read_text())
    text = dump(render(site), site["chart"]["version"])
    if args.check:
        current = VALUES.read_text() if VALUES.exists() else ""
        if current != text:
            print(f"{VALUES} is stale: run python -m deploy.generate", file=sys.stderr)
            return 1
        return 0
    VALUES.write_text(text)
    print(f"wrote {VALUES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
