"""An app image from preflight to pushed digest, and the checks that gate it.

Order matters for speed and for clear failures: the cheap, specific checks (machine, registries,
lockfile, policy) run first and fail in seconds with what to fix; only then are bases ensured,
dependencies fetched (skipped when the lockfile is unchanged) and the image built with the layer cache.
Transient failures (registry 5xx, timeouts) retry with backoff; permanent ones fail at once.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from governance.audit.store import AuditTrail
from governance.config import AppImageSpec, ImagesSection
from governance.errors import GovernanceError, PermanentError, TransientError
from governance.home import GovernanceHome
from governance.images import dependencies
from governance.images.bases import ensure_base, recipe_tag
from governance.images.builders import Builder, BuildRequest, Step
from governance.images.containers import ContainerStorage
from governance.images.dockerfile import Finding, lint
from governance.images.lockfiles import check_lockfile
from governance.images.preflight import Check, run_preflight
from governance.images.registry import manifest_digest, manifest_size
from governance.locks import file_lock
from governance.notify.alerts import Alert, Alerts
from governance.provenance import fingerprint
from governance.retry import Backoff, with_retries

Progress = Callable[[str], None]
REGISTRY_ENV = "GOVERNANCE_IMAGE_REGISTRY"
STORAGE_ENV = "GOVERNANCE_IMAGE_STORAGE"
RETRY = Backoff(attempts=3, base_delay=1.0, max_delay=8.0)
BUSY = Backoff(attempts=8, base_delay=5.0, max_delay=30.0)  # waits for a busy machine: 155 s
_MACHINE_CHECKS = ("load",)
# Generated or host-specific files never belong in a build context.
_GENERATED = ("node_modules", "dist", ".next", "next-env.d.ts", ".venv", "__pycache__", ".pytest_cache")
_NOT_CONTEXT = shutil.ignore_patterns(*_GENERATED, "*.pyc")


@dataclass(frozen=True)
class ImageWorkspace:
    """Where images are built, cached and pushed: the config, with environment overrides so a test
    session (or an operator) can point every home at one registry and one layer cache."""

    section: ImagesSection
    storage: ContainerStorage

    @classmethod
    def resolve(
        cls,
        section: ImagesSection,
        home: GovernanceHome,
        *,
        registry: str | None = None,
        storage: str | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> ImageWorkspace:
        """An explicit value wins, then the environment, then `governance.yaml`, then the home."""
        registry = registry or environ.get(REGISTRY_ENV) or section.registry
        root = Path(
            storage or environ.get(STORAGE_ENV) or section.storage or home.root / "images"
        ).resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(section, ContainerStorage(root, registry, section.mirrors))

    @property
    def registry(self) -> str:
        return self.storage.registry

    @property
    def root(self) -> Path:
        return self.storage.root

    def builder(self) -> Builder:
        from governance.images.builders import BuildahBuilder, DockerBuilder

        if self.section.builder == "docker":
            return DockerBuilder()
        return BuildahBuilder(self.storage)

    def sources(self, app: AppImageSpec) -> dependencies.Sources:
        suites = {self.section.bases[base].suite for base in app.bases.values()}
        return dependencies.Sources(self.section.pypi_url, self.section.npm_url, min(suites))

    def package_registry(self, app: AppImageSpec) -> str:
        kind, _ = dependencies.lockfile_of(app.context)
        if kind == "wheelhouse":
            return self.section.pypi_url.rstrip("/") + "/"
        return self.section.npm_url.rstrip("/") + "/"


@dataclass(frozen=True)
class ImageBuild:
    """What was built, from what, how long each part took and what came from cache."""

    name: str
    repository: str
    reference: str  # registry/repository@sha256:…
    digest: str
    image_id: str
    size_bytes: int
    compressed_bytes: int
    lockfile: str
    lockfile_digest: str
    dependencies_fetched: bool
    dependency_packages: int
    bases: dict[str, str]  # build arg -> base reference by digest
    steps: list[Step]
    phases: dict[str, float]  # seconds per phase
    preflight: list[Check]
    findings: list[Finding]
    builder: str
    no_cache: bool
    finished_at: float = field(default_factory=time.time)

    @property
    def cached_steps(self) -> int:
        return sum(1 for s in self.steps if s.cached)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ImageBuild:
        data: dict[str, Any] = json.loads(text)
        data["steps"] = [Step(**s) for s in data["steps"]]
        data["preflight"] = [
            Check(**{k: v for k, v in c.items() if k != "status"}) for c in data["preflight"]
        ]
        data["findings"] = [Finding(**f) for f in data["findings"]]
        return cls(**data)


class Phases:
    def __init__(self, progress: Progress):
        self.seconds: dict[str, float] = {}
        self.current = ""  # the phase under way, or the one that failed
        self._progress = progress

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.current = name
        started = time.monotonic()
        self._progress(f"[{name}] …")
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - started, 3)
            self._progress(f"[{name}] {self.seconds[name]:.2f} s")


def preflight(app: AppImageSpec, workspace: ImageWorkspace) -> list[Check]:
    """Every check a build depends on, each with a verdict in seconds. Registries only needed for
    work that is already cached (an unchanged lockfile, a base already pushed) are not required."""
    section = workspace.section
    image_registry = f"http://{workspace.registry}/v2/"
    package_registry = workspace.package_registry(app)
    suite = workspace.sources(app).suite
    debian = f"{section.debian_mirror.rstrip('/')}/dists/{suite}/Release"
    optional = []
    if dependencies.is_cached(app.context, workspace.root / "deps", workspace.sources(app)):
        optional.append(package_registry)
    if _bases_present(app, workspace):
        optional.append(debian)
    checks = run_preflight(
        [image_registry, package_registry, debian],
        workspace.root,
        min_disk_gib=section.preflight.min_disk_gib,
        min_memory_gib=section.preflight.min_memory_gib,
        max_load_per_cpu=section.preflight.max_load_per_cpu,
        timeout_s=section.preflight.timeout_s,
        optional=optional,
    )
    return [*checks, _builder_check(workspace), _lockfile_check(app), _policy_check(app, None)]


def _builder_check(workspace: ImageWorkspace) -> Check:
    """The builder's tools on this machine (podman runs the smoke test whatever builds)."""
    from governance.machine import shortfall

    tools = ["buildah", "podman"] if workspace.section.builder == "buildah" else ["podman"]
    lacking = shortfall(tools)
    return Check("builder", lacking is None, lacking or ", ".join(tools))


class _Busy(TransientError):
    """Only the machine's load blocks the preflight: waiting may clear it."""


def admitted(
    app: AppImageSpec,
    workspace: ImageWorkspace,
    progress: Progress,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Check]:
    """The preflight's checks once nothing blocks. A machine over its load limit is waited for, with
    backoff (about 2.5 minutes in all), rather than refused: a build started beside another (two
    runs, *Materialize all*) would otherwise fail for what passes a minute later. Anything else
    that blocks fails at once."""

    def attempt() -> list[Check]:
        checks = preflight(app, workspace)
        for check in checks:
            progress(str(check))
        blocking = [c for c in checks if c.blocking]
        if blocking and all(c.transient and c.name in _MACHINE_CHECKS for c in blocking):
            raise _Busy(_refusal(blocking))
        ensure_preflight(checks)
        return checks

    return with_retries(
        attempt,
        what=f"preflight of {app.name}",
        backoff=BUSY,
        is_transient=lambda exc: isinstance(exc, _Busy),
        sleep=sleep,
    )


def ensure_preflight(checks: list[Check]) -> None:
    blocking = [c for c in checks if c.blocking]
    if not blocking:
        return
    error = TransientError if all(c.transient for c in blocking) else PermanentError
    raise error(_refusal(blocking))


def _refusal(blocking: list[Check]) -> str:
    return "preflight failed: " + "; ".join(f"{c.name}: {c.detail}" for c in blocking)


def build_image(
    app: AppImageSpec,
    workspace: ImageWorkspace,
    *,
    no_cache: bool = False,
    progress: Progress = lambda line: None,
    trail: AuditTrail | None = None,
    alerts: BuildAlerts | None = None,
) -> ImageBuild:
    """Build, check and push `app`. A failed preflight or build, and a build much slower than the
    app's recent ones (the delayed build a team otherwise notices days later), raise an alert."""
    phases = Phases(progress)
    started = time.monotonic()
    try:
        build = _build_image(app, workspace, phases, no_cache, progress, trail)
    except Exception as exc:
        if alerts is not None:
            kind = "preflight_failed" if phases.current == "preflight" else "build_failed"
            alerts.raise_alert(kind, f"image {app.name}", str(exc) or type(exc).__name__)
        raise
    seconds = time.monotonic() - started
    history = BuildRecords(workspace.root)
    recent = history.durations(app.name, no_cache, alerts.history if alerts else 10)
    history.add_duration(app.name, no_cache, seconds)
    if alerts is not None and is_delayed(seconds, recent, alerts.factor):
        alerts.raise_alert(
            "build_slow",
            f"image {app.name}",
            f"took {seconds:.0f} s, more than {alerts.factor:g}x the median "
            f"{statistics.median(recent):.0f} s of its last {len(recent)} builds",
        )
    return build


@dataclass(frozen=True)
class BuildAlerts:
    """Where a build's alerts go, and what counts as delayed (from `governance.yaml`'s alerts)."""

    alerts: Alerts
    factor: float
    history: int
    link: str | None = None

    def raise_alert(self, kind: str, subject: str, reason: str) -> None:
        self.alerts.alert(Alert(kind, subject, reason, self.link))


def is_delayed(seconds: float, recent: list[float], factor: float) -> bool:
    """Slower than `factor` times the median of at least three earlier builds of the same kind."""
    return len(recent) >= 3 and seconds > factor * statistics.median(recent)


def _build_image(
    app: AppImageSpec,
    workspace: ImageWorkspace,
    phases: Phases,
    no_cache: bool,
    progress: Progress,
    trail: AuditTrail | None,
) -> ImageBuild:
    with phases.phase("preflight"):
        checks = admitted(app, workspace, progress)
    with phases.phase("bases"):
        bases = {
            arg: with_retries(
                lambda name=name: ensure_base(  # type: ignore[misc]
                    name, workspace.section, workspace.storage, progress
                ),
                what=f"base image {name}",
                backoff=RETRY,
            )
            for arg, name in app.bases.items()
        }
    build_args = {arg: base.reference for arg, base in bases.items()}
    findings = lint(app.dockerfile_path, build_args)
    with phases.phase("fetch"):
        deps = with_retries(
            lambda: dependencies.fetch(
                app.context, workspace.root / "deps", workspace.sources(app), progress
            ),
            what=f"dependency fetch for {app.name}",
            backoff=RETRY,
        )
    builder = workspace.builder()
    tag = f"{workspace.registry}/{app.repository}:build"
    # One build of an app at a time in a storage: a second would restage the context directory,
    # and move the `:build` tag, under the first (two runs, or homes sharing a storage).
    with file_lock(workspace.root / "locks" / f"build-{app.name}.lock"):
        with phases.phase("context"):
            context = stage_context(app, workspace.root / "contexts" / app.name)
        request = BuildRequest(
            context,
            context / app.dockerfile,
            tag,
            build_args,
            no_cache,
            contexts={dependencies.CONTEXT: deps.path},
        )
        with phases.phase("build"):
            outcome = with_retries(
                lambda: builder.build(request, progress),
                what=f"build of {app.name}",
                backoff=RETRY,
            )
    destination = f"{workspace.registry}/{app.repository}:{outcome.image_id[:12]}"
    with phases.phase("push"):
        digest = with_retries(
            lambda: builder.push(outcome.image_id, destination, progress),
            what=f"push of {app.name}",
            backoff=RETRY,
        )
    build = ImageBuild(
        name=app.name,
        repository=app.repository,
        reference=f"{workspace.registry}/{app.repository}@{digest}",
        digest=digest,
        image_id=outcome.image_id,
        size_bytes=builder.size(outcome.image_id),
        compressed_bytes=manifest_size(workspace.registry, app.repository, digest),
        lockfile=deps.lockfile.name,
        lockfile_digest=deps.lockfile_digest,
        dependencies_fetched=deps.fetched,
        dependency_packages=deps.packages,
        bases={arg: base.reference for arg, base in bases.items()},
        steps=outcome.steps,
        phases=phases.seconds,
        preflight=checks,
        findings=findings,
        builder=builder.name,
        no_cache=no_cache,
    )
    BuildRecords(workspace.root).save(build)
    if trail is not None:
        trail.record(
            "image.built",
            f"image:{app.name}",
            {"digest": digest, "lockfile": deps.lockfile_digest, **build.bases},
            decision="built",
            reasons=[f"{build.cached_steps}/{len(build.steps)} steps from cache"],
        )
    return build


class BuildRecords:
    """The last build of each app, and every build by digest, so checks and releases later in
    another process can find exactly what was built."""

    def __init__(self, root: Path):
        self.root = root / "builds"

    def save(self, build: ImageBuild) -> None:
        directory = self.root / build.name
        directory.mkdir(parents=True, exist_ok=True)
        text = build.to_json()
        (directory / f"{build.digest.replace(':', '-')}.json").write_text(text)
        partial = directory / "latest.json.partial"
        partial.write_text(text)
        partial.replace(directory / "latest.json")

    def add_duration(self, name: str, no_cache: bool, seconds: float) -> None:
        """One line per build, cached and uncached builds apart (they are not comparable)."""
        path = self._durations(name, no_cache)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps({"at": time.time(), "seconds": round(seconds, 3)}) + "\n")

    def durations(self, name: str, no_cache: bool, last: int) -> list[float]:
        path = self._durations(name, no_cache)
        if not path.is_file():
            return []
        seconds = []
        for line in path.read_text().splitlines()[-last:]:
            try:
                seconds.append(float(json.loads(line)["seconds"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a crash is not history
        return seconds

    def _durations(self, name: str, no_cache: bool) -> Path:
        return self.root / name / ("durations-no-cache.jsonl" if no_cache else "durations.jsonl")

    def every(self) -> dict[str, list[ImageBuild]]:
        """Every build record, by app, newest first."""
        builds: dict[str, list[ImageBuild]] = {}
        for record in sorted(self.root.glob("*/sha256-*.json")):
            build = ImageBuild.from_json(record.read_text())
            builds.setdefault(build.name, []).append(build)
        return {
            name: sorted(found, key=lambda b: b.finished_at, reverse=True)
            for name, found in sorted(builds.items())
        }

    def latest(self, name: str) -> ImageBuild:
        path = self.root / name / "latest.json"
        if not path.is_file():
            raise PermanentError(f"image {name} has not been built here yet: build it first")
        return ImageBuild.from_json(path.read_text())

    def by_digest(self, name: str, digest: str) -> ImageBuild:
        path = self.root / name / f"{digest.replace(':', '-')}.json"
        if not path.is_file():
            raise PermanentError(f"image {name}: no build record for {digest}")
        return ImageBuild.from_json(path.read_text())


def code_version(app: AppImageSpec) -> str:
    """Every file of the context (source, lockfile, Dockerfile): change one and the image is stale.
    Runs at every code-location load, so generated trees (node_modules, .venv) are never entered,
    and what a developer's tools generate (next-env.d.ts) is not the app's code."""
    files = []
    for source in app.sources:
        if source.is_file():
            files.append(source)
        for directory, subdirectories, names in os.walk(source):
            subdirectories[:] = sorted(d for d in subdirectories if d not in _GENERATED)
            files += [
                Path(directory) / name
                for name in sorted(names)
                if name not in _GENERATED and not name.endswith(".pyc")
            ]
    return fingerprint(*[part for p in files for part in (str(p.relative_to(app.context)), p)])


def policy_findings(app: AppImageSpec, build: ImageBuild) -> list[Finding]:
    """The Dockerfile policy against what was actually built (the bases passed by digest)."""
    return lint(app.dockerfile_path, build.bases)


def _lockfile_check(app: AppImageSpec) -> Check:
    started = time.monotonic()
    try:
        report = check_lockfile(app.context)
    except GovernanceError as exc:
        return Check("lockfile", False, str(exc), time.monotonic() - started)
    detail = (
        f"{report.lockfile.name} consistent with every manifest ({report.kind})"
        if report.consistent
        else f"a frozen {report.kind} install would fail: "
        + "; ".join(map(str, report.mismatches))
        + f"; fix: {report.fix}"
    ) + "".join(f"; warning: {warning}" for warning in report.warnings)
    return Check("lockfile", report.consistent, detail, time.monotonic() - started)


def _policy_check(app: AppImageSpec, build_args: Mapping[str, str] | None) -> Check:
    started = time.monotonic()
    try:
        errors = [f for f in lint(app.dockerfile_path, build_args) if f.severity == "error"]
    except GovernanceError as exc:
        return Check(f"policy {app.dockerfile}", False, str(exc), time.monotonic() - started)
    detail = "; ".join(f"line {f.line}: {f.rule}: {f.message}" for f in errors) or "no errors"
    return Check(f"policy {app.dockerfile}", not errors, detail, time.monotonic() - started)


def _bases_present(app: AppImageSpec, workspace: ImageWorkspace) -> bool:
    try:
        return all(
            manifest_digest(
                workspace.registry,
                workspace.section.bases[name].repository,
                recipe_tag(workspace.section.bases[name], workspace.section.debian_mirror),
                timeout_s=2,
            )
            for name in app.bases.values()
        )
    except (PermanentError, TransientError):
        return False


def stage_context(app: AppImageSpec, context: Path) -> Path:
    """The app's sources, nothing else (its dependencies are the named context `deps`). Files keep
    their times, so unchanged inputs keep their layer cache keys."""
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    for source in app.sources:
        staged = context / source.relative_to(app.context)
        if source.is_dir():
            shutil.copytree(source, staged, ignore=_NOT_CONTEXT, symlinks=True, dirs_exist_ok=True)
        else:
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, staged)
    return context
