"""A local stack for the e2e tests: real emulators (shared with the session), retrieval and worker processes,
the knowledge base ingested, and the LLM chain pointed at the local OpenAI-compatible server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from google.cloud import firestore

from atlas import cli
from atlas.config import ChainEntry, chain_to_env
from atlas.tasks.store import TaskStore
from stack import LocalStack, StackState
from support import TEST_PROJECT


@contextmanager
def running_stack(
    emulators: Mapping[str, str],
    state_dir: Path,
    *,
    base_url: str,
    models: Sequence[str],
    worker_env: Mapping[str, str] | None = None,
    **stack_options: Any,
) -> Iterator[tuple[StackState, TaskStore]]:
    """A stack on its own topic and collection whose chain is ``models`` at ``base_url``; the CLI's
    environment points at it while it runs."""
    collection = f"tasks-e2e-{uuid.uuid4().hex[:8]}"
    chain = tuple(ChainEntry(provider="openai_compatible", model=model, base_url=base_url) for model in models)
    stack = LocalStack(
        state_dir,
        project=TEST_PROJECT,
        topic=f"atlas-e2e-{uuid.uuid4().hex[:8]}",
        pubsub_host=emulators["pubsub"],
        firestore_host=emulators["firestore"],
        worker_env={"ATLAS_LLM_CHAIN": chain_to_env(chain), "ATLAS_TASKS_COLLECTION": collection, **(worker_env or {})},
        **stack_options,
    )
    state = stack.start()
    saved = dict(os.environ)
    os.environ.update(state.client_env(), ATLAS_TASKS_COLLECTION=collection)
    try:
        assert cli.main(["ingest", "knowledge"]) == 0
        yield state, TaskStore(firestore.Client(project=TEST_PROJECT), collection)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stack.stop()
