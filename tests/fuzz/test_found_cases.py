"""Every contract violation a fuzzing campaign found, kept as an explicit case so it stays fixed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from governance.audit.store import AuditTrail, open_audit_log
from tests.conftest import REPO, SHARED_FIXTURES, repository_estate_data
from tests.fuzz.harness import check_contract, fresh_home

HUGE_NUMBER = "9" * 200_000


def estate_text() -> str:
    return yaml.safe_dump(repository_estate_data(), sort_keys=False)


@pytest.mark.parametrize(
    "text",
    [
        "\x00" + estate_text(),  # PyYAML's reader refused it before the loader's error handling
        estate_text().replace("seed: 42", f"seed: {HUGE_NUMBER}"),  # int() beyond its digit limit
    ],
    ids=["nul", "huge-integer"],
)
def test_an_estate_file_yaml_cannot_read(text: str, tmp_path: Path) -> None:
    estate = tmp_path / "governance.yaml"
    estate.write_text(text)
    with fresh_home() as home:
        outcome = check_contract(
            "estate", ["--estate", str(estate), "datasets", "list"], [estate.name], home=home
        )
    assert outcome.code == 2 and len(outcome.err) < 1_200  # one readable line, not 200 KB


def test_a_suite_with_a_number_beyond_ints_digit_limit(tmp_path: Path) -> None:
    suite = tmp_path / "penguins.json"
    suite.write_text((REPO / "expectations/penguins.json").read_text().replace("300", HUGE_NUMBER, 1))
    data = repository_estate_data()
    data["datasets"]["penguins"]["suite"] = str(suite)
    estate = tmp_path / "estate.yaml"
    estate.write_text(yaml.safe_dump(data, sort_keys=False))
    from importlib import resources

    source = Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv")))
    csv = tmp_path / "clean.csv"
    lines = source.read_text().splitlines()
    csv.write_text("\n".join([lines[0], *(x for x in lines[1:] if "NA" not in x.split(","))]) + "\n")
    with fresh_home() as home:
        argv = ["--estate", str(estate), "datasets", "validate", "penguins", str(csv)]
        assert check_contract("suite", argv, [suite.name], home=home).code == 2


@pytest.mark.parametrize("user", [HUGE_NUMBER, "0" * 200_000])
def test_a_dockerfile_user_beyond_ints_digit_limit(user: str, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM debian@sha256:{'a' * 64}\nUSER {user}\n")
    with fresh_home() as home:
        outcome = check_contract(
            "dockerfile", ["images", "lint-dockerfile", str(dockerfile)], ["Dockerfile"], home=home
        )
    assert outcome.code == (1 if user.startswith("0") else 0), outcome.out  # all zeros is root


@pytest.mark.parametrize(
    "url",
    ["h", "http://[unclosed"],  # no host (the error did not name the file); urllib cannot split it
)
def test_an_openlineage_url_that_is_not_one_is_refused_naming_the_file(url: str, tmp_path: Path) -> None:
    config = tmp_path / "openlineage.yml"
    config.write_text(f"transport:\n  type: http\n  url: {url}\n")
    with fresh_home() as home:
        outcome = check_contract(
            "openlineage", ["lineage", "flush"], [config.name], home=home,
            env={"OPENLINEAGE_CONFIG": str(config)},
        )  # fmt: skip
    assert outcome.code == 2


def _audit_db(home: Path) -> Path:
    path = home / "audit.db"
    trail = AuditTrail(open_audit_log(path), "cli:fuzz")
    trail.record("model.promoted", "model:m", {"version": "1"}, "promoted", ["because"])
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for extra in ("audit.db-wal", "audit.db-shm"):
        (home / extra).unlink(missing_ok=True)
    return path


@pytest.mark.parametrize(
    "damage",
    [
        "not-a-database",
        "undecodable-text",
        "malformed-page",
        "quick-check-undecodable",
        "malformed-on-open",  # refused while the connection opened: its WAL and SHM were left
        "malformed-record",  # a row that reads but is no record: the same, refused later
    ],
)
def test_a_damaged_audit_log_is_refused_and_left_as_it_was(damage: str) -> None:
    with fresh_home() as home:
        path = _audit_db(home)
        data = bytearray(path.read_bytes())
        if damage in ("quick-check-undecodable", "malformed-on-open", "malformed-record"):
            data = bytearray((Path(__file__).parent / "cases" / f"audit-{damage}.db").read_bytes())
        elif damage == "not-a-database":
            data[:16] = b"this is no db!!!"
        elif damage == "undecodable-text":
            at = bytes(data).index(b"cli:fuzz")
            data[at] = 0xFF  # sqlite reports text it cannot decode as an OperationalError
        else:
            data[len(data) // 2 :] = b"\xa5" * (len(data) - len(data) // 2)
        path.write_bytes(bytes(data))
        outcome = check_contract("audit.db", ["audit", "verify"], ["audit.db"], home=home)
        assert outcome.code in (1, 2)
        assert sorted(p.name for p in home.iterdir()) == ["audit.db"]


def test_an_estate_path_the_system_refuses_to_look_up(tmp_path: Path) -> None:
    data = repository_estate_data()
    data["images"]["apps"]["frontend"]["context"] += "9" * 5_000  # ENAMETOOLONG, not "not found"
    estate = tmp_path / "governance.yaml"
    estate.write_text(yaml.safe_dump(data, sort_keys=False))
    with fresh_home() as home:
        outcome = check_contract(
            "estate", ["--estate", str(estate), "datasets", "list"], [estate.name], home=home
        )
    assert outcome.code == 2 and "cannot be looked up" in outcome.err


@pytest.mark.parametrize("pattern", ["/packages/*", "../elsewhere/*", "", 7])
def test_a_workspace_pattern_that_leaves_the_workspace(pattern: object, tmp_path: Path) -> None:
    pnpm = tmp_path / "pnpm"
    pnpm.mkdir()
    (pnpm / "package.json").write_text('{"name": "root", "version": "1.0.0"}\n')
    (pnpm / "pnpm-workspace.yaml").write_text(yaml.safe_dump({"packages": [pattern]}))
    (pnpm / "pnpm-lock.yaml").write_text("lockfileVersion: '9.0'\nimporters:\n  .: {}\n")
    uv = tmp_path / "uv"
    uv.mkdir()
    (uv / "pyproject.toml").write_text(
        '[project]\nname = "root"\nversion = "1"\nrequires-python = ">=3.11"\n'
        f"[tool.uv.workspace]\nmembers = [{pattern!r}]\n".replace("'", '"')
    )
    (uv / "uv.lock").write_text('version = 1\nrequires-python = ">=3.11"\n')
    for root in (pnpm, uv):
        with fresh_home() as home:
            outcome = check_contract(
                "workspace", ["images", "check-lockfile", str(root)], [str(root)], home=home
            )
        assert outcome.code == 2, (root.name, outcome.err)


def test_a_dagster_url_that_is_not_one() -> None:
    with fresh_home() as home:
        outcome = check_contract(
            # A URL that cannot be parsed is masked whole (it may hide a password): the line says
            # which setting is wrong instead.
            "launch", ["release", "launch", "penguin_service", "--dagster-url", "http://[x"],
            ["not a Dagster webserver URL"],
            home=home,
        )  # fmt: skip
    assert outcome.code == 2


def test_a_uv_member_with_an_invalid_group_requirement_names_its_file(tmp_path: Path) -> None:
    root = tmp_path / "uv"
    (root / "member").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["member"]\n')
    (root / "member" / "pyproject.toml").write_text(
        '[project]\nname = "member"\nversion = "1"\n[dependency-groups]\nbuild = ["."]\n'
    )
    (root / "uv.lock").write_text('version = 1\n[manifest]\nmembers = ["member"]\n')
    with fresh_home() as home:
        outcome = check_contract(
            "uv", ["images", "check-lockfile", str(root)], ["member/pyproject.toml"], home=home
        )
    assert outcome.code == 2


@pytest.mark.parametrize(
    ("member", "before", "after"),
    [  # a member renamed (the differential's find), a link to another member, a link to nowhere
        ("packages/compiler-sfc/package.json", '"name": "@vue/compiler-sfc"', '"name": "^1.0.0"'),
        # the workspace file's `packages` key flipped: every member's importer is stale (found
        # by the differential against pnpm 11, which accepts it as pnpm 9 does)
        ("pnpm-workspace.yaml", "packages:", "qackages:"),
        ("pnpm-lock.yaml", "version: link:../compiler-sfc", "version: link:../compiler-ssr"),
        ("pnpm-lock.yaml", "version: link:../compiler-sfc", "version: link:../nonexistent"),
    ],
)
def test_what_a_frozen_pnpm_install_accepts_is_a_warning(
    member: str, before: str, after: str, tmp_path: Path
) -> None:
    """pnpm's frozen install compares specifiers only, installs these as locked and ignores stale
    importers: the platform must not call them inconsistent (the pnpm differential found it doing
    so), but says what is wrong."""
    import shutil

    root = tmp_path / "vue-core"
    shutil.copytree(SHARED_FIXTURES / "real-world" / "vue-core", root)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    target = root / member
    target.write_text(target.read_text().replace(before, after, 1))
    with fresh_home() as home:
        outcome = check_contract(
            "pnpm-workspace", ["images", "check-lockfile", str(root)], [str(root)], home=home
        )
    assert outcome.code == 0, outcome.out + outcome.err
    assert "warning: " in outcome.out


@pytest.mark.usefixtures("image_lab")
def test_a_release_state_whose_color_lacks_a_field_is_refused_naming_the_file(tmp_path: Path) -> None:
    """Found when candidates learned to serve no model: a stored color with a model but without its
    asset raised KeyError (exit 3) instead of being refused as damaged state."""
    estate = tmp_path / "governance.yaml"
    estate.write_text(estate_text())
    color = {"release": "penguin_service", "image_asset": "model_server", "image": "x@sha256:aa"}
    color |= {"image_digest": "sha256:aa", "manifests_digest": "sha256:m", "model": "m"}
    state = {"previous": "blue", "colors": {"blue": color}}

    def damaged(home: Path) -> None:
        path = home / "releases" / "penguin_service" / "state.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(state))

    with fresh_home(damaged) as home:
        outcome = check_contract(
            "state.json", ["--estate", str(estate), "release", "status"], ["state.json"], home=home
        )
    assert outcome.code == 2 and "a candidate without 'model_asset'" in outcome.err
