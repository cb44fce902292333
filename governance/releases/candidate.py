"""A release candidate: the exact versions a release would serve, and the hash that names them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Candidate:
    release: str
    image_asset: str
    image: str  # registry/repository@sha256:…
    image_digest: str
    model_asset: str
    model: str  # registered name
    model_version: str  # the version number in the registry
    dataset: str
    dataset_md5: str
    manifests_digest: str  # sha256 of what the target renders for these versions

    @property
    def model_ref(self) -> str:
        return f"{self.model}/{self.model_version}"

    @property
    def version(self) -> str:
        """The release's DataVersion: a hash of everything that would serve."""
        parts = [self.image_digest, self.model_ref, self.dataset_md5, self.manifests_digest]
        return "release-" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    def version_of(self, asset: str) -> str:
        """The candidate's version of one of its input assets, as that asset's checks record it."""
        versions = {
            self.dataset: self.dataset_md5,
            self.model_asset: self.model_version,
            self.image_asset: self.image_digest,
        }
        return versions[asset]

    def to_dict(self) -> dict[str, str]:
        return {**asdict(self), "version": self.version}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Candidate:
        return cls(**{k: v for k, v in data.items() if k != "version"})
