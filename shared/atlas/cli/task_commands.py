"""``atlas submit``, ``atlas show`` and ``atlas list``: publish a task, read it (terminal or HTML page), list them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from atlas.cli.follow import follow_task
from atlas.cli.render import render_task
from atlas.cli.session import EXIT_OK, EXIT_TASK_FAILED, EXIT_TIMEOUT, EXIT_USAGE, Session, pass_session
from atlas.models import TaskMessage, TaskStatus

if TYPE_CHECKING:
    from atlas.tasks.document import TaskDocument

WAIT_HELP = "seconds to wait with --wait"


@click.command(help='Publish a task, e.g. atlas submit "Design a logging architecture for microservices".')
@click.argument("prompt")
@click.option("--task-id", help="your own id for the task (idempotency key); default: the message id")
@click.option("--constraint", multiple=True, help="a constraint the design must respect (repeatable)")
@click.option("--cloud", type=click.Choice(["gcp", "aws", "azure", "any"]), help="the target cloud")
@click.option("--budget", type=float, help="monthly budget in USD")
@click.option("--wait", is_flag=True, help="follow the task until it finishes, then print it")
@click.option("--timeout", type=float, default=300, show_default=True, help=WAIT_HELP)
@pass_session
def submit(
    session: Session,
    prompt: str,
    task_id: str | None,
    constraint: tuple[str, ...],
    cloud: str | None,
    budget: float | None,
    wait: bool,
    timeout: float,
) -> int:
    from google.cloud.pubsub_v1 import PublisherClient

    fields: dict[str, Any] = {"prompt": prompt, "task_id": task_id, "constraints": list(constraint) or None}
    fields.update(cloud=cloud, budget_usd_per_month=budget)
    try:
        message = TaskMessage.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        print(f"atlas: the task is not valid: {exc.errors(include_url=False)[0]['msg']}", file=sys.stderr)
        return EXIT_USAGE
    publisher = PublisherClient()
    topic = publisher.topic_path(session.settings.project, session.settings.topic)
    message_id = publisher.publish(topic, message.model_dump_json(exclude_defaults=True).encode()).result(timeout=30)
    published = message.task_id or str(message_id)
    print(published, flush=True)  # the id alone on stdout, first, also with --wait: `id=$(atlas submit ...)`
    print(f"published task {published} to {topic}", file=sys.stderr)
    if not wait:
        return EXIT_OK
    return _wait_and_print(session, published, timeout)


@click.command(
    help="Print a task: status, cost and timings, then the design as Markdown (its diagram in a mermaid block, "
    "the sources it cites), then the whole document as one line of JSON; --html writes a page instead and "
    "prints where it is."
)
@click.argument("task_id")
@click.option("--wait", is_flag=True, help="wait until the task finishes")
@click.option("--timeout", type=float, default=300, show_default=True, help=WAIT_HELP)
@click.option(
    "--html",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PAGE",
    help="write an HTML page and print its path (not the document)",
)
@click.option(
    "--mermaid-js",
    envvar="ATLAS_MERMAID_JS",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="a local mermaid.min.js for the page (default: .atlas/mermaid/mermaid.min.js from `make setup` when run "
    "in the repository, else a CDN)",
)
@click.option(
    "--self-contained",
    is_flag=True,
    help="copy Mermaid into the page (about 5 MB), so the one file draws its diagram anywhere, offline",
)
@pass_session
def show(
    session: Session,
    task_id: str,
    wait: bool,
    timeout: float,
    html: Path | None,
    mermaid_js: Path | None,
    self_contained: bool,
) -> int:
    mermaid_js = mermaid_js or mermaid_from_setup()
    if self_contained and (mermaid_js is None or not mermaid_js.is_file()):
        print(
            "atlas: --self-contained copies Mermaid into the page, and there is no mermaid.min.js at "
            f"{mermaid_js or '(ATLAS_MERMAID_JS is not set)'}: run `make setup`, or pass --mermaid-js PATH",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if self_contained and not html:
        print("atlas: --self-contained is about the page: add --html PAGE", file=sys.stderr)
        return EXIT_USAGE
    if wait:
        return _wait_and_print(session, task_id, timeout, page=(html, mermaid_js, self_contained))
    document = session.store.get(task_id)
    if document is None:
        where = session.settings.tasks_collection
        print(f"atlas: no task {task_id} in collection {where}; `atlas list` shows the recent ones", file=sys.stderr)
        return EXIT_TASK_FAILED
    return _print(document, page=(html, mermaid_js, self_contained))


@click.command(
    name="list", help="Recent tasks, newest first (optionally of one status); a failed task says why on the next line."
)
@click.option("--status", type=click.Choice([s.value for s in TaskStatus]), help="only tasks in this status")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="how many")
@pass_session
def list_tasks(session: Session, status: str | None, limit: int) -> int:
    documents = session.store.recent(status=TaskStatus(status) if status else None, limit=limit)
    if not documents:
        which = f" {status}" if status else ""
        print(f"no{which} tasks in collection {session.settings.tasks_collection}", file=sys.stderr)
        return EXIT_OK
    print(f"{'TASK':<28} {'STATUS':<10} {'STAGE':<13} {'UPDATED (UTC)':<19} {'COST USD':>9}  PROMPT")
    for document in documents:
        print(list_line(document))
    return EXIT_OK


def list_line(document: TaskDocument) -> str:
    when = document.updated_at.strftime("%Y-%m-%d %H:%M:%S") if document.updated_at else ""
    stage = document.stage.value if document.stage else ""
    prompt = " ".join((document.prompt or "").split())
    prompt = prompt[:60] + ("…" if len(prompt) > 60 else "") if prompt else "(prompt not recorded)"
    line = (
        f"{document.task_id[:28]:<28} {document.status.value:<10} {stage:<13} {when:<19} "
        f"{document.cost_usd or 0:>9.4f}  {prompt}"
    )
    if document.status is TaskStatus.FAILED and document.error is not None:
        reason = " ".join(document.error.message.split())
        reason = reason[:160] + ("…" if len(reason) > 160 else "")
        line += f"\n{'':<28}   why: {document.error.code}: {reason}"
    return line


def write_page(document: TaskDocument, path: Path, mermaid_js: Path | None, *, inline: bool = False) -> None:
    from atlas.cli.page import task_page

    if mermaid_js is not None and not mermaid_js.is_file():
        print(f"atlas: no Mermaid script at {mermaid_js}; the page will load it from a CDN", file=sys.stderr)
        mermaid_js = None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(task_page(document, mermaid_js=mermaid_js, inline_mermaid=inline), encoding="utf-8")
    drawn_by = "Mermaid inside the page" if inline else f"Mermaid from {mermaid_js or 'a CDN (needs the internet)'}"
    print(f"wrote {path} ({drawn_by}); open it in a browser", file=sys.stderr)


def mermaid_from_setup() -> Path | None:
    """The script `make setup` fetched, when atlas runs from the repository (ATLAS_MERMAID_JS unset)."""
    fetched = Path(".atlas") / "mermaid" / "mermaid.min.js"
    return fetched.resolve() if fetched.is_file() else None


Page = tuple[Path | None, Path | None, bool]  # (the page to write, Mermaid's script, inline it)


def _wait_and_print(session: Session, task_id: str, timeout_s: float, page: Page = (None, None, False)) -> int:
    document = follow_task(session.store, task_id, timeout_s=timeout_s)
    if document is None or not document.is_terminal:
        state = document.status.value if document else "not created yet"
        print(
            f"atlas: gave up after {timeout_s:.0f}s; task {task_id} is {state}. "
            f"Look again with: atlas show {task_id} --wait",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    return _print(document, page=page)


def _print(document: TaskDocument, *, page: Page) -> int:
    """The task on stdout (readable, then one line of JSON) or, with a page, just where the page is; the exit
    code says how it ended."""
    html, mermaid_js, inline = page
    if html is not None:
        write_page(document, html, mermaid_js, inline=inline)
        print(html.resolve())
        return EXIT_TASK_FAILED if document.status is TaskStatus.FAILED else EXIT_OK
    print(render_task(document))
    print(document.to_json_line())
    return EXIT_TASK_FAILED if document.status is TaskStatus.FAILED else EXIT_OK
