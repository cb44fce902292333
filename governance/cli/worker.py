"""`governance worker`: see, warm up or stop the CLI's resident worker (`resident`)."""

from __future__ import annotations

import time
from typing import Any

import click

from governance.cli.resident import Place, control, start_worker, wait_until_warm
from governance.cli.root import EXIT_FAILED, EXIT_UNAVAILABLE, cli, echo, fail
from governance.services import Settings


@cli.group()
def worker() -> None:
    """The resident worker that runs commands warm (GOVERNANCE_CLI_WORKER=off disables it)."""


def _place() -> Place:
    settings = Settings()
    if not settings.cli_worker():
        fail("the resident worker is off (GOVERNANCE_CLI_WORKER=off)", EXIT_FAILED)
    place = Place.current(settings.runtime_dir())
    if place is None:
        fail(f"{settings.runtime_dir()} is not this user's alone; no worker is used", EXIT_FAILED)
    return place


def _show(status: dict[str, Any]) -> None:
    age = time.time() - float(status["started"])
    state = "stopping" if status["stopping"] else "warm"
    echo(
        f"{state}: pid {status['pid']}, up {age:.0f} s, {status['served']} commands served, "
        f"{status['running']} running, socket {status['socket']}"
    )


@worker.command()
def status() -> None:
    """Whether a worker for this code version is warm (exit 1 when none is)."""
    answer = control(_place(), "status")
    if answer is None:
        fail("no worker is running for this code version", EXIT_FAILED)
    _show(answer)


@worker.command()
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait until it is warm.")
def start(timeout: float) -> None:
    """Start the worker (if none runs) and wait until it answers."""
    place = _place()
    if control(place, "status") is None:
        start_worker(place)
    answer = wait_until_warm(place, timeout)
    if answer is None:
        fail(f"the worker did not answer within {timeout:.0f} s (log: {place.log})", EXIT_UNAVAILABLE)
    _show(answer)


@worker.command()
def stop() -> None:
    """Stop the worker once the commands it runs have finished."""
    answer = control(_place(), "stop")
    if answer is None:
        echo("no worker is running for this code version")
        return
    echo(f"stopping: pid {answer['pid']}, {answer['running']} commands still running")
