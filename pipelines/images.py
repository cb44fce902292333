"""Image assets: preflight, build with the layer cache, push by digest; and the blocking checks
(policy, smoke test, size budget) of exactly the digest that was built."""

from collections.abc import Callable
from typing import Any

import dagster as dg
from dagster import AssetCheckExecutionContext, AssetExecutionContext

from governance.config import AlertsSection, AppImageSpec, ImagesSection
from governance.images.lifecycle import (
    BuildRecords,
    ImageBuild,
    build_image,
    code_version,
    policy_findings,
)
from governance.lineage import refs
from governance.lineage.events import Assertion
from pipelines.failures import permanent_failures
from pipelines.lineage import lineage_run
from pipelines.metadata import (
    IMAGE_VERSION,
    Materialized,
    code_references,
    findings_table,
    image_metadata,
    latest_entry,
)
from pipelines.resources import AlertsResource, AuditResource, ImagesResource, LineageResource

GROUP = "images"
POLICY_CHECK = "passes_dockerfile_policy"
SMOKE_CHECK = "answers_health_check"
SIZE_CHECK = "within_size_budget"
CheckBody = Callable[[AppImageSpec, ImageBuild, ImagesResource, ImagesSection], dg.AssetCheckResult]


class ImageBuildConfig(dg.Config):
    no_cache: bool = False  # rebuild every step, as after a suspected cache poisoning


def image_definitions(
    spec: AppImageSpec, section: ImagesSection, alerts_section: AlertsSection, retry: dg.RetryPolicy
) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    return [
        _image_asset(spec, section, alerts_section, retry),
        _check(
            spec,
            section,
            POLICY_CHECK,
            "The Dockerfile policy passes for the bases it was built on.",
            _policy,
        ),
        _check(
            spec,
            section,
            SMOKE_CHECK,
            f"The image answers 200 on {spec.health_path} within 30 s.",
            _smoke,
        ),
        _check(spec, section, SIZE_CHECK, f"The image is at most {spec.size_budget_mb:.0f} MB.", _size),
    ]


def _image_asset(
    spec: AppImageSpec, section: ImagesSection, alerts_section: AlertsSection, retry: dg.RetryPolicy
) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        group_name=GROUP,
        owners=[spec.owner],
        kinds={"docker", "buildah"},
        description=spec.description,
        code_version=code_version(spec),
        retry_policy=retry,
        metadata=code_references(("Dockerfile", spec.context / spec.dockerfile, None)),
    )
    def image(
        context: AssetExecutionContext,
        config: ImageBuildConfig,
        images: ImagesResource,
        lineage: LineageResource,
        audit: AuditResource,
        alerting: AlertsResource,
    ) -> Materialized:
        workspace = images.workspace(section)
        with lineage_run(context, lineage, refs.image_job(spec)) as run:
            with permanent_failures():
                build = build_image(
                    spec,
                    workspace,
                    no_cache=config.no_cache,
                    progress=context.log.info,
                    trail=audit.trail(context.run.run_id),
                    alerts=alerting.for_build(alerts_section, context.run.run_id),
                )
            run.inputs = [
                refs.lockfile(spec, build.lockfile, build.lockfile_digest),
                *[refs.image_reference(reference) for reference in build.bases.values()],
            ]
            run.outputs = [refs.image(spec, workspace.registry, build.digest)]
        return dg.MaterializeResult(
            data_version=dg.DataVersion(build.digest),
            metadata={
                **image_metadata(build),
                "lineage_run_id": run.run_id,
                "lineage_graph": lineage.graph_link(),
                "lineage_explorer": lineage.explorer_link(),
            },
        )

    return image


def _check(
    spec: AppImageSpec, section: ImagesSection, name: str, description: str, body: CheckBody
) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=spec.name, name=name, blocking=True, description=description)
    def check(
        context: AssetCheckExecutionContext, images: ImagesResource, lineage: LineageResource
    ) -> dg.AssetCheckResult:
        digest = latest_entry(context.instance, spec.name, IMAGE_VERSION)
        if digest is None:
            return dg.AssetCheckResult(passed=False, description=f"{spec.name} has not been built yet")
        workspace = images.workspace(section)
        job = refs.check_job(spec.name, name, spec.owner)
        with lineage_run(context, lineage, job, [refs.image(spec, workspace.registry, digest)]) as run:
            with permanent_failures():
                build = BuildRecords(workspace.root).by_digest(spec.name, digest)
            result = body(spec, build, images, section)
            run.inputs = [
                refs.image(spec, workspace.registry, digest, (Assertion(name, result.passed),))
            ]
        return dg.AssetCheckResult(
            passed=result.passed,
            description=result.description,
            metadata={**result.metadata, IMAGE_VERSION: digest, "lineage_run_id": run.run_id},
        )

    return check


def _policy(
    spec: AppImageSpec, build: ImageBuild, images: ImagesResource, section: ImagesSection
) -> dg.AssetCheckResult:
    with permanent_failures():
        findings = policy_findings(spec, build)
    errors = [f for f in findings if f.severity == "error"]
    return dg.AssetCheckResult(
        passed=not errors,
        description=f"{len(errors)} error(s), {len(findings) - len(errors)} other finding(s)",
        metadata={"errors": len(errors), "findings": findings_table(findings)},
    )


def _smoke(
    spec: AppImageSpec, build: ImageBuild, images: ImagesResource, section: ImagesSection
) -> dg.AssetCheckResult:
    from governance.images.smoke import smoke_test

    result = smoke_test(build.reference, images.workspace(section).storage, health_path=spec.health_path)
    metadata: dict[str, Any] = {"seconds": round(result.seconds, 2), "status": result.status or 0}
    if result.logs:
        metadata["container_logs"] = dg.MetadataValue.md(f"```\n{result.logs}\n```")
    return dg.AssetCheckResult(passed=result.ok, description=result.detail, metadata=metadata)


def _size(
    spec: AppImageSpec, build: ImageBuild, images: ImagesResource, section: ImagesSection
) -> dg.AssetCheckResult:
    size_mb = build.size_bytes / 1e6
    return dg.AssetCheckResult(
        passed=size_mb <= spec.size_budget_mb,
        description=f"{size_mb:.0f} MB of a {spec.size_budget_mb:.0f} MB budget",
        metadata={"size_mb": round(size_mb, 1), "budget_mb": spec.size_budget_mb},
    )
