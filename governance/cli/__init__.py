"""The `governance` command: the same library calls the Dagster assets make, for operators and CI.

An operator's command is handed to the resident worker when one is warm (its output, exit code and
signals are the command's own; see `resident`), and otherwise runs here.
"""

import sys


def main() -> None:
    from governance.cli.resident import run_by_worker

    code = run_by_worker(sys.argv)
    if code is not None:
        sys.exit(code)
    from governance.cli.commands import run

    run()
