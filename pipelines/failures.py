"""Map the library's failure classes onto Dagster's retry semantics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from governance.datasets.validation import ValidationReport
from governance.errors import ConfigError, GovernanceError, PermanentError, ValidationFailed
from governance.redaction import redact
from governance.site import Site
from pipelines.metadata import validation_metadata


@contextmanager
def permanent_failures(site: Site | None = None) -> Iterator[None]:
    """A permanent error fails the step at once (no retry) with its evidence as metadata (a
    refused validation's, linked to its Data Docs on `site`).

    Transient errors propagate unchanged, so the asset's RetryPolicy retries them with backoff.
    """
    try:
        yield
    except ValidationFailed as exc:
        report = exc.report
        metadata = (
            validation_metadata(report, site)
            if isinstance(report, ValidationReport) and site is not None
            else {}
        )
        raise dg.Failure(str(exc), metadata=metadata, allow_retries=False) from None
    except (PermanentError, ConfigError) as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    except (GovernanceError, dg.Failure):
        raise  # transient: the RetryPolicy retries it; its message is redacted already
    except Exception as exc:
        # An error the library did not classify (a bug, or a library's own exception) may quote a
        # credential: Dagster shows and stores it redacted, traceback included, and may retry it.
        import traceback

        detail = redact(traceback.format_exc())
        raise dg.Failure(
            redact(f"{type(exc).__name__}: {exc}"),
            metadata={"traceback": dg.MetadataValue.md(f"```\n{detail}\n```")},
        ) from None
