"""What users hand the platform, read strictly: suites that load completely, files judged as they
are, hostile content kept harmless, bad configuration and unexpected shapes refused with one line.

Each test drives the real part (GX, DVC, the `governance` command) with the defect planted as a user
or an attacker would plant it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from governance.config import load_estate
from governance.datasets.versioning import DatasetStore
from governance.errors import ConfigError
from governance.home import GovernanceHome
from tests.conftest import ESTATE_FILE, REPO, repository_estate_data, run_governance, write_estate
from tests.services import free_port

SECRET = "pa55-w0rd-7e1l"


def suite_with(tmp_path: Path, edit: object) -> Path:
    suite = json.loads((REPO / "expectations" / "penguins.json").read_text())
    edit(suite)  # type: ignore[operator]
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    return path


def estate_with_suite(tmp_path: Path, suite: Path) -> Path:
    data = repository_estate_data()
    data["datasets"]["penguins"]["suite"] = str(suite)
    return write_estate(data, tmp_path / "estate").path


def validate(estate: Path, path: Path) -> tuple[int, str]:
    result = run_governance("--estate", str(estate), "datasets", "validate", "penguins", str(path))
    return result.returncode, result.stdout + result.stderr


# 1. A suite loads completely, or the validation fails naming the file, the index and the reason.
@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda s: s["expectations"][3].update(type="expect_column_values_to_not_be_nul"), "not found"),
        (lambda s: s["expectations"][3]["kwargs"].update(colum="x"), "extra fields not permitted"),
        (lambda s: s["expectations"][3].update(kwarg={}), "unknown key(s) 'kwarg'"),
        (lambda s: s["expectations"][18]["kwargs"].update(min_value="low"), "min_value"),
        (
            lambda s: s.update(expectations=[{"type": "expect_nothing_at_all", "kwargs": {}}]),
            "not found",
        ),
        (lambda s: s.update(expectations=[]), "non-empty `expectations` list"),
    ],
    ids=["typo-in-type", "typo-in-kwarg", "typo-in-key", "bad-value", "only-unknown", "empty"],
)
def test_a_suite_that_would_lose_a_rule_fails_to_load(
    tmp_path: Path, clean_csv: Path, edit: object, reason: str
) -> None:
    suite = suite_with(tmp_path, edit)
    code, output = validate(estate_with_suite(tmp_path, suite), clean_csv)
    assert code == 2, output
    assert str(suite) in output and reason in output
    assert "Traceback" not in output and "passed" not in output


def test_the_repository_suite_passes_the_clean_sample(tmp_path: Path, clean_csv: Path) -> None:
    code, output = validate(ESTATE_FILE, clean_csv)
    assert code == 0, output
    assert "23/23" in output or "23 expectations passed" in output


# 2. The suite sees the file as it is: extra, reordered or repeated columns never pass.
@pytest.mark.parametrize(
    "shape", ["extra-password", "reordered", "repeated", "trailing-comma", "trailing-comma-rows"]
)
def test_columns_the_suite_must_see(tmp_path: Path, clean_csv: Path, shape: str) -> None:
    rows = [line.split(",") for line in clean_csv.read_text().splitlines()]
    if shape == "extra-password":
        rows = [[*row, "password" if i == 0 else "hunter2"] for i, row in enumerate(rows)]
    elif shape == "reordered":
        rows = [[row[1], row[0], *row[2:]] for row in rows]
    elif shape == "repeated":
        rows = [[*row, row[6]] for row in rows]
    elif shape == "trailing-comma":
        rows = [[*row, ""] for row in rows]  # a trailing comma on every line, header included
    else:
        rows = [rows[0], *([*row, ""] for row in rows[1:])]  # on every row but the header
    path = tmp_path / f"{shape}.csv"
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")
    code, output = validate(ESTATE_FILE, path)
    assert code == (2 if shape in ("repeated", "trailing-comma-rows") else 1), output
    assert "Traceback" not in output
    if shape == "repeated":
        assert "'sex' appear more than once" in output
    elif shape == "trailing-comma-rows":
        assert "line 2 has 9 fields, the header has 8" in output
    else:
        assert "expect_table_columns_to_match_ordered_list" in output


# 6. Unexpected input never ends in a traceback; exit codes keep their meaning.
def test_corrupt_state_files_are_named_not_tracebacks(home: Path) -> None:
    gh = GovernanceHome(home)
    gh.root.mkdir(parents=True, exist_ok=True)
    gh.audit_db.write_bytes(b"this is not sqlite" * 100)
    (gh.lineage / "outbox.db").write_bytes(b"\x00garbage" * 100)
    state = gh.dir("releases") / "penguin_service" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"colors": {"blue": {"who": "knows"}}}')
    for args, path in (
        (("audit", "verify"), gh.audit_db),
        (("lineage", "events"), gh.lineage / "outbox.db"),
        (("release", "status"), state),
    ):
        result = run_governance(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert str(path) in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreachable_postgres_audit_log_is_one_line_without_its_password(home: Path) -> None:
    url = f"postgresql://governance:{SECRET}@127.0.0.1:{free_port()}/audit"
    result = run_governance("audit", "verify", env={"GOVERNANCE_AUDIT_URL": url})
    assert result.returncode == 4, result.stderr
    assert SECRET not in result.stderr and "cannot be opened" in result.stderr


@pytest.mark.parametrize(
    "config",
    ["- just a list", "transport: [http]", "transport: {type: http, url: 42}",
     "transport: {type: http, url: 'http://h', timeout: -1}", "transport: {type: kafka}", "{{{"],
)  # fmt: skip
def test_a_malformed_openlineage_yml_is_a_config_error(home: Path, tmp_path: Path, config: str) -> None:
    path = tmp_path / "openlineage.yml"
    path.write_text(config)
    result = run_governance("lineage", "flush", env={"OPENLINEAGE_CONFIG": str(path)})
    assert result.returncode == 2, result.stderr
    assert str(path) in result.stderr and "Traceback" not in result.stderr


def test_unexpected_errors_exit_3_with_one_line_and_debug_shows_the_traceback(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug (here: the listing raising a KeyError) is neither a pass (0), a failed check (1)
    nor bad input (2): exit 3, one line, and the traceback only with --debug."""
    import governance.models.aliases
    from governance.cli import main

    def broken(*args: object) -> object:
        raise KeyError("run_id")

    monkeypatch.setattr(governance.models.aliases, "describe", broken)
    monkeypatch.setenv("GOVERNANCE_CLI_WORKER", "off")  # here, where the listing is broken
    for argv, traceback_shown in ((["models", "list"], False), (["--debug", "models", "list"], True)):
        monkeypatch.setattr("sys.argv", ["governance", *argv])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 3
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1] == "error: unexpected error: KeyError: 'run_id'" + (
            "" if traceback_shown else " (run again with --debug for the traceback)"
        )
        assert ("Traceback" in err) is traceback_shown


def test_checkout_refuses_a_directory_an_existing_file_and_a_symlink(
    home: Path, tmp_path: Path, clean_csv: Path
) -> None:
    gh = GovernanceHome(home)
    store = DatasetStore(gh.datasets_repo, str(gh.dvc_remote))
    version = store.commit("penguins", clean_csv, lambda v: None)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "link.csv"
    link.symlink_to(precious)
    for out in (tmp_path, precious, link):
        result = run_governance(
            "datasets", "checkout", "penguins", "--version", version.md5[:8], "--out", str(out)
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
    assert precious.read_text() == "keep me" and link.is_symlink()
    forced = run_governance(
        "datasets", "checkout", "penguins", "--version", version.md5, "--out", str(link), "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert precious.read_text() == "keep me"  # the link was replaced, not followed
    assert not link.is_symlink() and link.read_bytes() == clean_csv.read_bytes()


# 7. Hostile content.
def validate_with_island(clean_csv: Path, island: str) -> str:
    """Validate the clean sample with its first island replaced by `island` (which fails the
    suite's value set); the command's output."""
    lines = clean_csv.read_text().splitlines()
    lines[1] = lines[1].replace("Torgersen", island)
    path = clean_csv.with_name("hostile.csv")
    path.write_text("\n".join(lines) + "\n")
    code, output = validate(ESTATE_FILE, path)
    assert code == 1, output
    return output


def test_terminal_escapes_in_data_never_reach_the_console(clean_csv: Path) -> None:
    output = validate_with_island(clean_csv, "\x1b[2J\x1b]0;pwned\x07Torgersen\x1b[1A")
    assert "\x1b" not in output and "\x07" not in output  # shown escaped (repr), never raw


def test_values_from_a_data_file_are_html_escaped_in_data_docs(clean_csv: Path) -> None:
    output = validate_with_island(clean_csv, "<script>alert(1)</script><img src=x onerror=alert(2)>")
    assert "island=<script>alert(1)</script>" in output  # the console shows the true value
    docs = Path(output.split("data docs: file://", 1)[1].split()[0])
    page = docs.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page and "<img src=x" not in page


def test_a_yaml_alias_bomb_in_a_lockfile_is_refused(tmp_path: Path) -> None:
    laughs = ["lockfileVersion: '9.0'", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for n, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[n]
        laughs.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    (tmp_path / "pnpm-lock.yaml").write_text("\n".join(laughs) + "\n")
    (tmp_path / "package.json").write_text("{}")
    result = run_governance("images", "check-lockfile", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "aliases" in result.stderr and "Traceback" not in result.stderr


# 11. Configuration that cannot be right is refused at load.
@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d["models"]["penguin_classifier"].update(test_fraction=1.5), "test_fraction"),
        (lambda d: d["models"]["penguin_classifier"].update(thresholds={"accuracy": 2}), "thresholds"),
        (lambda d: d["releases"]["penguin_service"]["local"].update(blue_port=70000), "blue_port"),
        (lambda d: d["releases"]["penguin_service"].update(model="no_such_model"), "no_such_model"),
        (
            lambda d: d["models"]["penguin_classifier"].update(
                trainer=f"{REPO}/examples/penguins/train.py:nope"
            ),
            "nope",
        ),
        (
            lambda d: d["releases"].update(
                penguin_copy={**d["releases"]["penguin_service"], "description": "a second one"}
            ),
            "already releases.penguin_service.local.service_port",
        ),
        (
            lambda d: d["images"].setdefault("preflight", {}).update(max_load_per_cpu=-1),
            "max_load_per_cpu",
        ),
    ],
    ids=["fraction", "threshold", "port", "unknown-model", "missing-function", "shared-port", "load"],
)
def test_configuration_that_cannot_be_right(tmp_path: Path, edit: object, reason: str) -> None:
    data = repository_estate_data()
    edit(data)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=reason):
        write_estate(data, tmp_path / "estate")


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    text = ESTATE_FILE.read_text().replace(
        "  penguins:\n", "  penguins:\n    owner: someone@example.com\n", 1
    )
    path = tmp_path / "governance.yaml"
    path.write_text(text)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    with pytest.raises(ConfigError, match="given twice"):
        load_estate(path)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("Dockerfile", f'FROM python@sha256:{"0" * 64}\nENV A="unclosed\nUSER 10001\n', "line 2: ENV cannot be parsed"),
        ("Dockerfile", "\udcff\udcfeFROM x\n", "cannot read the Dockerfile"),
        ("pnpm-lock.yaml", "lockfileVersion: '9.0'\nimporters:\n  .: 5\n", "not a pnpm lockfile of a known shape"),
        ("uv.lock", "version = 1\n[[package]]\nname = 5\n", "not a uv lockfile of a known shape"),
        ("package-lock.json", '["not", "a", "lockfile"]', "expected a mapping at the top level"),
    ],
    ids=["dockerfile-quote", "dockerfile-binary", "pnpm-shape", "uv-shape", "npm-shape"],
)  # fmt: skip
def test_files_of_unexpected_shapes_are_named_not_tracebacks(
    tmp_path: Path, name: str, content: str, says: str
) -> None:
    (tmp_path / name).write_bytes(content.encode("utf-8", "surrogateescape"))
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"a": "1"}}')
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["a"]\n')
    if name == "Dockerfile":
        result = run_governance("images", "lint-dockerfile", str(tmp_path / name))
    else:
        result = run_governance("images", "check-lockfile", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and str(tmp_path) in result.stderr
    assert "Traceback" not in result.stderr
