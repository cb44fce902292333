"""The front-door contract and the mutations that try it.

Every command that reads a user's file answers 0 (pass), 1 (a check failed) or 2 (unusable input,
one line naming the file), never a traceback or exit 3, within bounded time, and leaves the home as
it was when it refuses the input. Mutations start from real fixtures: byte flips, truncations, line
deletions and duplications, inserted bytes, BOMs and other encodings, delimiter and quoting changes,
huge values, deep nesting and YAML aliases.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st

# CI: a fixed, seeded number per door. The campaign (tests/bench/bench_fuzz.py): 10,000 per door.
settings.register_profile(
    "ci", max_examples=40, derandomize=True, deadline=None, database=None, print_blob=True
)
settings.register_profile(
    "campaign",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "10000")),
    derandomize=False,
    deadline=None,
    database=None,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
STATS = os.environ.get("FUZZ_STATS")


CAMPAIGN = os.environ.get("HYPOTHESIS_PROFILE") == "campaign"


def door(share: float = 1.0, *, campaign_share: float = 1.0) -> settings:
    """A door's settings: `share` of the profile's examples in CI (a big fixture's door gets fewer,
    to keep the run within its budget) and `campaign_share` in the campaign, where every door runs
    in full and only a sample through another process (the installed command, a real tool) is cut.
    No health check against slow or large inputs, which are the point."""
    from hypothesis import HealthCheck

    scale = campaign_share if CAMPAIGN else share
    return settings(
        max_examples=max(1, int(settings().max_examples * scale)),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def governance(argv: Sequence[str], env: dict[str, str]) -> Outcome:
    """The real entry point, in this process: argv, the environment and the streams are the
    command's own for the call."""
    from governance.cli.commands import run

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_env = sys.argv, dict(os.environ)
    sys.argv = ["governance", *argv]
    os.environ.update(env)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return Outcome(code, out.getvalue(), err.getvalue())


def installed(argv: Sequence[str], env: dict[str, str]) -> Outcome:
    """The installed `governance` command, in its own process."""
    import subprocess

    command = [str(Path(sys.executable).parent / "governance"), *argv]
    environment = {**os.environ, "GOVERNANCE_CLI_WORKER": "off", **env}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)
    return Outcome(result.returncode, result.stdout, result.stderr)


_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with its content's digest (a refused input must change none).

    A file not modified in the last second keeps the digest it had at the same inode, size and
    modification time: a home that grows over a long campaign is not read whole twice per example,
    and a rewrite cannot hide behind the clock's coarse ticks (any later write moves the time past
    the cached one)."""
    settled = time.time_ns() - 1_000_000_000
    snap = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        stat = path.stat()
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        digest = _DIGESTS.get(key) if stat.st_mtime_ns < settled else None
        if digest is None:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if stat.st_mtime_ns < settled:
                _DIGESTS[key] = digest
        snap[str(path.relative_to(root))] = digest
    return snap


@contextlib.contextmanager
def fresh_home(prepare: Callable[[Path], object] = lambda home: None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-home-") as directory:
        home = Path(directory)
        prepare(home)
        yield home


def record(door: str, seconds: float) -> None:
    """One example in the campaign's log (the bench's table counts them per door)."""
    if STATS:
        with open(STATS, "a") as log:
            log.write(json.dumps({"door": door, "seconds": seconds}) + "\n")


def check_contract(
    door: str,
    argv: Sequence[str],
    names: Sequence[str],
    *,
    home: Path,
    env: dict[str, str] | None = None,
    passes: tuple[int, ...] = (0, 1),
    runner: Callable[[Sequence[str], dict[str, str]], Outcome] = governance,
) -> Outcome:
    """Run the command on a home and hold it to the contract; returns the outcome."""
    before = snapshot(home)
    started = time.perf_counter()
    outcome = runner(argv, {"GOVERNANCE_HOME": str(home), **(env or {})})
    record(door, time.perf_counter() - started)
    shown = f"{door}: exit {outcome.code}\nstdout: {outcome.out[-2000:]}\nstderr: {outcome.err[-3000:]}"
    assert outcome.code in (*passes, 2), shown
    assert "Traceback" not in outcome.err + outcome.out, shown
    if outcome.code == 2:
        lines = [line for line in outcome.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
        assert any(name in lines[0] for name in names), f"the error names no file: {shown}"
        after = snapshot(home)
        changed = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
        assert not changed, f"a refused input changed the home ({', '.join(changed)}): {shown}"
    return outcome


# ---------------------------------------------------------------------------------- mutations


def _flip(draw: st.DrawFn, data: bytearray) -> bytearray:
    if data:
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return data


def _truncate(draw: st.DrawFn, data: bytearray) -> bytearray:
    return data[: draw(st.integers(0, len(data)))]


def _lines(data: bytearray) -> list[bytes]:
    return bytes(data).split(b"\n")


def _delete_line(draw: st.DrawFn, data: bytearray) -> bytearray:
    lines = _lines(data)
    del lines[draw(st.integers(0, len(lines) - 1))]
    return bytearray(b"\n".join(lines))


def _duplicate_line(draw: st.DrawFn, data: bytearray) -> bytearray:
    lines = _lines(data)
    at = draw(st.integers(0, len(lines) - 1))
    lines.insert(at, lines[at])
    return bytearray(b"\n".join(lines))


def _insert(draw: st.DrawFn, data: bytearray) -> bytearray:
    at = draw(st.integers(0, len(data)))
    data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return data


def _encoding(draw: st.DrawFn, data: bytearray) -> bytearray:
    text = bytes(data).decode("utf-8", "replace")
    encoded = draw(
        st.sampled_from(
            [
                b"\xef\xbb\xbf" + bytes(data),
                text.encode("utf-16"),
                text.encode("latin-1", "replace"),
                bytes(data).replace(b"\n", b"\r\n"),
                bytes(data).replace(b"\n", b"\r"),
            ]
        )
    )
    return bytearray(encoded)


def _punctuation(draw: st.DrawFn, data: bytearray) -> bytearray:
    old = draw(st.sampled_from([b",", b'"', b":", b"=", b" ", b"-", b"{", b"["]))
    new = draw(st.sampled_from([b";", b"\t", b"'", b'"', b"", b",", b"\\", b"|"]))
    return bytearray(bytes(data).replace(old, new, draw(st.integers(1, 50))))


def _huge(draw: st.DrawFn, data: bytearray) -> bytearray:
    lines = _lines(data)
    at = draw(st.integers(0, len(lines) - 1))
    lines[at] = lines[at] + draw(st.sampled_from([b"9", b"a", b"\xff", b" "])) * 200_000
    return bytearray(b"\n".join(lines))


def _nesting(draw: st.DrawFn, data: bytearray) -> bytearray:
    depth = draw(st.integers(50, 20_000))
    nest = draw(st.sampled_from([b"[" * depth, b"{a: " * depth, b"- " * depth]))
    lines = _lines(data)
    lines.insert(draw(st.integers(0, len(lines))), b"x: " + nest)
    return bytearray(b"\n".join(lines))


def _aliases(draw: st.DrawFn, data: bytearray) -> bytearray:
    bomb = [b"a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, draw(st.integers(2, 12))):
        refs = b", ".join([b"*a%d" % (level - 1)] * 9)
        bomb.append(b"a%d: &a%d [%s]" % (level, level, refs))
    lines = _lines(data)
    at = draw(st.integers(0, len(lines)))
    return bytearray(b"\n".join([*lines[:at], *bomb, *lines[at:]]))


def _comment(draw: st.DrawFn, data: bytearray) -> bytearray:
    """A comment line between two lines: harmless in TOML and YAML, so the real tools accept it."""
    lines = _lines(data)
    lines.insert(draw(st.integers(0, len(lines))), b"# " + draw(st.binary(max_size=8)).hex().encode())
    return bytearray(b"\n".join(lines))


def _line_ends(draw: st.DrawFn, data: bytearray) -> bytearray:
    return bytearray(bytes(data).replace(b"\n", draw(st.sampled_from([b"\r\n", b"\n\n"]))))


def _specifier(draw: st.DrawFn, data: bytearray) -> bytearray:
    """A dependency's version range edited, added or removed, as a developer does by hand: the
    files stay well-formed, only their agreement changes (a manifest's JSON or a lockfile's
    `specifier:` lines)."""
    ranges = ["^1.0.0", "~2.3.4", "*", "latest", "workspace:*", "catalog:", "npm:left-pad@1.3.0"]
    new = draw(st.sampled_from(ranges)).encode()
    lines = _lines(data)
    entries = [
        n for n, line in enumerate(lines) if re.match(rb'\s+("[^"]+": "[^"]*",?|specifier: )', line)
    ]
    if not entries:
        return data
    at = draw(st.sampled_from(entries))
    action = draw(st.sampled_from(["change", "add", "remove"]))
    line = lines[at]
    if action == "remove":
        del lines[at]
        if line.rstrip().endswith(b'"') and at > 0:  # the entry before it closes the object now
            lines[at - 1] = lines[at - 1].rstrip(b",")
    elif line.lstrip().startswith(b"specifier: "):
        lines[at] = line[: line.index(b"specifier: ") + 11] + b"'" + new + b"'"
    else:
        indent = line[: len(line) - len(line.lstrip())]
        name = line.split(b'"')[1]
        comma = b"," if line.rstrip().endswith(b",") else b""
        if action == "add":
            lines.insert(at, indent + b'"left-pad": "' + new + b'",')
        else:
            lines[at] = indent + b'"' + name + b'": "' + new + b'"' + comma
    return bytearray(b"\n".join(lines))


BENIGN_OPS = (_comment, _line_ends)
SPECIFIER_OPS = (_specifier,)
BYTE_OPS = (_flip, _truncate, _delete_line, _duplicate_line, _insert, _encoding, _punctuation, _huge)
TEXT_OPS = (*BYTE_OPS, _nesting, _aliases)


def mutated(
    original: bytes, ops: Sequence[Callable[[st.DrawFn, bytearray], bytearray]]
) -> st.SearchStrategy[bytes]:
    @st.composite
    def strategy(draw: st.DrawFn) -> bytes:
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 3))):
            data = draw(st.sampled_from(ops))(draw, data)
        return bytes(data)

    return strategy()
