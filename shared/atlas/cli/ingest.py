"""``atlas ingest``: what platform teams keep (Markdown, HTML, PDF, text, Terraform, YAML) into the knowledge base.

Files are read here with retrieval's format readers (the cli's one reason to import ``atlas.retrieval``) and sent
to the retrieval service in batches; what cannot be read is reported with its reason and the rest goes on.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atlas.cli.session import EXIT_OK, EXIT_USAGE, http_url

if TYPE_CHECKING:
    from atlas.retrieval.formats import Skipped
    from atlas.retrieval.index import Document
    from atlas.tasks.retrieval_client import RetrievalClient

INGEST_BATCH = 8
DEFAULT_RETRIEVAL_URL = "http://127.0.0.1:8081"  # the local stack's usual port when ATLAS_RETRIEVAL_URL is unset
COUNTED = ("documents", "chunks", "added", "unchanged", "removed")


@click.command(
    help="Add files (or folders of them) to the knowledge base. Each file is read by its extension: Markdown "
    "(.md), HTML (.html, .htm: Confluence and wiki exports), PDF (.pdf, its text layer), text (.txt), Terraform "
    "(.tf) and YAML (.yaml, .yml: Kubernetes manifests, Cloud Build files), each split along its own structure, "
    "and sent to the retrieval service. Folders are searched recursively; names starting with a dot are left "
    "out. A file that is unsupported, unreadable, broken or empty is reported on stderr with the reason and the "
    "rest go on; the last line of stdout is one JSON object of totals. Re-ingesting unchanged files changes "
    'nothing. docs/retrieval.md, "What can be ingested".'
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--retrieval-url",
    envvar="ATLAS_RETRIEVAL_URL",
    show_envvar=True,
    default=DEFAULT_RETRIEVAL_URL,
    show_default=True,
    callback=http_url,
    help="the retrieval service",
)
@click.option("--timeout", type=float, default=300, show_default=True, help="seconds per batch")
@click.option("--quiet", is_flag=True, help="no progress bar")
def ingest(paths: tuple[Path, ...], retrieval_url: str, timeout: float, quiet: bool) -> int:
    from atlas.retrieval.formats import find_files
    from atlas.tasks.retrieval_client import RetrievalClient

    files, skipped = find_files(list(paths))
    for skip in skipped:
        print(skip_line(skip), file=sys.stderr)
    if not files:
        print(f"atlas: nothing to ingest under {', '.join(map(str, paths))}", file=sys.stderr)
        return EXIT_USAGE
    totals = _send(files, skipped, RetrievalClient(retrieval_url, timeout_s=timeout), quiet=quiet)
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


def _send(files: list[Path], skipped: list[Skipped], client: RetrievalClient, *, quiet: bool) -> dict[str, int]:
    """Read and send ``files`` in batches, adding what cannot be read to ``skipped``; the totals of the reports."""
    from tqdm import tqdm

    from atlas.retrieval.formats import Skipped, empty_reason, load_file

    totals = dict.fromkeys(COUNTED, 0)
    # The bar and the report go to stderr; stdout keeps the one JSON line of totals.
    with tqdm(total=len(files), unit="file", desc="ingest", file=sys.stderr, disable=quiet) as bar:
        for start in range(0, len(files), INGEST_BATCH):
            documents = []
            for path in files[start : start + INGEST_BATCH]:
                loaded = load_file(path)
                if isinstance(loaded, Skipped):
                    skipped.append(loaded)
                    bar.write(skip_line(loaded), file=sys.stderr)
                    continue
                if not loaded.text.strip():  # still sent: an emptied file's earlier chunks are removed
                    bar.write(f"atlas: empty {path}: {empty_reason(path)}", file=sys.stderr)
                    totals["empty"] = totals.get("empty", 0) + 1
                documents.append(ingest_fields(loaded))
            report: dict[str, Any] = client.ingest(documents) if documents else {}
            for key in COUNTED:
                totals[key] += int(report.get(key, 0))
            bar.update(min(INGEST_BATCH, len(files) - start))
            bar.set_postfix(added=totals["added"], unchanged=totals["unchanged"], removed=totals["removed"])
    return totals


def ingest_fields(document: Document) -> dict[str, str]:
    """A document as the retrieval service's /ingest takes it (Markdown has no title field: its heading is it)."""
    fields = {"source": document.source, "text": document.text}
    if document.title:
        fields["title"] = document.title
    return fields


def skip_line(skip: Skipped) -> str:
    return f"atlas: skipped {skip.path}: {skip.kind.replace('_', ' ')}: {skip.reason}"
