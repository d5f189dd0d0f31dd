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

    def __init__(self, reason: str, *, task_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.task_id = task_id


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


class EmbeddingModelMissingError(ConfigError):
    """The offline embedding model folder is missing or incomplete."""

    code = "embedding_model_missing"


class KnowledgeIndexError(AtlasError):
    """The knowledge index could not be opened or written."""

    code = "index_error"


class BackupError(AtlasError):
    """A backup could not be written or restored; the message says what to change."""

    code = "backup_error"
