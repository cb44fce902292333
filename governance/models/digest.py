"""A model version's content digest: how a server that fetches the version proves it got exactly
what the gates passed.

The digest is the sha256 of the directory's `sha256sum` listing: one `<hex>  <path>` line per file,
paths relative with `/`, sorted. It is recorded on the registered version (tag `DIGEST_TAG`) when
the version is registered, pinned by the release controller in the serving pods' environment, and
computed again by the model server over what it downloads (the same few lines in its own code:
the server does not import the platform).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

DIGEST_TAG = "governance.model_digest"
MARKERS = frozenset({".complete"})  # the platform's own download marker, not the model's


def model_digest(directory: Path) -> str:
    files = {
        path.relative_to(directory).as_posix(): path
        for path in directory.rglob("*")
        if path.is_file() and path.name not in MARKERS
    }
    listing = "".join(
        f"{hashlib.sha256(files[name].read_bytes()).hexdigest()}  {name}\n" for name in sorted(files)
    )
    return "sha256:" + hashlib.sha256(listing.encode()).hexdigest()
