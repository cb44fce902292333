"""A real DVC repository (git SCM) with a local remote."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from governance.datasets.versioning import DatasetStore
from governance.errors import PermanentError, TransientError


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore(tmp_path / "repo", str(tmp_path / "remote"))


def dvc_md5(store: DatasetStore, name: str) -> str:
    return str(yaml.safe_load((store.root / "data" / f"{name}.csv.dvc").read_text())["outs"][0]["md5"])


def test_commit_history_and_export(store: DatasetStore, penguins_csv: Path, tmp_path: Path) -> None:
    assert store.current("penguins") is None and store.history("penguins") == []
    first = store.commit("penguins", penguins_csv, lambda version: None)
    assert first.md5 == dvc_md5(store, "penguins")
    assert first.size == penguins_csv.stat().st_size

    smaller = tmp_path / "smaller.csv"
    smaller.write_text("".join(penguins_csv.read_text().splitlines(keepends=True)[:100]))
    second = store.commit("penguins", smaller, lambda version: None)
    assert second.md5 != first.md5
    assert [v.md5 for v in store.history("penguins")] == [second.md5, first.md5]

    # Nothing changed: no new version.
    assert store.commit("penguins", smaller, lambda version: None) == second
    assert len(store.history("penguins")) == 2

    # An old version comes back from the remote even with the local cache gone.
    shutil.rmtree(store.root / ".dvc" / "cache")
    out = tmp_path / "old.csv"
    assert store.export("penguins", first.md5[:10], out) == first
    assert (
        hashlib.md5(out.read_bytes()).hexdigest() == hashlib.md5(penguins_csv.read_bytes()).hexdigest()
    )
    assert list((tmp_path / "remote" / "files" / "md5").glob("*/*"))


def test_unknown_and_ambiguous_versions(store: DatasetStore, penguins_csv: Path, tmp_path: Path) -> None:
    store.commit("penguins", penguins_csv, lambda version: None)
    other = tmp_path / "other.csv"
    other.write_text("species\nAdelie\n")
    store.commit("penguins", other, lambda version: None)
    with pytest.raises(PermanentError, match="no version 'ffff'"):
        store.find("penguins", "ffff")
    with pytest.raises(PermanentError, match="ambiguous"):
        store.find("penguins", "")


def test_failed_push_keeps_the_last_good_version(
    store: DatasetStore, penguins_csv: Path, tmp_path: Path
) -> None:
    good = store.commit("penguins", penguins_csv, lambda version: None)
    remote = tmp_path / "remote"
    shutil.rmtree(remote)
    remote.write_text("not a directory: the push must fail")
    changed = tmp_path / "changed.csv"
    changed.write_text(penguins_csv.read_text().replace("Torgersen", "Torgersen Island"))
    with pytest.raises(TransientError, match="could not record the new version"):
        store.commit("penguins", changed, lambda version: None)
    assert store.current("penguins") == good
    assert dvc_md5(store, "penguins") == good.md5
    assert store.workspace_file("penguins").read_bytes() == penguins_csv.read_bytes()
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=store.root, capture_output=True, text=True
    )
    assert status.stdout.strip() == ""


def test_two_homes_do_not_share_state(tmp_path: Path, penguins_csv: Path) -> None:
    a = DatasetStore(tmp_path / "a", str(tmp_path / "ra"))
    b = DatasetStore(tmp_path / "b", str(tmp_path / "rb"))
    a.commit("penguins", penguins_csv, lambda version: None)
    assert b.current("penguins") is None
    # DVC's site cache (by default shared in /var/tmp/dvc) is kept inside each repository.
    assert (a.root / ".dvc" / "tmp" / "site-cache").is_dir()
