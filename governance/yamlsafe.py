"""YAML that a user hands us, read strictly and within bounds.

`yaml.safe_load` accepts a key given twice (the last one silently wins: a reviewer reads one value,
the platform uses the other) and a "billion laughs" document whose aliases expand to more nodes than
memory holds when it is walked. Both are refused here, with the file and the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from governance.errors import ConfigError

MAX_NODES = 1_000_000
MAX_BYTES = 64 * 1024 * 1024


class _StrictLoader(yaml.CSafeLoader):
    """libyaml's parser (the locked PyYAML wheel has it): ten times faster than PyYAML's own on a
    lockfile, and it bounds nesting at 1,000 levels by itself."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path, what: str) -> Any:
    """The document in `path`, or a ConfigError naming the file and what is wrong with it."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_BYTES // 2**20} MiB; not a {what}")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as a {what}: {exc}") from None
    return parse_yaml(text, f"{path}", what)


def parse_yaml(text: str, where: str, what: str) -> Any:
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # its reader refuses control characters already
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_NODES:
            raise ConfigError(
                f"{where}: expands to more than {MAX_NODES:,} nodes through its aliases; "
                f"refused as a {what}"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"{where}: not valid YAML{at} ({what}): {problem}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be a {what}") from None
    except (ValueError, OverflowError) as exc:  # a scalar its constructor refuses (a huge integer)
        raise ConfigError(f"{where}: not a valid {what}: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes the document has once every alias is expanded (each shared node counted per use)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = size = min(size, MAX_NODES + 1)
    return size
