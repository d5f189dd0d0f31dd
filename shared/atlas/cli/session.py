"""What every ``atlas`` command shares: its exit codes, its configuration and clients (built when a command first
needs them, so ``--help`` and ``atlas ingest`` need no project), and the types of its options.

Options are declared once, each with its environment fallback (click's ``envvar=``): a value on the command line
wins, then the variable, then the default; ``atlas COMMAND --help`` shows the variable beside each option.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click
from pydantic import TypeAdapter, ValidationError

from atlas import config

if TYPE_CHECKING:
    from atlas.tasks.store import TaskStore

EXIT_OK = 0  # done: the command did what it was asked (a task that succeeded or degraded)
EXIT_TASK_FAILED = 1  # the task failed, there is no such task, or nothing could be exported
EXIT_USAGE = 2  # bad arguments or configuration: change the command or the environment, not the time
EXIT_TIMEOUT = 3  # gave up waiting: the task goes on; look again later
EXIT_UNAVAILABLE = 4  # Firestore, Pub/Sub or the retrieval service did not answer: the same command may work later

CONFIG_HINT = (
    "every variable is listed in .env.example; for the local stack, `make up` and then "
    'eval "$(.venv/bin/python infra/local/stack.py env)" set them'
)


class Session:
    """One run of the command: its settings and Firestore store, each built on first use."""

    @cached_property
    def settings(self) -> config.CliSettings:
        return config.load(config.CliSettings)

    @cached_property
    def store(self) -> TaskStore:
        from google.cloud import firestore

        from atlas.tasks.store import TaskStore

        return TaskStore(firestore.Client(project=self.settings.project), self.settings.tasks_collection)


pass_session = click.make_pass_decorator(Session, ensure=True)


def http_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An option callback: an http:// or https:// URL (as the settings take it), or a usage error naming the option."""
    if value is None:
        return None
    try:
        return str(TypeAdapter(config.HttpUrl).validate_python(value))
    except ValidationError as exc:
        raise click.BadParameter(f"{value!r}: {exc.errors()[0]['msg']}", ctx=ctx, param=param) from None


class UtcTime(click.ParamType[datetime]):
    """An ISO 8601 date or time; one without a zone is taken as UTC (as task times are)."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or time, e.g. 2026-12-01", param, ctx)
        return when if when.tzinfo else when.replace(tzinfo=UTC)


def at_least_one() -> click.IntRange:
    """A whole number of at least 1 (Firestore rejects other limits with a cryptic error)."""
    return click.IntRange(min=1)
