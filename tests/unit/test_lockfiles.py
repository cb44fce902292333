"""Lockfile consistency on the real vue-core pnpm workspace and the full-stack-fastapi uv workspace,
as committed (consistent) and after the edits that break a frozen install."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from governance.errors import PermanentError
from governance.images.lockfiles import check_lockfile
from tests.conftest import SHARED_FIXTURES, run_governance

REAL_WORLD = SHARED_FIXTURES / "real-world"


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[str], Path]:
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(REAL_WORLD / name, target)
        for path in [target, *target.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)  # the fixtures are read-only
        return target

    return copy


def edit_json(path: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def problems(root: Path) -> list[str]:
    return [str(m) for m in check_lockfile(root).mismatches]


@pytest.mark.parametrize("name", ["vue-core", "full-stack-fastapi"])
def test_real_workspaces_are_consistent_as_committed(name: str) -> None:
    report = check_lockfile(REAL_WORLD / name)
    assert report.consistent, report.mismatches


def test_pnpm_specifier_changes_added_and_removed_dependencies(workspace: Callable[[str], Path]) -> None:
    root = workspace("vue-core")
    sfc = root / "packages/compiler-sfc/package.json"

    def change(data: dict) -> None:  # type: ignore[type-arg]
        data["dependencies"]["postcss"] = "^8.6.0"
        data["dependencies"]["left-pad"] = "^1.3.0"
        del data["devDependencies"]["hash-sum"]

    edit_json(sfc, change)
    assert problems(root) == [
        "packages/compiler-sfc/package.json: left-pad: dependencies asks '^1.3.0' but the lockfile has no entry",
        "packages/compiler-sfc/package.json: postcss: dependencies asks '^8.6.0', the lockfile has '^8.5.19'",
        "packages/compiler-sfc/package.json: hash-sum: locked in devDependencies but no longer in package.json",
    ]


def test_pnpm_catalog_edits(workspace: Callable[[str], Path]) -> None:
    root = workspace("vue-core")
    config = yaml.safe_load((root / "pnpm-workspace.yaml").read_text())
    config["catalog"]["vite"] = "^8.3.0"
    del config["catalog"]["estree-walker"]
    (root / "pnpm-workspace.yaml").write_text(yaml.safe_dump(config))
    found = problems(root)
    assert "pnpm-workspace.yaml: vite: default catalog asks '^8.3.0', the lockfile has '^8.2.0'" in found
    assert (
        "pnpm-workspace.yaml: estree-walker: locked in the default catalog but no longer in it" in found
    )
    assert (
        "packages/compiler-sfc/package.json: estree-walker: uses 'catalog:' but pnpm-workspace.yaml has no "
        "default catalog entry for it"
    ) in found


def test_pnpm_new_workspace_package_and_broken_link(workspace: Callable[[str], Path]) -> None:
    root = workspace("vue-core")
    (root / "packages/new-thing").mkdir()
    (root / "packages/new-thing/package.json").write_text('{"name": "@vue/new-thing"}')
    lock = (root / "pnpm-lock.yaml").read_text()
    (root / "pnpm-lock.yaml").write_text(
        lock.replace("version: link:../compiler-core", "version: link:../shared", 1)
    )
    found = problems(root)
    assert (
        "packages/new-thing/package.json: (importer): workspace package is missing from the lockfile"
        in found
    )
    # pnpm's frozen install accepts a misdirected link (it compares specifiers only): a warning
    warnings = [str(m) for m in check_lockfile(root).warnings]
    assert any(
        "@vue/compiler-core: workspace link link:../shared does not lead to" in w for w in warnings
    )
    assert not any("workspace link" in p for p in found)


def test_uv_requirement_edits(workspace: Callable[[str], Path]) -> None:
    root = workspace("full-stack-fastapi")
    backend = root / "backend/pyproject.toml"
    text = backend.read_text()
    # Reordering a specifier changes nothing; changing a bound or adding a group dependency does.
    assert '"alembic<2.0.0,>=1.12.1"' in text
    text = text.replace('"alembic<2.0.0,>=1.12.1"', '"alembic>=1.12.1,<2.0.0"')
    backend.write_text(text)
    assert check_lockfile(root).consistent
    text = text.replace('"tenacity<10.0.0,>=8.2.3"', '"tenacity<10.0.0,>=9.0.0"')
    text = text.replace('"ruff<1.0.0,>=0.2.2",', '"ruff<1.0.0,>=0.2.2",\n    "hypothesis>=6",')
    backend.write_text(text)
    root_toml = root / "pyproject.toml"
    root_toml.write_text(root_toml.read_text().replace('"smokeshow >=0.5.0"', '"smokeshow >=0.6.0"'))
    assert problems(root) == [
        "pyproject.toml: github-actions:smokeshow: dependency-groups asks >=0.6.0, uv.lock has >=0.5.0",
        "backend/pyproject.toml: tenacity: dependencies asks <10.0.0,>=9.0.0, uv.lock has <10.0.0,>=8.2.3",
        "backend/pyproject.toml: dev:hypothesis: dependency-groups asks >=6 but uv.lock has no such requirement",
    ]


def test_cli_exit_codes(workspace: Callable[[str], Path], tmp_path: Path) -> None:
    ok = run_governance("images", "check-lockfile", str(REAL_WORLD / "vue-core"))
    assert ok.returncode == 0 and "consistent with every manifest (pnpm)" in ok.stdout
    root = workspace("vue-core")
    edit_json(
        root / "packages/shared/package.json",
        lambda d: d.setdefault("dependencies", {}).update({"x": "1"}),
    )
    bad = run_governance("images", "check-lockfile", str(root))
    assert bad.returncode == 1
    assert (
        "packages/shared/package.json: x: dependencies asks '1' but the lockfile has no entry"
        in bad.stdout
    )
    assert "a frozen pnpm install would fail" in bad.stdout
    (tmp_path / "empty").mkdir()
    missing = run_governance("images", "check-lockfile", str(tmp_path / "empty"))
    assert (
        missing.returncode == 2
        and "no lockfile found" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    (root / "pnpm-lock.yaml").write_text(": not yaml : [")
    with pytest.raises(PermanentError, match=r"pnpm-lock\.yaml: unreadable"):
        check_lockfile(root)


def write_npm_workspace(root: Path, web_lodash: str = "^4.17.21") -> None:
    (root / "apps/web").mkdir(parents=True)
    (root / "package.json").write_text(
        json.dumps(
            {"name": "estate", "workspaces": ["apps/*"], "devDependencies": {"typescript": "^5.6.0"}}
        )
    )
    (root / "apps/web/package.json").write_text(
        json.dumps({"name": "web", "dependencies": {"lodash": web_lodash}})
    )
    lock = {
        "name": "estate",
        "lockfileVersion": 3,
        "packages": {
            "": {
                "name": "estate",
                "workspaces": ["apps/*"],
                "devDependencies": {"typescript": "^5.6.0"},
            },
            "apps/web": {"name": "web", "dependencies": {"lodash": "^4.17.21"}},
            "node_modules/lodash": {"version": "4.17.21"},
        },
    }
    (root / "package-lock.json").write_text(json.dumps(lock))


def test_npm_workspaces(tmp_path: Path) -> None:
    write_npm_workspace(tmp_path / "ok")
    assert check_lockfile(tmp_path / "ok").consistent
    write_npm_workspace(tmp_path / "bad", web_lodash="^4.18.0")
    (tmp_path / "bad/apps/api").mkdir()
    (tmp_path / "bad/apps/api/package.json").write_text('{"name": "api"}')
    assert problems(tmp_path / "bad") == [
        "apps/api/package.json: (workspace): missing from package-lock.json",
        "apps/web/package.json: lodash: dependencies asks '^4.18.0', package-lock.json has '^4.17.21'",
    ]


PIP_TOOLS_LOCK = """#
# This file is autogenerated by pip-compile with Python 3.11
#
anyio==4.6.2
    # via httpx
fastapi==0.115.4
    # via -r requirements.in
httpx==0.27.2
    # via -r requirements.in
requests==2.32.3
    # via -r requirements.in
"""


def test_pip_tools_pins(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(PIP_TOOLS_LOCK)
    (tmp_path / "requirements.in").write_text("fastapi>=0.115\nhttpx<0.28  # client\nrequests\n")
    assert check_lockfile(tmp_path).consistent
    (tmp_path / "requirements.in").write_text("fastapi>=0.116\nhttpx<0.28\npydantic>=2\n")
    assert problems(tmp_path) == [
        "requirements.in: fastapi: asks >=0.116, requirements.txt pins 0.115.4",
        "requirements.in: pydantic: not pinned in requirements.txt",
        "requirements.txt: requests: pinned via requirements.in but no longer in it",
    ]
