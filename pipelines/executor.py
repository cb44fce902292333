"""The code location's executor: Dagster's multiprocess executor, each step in its own process as in
the UI, forked from a server that imported once per run what the run's steps use. A step's resources
say what that is, so a run of the whole estate imports GX, MLflow and DVC once instead of in every
step, and a heal run or an image build imports none of them in advance (they cost seconds each)."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import dagster as dg

from governance.warm import HEAVY_MODULES

# The libraries behind each resource that needs heavy ones (pipelines/resources.py).
RESOURCE_MODULES = {
    "datasets": HEAVY_MODULES["datasets"],
    "expectations": HEAVY_MODULES["expectations"],
    "mlflow": HEAVY_MODULES["models"],
}


def preload_modules(job: dg.JobDefinition) -> list[str]:
    """pipelines.preload (telemetry off, the definitions), then each heavy library that two or more
    of the job's steps use. A library only one step uses is left to that step: it imports it at the
    same cost, and only if it does (a one-step heal or approval run preloads nothing heavy)."""
    users: Counter[str] = Counter()
    for op in job.graph.iterate_op_defs():
        users.update({m for key in op.required_resource_keys for m in RESOURCE_MODULES.get(key, ())})
    return ["pipelines.preload", *sorted(module for module, steps in users.items() if steps > 1)]


@dg.executor(
    name="multiprocess",
    config_schema=dg.multiprocess_executor.config_schema.as_field(),
    requirements=dg.multiple_process_executor_requirements(),
)
def governed_multiprocess_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Dagster's multiprocess executor with the same configuration. Unless a run's config names a
    start method (`execution: {config: {start_method: {spawn: {}}}}` starts each step afresh), it is
    the forkserver, preloading what `preload_modules` finds in the run's (possibly subset) job."""
    config = dict(init_context.executor_config)
    start = cast(dict[str, dict[str, Any]], config.get("start_method") or {"forkserver": {}})
    if "forkserver" in start and not start["forkserver"].get("preload_modules"):
        job = init_context.job.get_definition()
        start = {"forkserver": {"preload_modules": preload_modules(job)}}
    creation = dg.multiprocess_executor.executor_creation_fn
    assert creation is not None
    return creation(init_context._replace(executor_config={**config, "start_method": start}))
