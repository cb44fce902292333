"""The machine tools a kind of work needs, checked before the work starts.

Builds need a builder (buildah, and podman for the smoke test) and local releases need podman and
nginx. The Docker and Kubernetes run launchers start each run in a container of the platform's
image, which has none of them: such a run must say where its work runs instead, not fail later
inside a subprocess.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from governance.errors import PermanentError

_WHERE = (
    "run it where they are: `dagster dev` on a machine set up by `make setup`, or a run worker "
    "with them; a Docker or Kubernetes run container has none (README: *Which launcher runs what*)"
)


def shortfall(tools: Sequence[str]) -> str | None:
    """What of `tools` this machine lacks, and where to run the work instead; None: nothing."""
    absent = [tool for tool in tools if shutil.which(tool) is None]
    return f"{', '.join(absent)} not on this machine: {_WHERE}" if absent else None


class MachineShortfall(PermanentError):
    """Work this machine cannot do at all (a sensor here says so and skips, rather than failing
    every tick)."""


def require(what: str, tools: Sequence[str]) -> None:
    lacking = shortfall(tools)
    if lacking:
        raise MachineShortfall(f"{what}: {lacking}")
