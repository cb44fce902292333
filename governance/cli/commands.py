"""Every `governance` command, run in this process (directly, or in a child of the resident worker).

Exit codes: 0 success; 1 a check failed (validation, policy, verification); 2 the input or the
request is unusable (bad file, bad config, refused action); 3 an unexpected error, a bug (one line,
`--debug` for the traceback); 4 a service the command needs is unavailable (retry later). Every
message is one line, redacted, without a traceback.
"""

import sys

import click

from governance.cli import (  # noqa: F401  (register the commands)
    datasets,
    housekeeping,
    images,
    models,
    records,
    releases,
    season,
    site,
    worker,
)
from governance.cli.root import EXIT_INPUT, EXIT_UNAVAILABLE, EXIT_UNEXPECTED, cli, fail
from governance.errors import GovernanceError, TransientError


def run() -> None:
    """Run the command line in this process."""
    from governance.redaction import install_log_redaction

    install_log_redaction()
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", EXIT_INPUT)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TransientError as exc:
        _show_traceback(debug)
        fail(str(exc), EXIT_UNAVAILABLE)
    except GovernanceError as exc:
        _show_traceback(debug)
        fail(str(exc), EXIT_INPUT)
    except Exception as exc:  # a bug: one line, never a traceback unless asked for
        _show_traceback(debug)
        detail = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
        hint = "" if debug else " (run again with --debug for the traceback)"
        fail(f"unexpected error: {reason}{hint}", EXIT_UNEXPECTED)


def _show_traceback(debug: bool) -> None:
    if debug:
        import traceback

        from governance.redaction import redact

        click.echo(redact(traceback.format_exc()), err=True)
