"""Data Docs' third-party styles and scripts, served by the site from pinned npm packages instead of
the CDNs Great Expectations names, so a page renders offline and tells no third party it was opened
(GX's logo is a tracking image carrying the context's id: it is dropped).

`site_vendor.json` is the lockfile: each package's version and the registry's sha512 integrity,
and which CDN URL each of its files replaces. The tarballs are fetched once into a cache shared by
every home and checked against that integrity.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from governance.errors import GovernanceError

LOCK = Path(__file__).with_name("site_vendor.json")
PREFIX = "/vendor/"
_BEACON = re.compile(r"https://great-expectations-web-assets\.s3[^\"')\s]*")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str
    serves: dict[str, str]  # CDN URL -> file in the package

    @property
    def route(self) -> str:
        return f"{PREFIX}{self.name}@{self.version}/"


@dataclass(frozen=True)
class Vendor:
    directory: Path
    npm_url: str

    def packages(self) -> list[Package]:
        return [Package(**entry) for entry in json.loads(LOCK.read_text())["packages"]]

    def fetch(self) -> list[str]:
        """Fetch what the cache lacks; returns one line per package that could not be had."""
        from governance.images.dependencies import npm_package

        problems = []
        for package in self.packages():
            try:
                npm_package(
                    package.name, package.version, self.directory, self.npm_url, package.integrity
                )
            except GovernanceError as exc:
                problems.append(f"{package.name}@{package.version}: {exc}")
        return problems

    def rewrite(self, page: str) -> str:
        """A Data Docs page with its CDN URLs pointing here, and GX's tracking logo gone."""
        for package in self.packages():
            for url, file in package.serves.items():
                page = page.replace(url, package.route + file)
        return _BEACON.sub("", page)

    def file(self, url_path: str) -> Path | None:
        """The file under a locked package that `/vendor/NAME@VERSION/PATH` names, or None."""
        for package in self.packages():
            if url_path.startswith(package.route):
                root = (self.directory / f"{package.name}-{package.version}").resolve()
                path = (root / url_path.removeprefix(package.route)).resolve()
                return path if path.is_relative_to(root) and path.is_file() else None
        return None
