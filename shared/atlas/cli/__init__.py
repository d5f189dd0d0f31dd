"""The ``atlas`` command: submit, show, list, ingest, replay-dlq, backup, restore, export-finetune.

``main`` is the console script's entry point (``atlas.cli:main``, built in :mod:`atlas.cli.app`); the exit codes
are :mod:`atlas.cli.session`'s. The commands, the terminal and HTML views of a task, backups and the fine-tuning
export are the modules of this package.
"""

from atlas.cli.app import main
from atlas.cli.session import EXIT_OK, EXIT_TASK_FAILED, EXIT_TIMEOUT, EXIT_UNAVAILABLE, EXIT_USAGE

__all__ = ["EXIT_OK", "EXIT_TASK_FAILED", "EXIT_TIMEOUT", "EXIT_UNAVAILABLE", "EXIT_USAGE", "main"]
