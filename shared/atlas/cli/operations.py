"""The operator's commands: ``atlas replay-dlq``, ``atlas backup``, ``atlas restore``, ``atlas export-finetune``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, TypeVar, Unpack

import click

from atlas import config
from atlas.cli.session import EXIT_OK, EXIT_TASK_FAILED, Session, UtcTime, http_url, pass_session
from atlas.models import TaskStatus

if TYPE_CHECKING:
    from atlas.cli.backup import Where

F = TypeVar("F", bound=Callable[..., object])


class IndexOptions(TypedDict):
    qdrant_path: Path | None
    qdrant_url: str | None
    qdrant_api_key: str | None
    collection: str


@click.command(
    name="replay-dlq",
    help="Republish dead-lettered tasks (after a fix) under their own task ids: pull dead letters from the "
    "dead-letter inspection subscription, set each dead-lettered task back to queued (its earlier error is kept "
    "in the task's history), republish it to the task topic with its task_id in the body, and acknowledge it. "
    "Prints one line per dead letter on stderr and a JSON summary on stdout.",
)
@click.option(
    "--subscription", help="the pull subscription on the dead-letter topic (default: ATLAS_TOPIC-dlq-inspect)"
)
@click.option("--max", "max_messages", type=click.IntRange(min=1), metavar="N", help="replay at most N dead letters")
@click.option("--dry-run", is_flag=True, help="show what would be replayed; change nothing, acknowledge nothing")
@click.option(
    "--pull-timeout",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="how long each pull waits for dead letters when there are none left",
)
@pass_session
def replay_dlq(
    session: Session, subscription: str | None, max_messages: int | None, dry_run: bool, pull_timeout: float
) -> int:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

    from atlas.tasks.replay import replay_dead_letters

    settings = session.settings
    subscriber, publisher = SubscriberClient(), PublisherClient()
    pull_from = subscriber.subscription_path(settings.project, subscription or f"{settings.topic}-dlq-inspect")
    topic = publisher.topic_path(settings.project, settings.topic)
    print(
        f"pulling dead letters from {pull_from} (waiting up to {pull_timeout:g}s when there are none)…",
        file=sys.stderr,
        flush=True,
    )
    summary = replay_dead_letters(
        subscriber,
        publisher,
        subscription=pull_from,
        topic=topic,
        store=session.store,
        max_messages=max_messages,
        dry_run=dry_run,
        pull_timeout_s=pull_timeout,
    )
    for task in summary.tasks:
        print(f"{task.get('task_id') or task.get('message_id')}: {task['action']}", file=sys.stderr)
    verb = "would replay" if dry_run else "replayed"
    count = summary.left_pending if dry_run else summary.replayed
    print(
        f"{verb} {count} of {summary.pulled} dead letters from {pull_from} to {topic}"
        f" ({summary.skipped_finished} already finished, {summary.unknown} of unknown tasks"
        f"{'' if dry_run else f', {summary.left_pending} not yet recorded'})",
        file=sys.stderr,
    )
    print(json.dumps({k: v for k, v in summary.as_dict().items() if k != "tasks"}))
    return EXIT_OK


def index_options(command: F) -> F:
    """Where the knowledge index is, for backup and restore: declared once for both."""
    for option in reversed(
        [
            click.option(
                "--qdrant-path",
                envvar="ATLAS_QDRANT_PATH",
                show_envvar=True,
                type=click.Path(file_okay=False, path_type=Path),
                help="the embedded index folder",
            ),
            click.option(
                "--qdrant-url", envvar="ATLAS_QDRANT_URL", show_envvar=True, callback=http_url, help="managed Qdrant"
            ),
            click.option("--qdrant-api-key", envvar="ATLAS_QDRANT_API_KEY", show_envvar=True, help="its API key"),
            click.option(
                "--collection",
                envvar="ATLAS_KNOWLEDGE_COLLECTION",
                show_envvar=True,
                default=config.DEFAULT_KNOWLEDGE_COLLECTION,
                show_default=True,
                help="the Qdrant collection",
            ),
        ]
    ):
        command = option(command)
    return command


def _where(session: Session, index: IndexOptions, gcs_uri: str | None = None) -> Where:
    from atlas.cli.backup import Where

    return Where(
        project=session.settings.project,
        firestore_emulator=os.environ.get("FIRESTORE_EMULATOR_HOST"),
        gcs_uri=gcs_uri,
        qdrant_path=index["qdrant_path"],
        qdrant_url=index["qdrant_url"],
        qdrant_api_key=index["qdrant_api_key"],
        collection=index["collection"],
    )


@click.command(help="Back up Firestore and the knowledge index into a new folder. docs/runbooks/backup-and-restore.md.")
@click.argument("folder", type=click.Path(path_type=Path))
@index_options
@click.option("--gcs-uri", help="in the cloud: gs://BUCKET/PREFIX for Firestore's managed export")
@click.option(
    "--skip-index",
    is_flag=True,
    help="back up only Firestore (an index that cannot be copied is rebuilt with `atlas ingest knowledge/`)",
)
@pass_session
def backup(session: Session, folder: Path, gcs_uri: str | None, skip_index: bool, **index: Unpack[IndexOptions]) -> int:
    from atlas.cli.backup import backup

    manifest = backup(folder, _where(session, index, gcs_uri), qdrant=not skip_index)
    what = "Firestore" if skip_index else "Firestore and the index"
    print(f"backed up {what} of {session.settings.project} to {folder}", file=sys.stderr)
    print(json.dumps(manifest))
    return EXIT_OK


@click.command(
    help="Restore a backup: Firestore into the running database, the index into a folder. "
    "docs/runbooks/backup-and-restore.md."
)
@click.argument("folder", type=click.Path(path_type=Path))
@index_options
@click.option("--skip-firestore", is_flag=True, help="restore only the index")
@click.option("--skip-index", is_flag=True, help="restore only Firestore")
@pass_session
def restore(
    session: Session, folder: Path, skip_firestore: bool, skip_index: bool, **index: Unpack[IndexOptions]
) -> int:
    from atlas.cli.backup import restore

    done = restore(folder, _where(session, index), firestore=not skip_firestore, qdrant=not skip_index)
    print(f"restored {', '.join(done) or 'nothing'} from {folder}", file=sys.stderr)
    print(json.dumps(done))
    return EXIT_OK


@click.command(
    name="export-finetune",
    help="Write succeeded tasks as fine-tuning JSONL (OpenAI chat format): each line holds the messages the model "
    "was given (system prompt, the task with its sources) and the design it answered.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="the JSONL file to write")
@click.option(
    "--limit", type=click.IntRange(min=1), default=1000, show_default=True, help="the most recent N succeeded tasks"
)
@click.option("--since", type=UtcTime(), help="only tasks updated at or after WHEN (ISO 8601, UTC unless it says)")
@pass_session
def export_finetune(session: Session, out: Path, limit: int, since: datetime | None) -> int:
    from atlas.cli.export import write_examples

    documents = session.store.recent(status=TaskStatus.SUCCEEDED, limit=limit, since=since)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        written = list(write_examples(documents, handle))
    after = f" updated since {since.isoformat()}" if since else ""
    print(f"wrote {len(written)} examples from {len(documents)} succeeded tasks{after} to {out}", file=sys.stderr)
    print(json.dumps({"examples": len(written), "tasks_read": len(documents), "out": str(out)}))
    return EXIT_OK if written else EXIT_TASK_FAILED
