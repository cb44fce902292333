"""Who acts: the one place that turns a person's name or a Dagster run into an audit actor.

Every name a person types (`--by`, an approver, a reason) is checked the same way, wherever it comes
from: a blank name would open an approval gate for nobody, and a control character (a newline, an
escape) could forge a line in `audit show` or hide one on a terminal.
"""

from __future__ import annotations

import re

from governance.errors import PermanentError

OPERATOR = "cli"
UI = "ui"  # a person deciding in the Dagster UI (an approval job's run config)
RUN = "dagster"
SELF_HEAL = "selfheal"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_NAME = 100
MAX_REASON = 1000


def checked_text(value: str, what: str, limit: int) -> str:
    """`value` stripped; refused when blank, too long, or holding a control character."""
    text = value.strip()
    if not text:
        raise PermanentError(f"{what} must not be blank")
    if _CONTROL.search(text):
        raise PermanentError(f"{what} must be one line of printable text: {text!r}")
    if len(text) > limit:
        raise PermanentError(f"{what} must be at most {limit} characters (got {len(text)})")
    return text


def person(name: str, what: str = "--by") -> str:
    return checked_text(name, what, MAX_NAME)


def reason(text: str, what: str = "--reason") -> str:
    return checked_text(text, what, MAX_REASON)


def operator(name: str) -> str:
    """An operator at the CLI, by the name they gave."""
    return f"{OPERATOR}:{person(name)}"


def ui_user(name: str) -> str:
    """A person acting in the Dagster UI, by the name in the run's config."""
    return f"{UI}:{person(name, 'by')}"


def dagster_run(run_id: str) -> str:
    return f"{RUN}:{run_id}"


def self_heal() -> str:
    return f"{OPERATOR}:{SELF_HEAL}"


def person_of(actor: str) -> str:
    """The name a person was recorded with (`cli:alice` or `ui:alice` -> `alice`)."""
    kind, _, name = actor.partition(":")
    return name if kind in (OPERATOR, UI) else actor
