"""Image build times with the layered Dockerfile against a naive one (`COPY . .` then install),
for the same app and the same hermetic dependencies (a report, not a test): the naive one copies
the fetched dependencies in with the source, as its `COPY . .` would a context that held them.

Run: uv run python -m tests.bench.bench_images [model_server|frontend] [--quick]
Scenarios: cold (empty layer cache and dependency cache; bases already in the registry), no-cache,
a source-only change (the median of five, one after the other), a lockfile change. `--quick` runs
cold and source-only only.
Uses a fresh builder storage and its own loopback registry (or $GOVERNANCE_IMAGE_REGISTRY).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import repository_estate_data, write_estate

NAIVE_PYTHON = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
WORKDIR /srv
COPY . .
COPY --from=deps . .
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links wheelhouse --require-hashes \\
    -r requirements.txt
ENV PATH=/opt/venv/bin:$PATH PORT=8000
USER 10001
CMD ["python", "-m", "app"]
"""
NAIVE_NODE_BUILD = """\
ARG NODE_IMAGE
FROM ${NODE_IMAGE} AS build
WORKDIR /workspace
ENV NEXT_TELEMETRY_DISABLED=1 CI=true
COPY . .
COPY --from=deps . .
RUN ln -s /workspace/tools/pnpm/bin/pnpm.cjs /usr/local/bin/pnpm \\
 && pnpm install --offline --frozen-lockfile --store-dir /workspace/pnpm-store \\
 && pnpm run test-and-build \\
 && mv apps/web/.next/static apps/web/.next/standalone/apps/web/.next/ \\
 && mv apps/web/.next/standalone/node_modules apps/web/.next/standalone-modules

"""


def _naive_python(context: Path) -> str:
    return NAIVE_PYTHON


def _naive_node(context: Path) -> str:
    """The naive build stage, its output laid out as the app's build step lays it out, then the
    app's own runtime stage (the same image to run)."""
    dockerfile = (context / "Dockerfile").read_text()
    return NAIVE_NODE_BUILD + dockerfile[dockerfile.rindex("FROM ${NODE_IMAGE}") :]


def _relock_uv(context: Path) -> None:
    manifest = context / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace("cloudpickle==3.1.3", "cloudpickle==3.1.2"))
    subprocess.run([str(Path(sys.executable).parent / "uv"), "lock", "-q"], cwd=context, check=True)


def _relock_pnpm(context: Path) -> None:
    from governance.images.dependencies import npm_package, pnpm_version

    workspace = context / "pnpm-workspace.yaml"
    workspace.write_text(
        workspace.read_text().replace('"@types/node": 24.19.4', '"@types/node": 24.19.2')
    )
    pnpm = npm_package("pnpm", pnpm_version(context), context.parent / "tools", NPM)
    subprocess.run(
        ["node", str(pnpm / "bin/pnpm.cjs"), "install", "--lockfile-only", "--registry", NPM],
        cwd=context,
        check=True,
        capture_output=True,
    )


@dataclass(frozen=True)
class Recipe:
    """One app's benchmark: its naive Dockerfile, a source-only edit, a lockfile edit, the goals."""

    naive: Callable[[Path], str]  # the naive Dockerfile, given the app's context
    source: str  # the file a source-only change appends a comment to
    comment: str
    relock: Callable[[Path], None]
    source_goal: float  # a source-only rebuild's share of a no-cache build, at most
    naive_goal: float  # naive source-only / layered source-only, at least


NPM = "https://registry.npmjs.org/"
SOURCE_EDITS = 5
RECIPES = {
    "model_server": Recipe(_naive_python, "app/main.py", "# edited", _relock_uv, 0.15, 5.0),
    "frontend": Recipe(_naive_node, "apps/web/app/page.tsx", "// edited", _relock_pnpm, 0.25, 3.0),
}


def main() -> None:
    quick = "--quick" in sys.argv
    app = next((a for a in sys.argv[1:] if not a.startswith("--")), "model_server")
    if app not in RECIPES:
        sys.exit(f"no benchmark for {app!r}: choose one of {', '.join(RECIPES)}")
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        root = Path(tmp)
        registry = os.environ.get("GOVERNANCE_IMAGE_REGISTRY")
        if registry is None:
            from governance.images.registry import start_registry
            from tests.services import free_port

            registry = f"127.0.0.1:{free_port()}"
            start_registry(registry, root / "registry")
        try:
            rows, packages = measure(root, registry, app, quick)
        finally:
            from governance.images.registry import stop_registry

            cleanup(root, registry)
            stop_registry(root / "registry")
    report(app, rows, packages)


Rows = dict[str, dict[str, float]]


def measure(root: Path, registry: str, app: str, quick: bool) -> tuple[Rows, str]:
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

    recipe = RECIPES[app]
    source = Path(repository_estate_data()["images"]["apps"][app]["context"])

    def variant(name: str, naive: bool) -> Path:
        context = root / name
        shutil.copytree(source, context, ignore=shutil.ignore_patterns("node_modules", ".next"))
        if naive:
            (context / "Dockerfile").write_text(recipe.naive(context))
        return context

    contexts = {"layered": variant("layered", False), "naive": variant("naive", True)}
    data = repository_estate_data()
    specs = {}
    for name, context in contexts.items():
        data["images"]["apps"][app]["context"] = str(context)
        specs[name] = write_estate(data, root / f"estate-{name}").image(app)

    # The bases once, outside the timings: each is built once per machine, not per app build.
    from governance.images.bases import ensure_base

    bases = {}
    for arg, base_name in specs["layered"].bases.items():
        base = ensure_base(base_name, estate.images, workspace.storage, quiet)
        bases[arg] = base.reference
        state = "built" if base.built else "already in the registry"
        print(f"base image {base_name}: {state} in {base.seconds:.1f} s")

    cached: dict[str, str] = {}
    slowest: dict[str, list[str]] = {}

    def build(name: str, no_cache: bool = False) -> float:
        # On a quiet disk: the writeback of the build before (a naive one writes hundreds of MB)
        # would otherwise be billed to this one.
        os.sync()
        started = time.perf_counter()
        deps = dependencies.fetch(
            specs[name].context, root / "deps" / name, workspace.sources(specs[name]), quiet
        )
        context = stage_context(specs[name], root / "contexts" / name)
        outcome = builder.build(
            BuildRequest(
                context,
                context / "Dockerfile",
                f"{registry}/bench/{name}:latest",
                bases,
                no_cache,
                contexts={dependencies.CONTEXT: deps.path},
            ),
            quiet,
        )
        cached[name] = f"{sum(s.cached for s in outcome.steps)}/{len(outcome.steps)}"
        slow = sorted(outcome.steps, key=lambda s: -s.seconds)[:3]
        slowest[name] = [f"{s.seconds:.1f} s {s.instruction[:60]}" for s in slow]
        return time.perf_counter() - started

    rows: Rows = {}
    rows["cold"] = {name: build(name) for name in contexts}
    if not quick:
        rows["no-cache"] = {name: build(name, no_cache=True) for name in contexts}
        print("no-cache, the layered build's slowest steps:", *slowest["layered"], sep="\n  ")
    edits: dict[str, list[float]] = {name: [] for name in contexts}
    for edit in range(SOURCE_EDITS):  # the median of a few: one rebuild varies by seconds here
        for name, context in contexts.items():
            edited = context / recipe.source
            edited.write_text(f"{edited.read_text()}\n{recipe.comment}: source-only change {edit}\n")
            edits[name].append(build(name))
    rows["source-only change"] = {name: statistics.median(times) for name, times in edits.items()}
    for name, times in edits.items():
        print(f"source-only rebuilds, {name}: {', '.join(f'{t:.1f}' for t in times)} s")
    print("source-only change, the layered build's slowest steps:", *slowest["layered"], sep="\n  ")
    if not quick:
        for context in contexts.values():
            recipe.relock(context)
        rows["lockfile change"] = {name: build(name) for name in contexts}
        print(f"lockfile change: steps from cache, layered {cached['layered']}, naive {cached['naive']}")
    return rows, _packages(contexts["layered"])


def _packages(context: Path) -> str:
    """How many packages the lockfile resolves (all platforms), for the report."""
    lockfile = context / "pnpm-lock.yaml"
    if lockfile.is_file():
        import yaml

        resolved = yaml.safe_load(lockfile.read_text()).get("packages", {})
        return f"{len(resolved)} packages in pnpm-lock.yaml"
    import tomllib

    return (
        f"{len(tomllib.loads((context / 'uv.lock').read_text()).get('package', []))} packages in uv.lock"
    )


def report(app: str, rows: Rows, packages: str) -> None:
    recipe = RECIPES[app]
    print(f"{app}: {packages}")
    print("| scenario | layered Dockerfile (s) | naive `COPY . .` (s) |")
    print("| --- | ---: | ---: |")
    for scenario, times in rows.items():
        print(f"| {scenario} | {times['layered']:.1f} | {times['naive']:.1f} |")
    source = rows["source-only change"]
    baseline = rows.get("no-cache", rows["cold"])
    label = "no-cache" if "no-cache" in rows else "cold"
    print(
        f"source-only rebuild: {100 * source['layered'] / baseline['layered']:.1f}% of a {label} build "
        f"(goal <= {100 * recipe.source_goal:.0f}%); naive source-only / layered source-only: "
        f"{source['naive'] / source['layered']:.1f}x (goal >= {recipe.naive_goal:g}x)"
    )


def cleanup(root: Path, registry: str) -> None:
    from governance.images.containers import ContainerStorage

    env = ContainerStorage(root / "storage", registry, {}).environment()
    subprocess.run(["buildah", "rm", "--all"], env=env, capture_output=True, timeout=120)
    subprocess.run(["buildah", "rmi", "--all", "--force"], env=env, capture_output=True, timeout=300)


if __name__ == "__main__":
    main()
