"""Load user code named in `governance.yaml` (`file.py:function`) without installing it."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from typing import Any

from governance.config import CallableRef
from governance.errors import ConfigError


def load_callable(ref: CallableRef) -> Callable[..., Any]:
    module_name = "governance_plugin_" + hashlib.sha1(str(ref.file).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, ref.file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{ref.file}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    func: Callable[..., Any] | None = getattr(module, ref.function, None)
    if not callable(func):
        raise ConfigError(f"{ref.file}: has no function {ref.function!r}")
    return func
