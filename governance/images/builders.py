"""Image builders behind one interface: buildah (daemonless, the default) and a Docker engine.

Both report each Dockerfile step with whether it came from the layer cache and how long it took,
which is what tells a reviewer whether a build was slow because something real changed.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from governance.errors import PermanentError, TransientError
from governance.images.containers import ContainerStorage, is_transient_output, run_streaming

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path
    tag: str
    build_args: Mapping[str, str]
    no_cache: bool = False
    # Named build contexts (`--from=name` in COPY and RUN --mount), read where they are: a pnpm
    # store's ten thousand files staged into the context cost a second a build, and as much again
    # for buildah to walk them.
    contexts: Mapping[str, Path] = field(default_factory=dict)


@dataclass
class Step:
    number: int
    instruction: str
    cached: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class BuildOutcome:
    image_id: str
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def cached_steps(self) -> int:
        return sum(1 for step in self.steps if step.cached)


class Builder(Protocol):
    name: str

    def build(self, request: BuildRequest, progress: Progress) -> BuildOutcome: ...

    def push(self, image_id: str, destination: str, progress: Progress) -> str:
        """Push to `registry/repository:tag`; returns the manifest digest."""
        ...

    def size(self, image_id: str) -> int:
        """Uncompressed size in bytes."""
        ...


class StepClock:
    """Turns a build's output lines into timed steps, whichever builder printed them."""

    def __init__(self, step_line: re.Pattern[str], cache_line: re.Pattern[str], progress: Progress):
        self.steps: list[Step] = []
        self._step_line, self._cache_line = step_line, cache_line
        self._progress = progress
        self._started = time.monotonic()
        self._mark = self._started

    def line(self, text: str) -> None:
        self._progress(text)
        match = self._step_line.match(text)
        if match:
            self._close()
            self.steps.append(Step(len(self.steps) + 1, match["instruction"].strip()))
        elif self._cache_line.search(text) and self.steps:
            self.steps[-1].cached = True

    def finish(self, image_id: str) -> BuildOutcome:
        self._close()
        return BuildOutcome(image_id, self.steps, time.monotonic() - self._started)

    def _close(self) -> None:
        now = time.monotonic()
        if self.steps:
            self.steps[-1].seconds = round(now - self._mark, 3)
        self._mark = now


class BuildahBuilder:
    """`buildah bud --layers` on overlay storage, RUN steps in runc without a network."""

    name = "buildah"
    _STEP = re.compile(r"^(?P<stage>\[\d+/\d+\] )?STEP \d+/\d+: (?P<instruction>.*)$")
    _CACHED = re.compile(r"^--> Using cache ")

    def __init__(self, storage: ContainerStorage):
        self.storage = storage

    def build(self, request: BuildRequest, progress: Progress) -> BuildOutcome:
        id_file = request.context.parent / f".{request.context.name}.iid"
        # OCI isolation (runc) rather than chroot, because only it can take the network away:
        # `--network none` makes a build that tries to reach the network fail instead of drifting.
        command = [
            "buildah",
            "bud",
            "--layers",
            "--isolation",
            "oci",
            "--network",
            "none",
            "--format",
            "oci",
        ]
        if request.no_cache:
            command.append("--no-cache")
        for name, value in request.build_args.items():
            command += ["--build-arg", f"{name}={value}"]
        for name, path in request.contexts.items():
            command += ["--build-context", f"{name}={path}"]
        command += ["--iidfile", str(id_file), "-f", str(request.dockerfile), "-t", request.tag]
        clock = StepClock(self._STEP, self._CACHED, progress)
        env = self.storage.environment()
        with tempfile.TemporaryDirectory(dir=env["TMPDIR"]) as scratch:
            if request.no_cache:  # nor a RUN --mount=type=cache's content: under an empty $TMPDIR
                env["TMPDIR"] = scratch
            run_streaming(
                [*command, str(request.context)],
                what=f"build of {request.tag}",
                env=env,
                on_line=clock.line,
            )
        return clock.finish(id_file.read_text().strip().removeprefix("sha256:"))

    def push(self, image_id: str, destination: str, progress: Progress) -> str:
        digest_file = self.storage.root / "digests" / image_id
        digest_file.parent.mkdir(parents=True, exist_ok=True)
        self.storage.run(
            ["buildah", "push", "--digestfile", str(digest_file), image_id, f"docker://{destination}"],
            what=f"push to {destination}",
            on_line=progress,
            timeout_s=600,
        )
        return digest_file.read_text().strip()

    def size(self, image_id: str) -> int:
        output = self.storage.run(
            ["podman", "image", "inspect", "--format", "{{.Size}}", image_id], what="image size"
        )
        return int(output.strip().splitlines()[-1])


class DockerBuilder:
    """A Docker engine (or BuildKit behind it) through the Docker SDK, where a daemon is reachable."""

    name = "docker"
    _STEP = re.compile(r"^Step \d+/\d+ : (?P<instruction>.*)$")
    _CACHED = re.compile(r"Using cache")

    def __init__(self, base_url: str | None = None, timeout_s: int = 600):
        import docker  # heavy, and only needed where this builder is configured

        try:
            self.client = (
                docker.DockerClient(base_url=base_url, timeout=timeout_s)
                if base_url
                else docker.from_env(timeout=timeout_s)
            )
            self.client.ping()
        except docker.errors.DockerException as exc:
            where = base_url or "DOCKER_HOST or /var/run/docker.sock"
            raise PermanentError(
                f"no Docker engine reachable at {where} ({_first_line(exc)}): "
                "use `builder: buildah` (the default) or point DOCKER_HOST at a daemon"
            ) from None

    def build(self, request: BuildRequest, progress: Progress) -> BuildOutcome:
        if request.contexts:
            raise PermanentError(
                f"build of {request.tag}: the Docker SDK's build API cannot pass named build "
                f"contexts ({', '.join(request.contexts)}), through which the fetched dependencies "
                "reach the build: use `builder: buildah` (the default)"
            )
        clock = StepClock(self._STEP, self._CACHED, progress)
        image_id = ""
        stream = self.client.api.build(
            path=str(request.context),
            dockerfile=str(request.dockerfile.relative_to(request.context)),
            tag=request.tag,
            buildargs=dict(request.build_args),
            nocache=request.no_cache,
            rm=True,
            decode=True,
        )
        for chunk in stream:
            _raise_on_error(chunk, f"build of {request.tag}")
            for text in str(chunk.get("stream", "")).splitlines():
                clock.line(text.strip())
            image_id = chunk.get("aux", {}).get("ID", image_id)
        return clock.finish(image_id.removeprefix("sha256:"))

    def push(self, image_id: str, destination: str, progress: Progress) -> str:
        repository, _, tag = destination.rpartition(":")
        self.client.images.get(image_id).tag(repository, tag)
        digest = ""
        for chunk in self.client.api.push(repository, tag=tag, stream=True, decode=True):
            _raise_on_error(chunk, f"push to {destination}")
            if "status" in chunk:
                progress(str(chunk["status"]))
            digest = chunk.get("aux", {}).get("Digest", digest)
        return digest

    def size(self, image_id: str) -> int:
        return int(self.client.images.get(image_id).attrs["Size"])


def _raise_on_error(chunk: dict[str, Any], what: str) -> None:
    if "error" in chunk:
        message = str(chunk["error"])
        error = TransientError if is_transient_output(message) else PermanentError
        raise error(f"{what} failed: {message}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
