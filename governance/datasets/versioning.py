"""Dataset versions with DVC, history in git.

The DVC repository lives under `$GOVERNANCE_HOME/datasets` with git as its SCM: each version is a
commit of `data/<name>.csv.dvc`, so the history of that file is the dataset's version history and any
version can be read back from the DVC cache or remote. The version id is the md5 DVC records; it is
read from DVC, never recomputed (DVC normalises text line endings before hashing, dvc#4658).

Runs in separate containers each keep a working copy of their own and share a git remote
(a bare repository on the volume they all mount, GOVERNANCE_SHARED_DIR) and the DVC remote:
a publication fetches, commits, pushes the data and then the commit, all under the repository's
lock, so every run starts from the newest version and no publication is lost.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from governance.errors import AuditUnavailable, PermanentError, TransientError
from governance.locks import LOCAL, Locks

if TYPE_CHECKING:
    from dvc.repo import Repo

_GIT_IDENTITY = ["-c", "user.name=governance", "-c", "user.email=governance@localhost"]
_BRANCH = "main"


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

    def __init__(
        self, root: Path, remote_url: str, locks: Locks = LOCAL, git_remote: str | None = None
    ) -> None:
        self.root = root
        self.remote_url = remote_url
        self.locks = locks  # an advisory lock when runs in several containers share the repository
        self.git_remote = git_remote  # the history every working copy pushes to and fetches from

    def _lock(self) -> AbstractContextManager[None]:
        """One publisher at a time per repository: per shared remote, or per working copy."""
        shared = Path(f"{self.git_remote}.lock") if self.git_remote else None
        return self.locks.hold(
            "datasets-repository", shared or self.root.parent / f".{self.root.name}.lock"
        )

    def workspace_file(self, name: str) -> Path:
        return self.root / "data" / f"{name}.csv"

    def commit(
        self, name: str, staged: Path, record: Callable[[DatasetVersion], object]
    ) -> DatasetVersion:
        """Make `staged` the current version and `record` it (the audit record), together: when
        either fails, the previous version stays current."""
        with self._lock():
            repo = self._repo()
            self._sync()
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
                    self._push()
            except Exception as exc:
                self._git("reset", "-q", "--hard", head)
                self._restore(repo, name)
                raise TransientError(f"{name}: could not record the new version in DVC: {exc}") from None
            (current,) = self._history(name, limit=1)
            try:
                record(current)
            except Exception as exc:
                self._git("reset", "-q", "--hard", head)
                self._push(force=True)  # under the lock: nobody published after it
                self._restore(repo, name)
                raise AuditUnavailable(
                    f"{name} {current.md5}: publication undone, because it could not be recorded: {exc}"
                ) from None
        return current

    def checked_out(self, name: str) -> Path:
        """The working copy's file of the dataset: what the daily check validates, so an edit
        behind DVC's back is caught. With a git remote, first brought to the remote's current
        version (another run's copy may have published it)."""
        if self.git_remote:
            with self._lock():
                repo = self._repo()
                self._sync()
                repo.pull(targets=[str(self._dvc_file(name))], force=True)
        return self.workspace_file(name)

    def current(self, name: str) -> DatasetVersion | None:
        history = self.history(name, limit=1)
        return history[0] if history else None

    def history(self, name: str, limit: int | None = None) -> list[DatasetVersion]:
        """Versions, newest first (with a git remote: as the remote has them now)."""
        if self.git_remote:
            with self._lock():  # a fetch beside another process's publication in this copy
                if not self._fetched():
                    return []
        return self._history(name, limit)

    def _history(self, name: str, limit: int | None = None) -> list[DatasetVersion]:
        if not (self.root / ".git").exists():
            return []
        args = [
            "log",
            "--format=%H %cI",
            *([f"-{limit}"] if limit else []),
            f"origin/{_BRANCH}" if self.git_remote else "HEAD",
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
        if not self._history(name, limit=1):
            self._dvc_file(name).unlink(missing_ok=True)
            self.workspace_file(name).unlink(missing_ok=True)
            return
        self._git("checkout", "--", f"data/{name}.csv.dvc")
        # from the DVC remote when another working copy published it (it is not in this cache)
        repo.pull(targets=[str(self._dvc_file(name))], force=True)

    def _repo(self) -> Repo:
        from dvc.repo import Repo

        logging.getLogger("dvc").setLevel(logging.WARNING)  # DVC's CLI hints mean nothing here
        if self.git_remote and not (self.root / ".git").exists() and self._remote_has_history():
            self._clone()
        if not (self.root / ".dvc").exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q", "-b", _BRANCH)
            if self.git_remote:
                self._git("remote", "add", "origin", self._ensure_remote())
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
            self._push()
        return Repo(str(self.root))

    def _ensure_remote(self) -> str:
        """The shared bare repository, created on first use when it is a path."""
        assert self.git_remote is not None
        if "://" not in self.git_remote and not Path(self.git_remote).exists():
            Path(self.git_remote).parent.mkdir(parents=True, exist_ok=True)
            self._git_in(
                Path(self.git_remote).parent, "init", "-q", "--bare", "-b", _BRANCH, self.git_remote
            )
        return self.git_remote

    def _remote_has_history(self) -> bool:
        remote = self._ensure_remote()
        return bool(self._git_in(Path.cwd(), "ls-remote", "--heads", remote, _BRANCH).strip())

    def _clone(self) -> None:
        if self.root.exists() and any(self.root.iterdir()):
            shutil.rmtree(self.root)  # a copy left half-made: the remote has everything
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._git_in(
            self.root.parent, "clone", "-q", "-b", _BRANCH, self._ensure_remote(), str(self.root)
        )

    def _fetched(self) -> bool:
        """This working copy has the remote's newest history (cloned, or fetched); False while the
        remote has none. Under the lock."""
        if not self._remote_has_history():
            return False
        if (self.root / ".git").exists():
            self._git("fetch", "-q", "origin", _BRANCH)
        else:
            self._clone()
        return True

    def _sync(self) -> None:
        """This working copy at the remote's newest version (it has no commit of its own: each is
        pushed, under the lock, as it is made). Under the lock."""
        if self.git_remote and self._fetched():
            self._git("reset", "-q", "--hard", f"origin/{_BRANCH}")

    def _push(self, force: bool = False) -> None:
        if self.git_remote:
            self._git("push", "-q", *(["--force"] if force else []), "origin", f"HEAD:{_BRANCH}")

    def _git(self, *args: str) -> str:
        return self._git_in(self.root, *args)

    @staticmethod
    def _git_in(where: Path, *args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, env=_git_env()
        )
        if result.returncode != 0:
            raise TransientError(f"git {args[0]} in {where} failed: {result.stderr.strip()}")
        return result.stdout


def _git_env() -> dict[str, str]:
    """Git must not read the operator's global config (hooks, signing) for this internal repo."""
    return {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
