"""Image build times with the layered Dockerfile against a naive one (`COPY . .` then install),
for the same app and the same hermetic wheelhouse (a report, not a test).

Run: uv run python -m tests.bench.bench_images [--quick]
Scenarios: cold (empty layer cache and dependency cache; bases already in the registry), no-cache,
a source-only change, a lockfile change. `--quick` runs cold and source-only only.
Uses a fresh builder storage and its own loopback registry (or $GOVERNANCE_IMAGE_REGISTRY).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import REPO, repository_estate_data, write_estate

APP = REPO / "examples/penguins/apps/model-server"
NAIVE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
WORKDIR /srv
COPY . .
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links wheelhouse --require-hashes \\
    -r requirements.txt
ENV PATH=/opt/venv/bin:$PATH PORT=8000
USER 10001
CMD ["python", "-m", "app"]
"""


def main() -> None:
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        root = Path(tmp)
        registry = os.environ.get("GOVERNANCE_IMAGE_REGISTRY")
        if registry is None:
            from governance.images.registry import start_registry
            from tests.services import free_port

            registry = f"127.0.0.1:{free_port()}"
            start_registry(registry, root / "registry")
        try:
            rows = measure(root, registry, quick)
        finally:
            from governance.images.registry import stop_registry

            cleanup(root, registry)
            stop_registry(root / "registry")
    report(rows)


def measure(root: Path, registry: str, quick: bool) -> dict[str, dict[str, float]]:
    from governance.config import load_estate
    from governance.home import GovernanceHome
    from governance.images import dependencies
    from governance.images.builders import BuildRequest
    from governance.images.lifecycle import ImageWorkspace, stage_context
    from tests.conftest import ESTATE_FILE

    estate = load_estate(ESTATE_FILE)
    workspace = ImageWorkspace.resolve(
        estate.images, GovernanceHome(root / "home"), registry=registry, storage=str(root / "storage")
    )
    builder = workspace.builder()
    quiet = lambda line: None  # noqa: E731

    def variant(name: str, dockerfile: str | None) -> Path:
        context = root / name
        shutil.copytree(APP, context)
        if dockerfile is not None:
            (context / "Dockerfile").write_text(dockerfile)
        return context

    contexts = {"layered": variant("layered", None), "naive": variant("naive", NAIVE)}
    data = repository_estate_data()
    specs = {}
    for name, context in contexts.items():
        data["images"]["apps"]["model_server"]["context"] = str(context)
        specs[name] = write_estate(data, root / f"estate-{name}").image("model_server")

    # The base once, outside the timings: it is built once per machine, not per app build.
    from governance.images.bases import ensure_base

    base = ensure_base(
        "python",
        estate.images.bases["python"],
        workspace.storage,
        mirror=estate.images.debian_mirror,
        progress=quiet,
    )
    print(
        f"base image python: {'built' if base.built else 'already in the registry'} in {base.seconds:.1f} s"
    )

    def build(name: str, no_cache: bool = False) -> float:
        started = time.perf_counter()
        deps = dependencies.fetch(
            specs[name].context, root / "deps" / name, workspace.sources(specs[name]), quiet
        )
        context = stage_context(specs[name], deps, root / "contexts" / name)
        builder.build(
            BuildRequest(
                context,
                context / "Dockerfile",
                f"{registry}/bench/{name}:latest",
                {"BASE_IMAGE": base.reference},
                no_cache,
            ),
            quiet,
        )
        return time.perf_counter() - started

    rows: dict[str, dict[str, float]] = {}
    rows["cold"] = {name: build(name) for name in contexts}
    if not quick:
        rows["no-cache"] = {name: build(name, no_cache=True) for name in contexts}
    for context in contexts.values():
        main_py = context / "app/main.py"
        main_py.write_text(main_py.read_text() + "\n# a source-only change\n")
    rows["source-only change"] = {name: build(name) for name in contexts}
    if not quick:
        for context in contexts.values():
            manifest = context / "pyproject.toml"
            manifest.write_text(manifest.read_text().replace("cloudpickle==3.1.3", "cloudpickle==3.1.2"))
            subprocess.run(
                [str(Path(sys.executable).parent / "uv"), "lock", "-q"], cwd=context, check=True
            )
        rows["lockfile change"] = {name: build(name) for name in contexts}
    return rows


def report(rows: dict[str, dict[str, float]]) -> None:
    print("| scenario | layered Dockerfile (s) | naive `COPY . .` (s) |")
    print("| --- | ---: | ---: |")
    for scenario, times in rows.items():
        print(f"| {scenario} | {times['layered']:.1f} | {times['naive']:.1f} |")
    source = rows["source-only change"]
    baseline = rows.get("no-cache", rows["cold"])
    label = "no-cache" if "no-cache" in rows else "cold"
    print(
        f"source-only rebuild: {100 * source['layered'] / baseline['layered']:.1f}% of a {label} build "
        f"(goal <= 15%); naive source-only / layered source-only: {source['naive'] / source['layered']:.1f}x (goal >= 5x)"
    )


def cleanup(root: Path, registry: str) -> None:
    from governance.images.containers import ContainerStorage

    env = ContainerStorage(root / "storage", registry, {}).environment()
    subprocess.run(["buildah", "rm", "--all"], env=env, capture_output=True, timeout=120)
    subprocess.run(["buildah", "rmi", "--all", "--force"], env=env, capture_output=True, timeout=300)


if __name__ == "__main__":
    main()
