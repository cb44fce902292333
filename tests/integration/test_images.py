"""Image builds for real: buildah on overlay storage, Debian-built bases in a loopback
docker-registry, the lockfile-keyed fetch, podman smoke tests, and every failure a user can cause."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from governance.config import AppImageSpec, Estate
from governance.errors import PermanentError, TransientError
from governance.home import GovernanceHome
from governance.images import dependencies
from governance.images.lifecycle import (
    BuildRecords,
    ImageBuild,
    ImageWorkspace,
    build_image,
    policy_findings,
    preflight,
)
from governance.images.lockfiles import check_lockfile
from governance.images.registry import image_manifest, manifest_digest
from governance.images.smoke import smoke_test
from tests.conftest import REPO, repository_estate_data, run_governance, write_estate
from tests.services import LineageBackend, free_port

MODEL_SERVER = REPO / "examples/penguins/apps/model-server"
INSTALL_STEP = "pip install"


@pytest.fixture(scope="module")
def first_build(image_lab: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> ImageBuild:
    """The repository's model server, built once for the module (bases and wheels on first use)."""
    estate = write_estate(repository_estate_data(), tmp_path_factory.mktemp("estate"))
    workspace = ImageWorkspace.resolve(estate.images, GovernanceHome(tmp_path_factory.mktemp("home")))
    return build_image(estate.image("model_server"), workspace)


@pytest.fixture
def app_copy(tmp_path: Path) -> Callable[..., tuple[Estate, AppImageSpec]]:
    """The estate with an app's context (the model server's unless named) replaced by an edited copy."""

    def make(edit: Callable[[Path], None], app: str = "model_server") -> tuple[Estate, AppImageSpec]:
        data = repository_estate_data()
        context = tmp_path / app
        shutil.copytree(data["images"]["apps"][app]["context"], context)
        edit(context)
        data["images"]["apps"][app]["context"] = str(context)
        estate = write_estate(data, tmp_path / "estate")
        return estate, estate.image(app)

    return make


def _workspace(estate: Estate) -> ImageWorkspace:
    return ImageWorkspace.resolve(estate.images, GovernanceHome.resolve())


def _install_step(build: ImageBuild) -> bool:
    return next(s.cached for s in build.steps if INSTALL_STEP in s.instruction)


def test_build_pushes_by_digest_with_pinned_bases_and_recorded_provenance(
    first_build: ImageBuild, image_lab: tuple[str, Path]
) -> None:
    registry, _ = image_lab
    assert first_build.digest.startswith("sha256:") and len(first_build.digest) == 71
    assert first_build.reference == f"{registry}/penguins/model-server@{first_build.digest}"
    assert manifest_digest(registry, "penguins/model-server", first_build.digest) == first_build.digest
    assert first_build.bases["BASE_IMAGE"].startswith(f"{registry}/governance/python@sha256:")
    lock_bytes = (MODEL_SERVER / "uv.lock").read_bytes()
    import hashlib

    assert first_build.lockfile_digest == "sha256:" + hashlib.sha256(lock_bytes).hexdigest()
    assert first_build.size_bytes > first_build.compressed_bytes > 10_000_000
    assert set(first_build.phases) == {"preflight", "bases", "fetch", "context", "build", "push"}
    assert not [f for f in policy_findings_of(first_build) if f.severity == "error"]


def policy_findings_of(build: ImageBuild) -> list[object]:
    estate = write_estate(repository_estate_data(), Path(GovernanceHome.resolve().root) / "estate")
    return list(policy_findings(estate.image("model_server"), build))


def test_unchanged_rebuild_is_all_cache_and_fetches_nothing(first_build: ImageBuild) -> None:
    estate = write_estate(repository_estate_data(), GovernanceHome.resolve().root / "estate")
    again = build_image(estate.image("model_server"), _workspace(estate))
    assert not again.dependencies_fetched
    assert _install_step(again)
    assert [
        s.instruction for s in again.steps if not s.cached and not s.instruction.startswith("FROM")
    ] == []
    assert again.digest == first_build.digest  # same layers, same manifest


def test_source_only_change_reuses_the_dependency_layer(first_build: ImageBuild, app_copy) -> None:  # type: ignore[no-untyped-def]
    estate, spec = app_copy(
        lambda ctx: (ctx / "app/main.py").write_text(
            (ctx / "app/main.py").read_text() + f"\n# edit {uuid.uuid4()}\n"
        )
    )
    build = build_image(spec, _workspace(estate))
    assert build.digest != first_build.digest
    assert not build.dependencies_fetched and _install_step(build)
    rebuilt = [
        s.instruction for s in build.steps if not s.cached and not s.instruction.startswith("FROM")
    ]
    assert rebuilt[0] == "COPY app/ ./app/"
    assert build.phases["build"] < 10


def test_no_cache_rebuilds_every_step_without_refetching(first_build: ImageBuild) -> None:
    estate = write_estate(repository_estate_data(), GovernanceHome.resolve().root / "estate")
    build = build_image(estate.image("model_server"), _workspace(estate), no_cache=True)
    assert build.no_cache and build.cached_steps == 0
    assert not build.dependencies_fetched  # the wheelhouse is keyed by the lockfile, not the cache flag


def test_smoke_test_passes_for_the_server_and_fails_with_logs_for_a_crashing_image(
    first_build: ImageBuild,
    app_copy,  # type: ignore[no-untyped-def]
) -> None:
    workspace = _workspace(write_estate(repository_estate_data(), GovernanceHome.resolve().root / "e"))
    ok = smoke_test(first_build.reference, workspace.storage, health_path="/healthz")
    assert ok.ok and ok.status == 200

    def crash(ctx: Path) -> None:
        (ctx / "app/__main__.py").write_text("raise SystemExit('model server refuses to start')\n")

    estate, spec = app_copy(crash)
    broken = build_image(spec, _workspace(estate))
    result = smoke_test(broken.reference, _workspace(estate).storage, health_path="/healthz")
    assert not result.ok and result.status is None
    assert "exited (exit code 1)" in result.detail  # not the whole timeout
    assert "model server refuses to start" in result.logs
    registry = first_build.reference.split("/")[0]
    missing = smoke_test(
        f"{registry}/penguins/absent@sha256:{'0' * 64}", _workspace(estate).storage, health_path="/"
    )
    assert not missing.ok and missing.detail.startswith("the container did not start:"), missing


def test_lockfile_out_of_step_fails_at_once_naming_the_package(  # type: ignore[no-untyped-def]
    image_lab: tuple[str, Path], app_copy
) -> None:
    """The lockfile is the only failing check (the lab's registry answers), whichever tests ran
    before this one."""

    def bump(ctx: Path) -> None:
        manifest = ctx / "pyproject.toml"
        manifest.write_text(manifest.read_text().replace("fastapi==0.165.0", "fastapi==0.115.0"))

    estate, spec = app_copy(bump)
    checks = {c.name: c for c in preflight(spec, _workspace(estate))}
    assert not checks["lockfile"].ok and "fastapi" in checks["lockfile"].detail
    with pytest.raises(PermanentError, match=r"preflight failed: lockfile: .*fastapi"):
        build_image(spec, _workspace(estate))


def _add_dependency(ctx: Path) -> None:
    manifest = ctx / "apps/web/package.json"
    data = json.loads(manifest.read_text())
    data["dependencies"]["zod"] = "3.23.8"
    manifest.write_text(json.dumps(data, indent=2) + "\n")


def _bump_catalog(ctx: Path) -> None:
    workspace = ctx / "pnpm-workspace.yaml"
    workspace.write_text(workspace.read_text().replace("next: 16.5.0", "next: 16.4.6"))


def _move_shared_package(ctx: Path) -> None:
    (ctx / "packages/ui").rename(ctx / "packages/shared-ui")


@pytest.mark.parametrize(
    ("edit", "mismatch"),
    [
        (
            _add_dependency,
            "apps/web/package.json: zod: dependencies asks '3.23.8' but the lockfile has no entry",
        ),
        (
            _bump_catalog,
            "pnpm-workspace.yaml: next: default catalog asks '16.4.6', the lockfile has '16.5.0'",
        ),
        (
            _move_shared_package,
            "packages/shared-ui/package.json: (importer): workspace package is missing",
        ),
    ],
    ids=["dependency-added", "catalog-changed", "workspace-link-broken"],
)
def test_a_developers_pnpm_edit_is_refused_before_the_build_with_its_fix(  # type: ignore[no-untyped-def]
    app_copy, image_lab: tuple[str, Path], edit: Callable[[Path], None], mismatch: str
) -> None:
    """The seed's failures: the preflight names the exact mismatch and the command that fixes it,
    before a base, a fetch or a build step is spent; and that command, run for real, does fix it."""
    estate, spec = app_copy(edit, "frontend")
    progress: list[str] = []
    with pytest.raises(PermanentError) as refused:
        build_image(spec, _workspace(estate), progress=progress.append)
    message = str(refused.value)
    assert message.startswith("preflight failed: lockfile: a frozen pnpm install would fail: "), message
    assert mismatch in message, message
    assert (
        f"fix: run `pnpm install --lockfile-only` in {spec.context}, then commit pnpm-lock.yaml"
        in message
    )
    assert not [line for line in progress if line.startswith(("[bases]", "[fetch]", "[build]"))]

    pnpm = dependencies.npm_package(
        "pnpm", dependencies.pnpm_version(spec.context), GovernanceHome.resolve().root / "tools",
        estate.images.npm_url,
    )  # fmt: skip
    relock = subprocess.run(
        ["node", str(pnpm / "bin/pnpm.cjs"), "install", "--lockfile-only", "--registry", estate.images.npm_url],
        cwd=spec.context, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert relock.returncode == 0, relock.stdout + relock.stderr
    assert check_lockfile(spec.context).consistent


def test_unreachable_registry_is_transient_and_named(image_lab, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GOVERNANCE_IMAGE_REGISTRY", f"127.0.0.1:{free_port()}")
    estate = write_estate(repository_estate_data(), GovernanceHome.resolve().root / "estate")
    with pytest.raises(
        TransientError, match=r"preflight failed: registry http://127\.0\.0\.1:\d+/v2/: unreachable"
    ):
        build_image(estate.image("frontend"), _workspace(estate))


def test_failing_package_registry_is_named_and_transient(tmp_path: Path) -> None:
    backend = LineageBackend()
    backend.mode = "fail"
    try:
        sources = dependencies.Sources(pypi_url=backend.url + "/simple", npm_url=backend.url)
        with pytest.raises(TransientError, match="answered 500: the registry is failing"):
            dependencies.fetch(MODEL_SERVER, tmp_path / "deps", sources, lambda line: None)
    finally:
        backend.close()
    assert not list((tmp_path / "deps").glob("wheelhouse-*"))  # nothing half-fetched is kept


@pytest.fixture(scope="module")
def frontend_build(
    image_lab: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ImageBuild, ImageWorkspace, Estate]:
    """The repository's front end, built once for the module."""
    estate = write_estate(repository_estate_data(), tmp_path_factory.mktemp("estate"))
    workspace = ImageWorkspace.resolve(estate.images, GovernanceHome(tmp_path_factory.mktemp("home")))
    return build_image(estate.image("frontend"), workspace), workspace, estate


def test_frontend_builds_offline_from_the_pnpm_store_and_serves(
    frontend_build: tuple[ImageBuild, ImageWorkspace, Estate],
) -> None:
    build, workspace, estate = frontend_build
    assert set(build.bases) == {"NODE_IMAGE"}
    assert build.lockfile == "pnpm-lock.yaml" and build.dependency_packages >= 50
    assert smoke_test(build.reference, workspace.storage, health_path="/healthz").ok
    assert BuildRecords(workspace.root).by_digest("frontend", build.digest).reference == build.reference
    # The Node the base was pinned to (from the npm registry), not Debian's.
    pinned = estate.images.bases["node"].from_npm
    version = workspace.storage.run(
        ["podman", "run", "--rm", "--network", "none", build.reference, "node", "--version"],
        what="node --version",
    )
    assert pinned is not None and version.split()[-1] == f"v{pinned.version}"


def test_a_source_only_edit_of_the_frontend_pushes_only_the_apps_own_layer(  # type: ignore[no-untyped-def]
    frontend_build: tuple[ImageBuild, ImageWorkspace, Estate], image_lab: tuple[str, Path], app_copy
) -> None:
    """An edit reruns the tests and the build, whose traced node_modules come out as they were:
    their layer (most of the output) comes from the cache, and the registry receives only the
    app's own, smaller layer."""
    first, _, _ = frontend_build

    def edit(ctx: Path) -> None:
        page = ctx / "apps/web/app/page.tsx"
        page.write_text(f"{page.read_text()}\n// edit {uuid.uuid4()}\n")

    estate, spec = app_copy(edit, app="frontend")
    build = build_image(spec, _workspace(estate))
    assert not build.dependencies_fetched
    rebuilt = [
        s.instruction for s in build.steps if not s.cached and not s.instruction.startswith("FROM")
    ]
    assert len(rebuilt) == 3, rebuilt
    assert rebuilt[0] == "COPY . ." and "test-and-build" in rebuilt[1]
    assert rebuilt[2] == "COPY --from=build /workspace/apps/web/.next/standalone/ ./"
    modules = "COPY --from=build /workspace/apps/web/.next/standalone-modules/ ./node_modules/"
    assert [s.cached for s in build.steps if s.instruction == modules] == [True]
    registry, _ = image_lab
    before, after = (_layers(registry, b) for b in (first, build))
    assert len(before) == len(after) and before[:-1] == after[:-1] and before[-1] != after[-1]
    assert after[-1][1] < after[-2][1] / 2, after[-2:]  # the app, against the modules


def _layers(registry: str, build: ImageBuild) -> list[tuple[str, int]]:
    """(digest, compressed size) of each layer of the build's manifest in the registry."""
    layers = image_manifest(registry, build.repository, build.digest)["layers"]
    return [(layer["digest"], layer["size"]) for layer in layers]


def test_a_failing_workspace_test_fails_the_frontend_build_naming_it(  # type: ignore[no-untyped-def]
    image_lab: tuple[str, Path], app_copy
) -> None:
    """The workspace's tests (one Vitest, a project per package) run beside `next build` in one
    step: one failing test of a shared package fails the build, whatever the build beside it does,
    and the error names the test's package and file and the script that ran it, in plain text
    (Vitest colours its output even here)."""

    def break_a_test(ctx: Path) -> None:
        test = ctx / "packages/ui/src/measurements.test.ts"
        test.write_text(test.read_text().replace("toEqual(", "not.toEqual(", 1))

    estate, spec = app_copy(break_a_test, app="frontend")
    with pytest.raises(PermanentError) as failed:
        build_image(spec, _workspace(estate))
    assert re.search(
        r"(?s)build of .* failed.*FAIL +@penguins/ui +src/measurements\.test\.ts"
        r".*penguins-frontend@1\.0\.0 test: `vitest run`",
        str(failed.value),
    ), str(failed.value)
    assert "\x1b" not in str(failed.value)


def test_cli_preflight_build_and_test(first_build: ImageBuild) -> None:
    preflight_run = run_governance("images", "preflight", "model_server", "--json")
    assert preflight_run.returncode == 0, preflight_run.stdout + preflight_run.stderr
    names = [c["name"] for c in json.loads(preflight_run.stdout)]
    assert names[-2:] == ["lockfile", "policy Dockerfile"] and any("pypi.org" in n for n in names)
    build = run_governance("images", "build", "model_server", "--json")
    assert build.returncode == 0, build.stderr[-2000:]
    assert json.loads(build.stdout)["digest"] == first_build.digest
    assert "[build]" in build.stderr  # progress went to stderr
    tested = run_governance("images", "test", "model_server")
    assert tested.returncode == 0, tested.stdout
    assert "ok    smoke: GET /healthz answered 200" in tested.stdout


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    data = repository_estate_data()
    data["images"]["apps"]["model_server"]["dockerfile"] = "Containerfile.missing"
    bad = tmp_path / "bad.yaml"
    import yaml

    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    missing = run_governance("--estate", str(bad), "images", "preflight", "model_server")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "images.apps.model_server: dockerfile: Containerfile.missing not found" in missing.stderr

    context = tmp_path / "unreadable"
    shutil.copytree(MODEL_SERVER, context)
    (context / "uv.lock").write_bytes(b"\x00\xff not toml [[")
    data = repository_estate_data()
    data["images"]["apps"]["model_server"]["context"] = str(context)
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    unreadable = run_governance("--estate", str(bad), "images", "preflight", "model_server")
    assert unreadable.returncode == 1 and "Traceback" not in unreadable.stderr + unreadable.stdout
    assert "FAIL  lockfile:" in unreadable.stdout and "uv.lock" in unreadable.stdout

    refused = run_governance(
        "images", "build", "frontend", env={"GOVERNANCE_IMAGE_REGISTRY": f"127.0.0.1:{free_port()}"}
    )
    assert refused.returncode == 4 and "Traceback" not in refused.stderr
    assert "unreachable" in refused.stderr.splitlines()[-1]


def test_a_cache_mount_carries_over_to_the_next_build_but_not_into_a_no_cache_one(
    first_build: ImageBuild, tmp_path: Path
) -> None:
    """What a RUN step keeps in a cache mount (a compiler's cache: Next's .next/cache) is there for
    the next build of the storage, never in the image, and a --no-cache build starts without it."""
    from governance.images.builders import BuildRequest

    estate = write_estate(repository_estate_data(), tmp_path / "estate")
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG EDIT\n"
        f"RUN --mount=type=cache,id={uuid.uuid4().hex},target=/cache,sharing=locked \\\n"
        "    echo $EDIT >> /cache/builds && cp /cache/builds /builds\n"
    )
    builder = _workspace(estate).builder()
    storage = _workspace(estate).storage

    def builds_seen(edit: str, no_cache: bool = False) -> list[str]:
        args = {"BASE_IMAGE": first_build.bases["BASE_IMAGE"], "EDIT": edit}
        request = BuildRequest(context, context / "Dockerfile", "cache-probe:latest", args, no_cache)
        image = builder.build(request, lambda line: None).image_id
        shown = storage.run(["podman", "run", "--rm", image, "cat", "/builds"], what="probe")
        return shown.split()

    assert builds_seen("one") == ["one"]
    assert builds_seen("two") == ["one", "two"]
    assert builds_seen("three", no_cache=True) == ["three"]
    assert builds_seen("four") == ["one", "two", "four"]  # the storage's cache, kept


def test_nothing_inside_a_build_reaches_the_network(first_build: ImageBuild, tmp_path: Path) -> None:
    """RUN steps get no network at all (the fetch step brought everything), so a Dockerfile that
    tries to download fails at once, as a permanent error naming the step."""
    from governance.images.builders import BuildRequest

    estate = write_estate(repository_estate_data(), tmp_path / "estate")
    context = tmp_path / "context"
    context.mkdir()
    probe = "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/', timeout=5)"
    (context / "Dockerfile").write_text(
        f'ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN python3 -c "{probe}"\n'
    )
    builder = _workspace(estate).builder()
    request = BuildRequest(
        context, context / "Dockerfile", "probe:latest", {"BASE_IMAGE": first_build.bases["BASE_IMAGE"]}
    )
    with pytest.raises(PermanentError, match=r"(?s)name resolution.*building at STEP \"RUN python3"):
        builder.build(request, lambda line: None)


def test_a_build_cannot_change_the_dependencies_it_is_given(  # type: ignore[no-untyped-def]
    first_build: ImageBuild, tmp_path: Path, app_copy
) -> None:
    """The fetched dependencies are the lockfile's cache entry itself, shared by every build of
    that lockfile and mounted in place: a step that writes to the read-only bind fails and the entry
    is as it was; a Dockerfile that mounts them writable (which buildah would write through) is
    refused by the policy before any build."""
    from governance.images.builders import BuildRequest

    estate = write_estate(repository_estate_data(), tmp_path / "estate")
    deps = tmp_path / "deps"
    deps.mkdir()
    (deps / "requirements.txt").write_text("fetched\n")
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN --mount=type=bind,from=deps,target=/deps "
        "echo changed > /deps/requirements.txt && touch /deps/new\n"
    )
    request = BuildRequest(
        context,
        context / "Dockerfile",
        "write-probe:latest",
        {"BASE_IMAGE": first_build.bases["BASE_IMAGE"]},
        contexts={dependencies.CONTEXT: deps},
    )
    with pytest.raises(PermanentError, match=r"(?s)Read-only file system.*building at STEP"):
        _workspace(estate).builder().build(request, lambda line: None)
    assert [p.name for p in deps.iterdir()] == ["requirements.txt"]
    assert (deps / "requirements.txt").read_text() == "fetched\n"

    def mount_writable(ctx: Path) -> None:
        dockerfile = ctx / "Dockerfile"
        mount = "from=deps,source=wheelhouse,target=/wheelhouse"
        dockerfile.write_text(dockerfile.read_text().replace(mount, f"{mount},rw"))

    estate, spec = app_copy(mount_writable)
    with pytest.raises(PermanentError, match=r"dependency-cache.*mount them type=bind, read-only"):
        build_image(spec, _workspace(estate))


def test_a_docker_engine_refuses_a_build_that_needs_named_contexts(
    image_lab: tuple[str, Path], tmp_path: Path
) -> None:
    """The Docker SDK's build API has no named build contexts, through which fetched dependencies
    reach every app's build: such a build is refused before it starts, naming the builder that
    can, rather than failing inside the engine on an image called `deps`."""
    import os

    from governance.images.builders import BuildRequest, DockerBuilder
    from governance.images.engine import docker_host, start_engine, stop_engine

    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY --from=deps requirements.txt /\n")
    # podman's API service, a real Docker-compatible engine, on the lab's builder storage.
    storage = _workspace(write_estate(repository_estate_data(), tmp_path / "estate")).storage
    start_engine(storage, os.getgid())
    try:
        request = BuildRequest(
            tmp_path, tmp_path / "Dockerfile", "probe:latest", {}, contexts={"deps": tmp_path}
        )
        with pytest.raises(PermanentError, match=r"cannot pass named build contexts \(deps\)"):
            DockerBuilder(base_url=docker_host(storage)).build(request, lambda line: None)
    finally:
        stop_engine(storage)
