"""The `governance` command as an operator runs it: exit codes, readable output, no tracebacks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from governance.datasets.versioning import DatasetStore
from governance.home import GovernanceHome
from tests.badfiles import BAD_FILES, BadFile
from tests.conftest import run_governance as governance


@pytest.fixture
def clean_file(tmp_path: Path, penguins_csv: Path) -> Path:
    """The raw penguins with incomplete rows removed: what the governed dataset holds."""
    lines = penguins_csv.read_text().splitlines(keepends=True)
    path = tmp_path / "clean.csv"
    path.write_text(lines[0] + "".join(line for line in lines[1:] if ",NA" not in line))
    return path


def test_validate_passing_file(clean_file: Path) -> None:
    result = governance("datasets", "validate", "penguins", str(clean_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"penguins: {clean_file}: PASSED (23/23 expectations passed, 333 rows"
    )
    assert "data docs: file://" in result.stdout


def test_validate_failing_file_names_column_and_rule(penguins_csv: Path) -> None:
    result = governance("datasets", "validate", "penguins", str(penguins_csv))
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert (
        "FAIL  sex" in result.stdout
        and "expect_column_values_to_not_be_null()  11 unexpected" in result.stdout
    )
    assert "offending rows (sample):" in result.stdout and "line=5" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "bad", [b for b in BAD_FILES if b.rejected_by == "penguins_raw"], ids=lambda b: b.name
)
def test_validate_unreadable_file_is_one_line_exit_2(
    bad: BadFile, penguins_csv: Path, tmp_path: Path
) -> None:
    path = bad.write(penguins_csv, tmp_path)
    result = governance("datasets", "validate", "penguins", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {path}: ")
    assert bad.says[0] in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("datasets", "validate", "birds", "x.csv"), "no dataset named 'birds'"),
        (("--estate", "/nonexistent/governance.yaml", "datasets", "list"), "file not found"),
        (("datasets", "checkout", "penguins", "--version", "abc"), "no version 'abc'"),
    ],
)
def test_usage_errors_have_no_traceback(args: tuple[str, ...], says: str) -> None:
    result = governance(*args)
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr


def test_list_and_checkout_older_version(penguins_csv: Path, clean_file: Path, tmp_path: Path) -> None:
    home = GovernanceHome.resolve()
    store = DatasetStore(home.datasets_repo, str(home.dvc_remote))
    old = store.commit("penguins", clean_file, lambda version: None)
    newer_file = tmp_path / "newer.csv"
    newer_file.write_text("".join(clean_file.read_text().splitlines(keepends=True)[:-1]))
    new = store.commit("penguins", newer_file, lambda version: None)

    listing = json.loads(governance("datasets", "list", "--json").stdout)
    (entry,) = listing
    assert entry["name"] == "penguins"
    assert entry["current"]["md5"] == new.md5
    assert [v["md5"] for v in entry["versions"]] == [new.md5, old.md5]

    out = tmp_path / "restored.csv"
    result = governance("datasets", "checkout", "penguins", "--version", old.md5[:8], "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"penguins {old.md5}" in result.stdout
    assert hashlib.md5(out.read_bytes()).hexdigest() == hashlib.md5(clean_file.read_bytes()).hexdigest()
    # Checking out an old version exports it; the current version is unchanged.
    assert store.current("penguins") == new


def test_release_launch_refuses_before_launching_and_names_an_unreachable_dagster() -> None:
    """An unknown release or a malformed tag is bad input (2); a webserver that is not there is a
    service unavailable (4), named without the credentials its URL carries."""
    from tests.services import free_port

    url = f"http://ci:s3cretpass@127.0.0.1:{free_port()}"
    unknown = governance("release", "launch", "no_such_release", "--dagster-url", url)
    assert unknown.returncode == 2 and "no_such_release" in unknown.stderr
    bad_tag = governance(
        "release", "launch", "penguin_service", "--tag", "novalue", "--dagster-url", url
    )
    assert bad_tag.returncode == 2 and "KEY=VALUE" in bad_tag.stderr
    down = governance("release", "launch", "penguin_service", "--dagster-url", url)
    assert down.returncode == 4, down.stderr
    assert "unreachable" in down.stderr and "s3cretpass" not in down.stderr + down.stdout
