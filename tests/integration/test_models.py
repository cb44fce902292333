"""Model versions with a real MLflow store (sqlite under the home) and a real `mlflow server`."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from governance.config import Estate
from governance.errors import TransientError
from governance.home import GovernanceHome
from governance.models.registry import ModelRegistry
from governance.models.settings import mlflow_settings
from pipelines.definitions import build_definitions
from pipelines.resources import MlflowResource
from tests.conftest import REPO, repository_estate_data, run_governance, write_estate

pytestmark = pytest.mark.runs_for(85)

MODEL = dg.AssetKey("penguin_classifier")
GATE = dg.AssetCheckKey(MODEL, "meets_promotion_policy")
NAME = "penguin-classifier"

CORRUPTED_LABELS_TRAINER = '''
import importlib.util, pathlib
spec = importlib.util.spec_from_file_location("real_train", "{real}")
real = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real)

def train(features, labels, *, params, seed):
    """The real trainer, fed labels shuffled out of step with their rows."""
    shuffled = labels.sample(frac=1.0, random_state=seed).set_axis(labels.index)
    return real.train(features, shuffled, params=params, seed=seed)
'''


@pytest.fixture
def estate(tmp_path: Path) -> Callable[..., Estate]:
    """The repository's estate (absolute paths), optionally with a corrupted trainer or other gates."""

    def make(*, corrupted: bool = False, **model_overrides: object) -> Estate:
        data = repository_estate_data()
        model = data["models"]["penguin_classifier"]
        if corrupted:
            trainer = tmp_path / "corrupted_train.py"
            trainer.write_text(CORRUPTED_LABELS_TRAINER.format(real=REPO / "examples/penguins/train.py"))
            model["trainer"] = f"{trainer}:train"
        model.update(model_overrides)
        return write_estate(data, tmp_path / "estate")

    return make


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def materialize(
    estate: Estate,
    instance: dg.DagsterInstance,
    selection: str | None = None,
    mlflow: MlflowResource | None = None,
) -> dg.ExecuteInProcessResult:
    defs = build_definitions(estate)
    resources = {**defs.resources, **({"mlflow": mlflow} if mlflow else {})}
    return dg.materialize(
        defs.assets,
        instance=instance,
        resources=resources,
        selection=selection or dg.AssetSelection.groups("datasets", "models"),
        raise_on_error=False,
    )


def local_registry() -> ModelRegistry:
    return ModelRegistry(mlflow_settings(GovernanceHome.resolve()))


def gate_evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.asset_check_key == GATE)


def test_estate_trains_registers_and_grants_challenger(
    estate: Callable[..., Estate], instance: dg.DagsterInstance
) -> None:
    result = materialize(estate(), instance)
    assert result.success
    dataset_md5 = instance.get_latest_materialization_event(
        dg.AssetKey("penguins")
    ).asset_materialization.tags["dagster/data_version"]  # type: ignore[union-attr]
    model_event = instance.get_latest_materialization_event(MODEL).asset_materialization  # type: ignore[union-attr]
    assert model_event.tags["dagster/data_version"] == f"{NAME}/1"  # type: ignore[index]
    metadata = model_event.metadata
    assert metadata["dataset_md5"].value == dataset_md5
    assert metadata["accuracy"].value >= 0.95 and isinstance(metadata["f1_macro"].value, float)
    assert dataset_md5 in metadata["model_card"].value
    assert metadata["mlflow_run"].value.endswith(f"/runs/{metadata['mlflow_run_id'].value}")

    registry = local_registry()
    version = registry.version(NAME, "1")
    assert version.tags["governance.dataset_md5"] == dataset_md5
    assert version.tags["dagster.run_id"] == result.run_id
    assert version.tags["git.commit"] != "" and version.tags["governance.gate.status"] == "passed"
    assert registry.aliases(NAME) == {"challenger": "1"}

    run = registry.client.get_run(str(version.run_id))
    assert run.data.params["seed"] == "42" and run.data.params["C"] == "1.0"
    assert run.data.metrics["accuracy"] == metadata["accuracy"].value
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == dataset_md5 and dataset_input.dataset.name == "penguins"
    import mlflow.models

    local = registry.download(NAME, "1", GovernanceHome.resolve().root / "downloaded")
    signature = mlflow.models.Model.load(str(local)).signature
    assert signature is not None and "bill_length_mm" in str(signature.inputs)

    gate = gate_evaluation(result)
    assert gate.passed and gate.metadata["decision"].value == "passed"
    assert gate.metadata["model_version"].value == "1"
    assert len(gate.metadata["criteria"].value.records) == 2


def test_rerun_is_up_to_date_and_reproducible(
    estate: Callable[..., Estate], instance: dg.DagsterInstance
) -> None:
    est = estate()
    assert materialize(est, instance).success
    defs = build_definitions(est)
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    # What the UI shows as "up to date": same code version, same upstream data versions.
    resolver = CachingStaleStatusResolver(
        instance, defs.resolve_asset_graph(), LoadingContextForTest(instance)
    )
    assert resolver.get_status(MODEL) == StaleStatus.FRESH

    assert materialize(est, instance, selection="penguin_classifier").success
    registry = local_registry()
    first, second = (registry.run_metrics(str(registry.version(NAME, v).run_id)) for v in ("1", "2"))
    assert first == second


def test_corrupted_labels_are_blocked_and_tagged_with_reasons(
    estate: Callable[..., Estate], instance: dg.DagsterInstance
) -> None:
    result = materialize(estate(corrupted=True), instance)
    assert not result.success
    gate = gate_evaluation(result)
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    assert (
        "accuracy" in gate.metadata["reasons"].value
        and "< minimum 0.9500" in gate.metadata["reasons"].value
    )
    registry = local_registry()
    version = registry.version(NAME, "1")  # registered all the same, for the record
    assert version.tags["governance.gate.status"] == "failed"
    assert "accuracy" in version.tags["governance.gate.reasons"]
    assert registry.aliases(NAME) == {}


def test_regression_against_the_champion_is_blocked(
    estate: Callable[..., Estate], instance: dg.DagsterInstance
) -> None:
    assert materialize(estate(), instance).success
    registry = local_registry()
    registry.set_alias(NAME, "champion", "1")
    # Thresholds a corrupted model still meets: only the comparison with the champion can stop it.
    loose = {"accuracy": 0.05, "f1_macro": 0.05}
    result = materialize(
        estate(corrupted=True, thresholds=loose), instance, selection="penguin_classifier"
    )
    gate = gate_evaluation(result)
    assert not gate.passed
    assert gate.metadata["champion_version"].value == "1"
    assert gate.metadata["champion_accuracy"].value > gate.metadata["candidate_accuracy"].value + 0.02
    assert "champion minus allowed regression" in gate.metadata["reasons"].value
    assert registry.aliases(NAME) == {"challenger": "1", "champion": "1"}


def test_a_new_dataset_version_retrains_the_model_and_never_deploys(
    estate: Callable[..., Estate], instance: dg.DagsterInstance
) -> None:
    """The dataset -> model chain is kept current by automation conditions (evaluated here as the
    daemon's sensor does); the releases downstream wait for a person."""
    made = estate()
    defs = build_definitions(made)
    assert materialize(made, instance).success
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert quiet.total_requested == 0  # everything is current
    assert materialize(made, instance, selection="key:penguins_raw or key:penguins").success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=quiet.cursor)
    everything = defs.resolve_asset_graph().get_all_asset_keys()
    requested = {key.to_user_string() for key in everything if tick.get_num_requested(key)}
    assert requested == {"penguin_classifier"}


def test_a_gate_that_cannot_decide_says_so_on_the_version(
    estate: Callable[..., Estate], instance: dg.DagsterInstance
) -> None:
    """The champion's model files are gone, so the gate cannot score it: the new version says
    `error` and why, instead of looking as if it had never been gated."""
    assert materialize(estate(), instance).success
    registry = local_registry()
    registry.set_alias(NAME, "champion", "1")
    shutil.rmtree(GovernanceHome.resolve().root / "mlflow" / "artifacts")
    result = materialize(estate(), instance, selection="penguin_classifier")
    assert not result.success
    version = registry.version(NAME, "2")
    assert version.tags["governance.gate.status"] == "error"
    assert version.tags["governance.gate.reasons"]
    listed = run_governance("models", "list")
    assert "not gated" not in listed.stdout and "error" in listed.stdout, listed.stdout


def test_against_a_real_mlflow_server(
    estate: Callable[..., Estate], instance: dg.DagsterInstance, mlflow_server_url: str
) -> None:
    server = MlflowResource(tracking_uri=mlflow_server_url, ui_url=mlflow_server_url)
    result = materialize(estate(), instance, mlflow=server)
    assert result.success
    registry = ModelRegistry(mlflow_settings(GovernanceHome.resolve(), mlflow_server_url))
    version = registry.version_for_alias(NAME, "challenger")
    assert version is not None and version.tags["dagster.run_id"] == result.run_id
    # Nothing went to the embedded store.
    assert not (GovernanceHome.resolve().root / "mlflow" / "mlflow.db").exists()


CONCURRENT_REGISTRATION = """
import json, sys, time
from pathlib import Path
from governance.config import load_estate
from governance.datasets.lifecycle import read_version
from governance.datasets.versioning import DatasetStore
from governance.home import GovernanceHome
from governance.models.registry import ModelRegistry
from governance.models.settings import mlflow_settings
from governance.models.training import train_and_register

estate = load_estate(sys.argv[1])
home = GovernanceHome.resolve()
store = DatasetStore(home.datasets_repo, str(home.dvc_remote))
md5 = store.current("penguins").md5
frame = read_version(estate.dataset("penguins"), store, md5)
registry = ModelRegistry(mlflow_settings(home, sys.argv[2] or None))
registry.experiment_id()
while time.time() < float(sys.argv[3]):  # start registering at the same moment
    time.sleep(0.005)
spec = estate.model("penguin_classifier")
trained = train_and_register(
    spec, frame, dataset_md5=md5, dataset_source="x", code_version="c", registry=registry, tags={}
)
print(json.dumps({"version": trained.version}))
"""


@pytest.mark.parametrize("backend", ["sqlite", "server"])
def test_concurrent_registrations_get_distinct_complete_versions(
    backend: str,
    estate: Callable[..., Estate],
    instance: dg.DagsterInstance,
    request: pytest.FixtureRequest,
) -> None:
    est = estate()
    assert materialize(est, instance, selection="key:penguins_raw or key:penguins").success
    uri = request.getfixturevalue("mlflow_server_url") if backend == "server" else ""
    registry = ModelRegistry(mlflow_settings(GovernanceHome.resolve(), uri or None))
    before = {str(v.version) for v in registry.versions(NAME)} if backend == "server" else set()
    start_at = str(time.time() + 10)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_REGISTRATION, str(est.path), uri, start_at],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    versions = [json.loads(out.strip().splitlines()[-1])["version"] for out, _ in outputs]
    assert len(set(versions)) == 2
    registered = {str(v.version): v for v in registry.versions(NAME)}
    assert set(registered) - before == set(versions)
    assert all(registered[v].status == "READY" for v in versions)


def test_unreachable_server_is_a_quick_clear_transient_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        registry = ModelRegistry(
            mlflow_settings(GovernanceHome.resolve(), f"http://127.0.0.1:{port}", attempts=2)
        )
        with pytest.raises(
            TransientError,
            match=rf"MLflow experiment lookup at http://127.0.0.1:{port} failed after 2 attempts",
        ):
            registry.experiment_id()


def test_black_holed_server_times_out_as_transient() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # accepts, never answers
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        settings = mlflow_settings(
            GovernanceHome.resolve(), f"http://127.0.0.1:{port}", request_timeout_s=1, attempts=2
        )
        # Bounded by the request timeout (pytest-timeout would end a client that waits forever).
        with pytest.raises(TransientError, match="failed after 2 attempts"):
            ModelRegistry(settings).experiment_id()
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_cli_lists_promotes_and_demotes_with_who_and_why(
    estate: Callable[..., Estate], instance: dg.DagsterInstance
) -> None:
    est = estate()
    assert materialize(est, instance).success

    def governance(*args: str) -> subprocess.CompletedProcess[str]:
        return run_governance("--estate", str(est.path), "models", *args)

    promoted = governance(
        "promote",
        "penguin_classifier",
        "1",
        "--alias",
        "champion",
        "--by",
        "alice",
        "--reason",
        "beats baseline",
    )
    assert promoted.returncode == 0, promoted.stderr
    (entry,) = json.loads(governance("list", "--json").stdout)
    (version,) = entry["versions"]
    assert version["aliases"] == ["challenger", "champion"]
    assert version["tags"]["governance.champion.promoted_by"] == "alice"
    assert version["tags"]["governance.champion.promoted_reason"] == "beats baseline"
    assert version["metrics"]["accuracy"] >= 0.95

    demoted = governance(
        "demote", "penguin_classifier", "--alias", "champion", "--by", "bob", "--reason", "incident 42"
    )
    assert demoted.returncode == 0 and "removed from version 1" in demoted.stdout
    (entry,) = json.loads(governance("list", "--json").stdout)
    assert entry["versions"][0]["aliases"] == ["challenger"]
    assert entry["versions"][0]["tags"]["governance.champion.demoted_by"] == "bob"

    missing = governance("promote", "penguin_classifier", "9", "--by", "alice", "--reason", "x")
    assert missing.returncode == 2 and "no model version penguin-classifier/9" in missing.stderr
    assert "Traceback" not in missing.stderr
