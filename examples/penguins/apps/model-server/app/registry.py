"""The model version from the MLflow server: `MODEL_URI=models:/<name>/<version>` on
`MLFLOW_TRACKING_URI`, downloaded through the server's proxied-artifact API (`mlflow server
--artifacts-destination`) and verified against `MODEL_DIGEST` before it is loaded, so a pod serves
exactly the version the release's gates passed, with no volume to fill by hand.

Plain HTTP from the standard library: the server image stays free of the MLflow client.
The digest is the platform's (governance/models/digest.py): sha256 of the `sha256sum` listing of
every file, paths relative and sorted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

TIMEOUT_S = 30


class FetchError(Exception):
    """The version cannot be served as asked (retrying will not help)."""


def parse(model_uri: str) -> tuple[str, str]:
    name, _, version = model_uri.removeprefix("models:/").rpartition("/")
    if not model_uri.startswith("models:/") or not name or not version.isdigit():
        raise FetchError(f"MODEL_URI {model_uri!r} is not models:/<name>/<version>")
    return name, version


def fetch(tracking_uri: str, model_uri: str, expected: str, destination: Path) -> Path:
    """The verified model directory at `destination` (raises FetchError, or OSError to retry)."""
    if not expected.startswith("sha256:"):
        raise FetchError("MODEL_DIGEST is not set: a fetched model is only served once verified")
    name, version = parse(model_uri)
    base = tracking_uri.rstrip("/")
    query = urlencode({"name": name, "version": version})
    located = _json(f"{base}/api/2.0/mlflow/model-versions/get-download-uri?{query}")
    artifact_uri = str(located.get("artifact_uri", ""))
    if not artifact_uri.startswith("mlflow-artifacts:"):
        raise FetchError(
            f"{model_uri} is stored at {artifact_uri!r}; serve it from an MLflow server with "
            "proxied artifacts (--artifacts-destination)"
        )
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _download(base, urlsplit(artifact_uri).path.strip("/"), partial)
    actual = digest(partial)
    if actual != expected:
        shutil.rmtree(partial)
        raise FetchError(f"{model_uri}: downloaded digest {actual} is not MODEL_DIGEST {expected}")
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return destination


def digest(directory: Path) -> str:
    files = {p.relative_to(directory).as_posix(): p for p in directory.rglob("*") if p.is_file()}
    listing = "".join(
        f"{hashlib.sha256(files[name].read_bytes()).hexdigest()}  {name}\n" for name in sorted(files)
    )
    return "sha256:" + hashlib.sha256(listing.encode()).hexdigest()


def _download(base: str, root: str, target: Path) -> None:
    listed = _json(f"{base}/api/2.0/mlflow-artifacts/artifacts?{urlencode({'path': root})}")
    for entry in listed.get("files", []):
        name = str(entry["path"])
        if name in ("", ".", "..") or "/" in name:
            raise FetchError(f"the MLflow server listed an unsafe artifact name {name!r}")
        if entry.get("is_dir"):
            (target / name).mkdir()
            _download(base, f"{root}/{name}", target / name)
            continue
        url = f"{base}/api/2.0/mlflow-artifacts/artifacts/{quote(f'{root}/{name}')}"
        with _open(url) as response, (target / name).open("wb") as out:
            shutil.copyfileobj(response, out)


def _json(url: str) -> dict[str, object]:
    with _open(url) as response:
        answer = json.load(response)
    return answer if isinstance(answer, dict) else {}


def _open(url: str):  # type: ignore[no-untyped-def]
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code in (400, 403, 404):
            detail = exc.read(500).decode("utf-8", "replace")
            raise FetchError(f"GET {url} answered {exc.code}: {detail}") from None
        raise
