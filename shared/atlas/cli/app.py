"""The ``atlas`` command: submit a task and follow it, show a task (terminal or HTML page), list recent tasks,
ingest what platform teams keep (Markdown, HTML, PDF, text, Terraform, YAML) into the knowledge base, replay
dead-lettered tasks, back up and restore, and export finished tasks for fine-tuning.

It talks to the same Pub/Sub topic and Firestore collection as the worker (the emulators when
``PUBSUB_EMULATOR_HOST`` / ``FIRESTORE_EMULATOR_HOST`` are set; ``make up`` prints them) and reads its
settings from the same ``ATLAS_*`` variables.

Exit codes: 0 done (a task that succeeded or degraded), 1 the task failed, 2 bad usage or configuration,
3 gave up waiting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from atlas import config
from atlas.cli.render import render_task
from atlas.errors import AtlasError, ConfigError
from atlas.models import TaskMessage, TaskStatus

if TYPE_CHECKING:  # the retrieval side is imported by `atlas ingest` alone, Firestore's client by the commands
    from atlas.retrieval.formats import Skipped
    from atlas.retrieval.index import Document
    from atlas.tasks.document import TaskDocument
    from atlas.tasks.store import TaskStore

EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3
POLL_INTERVAL_S = 0.5
INGEST_BATCH = 8


def _store(settings: config.CliSettings) -> TaskStore:
    from google.cloud import firestore

    from atlas.tasks.store import TaskStore

    return TaskStore(firestore.Client(project=settings.project), settings.tasks_collection)


def cmd_submit(args: argparse.Namespace, settings: config.CliSettings) -> int:
    from google.cloud.pubsub_v1 import PublisherClient

    fields: dict[str, Any] = {"prompt": args.prompt}
    if args.task_id:
        fields["task_id"] = args.task_id
    if args.constraint:
        fields["constraints"] = args.constraint
    if args.cloud:
        fields["cloud"] = args.cloud
    if args.budget:
        fields["budget_usd_per_month"] = args.budget
    try:
        message = TaskMessage.model_validate(fields)
    except ValidationError as exc:
        print(f"atlas: the task is not valid: {exc.errors(include_url=False)[0]['msg']}", file=sys.stderr)
        return EXIT_USAGE
    publisher = PublisherClient()
    topic = publisher.topic_path(settings.project, settings.topic)
    message_id = publisher.publish(topic, message.model_dump_json(exclude_defaults=True).encode()).result(timeout=30)
    task_id = message.task_id or message_id
    print(f"published task {task_id} to {topic}", file=sys.stderr)
    if not args.wait:
        print(task_id)
        return EXIT_OK
    return _follow_and_print(settings, task_id, args.timeout)


def cmd_show(args: argparse.Namespace, settings: config.CliSettings) -> int:
    mermaid_js = args.mermaid_js or settings.mermaid_js or _mermaid_from_setup()
    if args.self_contained and (mermaid_js is None or not mermaid_js.is_file()):
        print(
            "atlas: --self-contained copies Mermaid into the page, and there is no mermaid.min.js at "
            f"{mermaid_js or '(ATLAS_MERMAID_JS is not set)'}: run `make setup`, or pass --mermaid-js PATH",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.self_contained and not args.html:
        print("atlas: --self-contained is about the page: add --html PAGE", file=sys.stderr)
        return EXIT_USAGE
    if args.wait:
        document = follow_task(_store(settings), args.task_id, timeout_s=args.timeout)
        if document is None or not document.is_terminal:
            return _gave_up(args.task_id, document, args.timeout)
    else:
        document = _store(settings).get(args.task_id)
    if document is None:
        print(
            f"atlas: no task {args.task_id} in collection {settings.tasks_collection}; "
            "`atlas list` shows the recent ones",
            file=sys.stderr,
        )
        return EXIT_TASK_FAILED
    if args.html:
        write_page(document, args.html, mermaid_js, inline=args.self_contained)
    _print_document(document)
    return _exit_code(document)


def write_page(document: TaskDocument, path: Path, mermaid_js: Path | None, *, inline: bool = False) -> None:
    from atlas.cli.page import task_page

    if mermaid_js is not None and not mermaid_js.is_file():
        print(f"atlas: no Mermaid script at {mermaid_js}; the page will load it from a CDN", file=sys.stderr)
        mermaid_js = None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(task_page(document, mermaid_js=mermaid_js, inline_mermaid=inline), encoding="utf-8")
    drawn_by = "Mermaid inside the page" if inline else f"Mermaid from {mermaid_js or 'a CDN (needs the internet)'}"
    print(f"wrote {path} ({drawn_by}); open it in a browser", file=sys.stderr)


def _mermaid_from_setup() -> Path | None:
    """The script `make setup` fetched, when atlas runs from the repository (ATLAS_MERMAID_JS unset)."""
    fetched = Path(".atlas") / "mermaid" / "mermaid.min.js"
    return fetched.resolve() if fetched.is_file() else None


def _follow_and_print(settings: config.CliSettings, task_id: str, timeout_s: float) -> int:
    document = follow_task(_store(settings), task_id, timeout_s=timeout_s)
    if document is None or not document.is_terminal:
        return _gave_up(task_id, document, timeout_s)
    _print_document(document)
    return _exit_code(document)


def _gave_up(task_id: str, document: TaskDocument | None, timeout_s: float) -> int:
    state = document.status.value if document else "not created yet"
    print(
        f"atlas: gave up after {timeout_s:.0f}s; task {task_id} is {state}. "
        f"Look again with: atlas show {task_id} --wait",
        file=sys.stderr,
    )
    return EXIT_TIMEOUT


def follow_task(store: TaskStore, task_id: str, *, timeout_s: float, live: bool = True) -> TaskDocument | None:
    """Poll the task document until it is terminal or ``timeout_s`` passes.

    Status and stage changes are reported on stderr, and (with ``live``) so is the design as it streams:
    the new text as it grows, and a note when a fallback entry restarts it.
    """
    started = time.monotonic()
    seen: tuple[str, str] | None = None
    shown = ("", "")  # (entry, partial text) already printed
    document = None
    while True:
        document = store.get(task_id)
        if document is not None:
            now = (document.status.value, str(document.stage.value if document.stage else None))
            if now != seen:
                if shown[1] and now[0] != TaskStatus.RUNNING:
                    print(file=sys.stderr)
                print(f"[{time.monotonic() - started:5.1f}s] {now[0]} · {now[1]}", file=sys.stderr)
                seen = now
            if live:
                shown = _show_partial(shown, document.partial_entry or "", document.partial or "")
            if document.is_terminal:
                return document
        if time.monotonic() - started > timeout_s:
            return document
        time.sleep(POLL_INTERVAL_S)


def _show_partial(shown: tuple[str, str], entry: str, text: str) -> tuple[str, str]:
    """Print what is new in the streamed ``text`` since ``shown``; say so when another entry restarts it."""
    shown_entry, shown_text = shown
    if not text or (entry, text) == shown:
        return shown
    if entry != shown_entry or not text.startswith(shown_text):
        if shown_text:
            print(file=sys.stderr)
        print(f"── streaming from {entry} ──", file=sys.stderr)
        shown_text = ""
    sys.stderr.write(text[len(shown_text) :])
    sys.stderr.flush()
    return entry, text


def _print_document(document: TaskDocument) -> None:
    print(render_task(document))
    print(document.to_json_line())


def _exit_code(document: TaskDocument) -> int:
    return EXIT_TASK_FAILED if document.status is TaskStatus.FAILED else EXIT_OK


def cmd_ingest(args: argparse.Namespace, settings: config.CliSettings) -> int:
    from atlas.retrieval.formats import Skipped, empty_reason, find_files, load_file
    from atlas.tasks.retrieval_client import RetrievalClient

    files, skipped = find_files(args.paths)
    for skip in skipped:
        print(_skip_line(skip), file=sys.stderr)
    if not files:
        print(f"atlas: nothing to ingest under {', '.join(map(str, args.paths))}", file=sys.stderr)
        return EXIT_USAGE
    from tqdm import tqdm

    client = RetrievalClient(args.retrieval_url or settings.retrieval_url, timeout_s=args.timeout)
    totals: dict[str, int] = {}
    # The bar and the report go to stderr; stdout keeps the one JSON line of totals.
    with tqdm(total=len(files), unit="file", desc="ingest", file=sys.stderr, disable=args.quiet) as bar:
        for start in range(0, len(files), INGEST_BATCH):
            documents = []
            for path in files[start : start + INGEST_BATCH]:
                loaded = load_file(path)
                if isinstance(loaded, Skipped):
                    skipped.append(loaded)
                    bar.write(_skip_line(loaded), file=sys.stderr)
                    continue
                if not loaded.text.strip():  # still sent: an emptied file's earlier chunks are removed
                    bar.write(f"atlas: empty {path}: {empty_reason(path)}", file=sys.stderr)
                    totals["empty"] = totals.get("empty", 0) + 1
                documents.append(ingest_fields(loaded))
            report = client.ingest(documents) if documents else {}
            for key in ("documents", "chunks", "added", "unchanged", "removed"):
                totals[key] = totals.get(key, 0) + int(report.get(key, 0))
            bar.update(min(INGEST_BATCH, len(files) - start))
            bar.set_postfix(added=totals["added"], unchanged=totals["unchanged"], removed=totals["removed"])
    kinds = dict(sorted(Counter(skip.kind for skip in skipped).items()))
    totals["skipped"] = len(skipped)
    if skipped or totals.get("empty"):
        why = ", ".join(f"{kind.replace('_', ' ')}: {count}" for kind, count in kinds.items())
        print(
            f"atlas: {len(skipped)} files skipped{f' ({why})' if why else ''}, {totals.get('empty', 0)} empty",
            file=sys.stderr,
        )
    print(json.dumps({**totals, "skipped_by_reason": kinds}))
    return EXIT_OK


def ingest_fields(document: Document) -> dict[str, Any]:
    """A document as the retrieval service's /ingest takes it (Markdown has no title field: its heading is it)."""
    fields = {"source": document.source, "text": document.text}
    if document.title:
        fields["title"] = document.title
    return fields


def _skip_line(skip: Skipped) -> str:
    return f"atlas: skipped {skip.path}: {skip.kind.replace('_', ' ')}: {skip.reason}"


def cmd_replay_dlq(args: argparse.Namespace, settings: config.CliSettings) -> int:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

    from atlas.tasks.replay import replay_dead_letters

    subscriber = SubscriberClient()
    publisher = PublisherClient()
    subscription = subscriber.subscription_path(settings.project, args.subscription or f"{settings.topic}-dlq-inspect")
    topic = publisher.topic_path(settings.project, settings.topic)
    summary = replay_dead_letters(
        subscriber,
        publisher,
        subscription=subscription,
        topic=topic,
        store=_store(settings),
        max_messages=args.max,
        dry_run=args.dry_run,
    )
    for task in summary.tasks or []:
        print(f"{task.get('task_id') or task.get('message_id')}: {task['action']}", file=sys.stderr)
    verb = "would replay" if args.dry_run else "replayed"
    count = summary.left_pending if args.dry_run else summary.replayed
    print(
        f"{verb} {count} of {summary.pulled} dead letters from {subscription} to {topic}"
        f" ({summary.skipped_finished} already finished, {summary.unknown} of unknown tasks"
        f"{'' if args.dry_run else f', {summary.left_pending} not yet recorded'})",
        file=sys.stderr,
    )
    print(json.dumps({k: v for k, v in summary.as_dict().items() if k != "tasks"}))
    return EXIT_OK


def cmd_list(args: argparse.Namespace, settings: config.CliSettings) -> int:
    documents = _store(settings).recent(status=TaskStatus(args.status) if args.status else None, limit=args.limit)
    if not documents:
        which = f" {args.status}" if args.status else ""
        print(f"no{which} tasks in collection {settings.tasks_collection}", file=sys.stderr)
        return EXIT_OK
    print(f"{'TASK':<28} {'STATUS':<10} {'STAGE':<13} {'UPDATED (UTC)':<19} {'COST USD':>9}  PROMPT")
    for document in documents:
        when = document.updated_at.strftime("%Y-%m-%d %H:%M:%S") if document.updated_at else ""
        prompt = " ".join((document.prompt or "").split())
        stage = document.stage.value if document.stage else ""
        print(
            f"{document.task_id[:28]:<28} {document.status.value:<10} "
            f"{stage:<13} {when:<19} {document.cost_usd or 0:>9.4f}  "
            f"{prompt[:60] + ('…' if len(prompt) > 60 else '')}"
        )
    return EXIT_OK


def cmd_export_finetune(args: argparse.Namespace, settings: config.CliSettings) -> int:
    from atlas.cli.export import write_examples

    documents = _store(settings).recent(status=TaskStatus.SUCCEEDED, limit=args.limit, since=args.since)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as out:
        written = list(write_examples(documents, out))
    since = f" updated since {args.since.isoformat()}" if args.since else ""
    print(f"wrote {len(written)} examples from {len(documents)} succeeded tasks{since} to {args.out}", file=sys.stderr)
    print(json.dumps({"examples": len(written), "tasks_read": len(documents), "out": str(args.out)}))
    return EXIT_OK if written else EXIT_TASK_FAILED


def _where(args: argparse.Namespace, settings: config.CliSettings) -> Any:
    import os

    from atlas.cli.backup import Where

    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return Where(
        project=settings.project,
        firestore_emulator=os.environ.get("FIRESTORE_EMULATOR_HOST"),
        gcs_uri=getattr(args, "gcs_uri", None),
        qdrant_path=args.qdrant_path or settings.qdrant_path,
        qdrant_url=args.qdrant_url or settings.qdrant_url,
        qdrant_api_key=key,
        collection=settings.knowledge_collection,
    )


def cmd_backup(args: argparse.Namespace, settings: config.CliSettings) -> int:
    from atlas.cli.backup import backup

    manifest = backup(args.folder, _where(args, settings), qdrant=not args.skip_index)
    what = "Firestore" if args.skip_index else "Firestore and the index"
    print(f"backed up {what} of {settings.project} to {args.folder}", file=sys.stderr)
    print(json.dumps(manifest))
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: config.CliSettings) -> int:
    from atlas.cli.backup import restore

    done = restore(args.folder, _where(args, settings), firestore=not args.skip_firestore, qdrant=not args.skip_index)
    print(f"restored {', '.join(done) or 'nothing'} from {args.folder}", file=sys.stderr)
    print(json.dumps(done))
    return EXIT_OK


def _version() -> str:
    """The package version, and the commit when the code runs from a git checkout."""
    import subprocess
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


class _VersionAction(argparse.Action):
    """--version, worked out only when asked (it runs git)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(f"atlas {_version()}")
        parser.exit()


def _positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (Firestore rejects other limits with a cryptic error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _utc_time(text: str) -> datetime:
    """argparse type: an ISO 8601 date or time; one without a zone is taken as UTC (as task times are)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time, e.g. 2026-12-01") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlas",
        description="Atlas designs cloud architectures. Submit a task, follow it, read the design.",
        epilog="Configuration comes from ATLAS_* environment variables (see .env.example); "
        "`make up` starts a local stack and prints what to export.",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version (and commit) and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", help="publish a task; with --wait, follow it to the end")
    submit.add_argument("prompt", help='what to design, e.g. "Design a logging architecture for microservices"')
    submit.add_argument("--task-id", help="your own id for the task (idempotency key); default: the message id")
    submit.add_argument("--constraint", action="append", help="a constraint the design must respect (repeatable)")
    submit.add_argument("--cloud", choices=["gcp", "aws", "azure", "any"], help="the target cloud")
    submit.add_argument("--budget", type=float, help="monthly budget in USD")
    submit.add_argument("--wait", action="store_true", help="follow the task until it finishes, then print it")
    submit.add_argument("--timeout", type=float, default=300, help="seconds to wait with --wait (default 300)")
    submit.set_defaults(handler=cmd_submit)

    show = commands.add_parser(
        "show",
        help="print a task: the design as Markdown, then one line of JSON; --html writes a page",
        description="Print a task document: status, cost and timings, then the design as Markdown (its diagram "
        "in a mermaid block, the sources it cites), then the whole document as one line of JSON.",
    )
    show.add_argument("task_id", help="the task id `atlas submit` printed (or your --task-id)")
    show.add_argument("--wait", action="store_true", help="wait until the task finishes")
    show.add_argument("--timeout", type=float, default=300, help="seconds to wait with --wait (default 300)")
    show.add_argument("--html", type=Path, metavar="PAGE", help="also write the task as an HTML page, diagram drawn")
    show.add_argument(
        "--mermaid-js",
        type=Path,
        help="a local mermaid.min.js for the page (default: ATLAS_MERMAID_JS, else .atlas/mermaid/mermaid.min.js "
        "from `make setup` when run in the repository, else a CDN)",
    )
    show.add_argument(
        "--self-contained",
        action="store_true",
        help="copy Mermaid into the page (about 5 MB), so the one file draws its diagram anywhere, offline",
    )
    show.set_defaults(handler=cmd_show)

    listing = commands.add_parser("list", help="recent tasks, newest first (optionally of one status)")
    listing.add_argument("--status", choices=[s.value for s in TaskStatus], help="only tasks in this status")
    listing.add_argument("--limit", type=_positive_int, default=20, help="how many (default 20)")
    listing.set_defaults(handler=cmd_list)

    ingest = commands.add_parser(
        "ingest",
        help="add files (or folders of them) to the knowledge base: Markdown, HTML, PDF, text, Terraform, YAML",
        description="Read each file by its extension: Markdown (.md), HTML (.html, .htm: Confluence and wiki "
        "exports), PDF (.pdf, its text layer), text (.txt), Terraform (.tf) and YAML (.yaml, .yml: Kubernetes "
        "manifests, Cloud Build files), each split along its own structure (headings, pages, blocks, objects, "
        "steps), and send it to the retrieval service. Folders are searched recursively; names starting with a "
        "dot are left out. A file that is unsupported, unreadable, broken or empty is reported on stderr with "
        "the reason and the rest go on; the last line of stdout is one JSON object of totals. Re-ingesting "
        'unchanged files changes nothing. docs/retrieval.md, "What can be ingested".',
    )
    ingest.add_argument("paths", nargs="+", type=Path, help="files and folders to ingest")
    ingest.add_argument("--retrieval-url", help="the retrieval service (default: ATLAS_RETRIEVAL_URL)")
    ingest.add_argument("--timeout", type=float, default=300, help="seconds per batch (default 300)")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(handler=cmd_ingest)

    replay = commands.add_parser(
        "replay-dlq",
        help="republish dead-lettered tasks (after a fix) under their own task ids",
        description="Pull dead letters from the dead-letter inspection subscription, set each dead-lettered "
        "task back to queued (its earlier error is kept in the task's history), republish it to the task "
        "topic with its task_id in the body so that it keeps its id, and acknowledge it. Prints one line per "
        "dead letter on stderr and a JSON summary on stdout.",
    )
    replay.add_argument(
        "--subscription", help="the pull subscription on the dead-letter topic (default: ATLAS_TOPIC-dlq-inspect)"
    )
    replay.add_argument("--max", type=int, metavar="N", help="replay at most N dead letters (default: all)")
    replay.add_argument(
        "--dry-run", action="store_true", help="show what would be replayed; change nothing, acknowledge nothing"
    )
    replay.set_defaults(handler=cmd_replay_dlq)

    for name, handler, text in (
        ("backup", cmd_backup, "back up Firestore and the knowledge index into a new folder"),
        ("restore", cmd_restore, "restore a backup: Firestore into the running database, the index into a folder"),
    ):
        sub = commands.add_parser(
            name, help=text, description=f"{text[0].upper()}{text[1:]}. docs/runbooks/backup-and-restore.md."
        )
        sub.add_argument("folder", type=Path, help="the backup folder")
        sub.add_argument("--qdrant-path", type=Path, help="the embedded index folder (default: ATLAS_QDRANT_PATH)")
        sub.add_argument(
            "--qdrant-url", help="managed Qdrant instead (default: ATLAS_QDRANT_URL; key: ATLAS_QDRANT_API_KEY)"
        )
        sub.set_defaults(handler=handler)
        if name == "backup":
            sub.add_argument("--gcs-uri", help="in the cloud: gs://BUCKET/PREFIX for Firestore's managed export")
            sub.add_argument(
                "--skip-index",
                action="store_true",
                help="back up only Firestore (an index that cannot be copied, as the cloud's per-instance one, "
                "is rebuilt with `atlas ingest knowledge/`)",
            )
        else:
            sub.add_argument("--skip-firestore", action="store_true", help="restore only the index")
            sub.add_argument("--skip-index", action="store_true", help="restore only Firestore")

    export = commands.add_parser(
        "export-finetune",
        help="write succeeded tasks as fine-tuning JSONL (OpenAI chat format)",
        description="Each line holds the messages the model was given (system prompt, the task with its sources) "
        "and the design it answered, for tuning a domain-specific model on Atlas's own task.",
    )
    export.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    export.add_argument(
        "--limit", type=_positive_int, default=1000, help="the most recent N succeeded tasks (default 1000)"
    )
    export.add_argument(
        "--since",
        type=_utc_time,
        metavar="WHEN",
        help="only tasks updated at or after WHEN (ISO 8601, UTC unless it says: 2026-12-01 or 2026-12-01T08:00)",
    )
    export.set_defaults(handler=cmd_export_finetune)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = config.load(config.CliSettings)
        return int(args.handler(args, settings))
    except ConfigError as exc:
        print(f"atlas: {exc}", file=sys.stderr)
        print(
            "atlas: every variable is listed in .env.example; for the local stack, `make up` and then "
            'eval "$(.venv/bin/python infra/local/stack.py env)" set them',
            file=sys.stderr,
        )
        return EXIT_USAGE
    except AtlasError as exc:
        print(f"atlas: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
