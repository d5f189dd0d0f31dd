#!/usr/bin/env python3
"""Judged-task benchmark: do the sources retrieval returns serve the tasks platform teams write? (a script)

    .venv/bin/python scripts/bench_tasks.py [--tasks tests/data/retrieval_tasks.json] [--split tune|holdout|all]
        [--knowledge knowledge] [--top-k 6] [--model-dir DIR] [--verbose]

The tasks file holds prompts with graded notes (2 primary, 1 on topic, unlisted off topic) and a fixed
tune/holdout split: tune retrieval on ``tune`` (the default) and run ``holdout`` once, for the final check.

A throwaway index is built in a temporary folder through ``RetrievalService`` (``ATLAS_QDRANT_PATH``), from
``--knowledge`` read exactly as ``atlas ingest`` reads it (``atlas.retrieval.formats``; sources are named
relative to the folder's parent, so ``knowledge/x.md`` wherever it is run from). Every task's prompt goes
through ``RetrievalService.search`` with ``--top-k``, and each split reports, averaged over its tasks:

- ``on_topic_share``: the share of returned sources (hits) whose note the task grades 1 or 2;
- ``primary_recall``: the share of the task's grade-2 notes that appear among the returned sources;
- ``mean_sources``: how many sources came back.

The service searches as configured, so with the reranking stage and its cut unless ``ATLAS_RERANK=false``
(which gives the engine's top ``--top-k``). ``--verbose`` prints each task with its sources and their grades.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "shared"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEFAULT_TASKS = REPO / "tests" / "data" / "retrieval_tasks.json"
DEFAULT_MODEL_DIR = REPO / ".atlas" / "models" / "all-MiniLM-L6-v2-int8"
SPLITS = ("tune", "holdout")
PRIMARY, ON_TOPIC = 2, 1
# The index is ours alone: nothing from the caller's environment may point it at a cluster or a bucket.
FOREIGN_INDEX_VARIABLES = ("ATLAS_QDRANT_URL", "ATLAS_QDRANT_API_KEY", "ATLAS_INDEX_BUCKET")


@dataclass(frozen=True)
class Task:
    id: str
    prompt: str
    split: str
    relevance: dict[str, int]


@dataclass(frozen=True)
class TaskScore:
    on_topic_share: float
    primary_recall: float
    sources: int


def read_tasks(path: Path) -> list[Task]:
    """The tasks of a tasks file: ``{"tasks": [...]}`` (with a header) or a bare list."""
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = data["tasks"] if isinstance(data, dict) else data
    return [
        Task(id=str(e["id"]), prompt=str(e["prompt"]), split=str(e["split"]), relevance=dict(e["relevance"]))
        for e in entries
    ]


def score_task(relevance: dict[str, int], sources: Sequence[str]) -> TaskScore:
    """How well the returned ``sources`` (one per hit, repeats included) serve a task graded by ``relevance``."""
    on_topic = sum(1 for source in sources if relevance.get(source, 0) >= ON_TOPIC)
    primary = {source for source, grade in relevance.items() if grade >= PRIMARY}
    return TaskScore(
        on_topic_share=on_topic / len(sources) if sources else 0.0,
        primary_recall=len(primary & set(sources)) / len(primary) if primary else 1.0,
        sources=len(sources),
    )


def summarise(scores: Sequence[TaskScore]) -> dict[str, Any]:
    """Means over tasks (each task weighs the same, however many sources it got)."""
    if not scores:
        return {"tasks": 0}
    return {
        "tasks": len(scores),
        "on_topic_share": round(statistics.fmean(s.on_topic_share for s in scores), 4),
        "primary_recall": round(statistics.fmean(s.primary_recall for s in scores), 4),
        "mean_sources": round(statistics.fmean(s.sources for s in scores), 2),
    }


def report_by_split(tasks: Sequence[Task], scores: Sequence[TaskScore], split: str) -> dict[str, dict[str, Any]]:
    """The summary of each split asked for (``all``: tune, holdout and both together)."""
    wanted = SPLITS if split == "all" else (split,)
    report = {name: summarise([s for t, s in zip(tasks, scores, strict=True) if t.split == name]) for name in wanted}
    if split == "all":
        report["all"] = summarise(scores)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    tasks = [t for t in read_tasks(args.tasks) if args.split == "all" or t.split == args.split]
    if not tasks:
        print(f"no {args.split} tasks in {args.tasks}", file=sys.stderr)
        return 2
    if args.split in ("holdout", "all"):
        print("note: the holdout tasks are for the final check; tune on --split tune", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="atlas-bench-tasks-") as work:
        service, ingested = _build_index(Path(work), args.knowledge, args.model_dir)
        _warn_unknown_sources(tasks, ingested["sources"])
        print(f"{len(tasks)} tasks ({args.split}); {ingested['documents']} documents, {ingested['chunks']} chunks")
        scores = []
        for task in tasks:
            hits = _search(service, task.prompt, args.top_k)
            scores.append(score_task(task.relevance, [hit["source"] for hit in hits]))
            if args.verbose:
                _print_task(task, hits, scores[-1])
    report = report_by_split(tasks, scores, args.split)
    for name, summary in report.items():
        print(
            f"{name:>7}: {summary['tasks']} tasks, on-topic share {summary['on_topic_share']:.3f}, "
            f"primary recall {summary['primary_recall']:.3f}, {summary['mean_sources']} sources per task"
        )
    result = {
        "tasks_file": _shown(args.tasks),
        "split": args.split,
        "top_k": args.top_k,
        "model_dir": _shown(args.model_dir),
        "documents": ingested["documents"],
        "chunks": ingested["chunks"],
        **report,
    }
    print(json.dumps(result))
    return 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=Path, default=DEFAULT_TASKS, help="the judged tasks (JSON)")
    parser.add_argument("--split", choices=(*SPLITS, "all"), default="tune", help="which tasks (default: tune)")
    parser.add_argument("--knowledge", type=Path, default=REPO / "knowledge", help="the folder to ingest")
    parser.add_argument("--top-k", type=int, default=6, help="sources per task, as ATLAS_RETRIEVAL_TOP_K (6)")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ.get("ATLAS_EMBEDDING_MODEL_DIR") or DEFAULT_MODEL_DIR),
        help="the embedding model folder (default: ATLAS_EMBEDDING_MODEL_DIR, else the int8 model make setup builds)",
    )
    parser.add_argument("--verbose", action="store_true", help="each task with its sources and their grades")
    return parser.parse_args(argv)


def _build_index(work: Path, knowledge: Path, model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """A fresh index of ``knowledge`` in ``work``, filled as `atlas ingest` fills one."""
    from atlas import config
    from atlas.cli.ingest import ingest_fields
    from atlas.retrieval.formats import Skipped, find_files, load_file
    from atlas.retrieval.service import IngestRequest, RetrievalService

    for variable in FOREIGN_INDEX_VARIABLES:
        os.environ.pop(variable, None)
    os.environ["ATLAS_QDRANT_PATH"] = str(work / "qdrant")
    os.environ["ATLAS_EMBEDDING_MODEL_DIR"] = str(model_dir)
    settings = config.load(config.RetrievalSettings)
    service = RetrievalService(settings)
    files, skipped = find_files([knowledge])
    root = knowledge.resolve().parent
    documents = []
    for path in files:
        loaded = load_file(path, root)
        if isinstance(loaded, Skipped):
            skipped.append(loaded)
        else:
            documents.append(ingest_fields(loaded))
    for skip in skipped:
        print(f"skipped {skip.path}: {skip.kind}: {skip.reason}", file=sys.stderr)
    chunks = 0
    batch = settings.max_ingest_documents
    for start in range(0, len(documents), batch):
        request = IngestRequest.model_validate({"documents": documents[start : start + batch]})
        chunks += int(service.ingest(request)["chunks"])
    return service, {"documents": len(documents), "chunks": chunks, "sources": {d["source"] for d in documents}}


def _search(service: Any, prompt: str, top_k: int) -> list[dict[str, Any]]:
    from atlas.retrieval.service import SearchRequest

    return list(service.search(SearchRequest(query=prompt, top_k=top_k))["results"])


def _warn_unknown_sources(tasks: Sequence[Task], ingested: set[str]) -> None:
    unknown = sorted({source for task in tasks for source in task.relevance} - ingested)
    if unknown:
        print(f"warning: judged notes that were not ingested (is --knowledge right?): {unknown}", file=sys.stderr)


def _print_task(task: Task, hits: Sequence[dict[str, Any]], score: TaskScore) -> None:
    print(
        f"{task.id} [{task.split}] on-topic {score.on_topic_share:.2f}, primary {score.primary_recall:.2f}: "
        f"{task.prompt}"
    )
    for hit in hits:
        where = f"{hit['source']} › {hit['section']}" if hit.get("section") else hit["source"]
        print(f"    [{task.relevance.get(hit['source'], 0)}] {where}")
    missed = [s for s, grade in task.relevance.items() if grade >= PRIMARY and s not in {h["source"] for h in hits}]
    if missed:
        print(f"    missed primary: {', '.join(missed)}")


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
