from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from governance.config import load_estate
from governance.errors import ConfigError
from tests.conftest import ESTATE_FILE, REPO, repository_estate_data, write_estate

VALID = f"""
datasets:
  penguins:
    description: d
    owner: team@example.com
    source: {{package: palmerpenguins, resource: data/penguins.csv}}
    cleaner: {REPO}/examples/penguins/prepare.py:clean
    suite: {REPO}/expectations/penguins.json
    columns: {{species: string, year: integer}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "governance.yaml"
    path.write_text(text)
    return path


def test_repository_estate_loads() -> None:
    estate = load_estate(ESTATE_FILE)
    spec = estate.dataset("penguins")
    assert spec.name == "penguins" and spec.raw_name == "penguins_raw"
    assert spec.suite == REPO / "expectations" / "penguins.json"
    assert spec.source.resolve().is_file()
    assert list(spec.columns)[:2] == ["species", "island"]


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "raw.csv").write_text("species\n")
    path = write(
        tmp_path,
        VALID.replace("{package: palmerpenguins, resource: data/penguins.csv}", "{path: raw.csv}"),
    )
    assert load_estate(path).dataset("penguins").source.resolve() == tmp_path / "raw.csv"


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (
            ("suite: " + str(REPO / "expectations/penguins.json"), "suite: nowhere.json"),
            "datasets.penguins.suite",
            "file not found: nowhere.json",
        ),
        (
            ("year: integer", "year: timestamp"),
            "datasets.penguins.columns.year",
            "'string', 'float' or 'integer'",
        ),
        (
            ("owner: team@example.com", "owner: team@example.com\n    colour: blue"),
            "datasets.penguins.colour",
            "Extra inputs are not permitted",
        ),
        ((":clean", ""), "datasets.penguins.cleaner", "expected `path/to/file.py:function`"),
        (
            ("{package: palmerpenguins, resource: data/penguins.csv}", "{package: palmerpenguins}"),
            "datasets.penguins.source",
            "`package` needs `resource`",
        ),
        (
            (
                "{package: palmerpenguins, resource: data/penguins.csv}",
                "{path: a.csv, package: p, resource: r}",
            ),
            "datasets.penguins.source",
            "either `path` or `package`",
        ),
        (("  penguins:", "  Penguins!:"), "datasets.Penguins!", "should match pattern"),
        (("    description: d\n", ""), "datasets.penguins.description", "Field required"),
    ],
)
def test_errors_name_file_key_and_reason(
    tmp_path: Path, edit: tuple[str, str], key: str, reason: str
) -> None:
    old, new = edit
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_estate(path)
    message = str(info.value)
    assert message.startswith("governance.yaml: "), message
    assert key in message and reason in message, message


@pytest.mark.parametrize(
    ("text", "reason"),
    [("datasets: [unclosed", "not valid YAML"), ("- a list", "expected a mapping")],
)
def test_unreadable_files(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_estate(write(tmp_path, text))


def test_missing_file_and_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_estate(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"no dataset named 'birds' \(known: penguins\)"):
        load_estate(ESTATE_FILE).dataset("birds")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda r: r["penguin_web"].update(upstreams={"MODEL_SERVER_URL": "penguin_svc"}),
            "releases.penguin_web.upstreams.MODEL_SERVER_URL: no other release named 'penguin_svc'",
        ),
        (
            lambda r: r["penguin_web"].update(upstreams={"MODEL_SERVER_URL": "penguin_web"}),
            "no other release named 'penguin_web'",
        ),
        (
            lambda r: r["penguin_service"].update(upstreams={"WEB_URL": "penguin_web"}),
            "a cycle (penguin_service -> penguin_web -> penguin_service)",
        ),
        (
            lambda r: r["penguin_web"].update(upstreams={"model-server": "penguin_service"}),
            "'model-server' is not an environment variable name",
        ),
        (
            lambda r: r["penguin_web"].update(
                target="kubernetes", kubernetes=r["penguin_service"]["kubernetes"]
            ),
            "a release without a model, or with upstreams, runs on the local target",
        ),
        (
            lambda r: r["penguin_web"]["smoke"].update(path="?island=Dream"),
            "releases.penguin_web.smoke.path: String should match pattern",
        ),
    ],
)
def test_release_references_are_checked(tmp_path: Path, edit: Any, reason: str) -> None:
    data = repository_estate_data()
    edit(data["releases"])
    with pytest.raises(ConfigError) as info:
        write_estate(data, tmp_path)
    assert reason in str(info.value), str(info.value)


def test_an_app_release_serves_no_model() -> None:
    estate = load_estate(ESTATE_FILE)
    web = estate.release("penguin_web")
    assert web.model is None and estate.served_model(web) is None
    assert web.upstreams == {"MODEL_SERVER_URL": "penguin_service"}
    model, dataset = estate.served_model(estate.release("penguin_service")) or (None, None)
    assert model is not None and dataset is not None
    assert (model.name, dataset.name) == ("penguin_classifier", "penguins")
