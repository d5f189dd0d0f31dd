"""The ``atlas`` command: submit a task and follow it, show a task (terminal or HTML page), list recent tasks,
ingest what platform teams keep into the knowledge base, replay dead-lettered tasks, back up and restore, and
export finished tasks for fine-tuning.

It talks to the same Pub/Sub topic and Firestore collection as the worker (the emulators when
``PUBSUB_EMULATOR_HOST`` / ``FIRESTORE_EMULATOR_HOST`` are set; ``make up`` prints them) and reads its
settings from the same ``ATLAS_*`` variables.

Options and their environment fallbacks are click's (``envvar=``, shown in each command's ``--help``): one
declaration per option, no second reading of the same variable. Exit codes (:mod:`atlas.cli.session`): 0 done,
1 the task failed, 2 bad usage or configuration, 3 gave up waiting, 4 a service did not answer (try again).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from atlas.cli import ingest, operations, task_commands
from atlas.cli.session import CONFIG_HINT, EXIT_UNAVAILABLE, EXIT_USAGE
from atlas.errors import AtlasError, ConfigError, TransientError

# google.api_core's exceptions that mean "the service did not answer in time", by name: importing the library
# would make every command (and --help) pay for it.
UNAVAILABLE_ERRORS = frozenset({"ServiceUnavailable", "DeadlineExceeded", "RetryError", "GatewayTimeout"})


def _version() -> str:
    """The package version, and the commit when the code runs from a git checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("atlas")
    except PackageNotFoundError:
        found = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{found} (commit {commit})" if commit else found


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """--version, worked out only when asked (it runs git)."""
    if value and not ctx.resilient_parsing:
        click.echo(f"atlas {_version()}")
        ctx.exit()


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    help="Atlas designs cloud architectures. Submit a task, follow it, read the design.",
    epilog="Configuration comes from ATLAS_* environment variables (see .env.example); "
    "`make up` starts a local stack and prints what to export.",
)
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version, help="print the version"
)
def atlas() -> None:
    pass


for _command in (
    task_commands.submit,
    task_commands.show,
    task_commands.list_tasks,
    ingest.ingest,
    operations.replay_dlq,
    operations.backup,
    operations.restore,
    operations.export_finetune,
):
    atlas.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code, with every failure mapped to one (see the module's docstring)."""
    try:
        return int(atlas.main(args=argv, prog_name="atlas", standalone_mode=False) or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # bad arguments: click says which and how to get help
        exc.show()
        return EXIT_USAGE
    except click.Abort:
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"atlas: {exc}\natlas: {CONFIG_HINT}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if _unavailable(exc):
            print(f"atlas: a service did not answer, try again later: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        if isinstance(exc, AtlasError):
            print(f"atlas: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


def _unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says a dependency is down or slow rather than the command wrong."""
    return any(
        isinstance(error, TransientError | TimeoutError | ConnectionError)
        or (type(error).__module__.startswith("google.api_core") and type(error).__name__ in UNAVAILABLE_ERRORS)
        for error in _chain(exc)
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = exc
    for _ in range(20):  # a cause chain is short; a cycle must not hang the command
        if current is None:
            return
        yield current
        current = current.__cause__ or current.__context__


def environment_variables() -> set[str]:
    """Every variable an option of the command falls back to (the README lists them all)."""
    found: set[str] = set()
    for command in atlas.commands.values():
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            found.update([envvar] if isinstance(envvar, str) else envvar or [])
    return found


if __name__ == "__main__":
    sys.exit(main())
