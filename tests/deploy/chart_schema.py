"""The part of the Zero to JupyterHub values schema that deploy/kubernetes uses.

Written for this project from the chart's configuration reference (chart 4.x,
``jupyterhub/schema.yaml`` and ``doc/source/resources/reference/reference.md`` of
jupyterhub/zero-to-jupyterhub-k8s): the names, nesting and types of the keys our values
set. ``additionalProperties: False`` means "a key not checked against the chart here",
not that the chart refuses it. The full schema is not vendored; ``helm lint`` against
the real chart is the check this stands in for (no cluster or helm here).
"""
from __future__ import annotations

from typing import Any


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()
            ) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": list(required)}


_STRING = {"type": "string"}
_BOOL = {"type": "boolean"}
_NUMBER = {"type": "number"}
_INT = {"type": "integer"}
_STRINGS = {"type": "array", "items": _STRING}
_IMAGE = _object({"name": _STRING, "tag": _STRING}, ("name", "tag"))
_ENV_ITEM = {"type": "object", "required": ["name"],
             "properties": {"name": _STRING, "value": _STRING,
                            "valueFrom": {"type": "object"}},
             "oneOf": [{"required": ["value"]}, {"required": ["valueFrom"]}],
             "additionalProperties": False}
# NetworkPolicy peers and rules of Kubernetes (networking.k8s.io/v1).
_PORTS = {"type": "array", "items": _object(
    {"port": {"type": "integer", "minimum": 1, "maximum": 65535},
     "protocol": {"enum": ["TCP", "UDP", "SCTP"]}}, ("port",))}
_PEERS = {"type": "array", "items": _object({
    "ipBlock": _object(
        {"cidr": {"type": "string", "pattern": r"^[0-9.]+/[0-9]{1,2}$"}}, ("cidr",)),
    "podSelector": _object({"matchLabels": {"type": "object",
                                            "additionalProperties": _STRING}},
                           ("matchLabels",))})}
_EGRESS = {"type": "array", "items": _object({"to": _PEERS, "ports": _PORTS})}
_INGRESS = {"type": "array", "items": _object({"from": _PEERS, "ports": _PORTS})}
_PROFILE = _object({
    "display_name": _STRING, "slug": _STRING, "description": _STRING,
    "default": _BOOL, "kubespawner_override": {"type": "object"}}, ("display_name",))

SCHEMA: dict[str, Any] = _object({
    "hub": _object({
        "image": _IMAGE,
        "db": _object({"type": {"enum": ["sqlite-pvc", "sqlite-memory", "mysql",
                                         "postgres", "other"]}}),
        "config": {"type": "object", "additionalProperties": {"type": "object"}},
        "extraConfig": {"type": "object", "additionalProperties": _STRING},
        "extraEnv": {"type": ["object", "array"], "items": _ENV_ITEM},
        "extraFiles": {"type": "object", "additionalProperties": _object(
            {"mountPath": _STRING, "stringData": _STRING, "mode": _INT},
            ("mountPath",))},
        "extraContainers": {"type": "array", "items": {"type": "object",
                                                       "required": ["name", "image"]}},
        "service": _object({"extraPorts": {"type": "array", "items": _object(
            {"name": _STRING, "port": _INT, "targetPort": _INT}, ("port",))}}),
        "networkPolicy": _object({"ingress": _INGRESS}),
    }),
    "proxy": _object({
        "service": _object({"type": {"enum": ["ClusterIP", "NodePort",
                                              "LoadBalancer", "ExternalName"]}}),
        "https": _object({"enabled": _BOOL})}),
    "ingress": _object({
        "enabled": _BOOL, "ingressClassName": _STRING, "hosts": _STRINGS,
        "annotations": {"type": "object", "additionalProperties": _STRING},
        "tls": {"type": "array", "items": _object(
            {"hosts": _STRINGS, "secretName": _STRING})}}),
    "cull": _object({"enabled": _BOOL, "timeout": _INT, "every": _INT}),
    "singleuser": _object({
        "image": _IMAGE, "cmd": {"type": ["array", "string", "null"]},
        "defaultUrl": _STRING, "uid": _INT, "fsGid": _INT,
        "storage": _object({"type": {"enum": ["dynamic", "static", "none"]},
                            "capacity": _STRING, "homeMountPath": _STRING}),
        "cpu": _object({"guarantee": _NUMBER, "limit": _NUMBER}),
        "memory": _object({"guarantee": _STRING, "limit": _STRING}),
        "lifecycleHooks": {"type": "object"},
        "profileList": {"type": "array", "items": _PROFILE},
        "networkPolicy": _object({
            "enabled": _BOOL, "egress": _EGRESS,
            "egressAllowRules": _object({key: _BOOL for key in (
                "cloudMetadataServer", "dnsPortsCloudMetadataServer",
                "dnsPortsKubeSystemNamespace", "dnsPortsPrivateIPs", "nonPrivateIPs",
                "privateIPs")})}),
    }),
})
