"""The lineage explorer: one self-contained page, built from the recorded OpenLineage events and the
audit log, for a reviewer to walk every version of every dataset, model, image and release.

The page works offline: its script is its own (no CDN, no third-party code), and every value from
an event reaches the page as JSON inside the page and the DOM as text, never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from governance.audit.chain import AuditRecord


def explorer_data(events: Iterable[Mapping[str, Any]], audit: Iterable[AuditRecord]) -> dict[str, Any]:
    """Datasets with every version (the run that wrote it, what that run read, its facets), and the
    audit records that name each version."""
    datasets: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[str, Any]] = {}
    for event in events:
        run_id = event["run"]["runId"]
        parent = (event["run"].get("facets") or {}).get("parent", {}).get("run", {}).get("runId", "")
        run = runs.setdefault(
            run_id,
            {"id": run_id, "job": event["job"]["name"], "parent": parent, "inputs": [], "outputs": []},
        )
        run["state"], run["at"] = event.get("eventType", ""), event.get("eventTime", "")
        for direction in ("inputs", "outputs"):
            for dataset in event.get(direction) or []:
                facets = {**(dataset.get("facets") or {}), **(dataset.get("inputFacets") or {})}
                version = (facets.get("version") or {}).get("datasetVersion") or ""
                if not version:
                    continue  # a START names what it will read before it knows which version
                key = _key(dataset["namespace"], dataset["name"])
                node = datasets.setdefault(key, {"key": key, "name": dataset["name"], "versions": {}})
                entry = node["versions"].setdefault(
                    version, {"version": version, "facets": {}, "runs": [], "readBy": []}
                )
                entry["facets"].update(_shown(facets))
                ref = {"dataset": key, "version": version}
                if direction == "outputs" and event.get("eventType") == "COMPLETE":
                    entry["runs"].append(run_id)
                    if ref not in run["outputs"]:
                        run["outputs"].append(ref)
                elif direction == "inputs":
                    if run_id not in entry["readBy"]:
                        entry["readBy"].append(run_id)
                    if ref not in run["inputs"]:
                        run["inputs"].append(ref)
    records = [r.as_dict() for r in audit]
    for node in datasets.values():
        for version, entry in node["versions"].items():
            entry["audit"] = [r["seq"] for r in records if version and version in r["versions"].values()]
        node["versions"] = list(node["versions"].values())
    return {"datasets": list(datasets.values()), "runs": runs, "audit": records}


def _key(namespace: str, name: str) -> str:
    """The dataset as one string: `dvc://governance/penguins`, `file:/path/to/raw.csv`."""
    return f"{namespace}:{name}" if name.startswith("/") else f"{namespace}/{name}"


def _shown(facets: Mapping[str, Any]) -> dict[str, Any]:
    """Facets without the producer's bookkeeping (`_producer`, `_schemaURL`)."""
    return {
        name: {k: v for k, v in facet.items() if not k.startswith("_")}
        for name, facet in facets.items()
        if isinstance(facet, Mapping)
    }


def render_explorer(events: Iterable[Mapping[str, Any]], audit: Iterable[AuditRecord]) -> str:
    data = json.dumps(explorer_data(events, audit)).replace("<", "\\u003c")
    return _PAGE.replace("__DATA__", data)


_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Lineage explorer</title>
<style>
body { font-family: sans-serif; margin: 0; display: grid; grid-template-columns: 1fr 30em;
       grid-template-rows: auto 1fr; height: 100vh; }
header { grid-column: 1 / 3; padding: .6em 1em; border-bottom: 1px solid #ddd; }
header input { margin-right: 1em; }
#graph { overflow: auto; padding: 1em; position: relative; white-space: nowrap; }
#edges { position: absolute; left: 0; top: 0; pointer-events: none; }
#edges path { fill: none; stroke: #9ab; stroke-width: 1.5; }
#edges path.hot { stroke: #c90; stroke-width: 3; }
#details { overflow: auto; padding: 1em; border-left: 1px solid #ddd; font-size: 90%; }
.node { border: 1px solid #9ab; border-radius: 6px; background: #e8f0fe; padding: .4em .6em;
        margin: .4em 0; }
.node h3 { margin: 0 0 .3em; font-size: 95%; overflow-wrap: anywhere; }
.column { display: inline-block; vertical-align: top; width: 16em; margin-right: 2.5em;
          white-space: normal; }  /* the columns stay side by side: the graph scrolls instead */
.version { display: inline-block; margin: .15em; padding: .1em .4em; border-radius: 4px;
           background: #fff; border: 1px solid #9ab; cursor: pointer; font-family: monospace;
           max-width: 14em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.version.selected { background: #fef7e0; border-color: #c90; }
.version.related { border-color: #c90; border-width: 2px; }
.link { color: #15c; cursor: pointer; text-decoration: underline; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f6f6; padding: .5em; }
</style>
<header>
  <b>Lineage explorer</b>
  <label>run <input id="run" placeholder="a lineage or Dagster run id"></label>
  <label>from <input id="from" type="datetime-local"></label>
  <label>to <input id="to" type="datetime-local"></label>
  <span id="count"></span>
</header>
<main id="graph"></main>
<aside id="details"><p>Click a version to see its facets, the run that produced it, what it was
made from and what read it, and its audit records.</p></aside>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const el = (tag, text, cls) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
};
function visible(version) {
  const run = document.getElementById("run").value.trim();
  const from = document.getElementById("from").value;
  const to = document.getElementById("to").value;
  const runs = version.runs.concat(version.readBy).map((id) => DATA.runs[id]).filter(Boolean);
  if (run && !runs.some((r) => r.id.startsWith(run) || r.parent.startsWith(run))) return false;
  const times = runs.map((r) => r.at.slice(0, 16));
  if (from && !times.some((t) => t >= from)) return false;
  if (to && !times.some((t) => t <= to)) return false;
  return true;
}
function depths() {
  const depth = {};
  DATA.datasets.forEach((d) => (depth[d.key] = 0));
  for (let pass = 0; pass < DATA.datasets.length; pass++) {
    Object.values(DATA.runs).forEach((run) => {
      run.outputs.forEach((out) => run.inputs.forEach((inp) => {
        if (inp.dataset !== out.dataset && depth[out.dataset] <= depth[inp.dataset]) {
          depth[out.dataset] = Math.min(depth[inp.dataset] + 1, DATA.datasets.length);
        }
      }));
    });
  }
  return depth;
}
const pair = (a, b) => JSON.stringify([a, b]);  // one key for two strings, whatever they hold
function edges() {
  const seen = new Set();
  const list = [];
  Object.values(DATA.runs).forEach((run) => run.outputs.forEach((out) => run.inputs.forEach((inp) => {
    const key = pair(inp.dataset, out.dataset);
    if (inp.dataset !== out.dataset && !seen.has(key)) {
      seen.add(key);
      list.push({ from: inp.dataset, to: out.dataset });
    }
  })));
  return list;
}
function neighbours(selected) {
  // The selected version's runs: what made it (their inputs) and what read it (their outputs).
  const hot = { edges: new Set(), versions: new Set() };
  if (!selected) return hot;
  const dataset = DATA.datasets.find((d) => d.key === selected.key);
  const version = dataset && dataset.versions.find((v) => v.version === selected.version);
  if (!version) return hot;
  const mark = (ref, edge) => {
    hot.versions.add(pair(ref.dataset, ref.version));
    hot.edges.add(edge);
  };
  version.runs.map((id) => DATA.runs[id]).filter(Boolean).forEach((run) =>
    run.inputs.forEach((ref) => mark(ref, pair(ref.dataset, selected.key))));
  version.readBy.map((id) => DATA.runs[id]).filter(Boolean).forEach((run) =>
    run.outputs.forEach((ref) => mark(ref, pair(selected.key, ref.dataset))));
  return hot;
}
function connect(graph, hot) {
  // One curve per pair of artifacts a run read from and wrote to, from node to node.
  const SVG = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(SVG, "svg");
  svg.id = "edges";
  svg.setAttribute("width", graph.scrollWidth);
  svg.setAttribute("height", graph.scrollHeight);
  const origin = graph.getBoundingClientRect();
  const box = (key) => {
    const node = graph.querySelector('.node[data-key="' + CSS.escape(key) + '"]');
    return node && node.getBoundingClientRect();
  };
  edges().forEach((edge) => {
    const a = box(edge.from);
    const b = box(edge.to);
    if (!a || !b) return;
    const x1 = a.right - origin.left + graph.scrollLeft;
    const y1 = a.top + a.height / 2 - origin.top + graph.scrollTop;
    const x2 = b.left - origin.left + graph.scrollLeft;
    const y2 = b.top + b.height / 2 - origin.top + graph.scrollTop;
    const mid = (x1 + x2) / 2;
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
    path.dataset.from = edge.from;
    path.dataset.to = edge.to;
    if (hot.edges.has(pair(edge.from, edge.to))) path.classList.add("hot");
    svg.append(path);
  });
  graph.prepend(svg);
}
let current;  // the selected version, kept when the window's size changes the drawing
function draw(selected) {
  current = selected;
  const graph = document.getElementById("graph");
  graph.replaceChildren();
  const depth = depths();
  const hot = neighbours(selected);
  const columns = [];
  let shown = 0;
  DATA.datasets.forEach((dataset) => {
    const versions = dataset.versions.filter(visible);
    if (!versions.length) return;
    const d = depth[dataset.key];
    columns[d] = columns[d] || el("div", undefined, "column");
    const node = el("div", undefined, "node");
    node.dataset.key = dataset.key;
    node.append(el("h3", dataset.key));
    versions.forEach((version) => {
      const chip = el("span", version.version || "(no version)", "version");
      chip.title = version.version;
      chip.dataset.version = version.version;
      if (selected && selected.key === dataset.key && selected.version === version.version) {
        chip.classList.add("selected");
      }
      if (hot.versions.has(pair(dataset.key, version.version))) chip.classList.add("related");
      chip.onclick = () => show(dataset, version);
      node.append(chip);
      shown++;
    });
    columns[d].append(node);
  });
  columns.filter(Boolean).forEach((column) => graph.append(column));
  connect(graph, hot);
  document.getElementById("count").textContent = shown + " versions";
}
function jump(ref) {
  const dataset = DATA.datasets.find((d) => d.key === ref.dataset);
  const version = dataset && dataset.versions.find((v) => v.version === ref.version);
  if (version) show(dataset, version);
}
function refs(title, list) {
  const box = el("div");
  box.append(el("h4", title));
  if (!list.length) box.append(el("p", "none"));
  list.forEach((ref) => {
    const line = el("div", ref.dataset + (ref.version ? " @ " + ref.version : ""), "link");
    line.onclick = () => jump(ref);
    box.append(line);
  });
  return box;
}
function show(dataset, version) {
  draw({ key: dataset.key, version: version.version });
  const details = document.getElementById("details");
  details.replaceChildren(el("h2", dataset.key), el("p", "version " + version.version));
  const made = version.runs.map((id) => DATA.runs[id]).filter(Boolean);
  made.forEach((run) => {
    details.append(el("h4", "produced by " + run.job));
    details.append(el("p", "run " + run.id + " (Dagster run " + run.parent + ") at " + run.at));
    details.append(refs("made from", run.inputs));
  });
  const readers = version.readBy.map((id) => DATA.runs[id]).filter(Boolean);
  details.append(refs("read by", readers.flatMap((run) =>
    run.outputs.length ? run.outputs : [{ dataset: run.job, version: "" }])));
  Object.entries(version.facets).forEach(([name, facet]) => {
    details.append(el("h4", name));
    details.append(el("pre", JSON.stringify(facet, null, 2)));
  });
  details.append(el("h4", "audit records"));
  const records = DATA.audit.filter((r) => version.audit.includes(r.seq));
  if (!records.length) details.append(el("p", "none"));
  records.forEach((r) => details.append(el("pre",
    "#" + r.seq + " " + r.at + " " + r.actor + " " + r.action + " " + r.decision + "\\n" +
    JSON.stringify(r.versions) + (r.reasons.length ? "\\n" + r.reasons.join("; ") : ""))));
}
["run", "from", "to"].forEach((id) => (document.getElementById(id).oninput = () => draw()));
window.addEventListener("resize", () => draw(current));
draw();
</script>
"""
