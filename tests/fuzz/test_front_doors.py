"""Every front door, fuzzed from real fixtures and held to the contract in harness.py: a CSV row, a
suite, `governance.yaml`, pnpm/npm/uv/pip lockfiles and manifests, Dockerfiles, `openlineage.yml`,
an `audit.db` and a release's `state.json`."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import REPO, SHARED_FIXTURES, repository_estate_data
from tests.fuzz.harness import (
    BENIGN_OPS,
    BYTE_OPS,
    SPECIFIER_OPS,
    TEXT_OPS,
    check_contract,
    door,
    fresh_home,
    installed,
    mutated,
    record,
)

APPS = REPO / "examples" / "penguins" / "apps"
SUITE = REPO / "expectations" / "penguins.json"
ESTATE = REPO / "governance.yaml"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One home for the doors that need no state of their own (validations write Data Docs to it)."""
    yield tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def sample(workdir: Path) -> bytes:
    from importlib import resources

    text = Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv"))).read_text()
    lines = text.splitlines()
    kept = [lines[0], *(line for line in lines[1:] if "NA" not in line.split(","))]
    return ("\n".join(kept) + "\n").encode()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _estate(workdir: Path, **changes: str) -> Path:
    data = repository_estate_data()
    if "suite" in changes:
        data["datasets"]["penguins"]["suite"] = changes["suite"]
    path = workdir / "estate.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------------------- datasets


@door()
@given(data=st.data())
def test_csv_rows(data: st.DataObject, sample: bytes, workdir: Path, home: Path) -> None:
    """And a file that validates is accepted again after a round trip through the dataset store
    and `checkout`."""
    rows = data.draw(mutated(sample, BYTE_OPS))
    csv = _write(workdir / "rows.csv", rows)
    estate = _estate(workdir)
    validate = ["--estate", str(estate), "datasets", "validate", "penguins"]
    outcome = check_contract("csv", [*validate, str(csv)], [csv.name], home=home)
    assert csv.read_bytes() == rows, "validating a file changed it"
    if outcome.code != 0:
        return
    from governance.datasets.versioning import DatasetStore
    from governance.home import GovernanceHome

    store_home = GovernanceHome(home)
    store = DatasetStore(store_home.datasets_repo, str(store_home.dvc_remote))
    staged = _write(workdir / "staged" / "penguins.csv", rows)  # the bytes that validated
    version = store.commit("penguins", staged, lambda version: None)
    assert version.size == len(rows), f"published {version.size} bytes of {len(rows)}"
    back = workdir / "checked-out.csv"
    checkout = ["--estate", str(estate), "datasets", "checkout", "penguins", "--version"]
    out = check_contract(
        "checkout", [*checkout, version.md5, "--out", str(back), "--force"], [], home=home
    )
    assert out.code == 0 and back.read_bytes() == rows
    again = check_contract("csv", [*validate, str(back)], [back.name], home=home)
    assert again.code == 0, again.err


@door()
@given(data=st.data())
def test_expectation_suites(data: st.DataObject, sample: bytes, workdir: Path, home: Path) -> None:
    suite = _write(workdir / "suite" / "penguins.json", data.draw(mutated(SUITE.read_bytes(), TEXT_OPS)))
    csv = _write(workdir / "clean.csv", sample)
    estate = _estate(workdir, suite=str(suite))
    check_contract(
        "suite",
        ["--estate", str(estate), "datasets", "validate", "penguins", str(csv)],
        [suite.name, estate.name],
        home=home,
    )


@door()
@given(data=st.data())
def test_estate_files(data: st.DataObject, workdir: Path, home: Path) -> None:
    text = _estate(workdir).read_bytes()
    estate = _write(workdir / "mutated" / "governance.yaml", data.draw(mutated(text, TEXT_OPS)))
    check_contract("estate", ["--estate", str(estate), "datasets", "list"], [estate.name], home=home)


# ------------------------------------------------------------------------------- lockfiles


def _lockfile_door(
    door: str, source: Path, mutate: str, data: st.DataObject, workdir: Path, home: Path
) -> None:
    root = workdir / door
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("node_modules", ".venv"))
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the shared fixtures are read-only
    target = root / mutate
    target.write_bytes(data.draw(mutated(target.read_bytes(), TEXT_OPS)))
    check_contract(
        door, ["images", "check-lockfile", str(root)], [mutate, target.name, str(root)], home=home
    )


@door()
@given(data=st.data(), file=st.sampled_from(["pnpm-lock.yaml", "package.json"]))
def test_pnpm_lockfiles(data: st.DataObject, file: str, workdir: Path, home: Path) -> None:
    _lockfile_door("pnpm", APPS / "frontend", file, data, workdir, home)


@door(0.25)
@given(
    data=st.data(),
    file=st.sampled_from(
        ["pnpm-lock.yaml", "pnpm-workspace.yaml", "package.json", "packages/compiler-sfc/package.json"]
    ),
)
def test_pnpm_workspaces(data: st.DataObject, file: str, workdir: Path, home: Path) -> None:
    _lockfile_door(
        "pnpm-workspace", SHARED_FIXTURES / "real-world" / "vue-core", file, data, workdir, home
    )


@door()
@given(data=st.data(), file=st.sampled_from(["uv.lock", "pyproject.toml"]))
def test_uv_lockfiles(data: st.DataObject, file: str, workdir: Path, home: Path) -> None:
    _lockfile_door("uv", APPS / "model-server", file, data, workdir, home)


@door(0.25)
@given(data=st.data(), file=st.sampled_from(["uv.lock", "pyproject.toml", "backend/pyproject.toml"]))
def test_uv_workspaces(data: st.DataObject, file: str, workdir: Path, home: Path) -> None:
    fixture = SHARED_FIXTURES / "real-world" / "full-stack-fastapi"
    _lockfile_door("uv-workspace", fixture, file, data, workdir, home)


NPM = {
    "package.json": b'{"name": "app", "version": "1.0.0", "dependencies": {"left-pad": "^1.3.0"}}\n',
    "package-lock.json": (
        b'{"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {'
        b'"": {"name": "app", "version": "1.0.0", "dependencies": {"left-pad": "^1.3.0"}}, '
        b'"node_modules/left-pad": {"version": "1.3.0", "resolved": '
        b'"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", "integrity": "sha512-x"}}}\n'
    ),
}
PIP = {
    "requirements.in": b"fastapi>=0.110\nuvicorn[standard]==0.30.1\n",
    "requirements.txt": (
        b"# via pip-compile\nfastapi==0.111.0 \\\n    --hash=sha256:aa\nuvicorn[standard]==0.30.1\n"
        b"starlette==0.37.2\n    # via fastapi\n"
    ),
}


@pytest.mark.parametrize("kind", ["npm", "pip"])
@door()
@given(data=st.data())
def test_npm_and_pip_lockfiles(data: st.DataObject, kind: str, workdir: Path, home: Path) -> None:
    files = NPM if kind == "npm" else PIP
    root = workdir / kind
    shutil.rmtree(root, ignore_errors=True)
    for name, content in files.items():
        _write(root / name, content)
    name = data.draw(st.sampled_from(sorted(files)))
    _write(root / name, data.draw(mutated(files[name], TEXT_OPS)))
    check_contract(kind, ["images", "check-lockfile", str(root)], [name, str(root)], home=home)


# ------------------------------------------------------------------------------- Dockerfiles


@door()
@given(data=st.data(), app=st.sampled_from(["model-server", "frontend"]))
def test_dockerfiles(data: st.DataObject, app: str, workdir: Path, home: Path) -> None:
    original = (APPS / app / "Dockerfile").read_bytes()
    dockerfile = _write(workdir / "docker" / "Dockerfile", data.draw(mutated(original, BYTE_OPS)))
    check_contract(
        "dockerfile", ["images", "lint-dockerfile", str(dockerfile)], ["Dockerfile"], home=home
    )


# ------------------------------------------------------------------------------- stored state


OPENLINEAGE = (
    b"transport:\n  type: http\n  url: http://127.0.0.1:9\n  endpoint: api/v1/lineage\n  timeout: 2\n"
)


@door()
@given(data=st.data())
def test_openlineage_config(data: st.DataObject, workdir: Path) -> None:
    """Nothing is pending, so a configuration that parses never sends (no network here)."""
    config = _write(workdir / "ol" / "openlineage.yml", data.draw(mutated(OPENLINEAGE, TEXT_OPS)))
    with fresh_home() as home:
        check_contract(
            "openlineage", ["lineage", "flush"], [config.name], home=home,
            env={"OPENLINEAGE_CONFIG": str(config)},
        )  # fmt: skip


@pytest.fixture(scope="module")
def audit_db(workdir: Path) -> Path:
    """A real audit log with a few records."""
    from governance.audit.store import AuditTrail, open_audit_log

    path = workdir / "audit-source" / "audit.db"
    path.parent.mkdir(parents=True)
    trail = AuditTrail(open_audit_log(path), "cli:fuzz")
    for n in range(3):
        trail.record("model.promoted", f"model:m{n}", {"version": str(n)}, "promoted", ["because"])
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@door()
@given(data=st.data(), command=st.sampled_from([["audit", "verify"], ["audit", "show"]]))
def test_audit_databases(data: st.DataObject, command: list[str], audit_db: Path) -> None:
    corrupted = data.draw(mutated(audit_db.read_bytes(), (*BYTE_OPS[:2], BYTE_OPS[4])))
    with fresh_home(lambda home: _write(home / "audit.db", corrupted)) as home:
        check_contract("audit.db", command, ["audit.db"], home=home)


STATE = (
    b'{"candidate": null, "previous": "blue", "failures": 0, "scale_down_at": {"blue": 1.5},'
    b' "colors": {"blue": {"version": "r1", "image": "x@sha256:aa", "model": "m", '
    b'"model_version": "1", "dataset_md5": "d"}}, "last_decision": null}\n'
)


@door()
@given(data=st.data())
@pytest.mark.usefixtures("image_lab")  # podman's storage is the session's, never the home's
def test_release_state(data: st.DataObject, workdir: Path) -> None:
    state = data.draw(mutated(STATE, TEXT_OPS))
    estate = _estate(workdir)
    with fresh_home(
        lambda home: _write(home / "releases" / "penguin_service" / "state.json", state)
    ) as home:
        check_contract(
            "state.json", ["--estate", str(estate), "release", "status"], ["state.json"], home=home
        )


@door(0.2, campaign_share=0.02)
@given(data=st.data(), door_name=st.sampled_from(["estate", "dockerfile", "suite"]))
def test_a_sample_through_the_installed_command(
    data: st.DataObject, door_name: str, sample: bytes, workdir: Path, home: Path
) -> None:
    """The same contract through the console script, in its own process (the streams, exit code
    and no traceback as the operator sees them)."""
    if door_name == "estate":
        estate = _write(
            workdir / "cli" / "governance.yaml", data.draw(mutated(ESTATE.read_bytes(), TEXT_OPS))
        )
        argv, names = ["--estate", str(estate), "datasets", "list"], [estate.name]
    elif door_name == "dockerfile":
        original = (APPS / "model-server" / "Dockerfile").read_bytes()
        dockerfile = _write(workdir / "cli" / "Dockerfile", data.draw(mutated(original, BYTE_OPS)))
        argv, names = ["images", "lint-dockerfile", str(dockerfile)], ["Dockerfile"]
    else:
        suite = _write(
            workdir / "cli" / "penguins.json", data.draw(mutated(SUITE.read_bytes(), TEXT_OPS))
        )
        csv = _write(workdir / "cli" / "clean.csv", sample)
        estate = _estate(workdir, suite=str(suite))
        argv = ["--estate", str(estate), "datasets", "validate", "penguins", str(csv)]
        names = [suite.name, estate.name]
    check_contract(f"{door_name} (installed)", argv, names, home=home, runner=installed)


@door(0.5, campaign_share=0.5)
@given(data=st.data(), file=st.sampled_from(["uv.lock", "pyproject.toml"]))
def test_uv_accepted_lockfiles_are_never_called_inconsistent(
    data: st.DataObject, file: str, workdir: Path, home: Path
) -> None:
    """The differential check: whatever `uv lock --locked --offline` (uv itself, no network)
    accepts, the platform's check calls consistent."""
    import subprocess
    import sys

    root = workdir / "uv-differential"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(APPS / "model-server", root, ignore=shutil.ignore_patterns(".venv", "app"))
    target = root / file
    ops = data.draw(st.sampled_from([BENIGN_OPS, TEXT_OPS]))  # half of them keep the file valid
    target.write_bytes(data.draw(mutated(target.read_bytes(), ops)))
    uv = subprocess.run(
        [str(Path(sys.executable).parent / "uv"), "lock", "--locked", "--offline", "--no-progress"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    ours = check_contract(
        "uv (differential)", ["images", "check-lockfile", str(root)], [file, str(root)], home=home
    )
    if uv.returncode == 0:
        record("uv (accepted by uv)", 0.0)
        assert ours.code == 0, f"uv accepts it, the platform says:\n{ours.out}{ours.err}"


NODE = "22.23.3"  # pnpm 11 (vue core pins 11.19.0) needs Node >= 22.13; Debian's may be older


@pytest.fixture(scope="module")
def pnpm(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], list[str]]:
    """The command line of the pnpm a workspace pins (`packageManager`): the real tool for it,
    from the npm registry as the platform's fetch step gets pnpm, on Node from the registry's
    `node-linux-*` package (both verified against the registry's integrity)."""
    import platform

    from governance.config import ImagesSection
    from governance.images.dependencies import npm_package, pnpm_version

    tools, url = tmp_path_factory.mktemp("npm-tools"), ImagesSection().npm_url
    arch = {"x86_64": "x64", "aarch64": "arm64"}[platform.machine()]
    node = npm_package(f"node-linux-{arch}", NODE, tools, url) / "bin" / "node"

    def command(workspace: Path) -> list[str]:
        tool = npm_package("pnpm", pnpm_version(workspace), tools, url)
        return [str(node), str(tool / "bin" / "pnpm.cjs")]

    return command


PNPM_CASES = [
    ("frontend", "package.json"),
    ("frontend", "pnpm-lock.yaml"),
    ("vue-core", "package.json"),
    ("vue-core", "packages/compiler-sfc/package.json"),
    ("vue-core", "pnpm-lock.yaml"),
    ("vue-core", "pnpm-workspace.yaml"),
]


@door(0.5, campaign_share=0.1)
@given(data=st.data(), case=st.sampled_from(PNPM_CASES))
def test_pnpm_accepted_lockfiles_are_never_called_inconsistent(
    data: st.DataObject,
    case: tuple[str, str],
    pnpm: Callable[[Path], list[str]],
    workdir: Path,
    home: Path,
) -> None:
    """The differential check: whatever the workspace's own pnpm accepts for a frozen install
    (offline, lockfile only: it compares the lockfile with every manifest and the workspace's
    catalogs, and fetches nothing), the platform's check never calls inconsistent."""
    import os
    import subprocess

    fixture, file = case
    source = APPS / "frontend" if fixture == "frontend" else SHARED_FIXTURES / "real-world" / fixture
    root = workdir / "pnpm-differential"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("node_modules", "src"))
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    target = root / file
    ops = data.draw(st.sampled_from([SPECIFIER_OPS, BENIGN_OPS[1:], TEXT_OPS]))
    target.write_bytes(data.draw(mutated(target.read_bytes(), ops)))
    store = workdir / "pnpm-store"
    verdict = subprocess.run(
        [*pnpm(source), "install", "--frozen-lockfile", "--lockfile-only", "--offline", "--ignore-scripts",
         "--store-dir", str(store), "--reporter", "silent"],
        cwd=root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "npm_config_update_notifier": "false", "CI": "1"},
    )  # fmt: skip
    ours = check_contract(
        "pnpm (differential)", ["images", "check-lockfile", str(root)], [file, target.name, str(root)],
        home=home,
    )  # fmt: skip
    if verdict.returncode == 0:
        record("pnpm (accepted by pnpm)", 0.0)
        shown = f"pnpm accepts it, the platform says:\n{ours.out}{ours.err}"
        assert ours.code != 1, shown  # never called inconsistent
        # Files that stay well-formed are accepted outright; a hostile byte pnpm reads leniently
        # (it decodes invalid UTF-8 with replacement characters) may still be refused as unusable.
        assert ours.code == 0 or ops is TEXT_OPS, shown
