"""Failure classes shared by every domain.

The split matters operationally: a transient failure is retried with backoff, a permanent one fails
at once with a message that says what to fix. The CLI prints any GovernanceError as one line, without
a traceback.
"""


class GovernanceError(Exception):
    """An error a user can act on; its message says what went wrong and where.

    The message is redacted here, once: whatever a caller quotes (a URL, a library's error text) can
    carry a credential, and this message goes to the console, run logs, metadata and stored errors.
    """

    def __init__(self, message: str = "") -> None:
        from governance.redaction import redact

        super().__init__(redact(str(message)))


class ConfigError(GovernanceError):
    """`governance.yaml` (or a file it names) is invalid."""


class PermanentError(GovernanceError):
    """Retrying will not help: the input must change."""


class TransientError(GovernanceError):
    """A retry may succeed (a lock held, a service briefly down)."""


class AuditUnavailable(TransientError):
    """The audit log cannot be written; a governed action must not happen without its record."""


class DatasetReadError(PermanentError):
    """A file cannot be read as the dataset at all (empty, not CSV, missing columns, bad types)."""


class ValidationFailed(PermanentError):
    """A dataset was read but breaks its expectation suite; `report` holds the evidence."""

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report
