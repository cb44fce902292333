"""A small adapter from Great Expectations 1.x to plain results.

dagster-ge still pins GX < 1.0, so the platform owns this seam. GX stays behind it: callers get
`ValidationReport`, a frozen dataclass the asset check, the CLI and the tests all read. The result
format is bounded (SUMMARY, a few unexpected values) because GX can otherwise copy whole frames into
its results (great_expectations#10327).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import ConfigError, PermanentError
from governance.locks import LOCAL, Locks

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_SIZE = 5
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
# The Data Docs index lists the latest 30 validations (a month of daily runs). GX rebuilds the index
# on every validation by reading every stored result, so without a limit each validation took longer
# as history grew: 0.5 s with no history, 1.0 s with 230 results (the fuzzing campaign found it as
# examples slowing down). Older pages stay where they are, linked from each run's metadata.
DOCS_INDEX_LIMIT = 30


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    params: dict[str, Any]
    success: bool
    observed: str
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    unexpected_rows: tuple[int, ...] = ()

    @property
    def rule(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self.expectation}({args})"

    def describe_failure(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        found = (
            f"{self.unexpected_count} unexpected ({self.observed})"
            if self.unexpected_count
            else f"observed {self.observed}"
        )
        return f"{where} breaks {self.rule}: {found}"


@dataclass(frozen=True)
class ValidationReport:
    dataset: str
    suite: Path
    success: bool
    row_count: int
    outcomes: tuple[ExpectationOutcome, ...]
    sample_rows: tuple[dict[str, Any], ...] = field(default=())
    docs_url: str | None = None

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(outcome for outcome in self.outcomes if not outcome.success)

    def summary(self) -> str:
        if self.success:
            return f"{len(self.outcomes)} expectations passed on {self.row_count} rows"
        return "; ".join(outcome.describe_failure() for outcome in self.failures)


_EXPECTATION_KEYS = {"type", "kwargs", "meta", "id", "notes", "description", "severity"}


def load_suite(path: Path) -> list[Any]:
    """Every expectation of the suite file as a checked GX object, or a ConfigError naming the file,
    the expectation's index and the reason. GX itself drops an expectation it cannot build (an
    unknown `type`, a misspelt kwarg) and validates the rest: a typo would silently disable a rule."""
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # undecodable, not JSON, a number beyond int's limits
        raise ConfigError(f"{path}: not a readable expectation suite: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be an expectation suite") from None
    expectations = suite.get("expectations") if isinstance(suite, dict) else None
    if not isinstance(expectations, list) or not expectations:
        raise ConfigError(f"{path}: an expectation suite needs a non-empty `expectations` list")
    return [_expectation(path, index, item) for index, item in enumerate(expectations)]


def _expectation(path: Path, index: int, item: Any) -> Any:
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    where = f"{path}: expectations[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise ConfigError(f"{where}: needs a `type` naming an expectation")
    unknown = sorted(set(item) - _EXPECTATION_KEYS)
    if unknown:
        raise ConfigError(f"{where} ({item['type']}): unknown key(s) {', '.join(map(repr, unknown))}")
    kwargs, meta = item.get("kwargs", {}), item.get("meta")
    if not isinstance(kwargs, dict) or not (meta is None or isinstance(meta, dict)):
        raise ConfigError(f"{where} ({item['type']}): `kwargs` and `meta` must be objects")
    try:
        return ExpectationConfiguration(type=item["type"], kwargs=kwargs, meta=meta).to_domain_obj()
    except Exception as exc:  # GX raises its own and pydantic's errors here, all meaning "invalid"
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{where} ({item['type']}): {reason}") from None


def validate_frame(
    frame: pd.DataFrame, *, dataset: str, suite_path: Path, gx_dir: Path, locks: Locks = LOCAL
) -> ValidationReport:
    """Run the suite on the frame in the file-backed GX context under `gx_dir`, building Data Docs."""
    expectations = load_suite(suite_path)
    # GX's file stores are not safe for concurrent writers: one validation per context at a time
    # (across containers, when the context is on the shared volume: the database's lock).
    with locks.hold("gx-context", gx_dir / ".lock"):
        context = _context(gx_dir)
        checkpoint = _checkpoint(context, dataset, expectations, suite_path)
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        identifier, run = next(iter(result.run_results.items()))
        _build_docs(context, identifier, run)
        urls = context.get_docs_sites_urls(resource_identifier=identifier)
    if len(run.results) != len(expectations):
        raise PermanentError(
            f"{suite_path}: Great Expectations ran {len(run.results)} of the suite's "
            f"{len(expectations)} expectations; a validation that cannot run every rule fails"
        )
    outcomes = tuple(_outcome(item) for item in run.results)
    return ValidationReport(
        dataset=dataset,
        suite=suite_path,
        success=bool(run.success),
        row_count=len(frame),
        outcomes=outcomes,
        sample_rows=_sample_rows(frame, outcomes),
        docs_url=urls[0]["site_url"] if urls else None,
    )


def _context(gx_dir: Path) -> Any:
    import copy

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(gx_dir))
    bars = context.variables.progress_bars
    enabled = bars.get("globally", True) if isinstance(bars, dict) else getattr(bars, "globally", True)
    changed = False
    if enabled:  # GX draws a progress bar per metric: noise in run logs
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        changed = True
    sites = copy.deepcopy(context.variables.data_docs_sites or {})
    for site in sites.values():
        index = site.setdefault("site_index_builder", {"class_name": "DefaultSiteIndexBuilder"})
        index["validation_results_limit"] = DOCS_INDEX_LIMIT
    if sites != context.variables.data_docs_sites:
        context.variables.data_docs_sites = sites
        changed = True
    if changed:
        context.variables.save()
    return context


def _checkpoint(context: Any, dataset: str, expectations: list[Any], suite_path: Path) -> Any:
    import great_expectations as gx

    source = context.data_sources.add_or_update_pandas("governance")
    asset = next((a for a in source.assets if a.name == dataset), None)
    asset = asset or source.add_dataframe_asset(dataset)
    batch = next((b for b in asset.batch_definitions if b.name == "whole"), None)
    batch = batch or asset.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=dataset, expectations=expectations))
    if len(suite.expectations) != len(expectations):
        raise PermanentError(
            f"{suite_path}: Great Expectations kept {len(suite.expectations)} of the suite's "
            f"{len(expectations)} expectations"
        )
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=dataset, data=batch, suite=suite)
    )
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=dataset,
            validation_definitions=[definition],
            actions=[],  # Data Docs are built by _build_docs, from escaped values
            result_format=RESULT_FORMAT,
        )
    )


def _build_docs(context: Any, identifier: Any, run: Any) -> None:
    """Data Docs from a copy of the result whose data-derived strings are HTML-escaped: GX inserts
    unexpected values and observed column names into its pages as they are, so a cell holding
    `<script>` would run in the reviewer's browser. The report keeps the true values."""
    import copy

    shown = copy.deepcopy(run)
    for item in shown.results:
        item.result = _escaped(item.result or {})
        if item.exception_info:
            item.exception_info = _escaped(item.exception_info)
    context.validation_results_store.set(identifier, shown)
    context.build_data_docs(resource_identifiers=[identifier])


def _escaped(value: Any) -> Any:
    import html

    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_escaped(v) for v in value)
    return value


def _outcome(item: Any) -> ExpectationOutcome:
    config = item.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")}
    result = item.result or {}
    unexpected = result.get("unexpected_count")
    if "observed_value" in result:
        observed = _plain(result["observed_value"])
    else:
        observed = ", ".join(repr(_plain(v)) for v in result.get("partial_unexpected_list", []))
    if item.exception_info and item.exception_info.get("raised_exception"):
        observed = "error: " + str(item.exception_info.get("exception_message"))
    return ExpectationOutcome(
        expectation=config.type,
        column=config.kwargs.get("column"),
        params={k: _plain(v) for k, v in kwargs.items()},
        success=bool(item.success),
        observed=str(observed),
        unexpected_count=int(unexpected) if unexpected is not None else None,
        unexpected_percent=_plain(result.get("unexpected_percent")),
        unexpected_rows=tuple(int(i) for i in result.get("partial_unexpected_index_list") or ()),
    )


def _sample_rows(
    frame: pd.DataFrame, outcomes: tuple[ExpectationOutcome, ...]
) -> tuple[dict[str, Any], ...]:
    rows: list[int] = []
    for outcome in outcomes:
        rows.extend(i for i in outcome.unexpected_rows if i not in rows and i in frame.index)
    sample = frame.loc[rows[:SAMPLE_SIZE]]
    # Index labels are row positions of the file read (kept by cleaning): +2 for header and 1-based.
    return tuple(
        {"line": int(str(idx)) + 2, **{str(k): _plain(v) for k, v in row.items()}}
        for idx, row in sample.iterrows()
    )


def _plain(value: Any) -> Any:
    """numpy scalars and NaN to plain JSON-able Python."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
