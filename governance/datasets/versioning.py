"""Dataset versions with DVC, history in git.

The DVC repository lives under `$GOVERNANCE_HOME/datasets` with git as its SCM: each version is a
commit of `data/<name>.csv.dvc`, so the history of that file is the dataset's version history and any
version can be read back from the DVC cache or remote. The version id is the md5 DVC records; it is
read from DVC, never recomputed (DVC normalises text line endings before hashing, dvc#4658).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from governance.errors import AuditUnavailable, PermanentError, TransientError
from governance.locks import LOCAL, Locks

if TYPE_CHECKING:
    from dvc.repo import Repo

_GIT_IDENTITY = ["-c", "user.name=governance", "-c", "user.email=governance@localhost"]


@dataclass(frozen=True)
class DatasetVersion:
    md5: str
    size: int
    committed_at: str
    commit: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DatasetStore:
    """Commit, list and read back dataset versions; one writer at a time per repository."""

    def __init__(self, root: Path, remote_url: str, locks: Locks = LOCAL) -> None:
        self.root = root
        self.remote_url = remote_url
        self.locks = locks  # an advisory lock when runs in several containers share the repository

    def workspace_file(self, name: str) -> Path:
        return self.root / "data" / f"{name}.csv"

    def commit(
        self, name: str, staged: Path, record: Callable[[DatasetVersion], object]
    ) -> DatasetVersion:
        """Make `staged` the current version and `record` it (the audit record), together: when
        either fails, the previous version stays current."""
        with self.locks.hold("datasets-repository", self.root.parent / f".{self.root.name}.lock"):
            repo = self._repo()
            head = self._git("rev-parse", "HEAD").strip()
            target = self.workspace_file(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staged, target)
            try:
                repo.add(str(target))
                repo.push()
                self._git("add", f"data/{name}.csv.dvc", "data/.gitignore")
                if self._git("status", "--porcelain", f"data/{name}.csv.dvc"):
                    md5 = self._read_md5(self._dvc_file(name).read_text())
                    self._git(*_GIT_IDENTITY, "commit", "-q", "-m", f"{name} {md5}")
            except Exception as exc:
                self._restore(repo, name)
                raise TransientError(f"{name}: could not record the new version in DVC: {exc}") from None
            current = self.current(name)
            assert current is not None
            try:
                record(current)
            except Exception as exc:
                self._git("reset", "-q", "--hard", head)
                self._restore(repo, name)
                raise AuditUnavailable(
                    f"{name} {current.md5}: publication undone, because it could not be recorded: {exc}"
                ) from None
        return current

    def current(self, name: str) -> DatasetVersion | None:
        history = self.history(name, limit=1)
        return history[0] if history else None

    def history(self, name: str, limit: int | None = None) -> list[DatasetVersion]:
        """Versions, newest first."""
        if not (self.root / ".git").exists():
            return []
        args = [
            "log",
            "--format=%H %cI",
            *([f"-{limit}"] if limit else []),
            "--",
            f"data/{name}.csv.dvc",
        ]
        versions = []
        for line in self._git(*args).splitlines():
            commit, committed_at = line.split(" ", 1)
            text = self._git("show", f"{commit}:data/{name}.csv.dvc")
            out = yaml.safe_load(text)["outs"][0]
            versions.append(DatasetVersion(out["md5"], int(out["size"]), committed_at, commit))
        return versions

    def export(self, name: str, md5: str, destination: Path) -> DatasetVersion:
        """Write version `md5` (a unique prefix will do) of the dataset to `destination`."""
        import dvc.api

        version = self.find(name, md5)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with (
            dvc.api.open(f"data/{name}.csv", repo=str(self.root), rev=version.commit, mode="rb") as src,
            open(destination, "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
        return version

    def find(self, name: str, md5: str) -> DatasetVersion:
        matches = [v for v in self.history(name) if v.md5.startswith(md5.lower())]
        if not matches:
            raise PermanentError(f"{name}: no version {md5!r} (see `governance datasets list`)")
        if len({v.md5 for v in matches}) > 1:
            raise PermanentError(f"{name}: version prefix {md5!r} is ambiguous")
        return matches[0]

    def _dvc_file(self, name: str) -> Path:
        return self.root / "data" / f"{name}.csv.dvc"

    @staticmethod
    def _read_md5(dvc_text: str) -> str:
        return str(yaml.safe_load(dvc_text)["outs"][0]["md5"])

    def _restore(self, repo: Repo, name: str) -> None:
        """Put back the committed `.dvc` file and its data, so the last good version stays current."""
        if self.current(name) is None:
            self._dvc_file(name).unlink(missing_ok=True)
            self.workspace_file(name).unlink(missing_ok=True)
            return
        self._git("checkout", "--", f"data/{name}.csv.dvc")
        repo.checkout(targets=[str(self._dvc_file(name))], force=True)

    def _repo(self) -> Repo:
        from dvc.repo import Repo

        logging.getLogger("dvc").setLevel(logging.WARNING)  # DVC's CLI hints mean nothing here
        if not (self.root / ".dvc").exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q")
            Repo.init(str(self.root))
        repo = Repo(str(self.root))
        site_cache = str(self.root / ".dvc" / "tmp" / "site-cache")
        core, remote = repo.config["core"], repo.config["remote"].get("store", {})
        if (
            core.get("remote") == "store"
            and core.get("site_cache_dir") == site_cache
            and remote.get("url") == self.remote_url
        ):
            return repo  # configured and committed already: no rewrite, no git calls per commit
        with repo.config.edit() as config:
            config["core"]["analytics"] = False
            config["core"]["remote"] = "store"
            # Keep DVC's site cache (normally /var/tmp/dvc) per home so two homes never share state.
            config["core"]["site_cache_dir"] = site_cache
            config["remote"]["store"] = {"url": self.remote_url}
        # Reading an old version uses that commit's config, so the remote must be committed too.
        self._git("add", ".dvc/config", ".dvcignore")
        if self._git("status", "--porcelain", ".dvc/config", ".dvcignore"):
            self._git(*_GIT_IDENTITY, "commit", "-q", "-m", "configure dataset repository")
        return Repo(str(self.root))

    def _git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=self.root, capture_output=True, text=True, env=_git_env()
        )
        if result.returncode != 0:
            raise TransientError(f"git {args[0]} in {self.root} failed: {result.stderr.strip()}")
        return result.stdout


def _git_env() -> dict[str, str]:
    """Git must not read the operator's global config (hooks, signing) for this internal repo."""
    return {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
