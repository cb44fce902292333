"""Train + track + register + gate on this machine, against training alone (a report, not a test).

Run: uv run python -m tests.bench.bench_models [repeats]
Uses a temporary GOVERNANCE_HOME with the embedded sqlite MLflow store.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ESTATE_FILE


def timed(action: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory(prefix="bench-models-") as home:
        os.environ["GOVERNANCE_HOME"] = home
        measure(repeats)


def measure(repeats: int) -> None:
    from importlib import resources

    from governance.audit.store import AuditTrail, open_audit_log
    from governance.config import load_estate
    from governance.datasets.lifecycle import publish, read_version
    from governance.datasets.versioning import DatasetStore
    from governance.home import GovernanceHome
    from governance.models.gate import gate_version
    from governance.models.registry import ModelRegistry
    from governance.models.settings import mlflow_settings
    from governance.models.training import code_version, split, train_and_register
    from governance.plugins import load_callable

    estate = load_estate(ESTATE_FILE)
    dataset, spec = estate.dataset("penguins"), estate.model("penguin_classifier")
    home = GovernanceHome.resolve()
    store = DatasetStore(home.datasets_repo, str(home.dvc_remote))
    raw = Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv")))
    trail = AuditTrail(open_audit_log(home.audit_db), "bench")
    md5 = publish(dataset, raw, store, home.gx, trail).version.md5
    frame = read_version(dataset, store, md5)
    registry = ModelRegistry(mlflow_settings(home))
    registry.experiment_id()  # store creation is a one-off, not per model version

    trainer = load_callable(spec.trainer)

    def train_only() -> object:
        train, _ = split(frame, spec)
        return trainer(
            train.drop(columns=[spec.target]), train[spec.target], params=spec.params, seed=spec.seed
        )

    def governed() -> object:
        trained = train_and_register(
            spec,
            frame,
            dataset_md5=md5,
            dataset_source="bench",
            code_version=code_version(spec),
            registry=registry,
            tags={},
        )
        return gate_version(spec, registry, trained.version, frame)

    train_only()  # warm imports
    alone = timed(train_only, repeats)
    full = timed(governed, repeats)
    registry.set_alias(spec.registered_name, "champion", "1")
    with_champion = timed(governed, repeats)  # the gate now also scores the champion
    overhead = full - alone
    print(f"training alone (split + fit):             {alone * 1000:8.1f} ms (median of {repeats})")
    print(f"train + log + register + gate:            {full * 1000:8.1f} ms")
    print(f"  ... gate also scoring a champion:       {with_champion * 1000:8.1f} ms")
    ratio = full / alone
    print(f"tracking + registration + gate overhead:  {overhead * 1000:8.1f} ms ({ratio:.1f}x training)")


if __name__ == "__main__":
    main()
