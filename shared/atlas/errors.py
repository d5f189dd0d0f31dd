"""The exception tree of Atlas.

Every error Atlas raises on purpose is an :class:`AtlasError`. The two branches tell the worker what
to do with the Pub/Sub message: a :class:`PermanentError` is recorded on the task as ``failed`` and the
message is acknowledged; a :class:`TransientError` is raised out of the function so that Pub/Sub
redelivers with backoff (and dead-letters after the last attempt).
"""

from __future__ import annotations


class AtlasError(Exception):
    """Root of every error Atlas raises on purpose."""

    code = "atlas_error"


class ConfigError(AtlasError):
    """An environment variable is missing or invalid; raised once, at start."""

    code = "config_error"


class PermanentError(AtlasError):
    """Retrying cannot help: record the task as failed and acknowledge the message."""

    code = "permanent_error"


class TransientError(AtlasError):
    """A dependency is down or busy: let Pub/Sub redeliver the message later."""

    code = "transient_error"


class InvalidTaskError(PermanentError):
    """The Pub/Sub message is not a valid task (bad JSON, bad fields, bad encoding)."""

    code = "invalid_task"

    def __init__(self, reason: str, *, task_id: str | None = None, prompt: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.task_id = task_id
        self.prompt = prompt  # the message's prompt, when it could be read (kept on the rejected task's record)


class ContentRefusedError(PermanentError):
    """Every LLM provider that answered refused the task's content."""

    code = "content_refused"


class BudgetExhaustedError(PermanentError):
    """The daily LLM budget is spent and the configuration says to fail rather than use a cheaper entry."""

    code = "budget_exhausted"


class RetrievalRequestError(PermanentError):
    """The retrieval service rejected the request (a 4xx): a bug or a mismatch, not an outage."""

    code = "retrieval_rejected"


class RetrievalUnavailableError(TransientError):
    """The retrieval service could not be reached, timed out, or answered 5xx."""

    code = "retrieval_unavailable"


class LLMUnavailableError(TransientError):
    """Every configured LLM provider failed, and at least one of them only for now (429, 5xx, network)."""

    code = "llm_unavailable"


class LeaseLostError(TransientError):
    """Another delivery took this task over while this one was still working on it; stop and let it finish."""

    code = "lease_lost"


class TaskBusyError(TransientError):
    """Another delivery holds a live lease on this task; Pub/Sub should try again later."""

    code = "task_busy"


class InvalidOutputError(AtlasError):
    """An LLM answered, but not with what was asked (bad JSON, schema violation, invented citation).

    The chain catches it: the same entry gets one repair request, then the next entry is tried."""

    code = "invalid_output"


class StreamBroken(AtlasError):
    """An LLM stream started and then failed (cut, stalled, ended without a finish reason); ``text`` is what
    had arrived. The chain catches it and moves to its next entry, replacing that text."""

    code = "broken_stream"

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text


class EmbeddingModelMissingError(ConfigError):
    """The offline embedding model folder is missing or incomplete."""

    code = "embedding_model_missing"


class InvalidRequestError(AtlasError):
    """A request to the retrieval service is malformed or over a limit: the caller must change it (HTTP 400).

    Only request validation raises this; every other failure inside retrieval is a 5xx, which the worker
    treats as transient."""

    code = "invalid_request"


class KnowledgeIndexError(AtlasError):
    """The knowledge index could not be opened or written."""

    code = "index_error"


class SnapshotStoreError(KnowledgeIndexError):
    """The index's snapshot bucket could not be read or written (network, 5xx after retries, denied, no such
    bucket or object): nothing was published and the local copy is as it was. Not transient by itself: a
    denied or missing bucket stays so until the deployment is fixed."""

    code = "snapshot_store_error"


class SnapshotConflictError(TransientError):
    """Another instance published a snapshot first (the generation precondition failed): download the newer
    generation, apply the change again and publish on top of it."""

    code = "snapshot_conflict"

    def __init__(self, message: str, *, expected: int, current: int | None) -> None:
        super().__init__(message)
        self.expected = expected
        self.current = current


class BackupError(AtlasError):
    """A backup could not be written or restored; the message says what to change."""

    code = "backup_error"


class DocumentError(AtlasError):
    """A file cannot become a knowledge document; ``atlas ingest`` reports it with the reason and goes on."""

    code = "document_error"

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsupportedDocumentError(DocumentError):
    """The file's extension is not one Atlas can read (docs/retrieval.md, "What can be ingested")."""

    code = "unsupported_document"


class UnreadableDocumentError(DocumentError):
    """The file cannot be read: missing, no permission, or text that is not UTF-8."""

    code = "unreadable_document"


class DocumentParseError(DocumentError):
    """The file is read but its format is broken (a damaged PDF, invalid YAML, unbalanced Terraform)."""

    code = "document_parse_error"
