"""A benchmark's own home, CLI worker, registry and builder storage, so its numbers are its own."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO
from tests.services import free_port


@contextlib.contextmanager
def own_lab(root: Path, estate: Path) -> Iterator[None]:
    """Under `root`: the home, the CLI worker's socket, and a registry and builder storage (unless
    $GOVERNANCE_IMAGE_REGISTRY names a warm one). Everything `estate` released is stopped after."""
    from governance.images.registry import start_registry, stop_registry

    saved = dict(os.environ)
    os.environ["GOVERNANCE_HOME"] = str(root / "home")
    os.environ["XDG_RUNTIME_DIR"] = str(root / "run")
    started_registry = "GOVERNANCE_IMAGE_REGISTRY" not in os.environ
    if started_registry:
        os.environ["GOVERNANCE_IMAGE_REGISTRY"] = f"127.0.0.1:{free_port()}"
        os.environ["GOVERNANCE_IMAGE_STORAGE"] = str(root / "storage")
        start_registry(os.environ["GOVERNANCE_IMAGE_REGISTRY"], root / "registry")
    try:
        yield
    finally:
        governance = [sys.executable, "-m", "governance", "--estate", str(estate)]
        subprocess.run([*governance, "release", "down", "--all"], cwd=REPO, capture_output=True)
        subprocess.run([*governance, "worker", "stop"], cwd=REPO, capture_output=True)
        if started_registry:
            stop_registry(root / "registry")
        os.environ.clear()  # the next lab starts its own registry, not this stopped one's address
        os.environ.update(saved)
