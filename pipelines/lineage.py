"""Wrap an asset or check body in an OpenLineage run: START, then COMPLETE or FAIL."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import dagster as dg

from governance.lineage.events import DatasetRef, JobRef, ParentRef, new_run_id, run_event
from governance.redaction import redact
from pipelines.resources import LineageResource

# How long a step gives its last delivery round before it returns: bounded, and the outbox sensor
# delivers whatever is still pending.
DRAIN_S = 2.0


@dataclass
class LineageRun:
    run_id: str
    inputs: list[DatasetRef]
    outputs: list[DatasetRef] = field(default_factory=list)


@contextmanager
def lineage_run(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    lineage: LineageResource,
    job: JobRef,
    inputs: Sequence[DatasetRef] = (),
) -> Iterator[LineageRun]:
    """The body fills in `outputs` (and may refine `inputs`) once it knows the exact versions."""
    emitter = lineage.emitter()
    run = LineageRun(new_run_id(), list(inputs))
    parent = ParentRef(context.run.job_name, context.run.run_id)
    emitter.emit(run_event("START", job, run.run_id, parent=parent, inputs=run.inputs))
    try:
        yield run
    except BaseException as exc:
        error = redact(str(exc) or type(exc).__name__)
        emitter.emit(run_event("FAIL", job, run.run_id, parent=parent, inputs=run.inputs, error=error))
        emitter.drain(DRAIN_S)
        raise
    emitter.emit(
        run_event("COMPLETE", job, run.run_id, parent=parent, inputs=run.inputs, outputs=run.outputs)
    )
    emitter.drain(DRAIN_S)
