"""Base images built from Debian packages, for machines that cannot pull upstream images.

`mmdebstrap` makes a minimal root filesystem with the declared packages and a non-root user; a
`FROM scratch` build turns it into an image, pushed to the registry. The tag is a hash of the
recipe, so a changed package list builds a new base and an unchanged one is never rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from governance.config import BaseImageSpec
from governance.images.containers import ContainerStorage
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
    recipe = json.dumps(
        [_RECIPE, spec.suite, sorted(spec.packages), spec.user_id, mirror], separators=(",", ":")
    )
    return f"{spec.suite}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def ensure_base(
    name: str,
    spec: BaseImageSpec,
    storage: ContainerStorage,
    *,
    mirror: str,
    progress: Callable[[str], None],
) -> BaseImage:
    """The base image by digest: from the registry when it has this recipe, else built and pushed."""
    started = time.monotonic()
    tag = recipe_tag(spec, mirror)
    with file_lock(storage.root / "locks" / f"base-{name}.lock"):
        digest = manifest_digest(storage.registry, spec.repository, tag)
        built = digest is None
        if digest is None:
            progress(f"base {name}: not in {storage.registry}, building from Debian {spec.suite}")
            digest = _build(spec, storage, tag, mirror, progress)
    return BaseImage(
        name,
        f"{storage.registry}/{spec.repository}@{digest}",
        digest,
        built,
        time.monotonic() - started,
    )


def _build(
    spec: BaseImageSpec,
    storage: ContainerStorage,
    tag: str,
    mirror: str,
    progress: Callable[[str], None],
) -> str:
    workdir = storage.root / "bases" / tag
    workdir.mkdir(parents=True, exist_ok=True)
    rootfs = workdir / "rootfs.tar"
    if not rootfs.is_file():
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
                spec.suite,
                str(partial),
                mirror,
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
    rootfs.unlink()  # the registry holds it now
    return digest_file.read_text().strip()
