"""Shared fixtures: every test runs in its own temporary GOVERNANCE_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance.config import DatasetSpec, Estate, load_estate
from governance.home import DATABASE_URL_ENV
from governance.shared_database import DAGSTER_STORAGE_URL_ENV, dagster_storage
from tests.lanes import LANE_COUNT, Lanes, LaneScheduling, lanes_for, record_long_modules

REPO = Path(__file__).resolve().parent.parent
ESTATE_FILE = REPO / "governance.yaml"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


LAB_ENV = "GOVERNANCE_TEST_IMAGE_LAB"
LANES = pytest.StashKey[Lanes]()


def pytest_configure(config: pytest.Config) -> None:
    """Commands run as an operator's do, through the CLI's resident worker (the default), which the
    run's first command starts in a runtime directory of the run's own; test_cli_worker.py compares
    its answers with a command's own process. The image lab and that directory are placed here,
    before any pytest-xdist worker starts, so that every worker inherits the same ones."""
    if not hasattr(config, "workerinput"):
        os.environ["GOVERNANCE_CLI_WORKER"] = "auto"
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="gw-")  # short: a socket's path
        os.environ[LAB_ENV] = tempfile.mkdtemp(prefix="governance-lab-")


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked `runs_for(seconds)` first, longest first; the rest in collection order.
    pytest-xdist hands each worker a module at a time in this order: the longest one started last
    would end the run alone on one worker while the other idles (a full run here had 120 s of that)."""
    expected: dict[str, float] = {}
    for item in items:
        marker = item.get_closest_marker("runs_for")
        module = _module(item)
        expected[module] = max(expected.get(module, 0.0), float(marker.args[0]) if marker else 0.0)
    order = {id(item): index for index, item in enumerate(items)}
    items.sort(key=lambda item: (-expected[_module(item)], order[id(item)]))
    long_modules = {module for module, seconds in expected.items() if seconds}
    record_long_modules(Path(os.environ[LAB_ENV]), long_modules)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadscope` (make test's), with its long modules handed out only to free lanes."""
    if config.getvalue("dist") != "loadscope":
        return None
    return LaneScheduling(config, log, Path(os.environ[LAB_ENV]), LANE_COUNT)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # around pytest-timeout's: a wait is no test's
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """A long module waits for a lane (tests/lanes.py) before its first test."""
    if LANES not in item.config.stash:
        long_modules = {  # in the order above (a dict keeps it), of the tests selected to run
            _module(other): None for other in item.session.items if other.get_closest_marker("runs_for")
        }
        item.config.stash[LANES] = lanes_for(Path(os.environ[LAB_ENV]), list(long_modules))
    item.config.stash[LANES].enter(_module(item))
    yield


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    if LAB_ENV in os.environ:
        from tests.services import close_image_lab

        lab = Path(os.environ.pop(LAB_ENV))
        close_image_lab(lab)
        shutil.rmtree(lab, ignore_errors=True)
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])
    if any(runtime.iterdir()):  # a command ran and started the worker (a stop would start one)
        run_governance("worker", "stop")
    shutil.rmtree(runtime, ignore_errors=True)


def run_governance(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path = REPO, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """The `governance` command in a subprocess, run from the repository as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "governance", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
    )


def dagster_materialize(
    dagster_home: Path,
    selection: str,
    estate: Path | None = None,
    timeout_s: float = 600,
    run_config: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`dagster asset materialize` as an operator or a cron job runs it: each step in its own
    process (the multiprocess executor), on the persistent instance in `dagster_home`; `run_config`
    is the run's config as JSON."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    if DATABASE_URL_ENV in env:  # as scripts/dev.sh hands the shared database to Dagster
        env[DAGSTER_STORAGE_URL_ENV] = dagster_storage(env[DATABASE_URL_ENV])
    subprocess.run([str(REPO / "scripts" / "dagster-home.sh"), str(dagster_home)], check=True, env=env)
    if estate is not None:
        env["GOVERNANCE_ESTATE"] = str(estate)
    dagster = str(Path(sys.executable).parent / "dagster")
    config = ["--config-json", run_config] if run_config else []
    return subprocess.run(
        [dagster, "asset", "materialize", "-m", "pipelines.definitions", "-a", "defs",
         "--select", selection, *config],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )  # fmt: skip


def materialize_groups(estate: Estate, instance: Any, *groups: str, raise_on_error: bool = True) -> Any:
    """The estate's real definitions, materialized in process for the given asset groups."""
    import dagster as dg

    from pipelines.definitions import build_definitions

    defs = build_definitions(estate)
    return dg.materialize(
        defs.assets,
        instance=instance,
        resources=defs.resources,
        selection=dg.AssetSelection.groups(*groups),
        raise_on_error=raise_on_error,
    )


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("GOVERNANCE_HOME", str(root))
    return root


@pytest.fixture(scope="session")
def penguins_csv() -> Path:
    """The real raw source: the penguins.csv that the palmerpenguins package ships (344 rows)."""
    return Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv")))


def repository_estate_data(repository: Path = REPO) -> dict[str, Any]:
    """A checkout's `governance.yaml` (this one's by default), with its file references made
    absolute (an earlier version's has no `base_dir` to point them with)."""
    data: dict[str, Any] = yaml.safe_load((repository / "governance.yaml").read_text())
    for section in ("datasets", "models"):
        for entry in data.get(section, {}).values():
            for key in ("cleaner", "suite", "trainer"):
                if key in entry:
                    entry[key] = str(repository / entry[key])
    for app in data.get("images", {}).get("apps", {}).values():
        app["context"] = str(repository / app["context"])
    for release in data.get("releases", {}).values():
        if "kubernetes" in release:
            release["kubernetes"]["overlay"] = str(repository / release["kubernetes"]["overlay"])
    return data


def write_estate(data: dict[str, Any], directory: Path) -> Estate:
    """Write an estate file (keeping key order: column order matters) and load it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"governance-{len(list(directory.glob('governance-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_estate(path)


@pytest.fixture
def estate_with_source(tmp_path: Path) -> Iterator[Callable[[Path], Estate]]:
    """The repository's estate, with the penguins source pointed at another file and the releases
    on free loopback ports; whatever a release started is stopped afterwards."""
    made: list[Estate] = []

    def make(source: Path) -> Estate:
        from tests.services import free_port

        data = repository_estate_data()
        data["datasets"]["penguins"]["source"] = {"path": str(source)}
        for release in data.get("releases", {}).values():
            release["local"] = {
                name: free_port() for name in ("service_port", "blue_port", "green_port")
            }
        made.append(write_estate(data, tmp_path / "estate"))
        return made[-1]

    yield make
    for estate in made:
        if any(estate.release(name).target == "local" for name in estate.releases):
            run_governance("--estate", str(estate.path), "release", "down", "--all")


@pytest.fixture
def penguins_spec() -> DatasetSpec:
    return load_estate(ESTATE_FILE).dataset("penguins")


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[[Path, str], Path]:
    def make(source: Path, name: str) -> Path:
        target = tmp_path / name
        shutil.copyfile(source, target)
        return target

    return make


@pytest.fixture
def own_image_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A builder storage of the test's own, for a test that runs `gc`: it collects the storage
    the home points at, and the session's lab is every test's."""
    storage = tmp_path / "own-images"
    monkeypatch.setenv("GOVERNANCE_IMAGE_STORAGE", str(storage))
    return storage


@pytest.fixture(scope="session")
def image_lab() -> Iterator[tuple[str, Path]]:
    """(registry address, builder storage) shared by every image test of the run; every home
    points at them through the environment. A developer's warm lab, named by the same variables,
    is used as it is and left running."""
    from governance.images.registry import answering
    from tests.services import open_image_lab

    names = ("GOVERNANCE_IMAGE_REGISTRY", "GOVERNANCE_IMAGE_STORAGE")
    given = [os.environ.get(name) for name in names]
    if given[0] and given[1] and answering(given[0]):
        yield given[0], Path(given[1])
        return
    address, storage = open_image_lab(Path(os.environ[LAB_ENV]))
    os.environ.update(zip(names, (address, str(storage)), strict=True))
    try:
        yield address, storage
    finally:
        for name, value in zip(names, given, strict=True):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
