"""Validate events against the OpenLineage spec's own JSON schemas (shared/fixtures/openlineage-spec)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tests.conftest import SHARED_FIXTURES

SPEC = SHARED_FIXTURES / "openlineage-spec"
SLOTS = {"facets": None, "inputFacets": "InputDatasetFacet", "outputFacets": "OutputDatasetFacet"}


@cache
def _schemas() -> tuple[Registry, dict[str, dict[str, Any]], str]:
    core = json.loads((SPEC / "OpenLineage.json").read_text())
    facets = {path.name: json.loads(path.read_text()) for path in (SPEC / "facets").glob("*.json")}
    resources = [(s["$id"], Resource.from_contents(s)) for s in [core, *facets.values()]]
    return Registry().with_resources(resources), facets, core["$id"]


def _validate(instance: Any, ref: str) -> list[str]:
    registry, _, _ = _schemas()
    validator = Draft202012Validator({"$ref": ref}, registry=registry)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)
    ]


def spec_errors(event: dict[str, Any]) -> list[str]:
    """Every way `event` breaks the spec: the core RunEvent schema, then each facet's own schema."""
    _, facet_files, core_id = _schemas()
    errors = _validate(event, f"{core_id}#/$defs/RunEvent")
    holders = [("run", event["run"]), ("job", event["job"])]
    holders += [(f"inputs[{i}]", d) for i, d in enumerate(event.get("inputs", []))]
    holders += [(f"outputs[{i}]", d) for i, d in enumerate(event.get("outputs", []))]
    for where, holder in holders:
        for slot, base in SLOTS.items():
            for key, facet in (holder.get(slot) or {}).items():
                file_name = facet["_schemaURL"].split("#")[0].rsplit("/", 1)[-1]
                schema = facet_files.get(file_name)
                if schema is None:
                    errors.append(f"{where}.{slot}.{key}: no spec schema {file_name}")
                    continue
                definition = file_name.removesuffix(".json")
                if key not in schema.get("properties", {}):
                    published = list(schema["properties"])
                    errors.append(f"{where}.{slot}.{key}: {definition} is published under {published}")
                declared_base = (
                    json.dumps(schema["$defs"][definition]).split("#/$defs/")[1].split('"')[0]
                )
                if base is not None and declared_base != base:
                    errors.append(f"{where}.{slot}.{key}: a {declared_base}, not allowed in {slot}")
                if base is None and declared_base in ("InputDatasetFacet", "OutputDatasetFacet"):
                    home = "inputFacets" if declared_base == "InputDatasetFacet" else "outputFacets"
                    errors.append(f"{where}.{slot}.{key}: a {declared_base} belongs in {home}")
                errors += [
                    f"{where}.{slot}.{key}: {e}"
                    for e in _validate(facet, f"{schema['$id']}#/$defs/{definition}")
                ]
    return errors
