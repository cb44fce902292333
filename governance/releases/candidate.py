"""A release candidate: the exact versions a release would serve, and the hash that names them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ServedModel:
    """The model version a candidate serves, and the dataset version it was trained on."""

    asset: str
    name: str  # registered name
    version: str  # the version number in the registry
    dataset: str
    dataset_md5: str

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class Candidate:
    release: str
    image_asset: str
    image: str  # registry/repository@sha256:…
    image_digest: str
    manifests_digest: str  # sha256 of what the target renders for these versions
    model: ServedModel | None = None  # None for an app that serves no model (a web front end)

    @property
    def model_ref(self) -> str:
        return self.model.ref if self.model else ""

    @property
    def version(self) -> str:
        """The release's DataVersion: a hash of everything that would serve."""
        dataset_md5 = self.model.dataset_md5 if self.model else ""
        parts = [self.image_digest, self.model_ref, dataset_md5, self.manifests_digest]
        return "release-" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    def versions(self) -> dict[str, str]:
        """The candidate's version of each of its input assets, as that asset's checks record it."""
        versions = {self.image_asset: self.image_digest}
        if self.model is not None:
            versions |= {
                self.model.dataset: self.model.dataset_md5,
                self.model.asset: self.model.version,
            }
        return versions

    def to_dict(self) -> dict[str, str]:
        """Flat, as stored in release state and shown in metadata (model keys only with a model)."""
        data = {k: v for k, v in asdict(self).items() if k != "model"}
        if self.model is not None:
            m = self.model
            data |= {
                "model_asset": m.asset,
                "model": m.name,
                "model_version": m.version,
                "dataset": m.dataset,
                "dataset_md5": m.dataset_md5,
            }
        return {**data, "version": self.version}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Candidate:
        """The stored form back; a record missing a field is refused with the field's name."""

        def field(key: str) -> str:
            if key not in data:
                raise ValueError(f"a candidate without {key!r}")
            return data[key]

        model = None
        if data.get("model"):
            model = ServedModel(
                asset=field("model_asset"),
                name=field("model"),
                version=field("model_version"),
                dataset=field("dataset"),
                dataset_md5=field("dataset_md5"),
            )
        return cls(
            release=field("release"),
            image_asset=field("image_asset"),
            image=field("image"),
            image_digest=field("image_digest"),
            manifests_digest=field("manifests_digest"),
            model=model,
        )


def served_versions(candidate: Candidate) -> dict[str, str]:
    """What a release serves, as its audit records and status name it."""
    versions = {"release": candidate.version, "image": candidate.image_digest}
    if candidate.model is not None:
        versions |= {"model_version": candidate.model_ref, "dataset_md5": candidate.model.dataset_md5}
    return versions
