"""The tests' ports (tests/services.py:free_port): each pytest-xdist worker gets ports of its own,
whatever the number of workers, and none from the range the kernel gives connections."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

PORTS = """
import json
from tests.services import free_port
print(json.dumps([free_port() for _ in range(200)]))
"""


def _ports(workers: int, slot: int) -> list[int]:
    """A worker's ports, in a process of its own (the module keeps what it handed out)."""
    env = {**os.environ, "PYTEST_XDIST_WORKER_COUNT": str(workers), "PYTEST_XDIST_WORKER": f"gw{slot}"}
    result = subprocess.run(
        [sys.executable, "-c", PORTS], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )  # the kernel's bind(0) gives odd ports only: the even worker of two waited forever
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_every_worker_gets_ports_of_its_own_with_an_even_or_odd_number_of_workers() -> None:
    for workers in (1, 2, 3, 4):
        taken = [_ports(workers, slot) for slot in range(workers)]
        for ports in taken:
            assert len(set(ports)) == len(ports)  # never one port twice
            assert all(20000 <= port < 32768 for port in ports)  # below the ephemeral range
        everyone = [port for ports in taken for port in ports]
        assert len(set(everyone)) == len(everyone), f"{workers} workers were handed one port"
