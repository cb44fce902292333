"""Base images built from Debian packages, for machines that cannot pull upstream images.

`mmdebstrap` makes a minimal root filesystem with the declared packages and a non-root user, plus
the files of an npm registry package where Debian's version is too old (Node); a `FROM scratch`
build turns it into an image, pushed to the registry. The tag is a hash of the recipe, so a changed
package list or pin builds a new base and an unchanged one is never rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from governance.config import BaseImageSpec, ImagesSection, NpmBinarySpec
from governance.errors import PermanentError
from governance.images.containers import ContainerStorage
from governance.images.dependencies import npm_package
from governance.images.registry import manifest_digest
from governance.locks import file_lock

_RECIPE = 2  # bump when the way a base is built changes
_HOSTS = r"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
_EXCLUDES = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*"]


@dataclass(frozen=True)
class BaseImage:
    name: str
    reference: str  # registry/repository@sha256:…
    digest: str
    built: bool
    seconds: float


def recipe_tag(spec: BaseImageSpec, mirror: str) -> str:
    recipe: list[object] = [_RECIPE, spec.suite, sorted(spec.packages), spec.user_id, mirror]
    if spec.from_npm is not None:
        recipe.append(spec.from_npm.model_dump())
    digest = hashlib.sha256(json.dumps(recipe, separators=(",", ":")).encode()).hexdigest()
    return f"{spec.suite}-{digest[:12]}"


def ensure_base(
    name: str, section: ImagesSection, storage: ContainerStorage, progress: Callable[[str], None]
) -> BaseImage:
    """The base image by digest: from the registry when it has this recipe, else built and pushed."""
    started = time.monotonic()
    spec = section.bases[name]
    tag = recipe_tag(spec, section.debian_mirror)
    with file_lock(storage.root / "locks" / f"base-{name}.lock"):
        digest = manifest_digest(storage.registry, spec.repository, tag)
        built = digest is None
        if digest is None:
            progress(f"base {name}: not in {storage.registry}, building from Debian {spec.suite}")
            digest = _build(spec, storage, tag, section, progress)
    return BaseImage(
        name,
        f"{storage.registry}/{spec.repository}@{digest}",
        digest,
        built,
        time.monotonic() - started,
    )


def _npm_hooks(binary: NpmBinarySpec, tools: Path, npm_url: str) -> list[str]:
    """mmdebstrap hooks copying the package's files in, fetched and checked against the pin."""
    package = npm_package(binary.package, binary.version, tools, npm_url, binary.integrity)
    hooks = []
    for source, directory in binary.files.items():
        if not (package / source).exists():
            raise PermanentError(f"{binary.package}@{binary.version} has no file {source}")
        hooks += [
            f'--customize-hook=mkdir -p "$1"{directory}',
            f"--customize-hook=copy-in {package / source} {directory}",
        ]
    return hooks


def _build(
    spec: BaseImageSpec,
    storage: ContainerStorage,
    tag: str,
    section: ImagesSection,
    progress: Callable[[str], None],
) -> str:
    workdir = storage.root / "bases" / tag
    workdir.mkdir(parents=True, exist_ok=True)
    rootfs = workdir / "rootfs.tar"
    if not rootfs.is_file():
        binary = spec.from_npm
        npm = [] if binary is None else _npm_hooks(binary, workdir / "npm", section.npm_url)
        partial = workdir / "rootfs.partial.tar"
        storage.run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--format=tar",
                f"--include={','.join(spec.packages)}",
                *[f"--dpkgopt=path-exclude={pattern}" for pattern in _EXCLUDES],
                '--aptopt=Acquire::Retries "3"',
                f'--customize-hook=chroot "$1" useradd --uid {spec.user_id} --create-home '
                "--shell /usr/sbin/nologin app",
                '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
                # A RUN step without a network gets no /etc/hosts from the builder, and tools that
                # bind to "localhost" (test runners, dev servers) must still resolve it.
                f"--customize-hook=printf '{_HOSTS}' > \"$1\"/etc/hosts",
                *npm,
                spec.suite,
                str(partial),
                section.debian_mirror,
            ],
            what=f"mmdebstrap {spec.repository}",
            timeout_s=900,
            on_line=progress,
        )
        partial.rename(rootfs)
    (workdir / "Containerfile").write_text(
        'FROM scratch\nADD rootfs.tar /\nCMD ["/bin/sh"]\n'  # apps choose their USER, as with Debian's
    )
    local = f"{storage.registry}/{spec.repository}:{tag}"
    storage.run(
        [
            "buildah",
            "bud",
            "--layers",
            "--isolation",
            "chroot",
            "--format",
            "oci",
            "-t",
            local,
            str(workdir),
        ],
        what=f"build base {spec.repository}",
        on_line=progress,
    )
    digest_file = workdir / "digest"
    storage.run(
        ["buildah", "push", "--digestfile", str(digest_file), local, f"docker://{local}"],
        what=f"push base {spec.repository}",
        on_line=progress,
    )
    rootfs.unlink()  # the registry holds it now, with any npm package's files
    shutil.rmtree(workdir / "npm", ignore_errors=True)
    return digest_file.read_text().strip()
