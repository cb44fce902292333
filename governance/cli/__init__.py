"""The `governance` command: the same library calls the Dagster assets make, for operators and CI.

Exit codes: 0 success, 1 a check failed (validation, policy), 2 bad input or usage. Any
GovernanceError is printed as one line without a traceback.
"""

import sys

import click

from governance.cli import datasets, images, models, records, releases  # noqa: F401  (register the commands)
from governance.cli.root import cli, fail
from governance.errors import GovernanceError


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GovernanceError as exc:
        fail(str(exc), 2)
