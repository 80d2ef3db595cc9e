"""The local spawner's memory and CPU limits hold in the kernels a user runs.

``LIGHTBOX_MEM_LIMIT`` becomes the address-space limit (RLIMIT_AS) and
``LIGHTBOX_CPU_LIMIT`` a CPU affinity, set in the server process before it starts, so
every kernel the server starts inherits both. They are per process: two kernels may
each use the whole limit (see README, "Spawner and limits").
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_hub import KernelOfUser, operator, wait_until_ready

from lightbox_hub.embedded.hub import EmbeddedHub
from lightbox_hub.embedded.idp import EmbeddedIdentityProvider

USER = "researcher"
# JupyterHub reads "3G" as 3 * 1024**3 bytes (its ByteSpecification: K, M, G, T
# are powers of 1024).
MEM_LIMIT_SETTING, MEM_LIMIT_BYTES = "3G", 3 * 1024**3

_PROBE = """
import json, os, resource
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
try:
    block = bytearray({size})
    outcome = "allocated"
except MemoryError:
    outcome = "MemoryError"
block = None
small = len(bytearray(64 * 1024 * 1024))
history = get_ipython().history_manager
print(json.dumps({{"soft": soft, "hard": hard, "cores": len(os.sched_getaffinity(0)),
                  "outcome": outcome, "small": small, "parent": os.getppid(),
                  "history_file": str(history.hist_file),
                  "history_on_disk": sorted(str(p) for p in __import__("pathlib").Path(
                      os.path.expanduser("~")).rglob("history.sqlite"))}}))
"""


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[EmbeddedHub]:
    (tmp_path / "empty").mkdir()
    archives = tmp_path / "archives.toml"
    archives.write_text(f'[[archive]]\nname = "Empty"\ntype = "folder"\n'
                        f'path = "{tmp_path / "empty"}"\n')
    idp = EmbeddedIdentityProvider(tmp_path / "idp").start()
    started = EmbeddedHub(tmp_path / "hub", idp.issuer, archives, extra_env={
        "LIGHTBOX_MEM_LIMIT": MEM_LIMIT_SETTING, "LIGHTBOX_CPU_LIMIT": "1"})
    try:
        yield started.start()
    finally:
        started.stop()
        idp.stop()


def test_kernel_inherits_the_limits_and_an_allocation_past_them_fails(
        hub: EmbeddedHub) -> None:
    operator(hub, f"/users/{USER}", "POST")
    operator(hub, f"/users/{USER}/server", "POST")
    server = wait_until_ready(hub, USER)
    kernel = KernelOfUser(hub, USER)
    try:
        probe = json.loads(kernel.run(_PROBE.format(size=MEM_LIMIT_BYTES)))
    finally:
        kernel.close()

    # The kernel is the server's child and carries its limits.
    assert probe["parent"] == server["state"]["pid"]
    assert probe["soft"] == probe["hard"] == MEM_LIMIT_BYTES
    assert probe["cores"] == 1
    # One allocation as large as the whole limit cannot fit beside the kernel's own
    # memory; the kernel gets a MemoryError and goes on working.
    assert probe["outcome"] == "MemoryError"
    assert probe["small"] == 64 * 1024 * 1024
    # What the user typed (patient IDs, say) is kept in memory, never on disk.
    assert probe["history_file"] == ":memory:"
    assert probe["history_on_disk"] == []
