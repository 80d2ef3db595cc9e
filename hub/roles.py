"""Job roles: the identity provider's groups, and the workspace each one opens on."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobRole:
    """One job role.

    ``group`` is the value of the identity provider's groups claim that grants the role;
    ``curriculum`` is the folder under ``notebooks/`` the workspace opens on.
    """

    group: str
    title: str
    curriculum: str


# One table for the fact; everything else derives from it.
JOB_ROLES: tuple[JobRole, ...] = (
    JobRole("radiologist", "Radiologist", "radiologist"),
    JobRole("emergency", "Emergency physician", "emergency"),
    JobRole("neurologist", "Stroke neurologist", "neurologist"),
    JobRole("orthopaedics", "Orthopaedic surgeon", "orthopaedics"),
    JobRole("researcher", "Researcher", "researcher"),
    JobRole("pacs-admin", "PACS administrator", "pacs-admin"),
    JobRole("security-admin", "Security administrator", "security-admin"),
    JobRole("network-admin", "Network administrator", "network-admin"),
    JobRole("project-lead", "Project lead / adoption champion", "project-lead"),
)
ROLE_BY_GROUP = {role.group: role for role in JOB_ROLES}
ADMIN_GROUP = "lightbox-admins"


def role_for_groups(groups: list[str]) -> JobRole | None:
    """The first job role, in table order, that one of ``groups`` grants."""
    for role in JOB_ROLES:
        if role.group in groups:
            return role
    return None
