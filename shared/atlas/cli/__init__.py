"""The ``atlas`` command: submit, show, list, ingest, replay-dlq, backup, restore, export-finetune.

``main`` is the console script's entry point (``atlas.cli:main``); the commands, the terminal and HTML views of
a task, backups and the fine-tuning export are the modules of this package.
"""

from atlas.cli.app import main

__all__ = ["main"]
