"""The lineage graph from recorded events: datasets and jobs, latest versions on the nodes."""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from governance.errors import GovernanceError


def to_dot(events: Iterable[Mapping[str, Any]]) -> str:
    datasets: dict[str, str] = {}
    jobs: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    for event in events:
        job = f"job:{event['job']['name']}"
        jobs[job] = f"{event['job']['name']}\\n{event.get('eventType', '')}"
        for key, direction in (("inputs", "in"), ("outputs", "out")):
            for dataset in event.get(key) or []:
                node = f"ds:{dataset['namespace']}/{dataset['name']}"
                version = (dataset.get("facets") or {}).get("version", {}).get("datasetVersion")
                label = f"{dataset['namespace']}\\n{dataset['name']}"
                datasets[node] = f"{label}\\n@ {version}" if version else datasets.get(node, label)
                edges.add((node, job) if direction == "in" else (job, node))
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    lines += [
        f'  "{_q(n)}" [shape=box, style="rounded,filled", fillcolor="#e8f0fe", label="{_q(lbl)}"];'
        for n, lbl in sorted(datasets.items())
    ]
    lines += [
        f'  "{_q(n)}" [shape=ellipse, style=filled, fillcolor="#fef7e0", label="{_q(lbl)}"];'
        for n, lbl in sorted(jobs.items())
    ]
    lines += [f'  "{_q(a)}" -> "{_q(b)}";' for a, b in sorted(edges)]
    return "\n".join([*lines, "}"]) + "\n"


def render(events: Iterable[Mapping[str, Any]], fmt: str, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        destination.write_text(to_dot(events))
        return destination
    drawn = draw(events, "svg" if fmt == "html" else fmt)
    if fmt == "html":
        page = f"<!doctype html><meta charset=utf-8><title>Lineage</title>\n{drawn.decode()}"
        destination.write_text(page)
    else:
        destination.write_bytes(drawn)
    return destination


def draw(events: Iterable[Mapping[str, Any]], output: str = "svg") -> bytes:
    """The graph drawn by graphviz (`svg`, `png`)."""
    dot = shutil.which("dot")
    if dot is None:
        raise GovernanceError("graphviz's `dot` is not installed (scripts/setup.sh installs it)")
    result = subprocess.run(
        [dot, f"-T{output}"], input=to_dot(events).encode(), capture_output=True, timeout=60
    )
    if result.returncode != 0:
        raise GovernanceError(f"dot failed: {result.stderr.decode().strip()}")
    return result.stdout


def _q(text: str) -> str:
    return html.escape(text, quote=False).replace('"', '\\"')
