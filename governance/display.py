"""Text that reaches a terminal: no escape sequences or control characters from the data it quotes.

A value read from a data file, a lockfile or a stored record can carry ANSI escapes (rewrite the
screen, hide a line) or a carriage return (overwrite one); shown raw, an attacker's file decides what
an operator reads.
"""

from __future__ import annotations

import re

# CSI/OSC sequences first (so their parameters go too), then every other C0/C1 control but \n, \t.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` as it may be printed: escapes removed, other control characters shown as `?`."""
    return _CONTROLS.sub("?", _ESCAPES.sub("", text))


def one_line(text: str) -> str:
    """`text` on one line, for fields (a name, a reason) that a newline could forge a line with."""
    return printable(text).replace("\n", " ").replace("\t", " ")


def shortened(text: str, limit: int = 1000) -> str:
    """At most `limit` characters: a message quoting a 200 KB value stays one readable line."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"
