"""OpenLineage events from real materializations, validated against the spec; delivery through the
outbox to a real HTTP backend on loopback that is up, failing, slow or down."""

from __future__ import annotations

import html
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from governance.config import Estate
from governance.errors import TransientError
from governance.home import GovernanceHome
from governance.housekeeping import collect_lineage_events
from governance.lineage.emitter import LineageEmitter
from governance.lineage.events import JobRef, new_run_id, run_event
from governance.lineage.outbox import Outbox, SqliteOutbox
from governance.lineage.transport import FileTransport, HttpTransport, transport_from_environment
from pipelines.definitions import build_definitions
from tests.badfiles import BAD_FILES
from tests.conftest import materialize_groups
from tests.conftest import run_governance as governance
from tests.openlineage_spec import spec_errors
from tests.services import LineageBackend, free_port


@pytest.fixture
def backend() -> Iterator[LineageBackend]:
    server = LineageBackend()
    yield server
    server.close()


# Whole-estate materializations build the images too, into the session's registry and cache.
pytestmark = pytest.mark.usefixtures("image_lab")


def outbox() -> Outbox:
    return SqliteOutbox(GovernanceHome.resolve().lineage / "outbox.db")


def materialize(estate: Estate, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    defs = build_definitions(estate)
    return dg.materialize(defs.assets, instance=instance, resources=defs.resources, raise_on_error=False)


def test_every_materialization_and_check_emits_spec_valid_events(
    estate_with_source: Callable[[Path], Estate], penguins_csv: Path
) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(estate_with_source(penguins_csv), instance)
    assert result.success
    events = list(outbox().events())
    for event in events:
        assert spec_errors(event) == [], event["job"]["name"]

    by_job: dict[str, list[str]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event["eventType"])
        assert event["run"]["facets"]["parent"]["run"]["runId"] == result.run_id
    assert by_job == {
        name: ["START", "COMPLETE"]
        for name in [
            "penguins_raw",
            "penguins",
            "penguins.matches_expectation_suite",
            "penguin_classifier",
            "penguin_classifier.meets_promotion_policy",
            *[
                f"{image}{check}"
                for image in ("model_server", "frontend", "platform")
                for check in (
                    "",
                    ".passes_dockerfile_policy",
                    ".answers_health_check",
                    ".within_size_budget",
                )
            ],
            "penguin_service.candidate",
            "penguin_service",
            "penguin_web.candidate",
            "penguin_web",
        ]
    }

    def complete(job: str) -> dict:  # type: ignore[type-arg]
        return next(e for e in events if e["job"]["name"] == job and e["eventType"] == "COMPLETE")

    digest = result.asset_materializations_for_node("model_server")[0].metadata["digest"].value
    (image,) = complete("model_server")["outputs"]
    registry = os.environ["GOVERNANCE_IMAGE_REGISTRY"]
    # Names are stable across versions (a consumer keys a dataset by them); the version is a facet.
    assert (image["namespace"], image["name"]) == (f"oci://{registry}", "penguins/model-server")
    assert image["facets"]["version"]["datasetVersion"] == digest
    inputs = {d["name"]: d for d in complete("model_server")["inputs"]}
    (lockfile,) = [d for name, d in inputs.items() if name.endswith("model-server/uv.lock")]
    assert lockfile["namespace"] == "file" and lockfile["name"].startswith("/")
    base = inputs["governance/python"]
    assert base["facets"]["version"]["datasetVersion"].startswith("sha256:")
    assert not any("@" in name for event in events for name in _dataset_names(event))
    (checked,) = complete("model_server.answers_health_check")["inputs"]
    assertions = checked["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["success"]) for a in assertions] == [("answers_health_check", True)]

    # The web release serves an image and no model: its candidate's only input is that image.
    web_digest = result.asset_materializations_for_node("frontend")[0].metadata["digest"].value
    web = complete("penguin_web.candidate")
    assert [(d["name"], d["facets"]["version"]["datasetVersion"]) for d in web["inputs"]] == [
        ("penguins/frontend", web_digest)
    ]
    assert [(d["namespace"], d["name"]) for d in web["outputs"]] == [("release://local", "penguin_web")]

    # The dataset was made from the raw file's exact version, the one the raw asset ingested.
    (raw,) = complete("penguins_raw")["inputs"]
    (made_from,) = complete("penguins")["inputs"]
    assert (made_from["namespace"], made_from["name"]) == (raw["namespace"], raw["name"])
    assert made_from["facets"]["version"] == raw["facets"]["version"]
    md5 = result.asset_materializations_for_node("penguins")[0].metadata["dvc_md5"].value
    (dataset,) = complete("penguins")["outputs"]
    assert (dataset["namespace"], dataset["name"]) == ("dvc://governance", "penguins")
    assert dataset["facets"]["version"]["datasetVersion"] == md5
    assert dataset["facets"]["dataQualityMetrics"]["rowCount"] == 333
    assert dataset["facets"]["dataQualityMetrics"]["columnMetrics"]["sex"]["nullCount"] == 0
    assert [f["name"] for f in dataset["facets"]["schema"]["fields"]][:2] == ["species", "island"]
    assert dataset["facets"]["ownership"]["owners"] == [{"name": "data-platform@example.com"}]

    (checked,) = complete("penguins.matches_expectation_suite")["inputs"]
    assertions = checked["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert len(assertions) == 23 and all(a["success"] for a in assertions)
    assert checked["facets"]["version"]["datasetVersion"] == md5

    model_run = complete("penguin_classifier")
    assert model_run["inputs"][0]["facets"]["version"]["datasetVersion"] == md5
    (model,) = model_run["outputs"]
    assert (model["namespace"], model["name"]) == ("mlflow://local", "models/penguin-classifier")
    assert model["facets"]["version"]["datasetVersion"] == "1"
    gate = complete("penguin_classifier.meets_promotion_policy")["inputs"][0]["inputFacets"][
        "dataQualityAssertions"
    ]
    assert {a["assertion"] for a in gate["assertions"]} == {"threshold:accuracy", "threshold:f1_macro"}

    # Each run says what it is and which Dagster run is its parent and root.
    for job, kind in [("penguins", "ASSET"), ("penguins.matches_expectation_suite", "ASSET_CHECK")]:
        facets = complete(job)["job"]["facets"]
        assert facets["jobType"] == {
            **facets["jobType"],
            "processingType": "BATCH",
            "integration": "DAGSTER",
            "jobType": kind,
        }
        parent = complete(job)["run"]["facets"]["parent"]
        assert parent["root"]["run"]["runId"] == parent["run"]["runId"] == result.run_id
        assert parent["root"]["job"] == parent["job"]


def _dataset_names(event: dict) -> list[str]:  # type: ignore[type-arg]
    return [d["name"] for d in [*event.get("inputs", []), *event.get("outputs", [])]]


def test_a_failed_step_emits_fail_with_the_error_message(
    estate_with_source: Callable[[Path], Estate], penguins_csv: Path, tmp_path: Path
) -> None:
    bad = next(b for b in BAD_FILES if b.name == "out_of_range").write(penguins_csv, tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        assert not materialize(estate_with_source(bad), instance).success
    events = list(outbox().events())
    (failed,) = [e for e in events if e["eventType"] == "FAIL"]
    assert failed["job"]["name"] == "penguins"
    assert "flipper_length_mm" in failed["run"]["facets"]["errorMessage"]["message"]
    assert spec_errors(failed) == []
    assert not any(e["job"]["name"] == "penguin_classifier" for e in events)  # nothing downstream ran


SECRET_KEY = "k3y-0f-the-b4ckend"


def event(n: int) -> dict:  # type: ignore[type-arg]
    return run_event("START", JobRef(f"job-{n}"), new_run_id())


def test_backend_outage_loses_nothing_and_duplicates_nothing(backend: LineageBackend) -> None:
    emitter = LineageEmitter(outbox(), HttpTransport(backend.url, timeout_s=1), backoff_s=60)
    emitter.emit(event(0))
    emitter.drain(10)
    assert len(backend.received) == 1

    backend.mode = "fail"
    for n in range(1, 6):
        emitter.emit(event(n))
        emitter.drain(10)
    assert outbox().pending_count() == 5

    backend.mode = "ok"
    result = outbox().flush(HttpTransport(backend.url))
    assert (result.delivered, result.pending) == (5, 0)
    assert [e["job"]["name"] for e in backend.received] == [f"job-{n}" for n in range(6)]
    assert outbox().flush(HttpTransport(backend.url)).delivered == 0  # nothing twice
    assert len(backend.received) == 6


def test_emit_returns_while_the_backend_still_holds_the_request(backend: LineageBackend) -> None:
    backend.mode = "hold"
    emitter = LineageEmitter(outbox(), HttpTransport(backend.url, timeout_s=30))
    emitter.emit(event(0))
    assert backend.holding.wait(10)  # delivery is under way on its own thread...
    for n in range(1, 20):
        emitter.emit(event(n))  # ...and emitting goes on regardless
    assert outbox().pending_count() == 20
    assert backend.received == []
    backend.release.set()
    backend.mode = "ok"
    emitter.drain(30)
    assert outbox().flush(HttpTransport(backend.url)).pending == 0
    assert [e["job"]["name"] for e in backend.received] == [f"job-{n}" for n in range(20)]


def test_a_trickling_backend_is_cut_off_at_the_request_deadline(backend: LineageBackend) -> None:
    """Each byte arrives well within a socket timeout, so only a whole-request deadline ends it:
    the flush reports the backend as failing instead of holding the caller for the whole answer."""
    backend.mode = "trickle"
    box = outbox()
    box.append(event(0))
    result = box.flush(HttpTransport(backend.url, timeout_s=1))
    assert result.delivered == 0 and result.pending == 1
    assert "within 1 s" in (result.error or "")


def test_a_second_flush_gives_up_on_the_lock_instead_of_waiting_forever(
    backend: LineageBackend,
) -> None:
    backend.mode = "hold"
    box = outbox()
    box.append(event(0))
    first = threading.Thread(target=box.flush, args=(HttpTransport(backend.url, timeout_s=30),))
    first.start()
    try:
        assert backend.holding.wait(10)
        with pytest.raises(TransientError, match="held by another process"):
            outbox().flush(HttpTransport(backend.url), lock_timeout_s=0.5)
    finally:
        backend.release.set()
        first.join(30)


def test_a_rejected_event_is_dead_lettered_and_does_not_block_the_rest(
    backend: LineageBackend,
) -> None:
    backend.mode, backend.reject_job = "reject", "job-1"
    box = outbox()
    for n in range(4):
        box.append(event(n))
    result = box.flush(HttpTransport(f"{backend.url}/?api_key={SECRET_KEY}"))
    assert (result.delivered, result.dead_lettered, result.pending) == (3, 1, 0)
    assert [e["job"]["name"] for e in backend.received] == ["job-0", "job-2", "job-3"]
    (letter,) = box.dead_letters()
    assert letter.event["job"]["name"] == "job-1" and "400" in letter.error
    assert SECRET_KEY not in letter.error
    listed = governance("lineage", "dead-letters")
    assert listed.returncode == 1 and "job-1" in listed.stdout


def test_a_failing_backend_stores_no_credential_from_its_url(backend: LineageBackend) -> None:
    backend.mode = "fail"
    box = outbox()
    box.append(event(0))
    url = f"http://user:{SECRET_KEY}@127.0.0.1:{backend.url.rsplit(':', 1)[1]}/?api_key={SECRET_KEY}"
    result = box.flush(HttpTransport(url))
    assert result.error and SECRET_KEY not in result.error
    stored = sqlite3.connect(box.path).execute("SELECT last_error FROM outbox").fetchone()[0]
    assert "500" in stored and SECRET_KEY not in stored


@pytest.mark.parametrize("failure", ["fail", "slow", "down", "black-hole"])
def test_an_unusable_backend_keeps_every_event_pending(backend: LineageBackend, failure: str) -> None:
    """Each kind of outage ends the delivery round with an error (the slow and black-holed ones by
    the request deadline), and every event stays in the outbox, in order, for the next round."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections, never answers
    urls = {
        "down": f"http://127.0.0.1:{free_port()}",
        "black-hole": f"http://127.0.0.1:{server.getsockname()[1]}",
    }
    backend.mode, backend.slow_s = failure, 5
    emitter = LineageEmitter(outbox(), HttpTransport(urls.get(failure, backend.url), timeout_s=1))
    try:
        for n in range(20):
            emitter.emit(event(n))
        emitter.drain(10)
        assert outbox().pending_count() == 20
        assert emitter.flush().error
    finally:
        server.close()
    backend.mode = "ok"
    assert outbox().flush(HttpTransport(backend.url)).delivered == 20


def test_concurrent_flushers_send_each_event_once(backend: LineageBackend) -> None:
    box = outbox()
    for n in range(50):
        box.append(event(n))
    threads = [
        threading.Thread(target=lambda: SqliteOutbox(box.path).flush(HttpTransport(backend.url)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e["job"]["name"] for e in backend.received] == [f"job-{n}" for n in range(50)]


def test_standard_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = tmp_path / "events.jsonl"
    assert isinstance(transport_from_environment(default, {}), FileTransport)
    http = transport_from_environment(
        default, {"OPENLINEAGE_URL": "http://127.0.0.1:5000", "OPENLINEAGE_ENDPOINT": "api/v1/lineage"}
    )
    assert isinstance(http, HttpTransport) and http.target == "http://127.0.0.1:5000/api/v1/lineage"
    config = tmp_path / "openlineage.yml"
    config.write_text(
        "transport:\n  type: http\n  url: http://127.0.0.1:9\n  auth: {type: api_key, apiKey: k}\n"
    )
    from_yaml = transport_from_environment(default, {"OPENLINEAGE_CONFIG": str(config)})
    assert (
        isinstance(from_yaml, HttpTransport) and from_yaml.target == "http://127.0.0.1:9/api/v1/lineage"
    )
    assert "k" not in from_yaml.describe().split("://")[0]


def test_cli_events_flush_and_graph(backend: LineageBackend, tmp_path: Path) -> None:
    box = outbox()
    for n in range(3):
        box.append(run_event("COMPLETE", JobRef(f"job-{n}"), new_run_id()))
    lines = governance("lineage", "events").stdout.splitlines()
    assert [json.loads(line)["job"]["name"] for line in lines] == ["job-0", "job-1", "job-2"]

    backend.mode = "fail"
    failed = governance("lineage", "flush", env={"OPENLINEAGE_URL": backend.url})
    assert failed.returncode == 1 and "answered 500" in failed.stderr and "3 pending" in failed.stdout
    backend.mode = "ok"
    flushed = governance("lineage", "flush", env={"OPENLINEAGE_URL": backend.url})
    assert flushed.returncode == 0 and "delivered 3 event(s)" in flushed.stdout
    assert len(backend.received) == 3


def test_graph_of_the_estate_has_versions_on_the_nodes(
    estate_with_source: Callable[[Path], Estate], penguins_csv: Path, tmp_path: Path
) -> None:
    with dg.DagsterInstance.ephemeral() as instance:  # the data and model chain is what it draws
        result = materialize_groups(estate_with_source(penguins_csv), instance, "datasets", "models")
    md5 = result.asset_materializations_for_node("penguins")[0].metadata["dvc_md5"].value
    for fmt in ("svg", "png", "html", "dot"):
        out = tmp_path / f"graph.{fmt}"
        done = governance("lineage", "graph", "--format", fmt, "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert out.stat().st_size > 0
    svg = html.unescape((tmp_path / "graph.svg").read_text())  # graphviz writes "-" as &#45;
    assert md5 in svg and "penguins.matches_expectation_suite" in svg
    assert "models/penguin-classifier" in svg and "@ 1<" in svg  # one node per model, its version
    assert (tmp_path / "graph.png").read_bytes()[:4] == b"\x89PNG"


def test_gc_keeps_the_newest_delivered_events_and_every_undelivered_one(
    backend: LineageBackend,
) -> None:
    """Delivered events beyond retention leave the outbox, whose file shrinks (the backend has
    them all); a dead letter and what still waits for the backend stay, and go out in order."""
    backend.mode, backend.reject_job = "reject", "job-1"
    box = outbox()
    for n in range(40):
        box.append(event(n))
    assert box.flush(HttpTransport(backend.url)).dead_lettered == 1
    backend.mode = "fail"
    for n in range(40, 43):
        box.append(event(n))
    assert box.flush(HttpTransport(backend.url)).pending == 3
    listed = [e["job"]["name"] for e in box.events()]

    planned = collect_lineage_events(box, keep=5, dry_run=True)
    assert [e["job"]["name"] for e in box.events()] == listed  # a dry run removes nothing
    done = collect_lineage_events(box, keep=5)
    assert (done.removed, done.kept) == (planned.removed, planned.kept) == (34, 5)
    assert done.freed_bytes > 0
    assert [e["job"]["name"] for e in box.events()] == [f"job-{n}" for n in (1, *range(35, 43))]
    assert len(box.dead_letters()) == 1

    backend.mode, received = "ok", len(backend.received)
    assert box.flush(HttpTransport(backend.url)).delivered == 3
    assert [e["job"]["name"] for e in backend.received[received:]] == ["job-40", "job-41", "job-42"]
    assert collect_lineage_events(box, keep=5).removed == 3
