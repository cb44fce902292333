"""The OCI registry images are pushed to: a `docker-registry` (Debian's distribution registry) on
loopback by default, started here with its storage under the home; any registry by config."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from governance import background
from governance.errors import PermanentError, TransientError
from governance.images.preflight import registry_reachable

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def manifest_digest(
    registry: str, repository: str, reference: str, timeout_s: float = 5.0
) -> str | None:
    """The digest a tag (or digest) resolves to, or None when the registry does not have it."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        method="HEAD",
        headers={"Accept": MANIFEST_TYPES},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return str(response.headers["Docker-Content-Digest"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        error = TransientError if exc.code >= 500 else PermanentError
        raise error(f"registry {registry}: {repository}:{reference} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TransientError(f"registry {registry} unreachable: {getattr(exc, 'reason', exc)}") from None


def image_manifest(
    registry: str, repository: str, digest: str, timeout_s: float = 5.0
) -> dict[str, Any]:
    """An image's manifest as the registry serves it: its config and its layers, compressed."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_TYPES}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return dict(json.load(response))


def manifest_size(registry: str, repository: str, digest: str, timeout_s: float = 5.0) -> int:
    """Bytes a pull transfers: the config and the compressed layers of the manifest."""
    image = image_manifest(registry, repository, digest, timeout_s)
    return int(image["config"]["size"]) + sum(int(layer["size"]) for layer in image["layers"])


def answering(registry: str, timeout_s: float = 2.0) -> bool:
    return registry_reachable(f"http://{registry}/v2/", timeout_s).ok


def start_registry(address: str, storage: Path, timeout_s: float = 15.0) -> int | None:
    """Start a loopback registry in the background unless one answers; returns the new pid."""
    if answering(address):
        return None
    storage.mkdir(parents=True, exist_ok=True)
    config = storage / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {storage / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '{address}'}}\n"
    )
    return background.start(
        ["docker-registry", "serve", str(config)],
        directory=storage,
        name="registry",
        answering=lambda: answering(address, 0.5),
        what=f"docker-registry on {address}",
        timeout_s=timeout_s,
    )


def stop_registry(storage: Path) -> bool:
    return background.stop(storage, "registry")
