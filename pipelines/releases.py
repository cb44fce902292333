"""Release assets: a candidate of exact versions, and the blue/green deploy gated on the Dagster
instance's own record of every blocking check on those versions; rollback, approve, reject and heal
jobs, and the heal sensor that probes and asks for a heal run (the tick never acts itself)."""

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import dagster as dg
from dagster import AssetExecutionContext
from pydantic import Field

from governance.actors import dagster_run, ui_user
from governance.config import Estate, ReleaseSpec
from governance.errors import PermanentError, TransientError
from governance.explain import explain_release, provenance_page
from governance.lineage import refs
from governance.lineage.events import DatasetRef
from governance.machine import MachineShortfall
from governance.releases.approvals import LAUNCHED_BY_TAG, approval, decide, record_candidate
from governance.releases.candidate import Candidate
from governance.releases.controller import NEEDS_ACTION, Controller, Outcome
from governance.releases.gates import (
    CheckEvidence,
    Evidence,
    RequiredCheck,
    gating_checks,
    required_checks,
)
from governance.releases.lifecycle import make_candidate, release_dir, serving
from governance.releases.state import release_state
from governance.releases.target import Target
from pipelines.failures import permanent_failures
from pipelines.lineage import lineage_run
from pipelines.metadata import (
    DATASET_VERSION,
    IMAGE_VERSION,
    MODEL_VERSION,
    Materialized,
    gates_table,
    latest_entry,
    page_link,
    provenance_markdown,
)
from pipelines.resources import (
    AuditResource,
    DatasetStoreResource,
    ImagesResource,
    LineageResource,
    MlflowResource,
    compose,
)

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

GROUP = "releases"
# On a heal run: what the sensor's tick observed that asked for it.
OBSERVED_TAG = "governance/observed"
_TAG_LIMIT = 255


class ReleaseDefinitions(NamedTuple):
    assets: list[dg.AssetsDefinition]
    jobs: list["dg.JobDefinition | UnresolvedAssetJobDefinition"]
    sensor: dg.SensorDefinition


def release_definitions(
    spec: ReleaseSpec, estate: Estate, blocking: Mapping[str, list[str]], retry: dg.RetryPolicy
) -> ReleaseDefinitions:
    """`blocking`: every blocking check of the code location, by asset (see `blocking_checks`);
    `retry`: the heal run's policy for transient failures."""
    decisions = [_decision_job(spec, approve) for approve in (True, False)]
    heal = _heal_job(spec, estate, retry)
    assets = [_candidate_asset(spec, estate), _deploy_asset(spec, estate, blocking)]
    release = dg.define_asset_job(
        f"release_{spec.name}",
        selection=dg.AssetSelection.assets(*assets),
        description=f"Pin {spec.name}'s candidate and release it blue/green, as one run.",
        tags=run_tags(spec),
    )
    return ReleaseDefinitions(
        assets,
        [release, _rollback_job(spec, estate), heal, *(decisions if spec.requires_approval else [])],
        _heal_sensor(spec, estate, heal),
    )


def run_tags(spec: ReleaseSpec) -> dict[str, Any]:
    """Tags of the runs that act on a release's target. On Kubernetes, K8sRunLauncher starts such a
    run's pod as the deployer ServiceAccount (`dagster-k8s/config`); every other run keeps the
    launcher's own account, which has no rights on the release."""
    if spec.kubernetes is None or spec.target != "kubernetes":
        return {}
    account = {"service_account_name": spec.kubernetes.service_account}
    return {"dagster-k8s/config": {"pod_spec_config": account}}


def _target(
    spec: ReleaseSpec, estate: Estate, images_: ImagesResource, mlflow: MlflowResource
) -> Target:
    return compose(images_, mlflow).release_target(spec, estate)


def _controller(
    spec: ReleaseSpec,
    estate: Estate,
    images_: ImagesResource,
    mlflow: MlflowResource,
    audit: AuditResource,
    actor: str,
) -> Controller:
    return compose(images_, mlflow, audit).release_controller(spec, estate, actor)


def _latest(instance: dg.DagsterInstance, asset: str, key: str) -> str:
    value = latest_entry(instance, asset, key)
    if value is None:
        raise PermanentError(f"{asset} has not been materialized yet: materialize it before the release")
    return str(value)


def _candidate_asset(spec: ReleaseSpec, estate: Estate) -> dg.AssetsDefinition:
    served = estate.served_model(spec)
    model = served[0] if served else None
    what = "image digest, model version, dataset md5" if model else "image digest"

    @dg.asset(
        name=f"{spec.name}_candidate",
        deps=[model.dataset, model.name, spec.image] if model else [spec.image],
        group_name=GROUP,
        owners=[spec.owner],
        kinds={"podman" if spec.target == "local" else "kubernetes"},
        description=f"The exact versions release {spec.name} would serve: {what} and the rendered "
        "manifests.",
    )
    def candidate(
        context: AssetExecutionContext,
        images: ImagesResource,
        mlflow: MlflowResource,
        audit: AuditResource,
        lineage: LineageResource,
    ) -> Materialized:
        instance = context.instance
        with (
            lineage_run(context, lineage, refs.release_job(spec, "candidate")) as run,
            permanent_failures(),
        ):
            made = make_candidate(
                spec,
                estate,
                _target(spec, estate, images, mlflow),
                image=_latest(instance, spec.image, "reference"),
                image_digest=_latest(instance, spec.image, IMAGE_VERSION),
                model_version=_latest(instance, model.name, MODEL_VERSION) if model else None,
                # the version the model was trained on, not whatever the dataset is now
                dataset_md5=_latest(instance, model.name, DATASET_VERSION) if model else None,
            )
            run.inputs = _inputs(estate, made, mlflow)
            run.outputs = [refs.release(spec, made.version)]
            launcher = context.run.tags.get(LAUNCHED_BY_TAG)
            record_candidate(audit.trail(context.run.run_id), spec, made, launcher)
        release_state(images.services().home, spec.name).save_candidate(made)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(made.version),
            metadata={
                **made.to_dict(),
                "candidate": dg.MetadataValue.json(made.to_dict()),
                "lineage_run_id": run.run_id,
            },
        )

    return candidate


def _inputs(estate: Estate, candidate: Candidate, mlflow: MlflowResource) -> list[DatasetRef]:
    image = refs.image(
        estate.image(candidate.image_asset), candidate.image.split("/", 1)[0], candidate.image_digest
    )
    if candidate.model is None:
        return [image]
    served = candidate.model
    tracking_uri = mlflow.registry().settings.tracking_uri
    return [
        refs.governed_dataset(estate.dataset(served.dataset), served.dataset_md5),
        refs.model_version(estate.model(served.asset), tracking_uri, served.version),
        image,
    ]


def blocking_checks(definitions: Iterable[dg.AssetsDefinition]) -> dict[str, list[str]]:
    """Every blocking check among `definitions`, by asset. A release is gated on all of them for its
    inputs, so a blocking check added to a dataset, model or image gates its releases too."""
    checks: dict[str, list[str]] = {}
    for definition in definitions:
        for check in definition.check_specs:
            if check.blocking:
                checks.setdefault(check.asset_key.to_user_string(), []).append(check.name)
    return checks


def _inputs_of(spec: ReleaseSpec, estate: Estate) -> dict[str, str]:
    """The release's input assets -> the metadata entry in which their checks name the version
    they evaluated."""
    served = estate.served_model(spec)
    inputs = {spec.image: IMAGE_VERSION}
    if served:
        inputs |= {served[1].name: DATASET_VERSION, served[0].name: MODEL_VERSION}
    return inputs


def _check_evidence(
    instance: dg.DagsterInstance,
    required: list[RequiredCheck],
    version_keys: Mapping[str, str],
) -> list[CheckEvidence]:
    found = []
    for r in required:
        key = dg.AssetCheckKey(dg.AssetKey(r.asset), r.check)
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=200):
            event = record.event
            evaluation = (
                event.dagster_event.event_specific_data if event and event.dagster_event else None
            )
            if not isinstance(evaluation, dg.AssetCheckEvaluation):
                continue
            entry = evaluation.metadata.get(version_keys[r.asset])
            if entry is not None and event is not None:
                version = str(entry.value)
                found.append(
                    CheckEvidence(
                        r.asset, r.check, version, evaluation.passed, event.timestamp, record.run_id
                    )
                )
    return found


def _deploy_asset(
    spec: ReleaseSpec, estate: Estate, blocking: Mapping[str, list[str]]
) -> dg.AssetsDefinition:
    version_keys = _inputs_of(spec, estate)
    gating = gating_checks(spec.name, version_keys, blocking)
    gated_on = ", ".join(f"{asset}.{check}" for asset, names in gating.items() for check in names)

    @dg.asset(
        name=spec.name,
        # the releases it calls serve before its smoke test asks them through it
        deps=[f"{spec.name}_candidate", *spec.upstreams.values()],
        group_name=GROUP,
        owners=[spec.owner],
        kinds={"nginx" if spec.target == "local" else "kubernetes"},
        pool=f"release_{spec.name}",  # one promotion per release at a time (plus the target's lock)
        description=f"{spec.description} Deploys the candidate to the idle color, gates it, switches "
        f"the service and verifies. Gated on these blocking checks of its exact versions: {gated_on}.",
    )
    def release(
        context: AssetExecutionContext,
        images: ImagesResource,
        mlflow: MlflowResource,
        audit: AuditResource,
        datasets: DatasetStoreResource,
        lineage: LineageResource,
    ) -> Materialized:
        pinned = latest_entry(context.instance, f"{spec.name}_candidate", "candidate")
        if pinned is None:
            raise dg.Failure(f"{spec.name}_candidate has not been materialized", allow_retries=False)
        candidate = Candidate.from_dict(dict(pinned))
        controller = _controller(spec, estate, images, mlflow, audit, dagster_run(context.run.run_id))
        registry = mlflow.registry()
        required = required_checks(candidate, gating)

        def gather(c: Candidate) -> Evidence:
            aliases = (
                [a for a, v in registry.aliases(c.model.name).items() if v == c.model.version]
                if c.model
                else []
            )
            return Evidence(
                _check_evidence(context.instance, required, version_keys),
                aliases,
                smoke_ok=None,
                approval=approval(audit.log(), spec, c) if spec.requires_approval else None,
            )

        job = refs.release_job(spec, "")
        with lineage_run(context, lineage, job, [refs.release(spec, candidate.version)]) as run:
            with permanent_failures():
                outcome = controller.promote(candidate, required, gather)
            metadata = {**_outcome_metadata(outcome, controller), "lineage_run_id": run.run_id}
            run.inputs = [refs.release(spec, candidate.version, outcome.gates)]
            if not outcome.promoted:
                raise dg.Failure(
                    f"release {spec.name} {outcome.decision.action}: "
                    + "; ".join(outcome.decision.reasons),
                    metadata=metadata,
                    allow_retries=False,
                )
            run.outputs = [refs.release(spec, candidate.version)]
        links = explain_release(
            spec,
            serving(spec, audit.services().home, controller.target),
            estate.served_model(spec),
            registry,
            datasets.store(),
            audit.log().records(),
            lineage.outbox().events(),
        )
        metadata["provenance"] = dg.MetadataValue.md(provenance_markdown(links))
        page = release_dir(audit.services().home, spec.name) / "provenance.html"
        page.write_text(provenance_page(f"Provenance of release {spec.name}", links))
        metadata["provenance_page"] = page_link(audit.site(), page)
        return dg.MaterializeResult(data_version=dg.DataVersion(candidate.version), metadata=metadata)

    return release


def _outcome_metadata(outcome: Outcome, controller: Controller) -> dict[str, Any]:
    decision = outcome.decision
    return {
        "decision": decision.action,
        "release_version": decision.candidate,
        "active_color": decision.active_color or "(none)",
        "service_url": dg.MetadataValue.url(controller.target.service_url),
        "reasons": "; ".join(decision.reasons),
        **({"gates": gates_table(outcome.gates)} if outcome.gates else {}),
        **{name: round(seconds, 3) for name, seconds in outcome.timings.items()},
    }


def _rollback_job(spec: ReleaseSpec, estate: Estate) -> dg.JobDefinition:
    return _controller_job(
        spec,
        estate,
        "rollback",
        op_description="Switch the service back to the previous color.",
        description=f"Roll release {spec.name} back to its previous color.",
        act=lambda controller, run_id: controller.rollback(f"requested in Dagster run {run_id}"),
        done=lambda action: action == "rolled back",
    )


def _heal_job(spec: ReleaseSpec, estate: Estate, retry: dg.RetryPolicy) -> dg.JobDefinition:
    return _controller_job(
        spec,
        estate,
        "heal",
        op_description="Scale down the previous color once due; restart the serving color once "
        f"it failed {spec.heal.failures_before_action} probes in a row, or roll back.",
        description=f"Self-heal release {spec.name}: what its heal sensor requests once a probe "
        "count is reached or a color is due to scale down; safe to launch by hand (it probes first).",
        act=lambda controller, _: controller.tend(),
        done=lambda action: action != "failed",
        retry=retry,
    )


def _controller_job(
    spec: ReleaseSpec,
    estate: Estate,
    verb: str,
    *,
    op_description: str,
    description: str,
    act: Callable[[Controller, str], Outcome],
    done: Callable[[str], bool],
    retry: dg.RetryPolicy | None = None,
) -> dg.JobDefinition:
    """A job of one op that acts on the release's target through its controller: audited as its
    run, one at a time per release (the release's pool), on the release's run account."""

    @dg.op(
        name=f"{verb}_{spec.name}_op",
        description=op_description,
        pool=f"release_{spec.name}",
        retry_policy=retry,
    )
    def acts(
        context: dg.OpExecutionContext,
        images: ImagesResource,
        mlflow: MlflowResource,
        audit: AuditResource,
    ) -> None:
        run_id = context.run.run_id
        controller = _controller(spec, estate, images, mlflow, audit, dagster_run(run_id))
        with permanent_failures():
            outcome = act(controller, run_id)
        summary = f"{outcome.decision.action}: {'; '.join(outcome.decision.reasons)}"
        context.log.info(summary)
        if not done(outcome.decision.action):
            raise dg.Failure(f"{verb} of {spec.name}: {summary}", allow_retries=False)

    @dg.job(name=f"{verb}_{spec.name}", description=description, tags=run_tags(spec))
    def job() -> None:
        acts()

    return job


class DecisionConfig(dg.Config):
    by: str = Field(description="Who decides: one of the release's approvers (governance.yaml).")
    reason: str = Field(description="Why, for the audit log (and, on a rejection, the gate).")


def _decision_job(spec: ReleaseSpec, approve: bool) -> dg.JobDefinition:
    verb = "approve" if approve else "reject"

    @dg.op(
        name=f"{verb}_{spec.name}_op",
        description=f"{verb.capitalize()} the current candidate of {spec.name} (its exact versions).",
    )
    def decision(context: dg.OpExecutionContext, config: DecisionConfig, audit: AuditResource) -> None:
        with permanent_failures():
            version = decide(spec, audit.log(), ui_user(config.by), approve, config.reason)
        context.log.info(f"{spec.name} {version}: {verb}d by {config.by.strip()}")

    @dg.job(
        name=f"{verb}_{spec.name}",
        description=f"{verb.capitalize()} release {spec.name}'s candidate: who and why go in the "
        "run config; refused unless they are one of its approvers and did not launch it.",
    )
    def decision_job() -> None:
        decision()

    return decision_job


# A heal run already asked for and not finished: the next tick waits for it instead of asking again.
_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# A tick does not wait behind a promotion or a heal run holding the release: it looks again next tick.
_TICK_LOCK_WAIT_S = 2.0


def _heal_sensor(spec: ReleaseSpec, estate: Estate, job: dg.JobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"heal_{spec.name}",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Probe the serving color of {spec.name}; after "
        f"{spec.heal.failures_before_action} consecutive failures (or once the previous color is due "
        f"to scale down) request a run of {job.name}, which acts. The tick itself only probes.",
    )
    def heal(
        context: dg.SensorEvaluationContext,
        images: ImagesResource,
        mlflow: MlflowResource,
        audit: AuditResource,
    ) -> dg.RunRequest | dg.SkipReason:
        unfinished = context.instance.get_run_ids(
            dg.RunsFilter(job_name=job.name, statuses=_UNFINISHED), limit=1
        )
        if unfinished:
            return dg.SkipReason(f"waiting for heal run {unfinished[0]}")
        try:
            controller = _controller(spec, estate, images, mlflow, audit, f"sensor:heal_{spec.name}")
            outcome = controller.observe(lock_timeout_s=_TICK_LOCK_WAIT_S)
        except (TransientError, MachineShortfall) as unable:
            return dg.SkipReason(f"not probed: {unable}")
        summary = f"{outcome.decision.action}: {'; '.join(outcome.decision.reasons)}"
        context.log.info(summary)
        if outcome.decision.action != NEEDS_ACTION:
            return dg.SkipReason(summary)
        return dg.RunRequest(tags={OBSERVED_TAG: summary[:_TAG_LIMIT]})

    return heal
