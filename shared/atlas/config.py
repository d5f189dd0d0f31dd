"""Configuration from environment variables, validated once at start.

Every variable has the ``ATLAS_`` prefix (the project also falls back to ``GOOGLE_CLOUD_PROJECT``).
Each process loads the settings class it needs with :func:`load` at start; a bad value raises
:class:`~atlas.errors.ConfigError` naming the variable, so a misconfigured function fails at deploy
time instead of on the first task. ``.env.example`` lists every variable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from atlas import limits
from atlas.errors import ConfigError

ENV_PREFIX = "ATLAS_"
DEFAULT_TOPIC = "atlas-tasks"
DEFAULT_TASKS_COLLECTION = "tasks"
DEFAULT_KNOWLEDGE_COLLECTION = "atlas-knowledge"
DEFAULT_BUDGET_COLLECTION = "atlas-budget"

Provider = Literal["openai", "azure_openai", "gemini", "vertex", "openai_compatible"]


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class ChainEntry(BaseModel):
    """One LLM provider of the fallback chain, tried in the order given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Provider
    model: str = Field(min_length=1)
    base_url: HttpUrl | None = None
    api_key_env: str | None = None
    timeout_s: float = Field(default=60.0, gt=0, le=600)
    max_output_tokens: int = Field(default=4096, gt=0, le=65536)

    @model_validator(mode="after")
    def _base_url_where_needed(self) -> ChainEntry:
        if self.provider in ("azure_openai", "vertex", "openai_compatible") and not self.base_url:
            raise ValueError(f"provider {self.provider} ({self.model}) needs a base_url")
        return self

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


DEFAULT_CHAIN: tuple[ChainEntry, ...] = (
    ChainEntry(provider="openai", model="gpt-4o-mini", api_key_env="OPENAI_API_KEY"),
)


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)


class CoreSettings(_Settings):
    """What every Atlas process that touches tasks needs: the project, the topic, the collection."""

    project: str = Field(min_length=1, validation_alias=AliasChoices("ATLAS_PROJECT", "GOOGLE_CLOUD_PROJECT"))
    topic: str = Field(default=DEFAULT_TOPIC, min_length=3, max_length=255)
    tasks_collection: str = Field(default=DEFAULT_TASKS_COLLECTION, pattern=r"^[A-Za-z0-9_-]{1,100}$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MetricsSettings(_Settings):
    """Where an instance writes its Cloud Monitoring metrics (docs/metrics.md)."""

    metrics_enabled: bool = True
    # host:port of a local MetricService (insecure gRPC, the local stack's); empty: Cloud Monitoring itself.
    monitoring_endpoint: str = Field(default="", pattern=r"^([A-Za-z0-9.\[\]:-]+:\d{1,5})?$")
    metrics_interval_s: float = Field(default=limits.METRICS_INTERVAL_S, ge=limits.MIN_METRICS_INTERVAL_S, le=3600.0)
    region: str = Field(default="global", min_length=1, max_length=64)
    # The generic_task resource's job: the function's name (Cloud Run sets K_SERVICE).
    metrics_job: str = Field(
        default="atlas-worker",
        min_length=1,
        max_length=128,
        validation_alias=AliasChoices("ATLAS_METRICS_JOB", "K_SERVICE"),
    )


class WorkerSettings(CoreSettings, MetricsSettings):
    """The worker function: where retrieval lives, how long a task may hold its lease, the LLM chain."""

    retrieval_url: HttpUrl
    retrieval_auth: Literal["auto", "none", "id_token"] = "auto"
    retrieval_timeout_s: float = Field(default=30.0, gt=0, le=300)
    retrieval_top_k: int = Field(default=6, ge=1, le=50)
    lease_s: int = Field(default=limits.LEASE_S, ge=10, le=3600)
    task_deadline_s: int = Field(default=limits.TASK_DEADLINE_S, ge=5, le=3600)
    max_delivery_attempts: int = Field(default=limits.MAX_DELIVERY_ATTEMPTS, ge=1, le=100)
    llm_chain: tuple[ChainEntry, ...] = DEFAULT_CHAIN
    llm_attempts_per_entry: int = Field(default=limits.LLM_ATTEMPTS_PER_ENTRY, ge=1, le=10)
    llm_stall_s: float = Field(default=limits.LLM_STALL_S, gt=0, le=600)
    llm_cooldown_s: float = Field(default=limits.LLM_COOLDOWN_S, ge=0, le=3600)
    llm_retry_after_cap_s: float = Field(default=limits.LLM_RETRY_AFTER_CAP_S, ge=0, le=600)
    input_token_budget: int = Field(default=limits.INPUT_TOKEN_BUDGET, ge=2000, le=1_000_000)
    daily_budget_usd: float | None = Field(default=None, gt=0)
    over_budget: Literal["fail", "cheapest"] = "fail"
    budget_collection: str = Field(default=DEFAULT_BUDGET_COLLECTION, pattern=r"^[A-Za-z0-9_-]{1,100}$")
    task_retention_days: int = Field(default=limits.TASK_RETENTION_DAYS, ge=1, le=3650)

    @model_validator(mode="after")
    def _deadline_inside_lease(self) -> WorkerSettings:
        problems = limits.lease_problems(task_deadline_s=self.task_deadline_s, lease_s=self.lease_s)
        if problems:
            raise ValueError(problems[0])
        return self


class RetrievalSettings(_Settings):
    """The retrieval function: which Qdrant (an embedded Qdrant Edge folder or a managed URL) and which model."""

    qdrant_path: Path | None = None
    qdrant_url: HttpUrl | None = None
    qdrant_api_key: SecretStr | None = None
    knowledge_collection: str = Field(default=DEFAULT_KNOWLEDGE_COLLECTION, min_length=1)
    # The project of the snapshot bucket's client (Cloud Run sets GOOGLE_CLOUD_PROJECT; optional otherwise).
    project: str | None = Field(default=None, validation_alias=AliasChoices("ATLAS_PROJECT", "GOOGLE_CLOUD_PROJECT"))
    embedding_model_dir: Path
    embedding_threads: int | None = Field(default=None, ge=1, le=64)
    max_ingest_documents: int = Field(default=500, ge=1, le=10000)
    # Hybrid search (docs/retrieval.md says how the defaults were measured).
    fusion: Literal["rrf", "dbsf"] = "dbsf"
    prefetch_limit: int = Field(default=100, ge=10, le=1000)
    rrf_k: int = Field(default=2, ge=1, le=1000)
    # The reranking and selection stage after hybrid search: which candidates reach the LLM (docs/retrieval.md).
    rerank: bool = True
    rerank_candidates: int = Field(default=30, ge=10, le=200)
    rerank_min_relative: float = Field(default=0.15, ge=0.0, le=1.0)
    chunk_max_chars: int = Field(default=1200, ge=200, le=20000)
    chunk_overlap_chars: int = Field(default=200, ge=0, le=5000)
    query_cache_size: int = Field(default=1024, ge=0, le=1_000_000)
    query_cache_ttl_s: float = Field(default=300.0, gt=0, le=86400)
    # The embedded index's store of record in the cloud: a snapshot object in a GCS bucket that every
    # instance restores at start and re-checks at most every index_refresh_s (docs/deploy.md).
    index_bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
    index_object: str = Field(default="knowledge/shard.tar.gz", min_length=1, max_length=1024)
    index_refresh_s: float = Field(default=30.0, ge=1, le=3600)

    @model_validator(mode="after")
    def _one_backend(self) -> RetrievalSettings:
        if self.qdrant_url is None and self.qdrant_path is None:
            raise ValueError(
                "set ATLAS_QDRANT_PATH (a folder, the embedded default) or ATLAS_QDRANT_URL (managed Qdrant)"
            )
        if self.index_bucket is not None and self.qdrant_url is not None:
            raise ValueError(
                "ATLAS_INDEX_BUCKET keeps snapshots of the embedded index (ATLAS_QDRANT_PATH); managed Qdrant "
                "(ATLAS_QDRANT_URL) is its own store: unset one of them"
            )
        if self.chunk_overlap_chars >= self.chunk_max_chars:
            raise ValueError("ATLAS_CHUNK_OVERLAP_CHARS must be smaller than ATLAS_CHUNK_MAX_CHARS")
        return self


class CliSettings(CoreSettings):
    """The ``atlas`` command's configuration: the task side (project, topic, collection). What a single command
    needs (the retrieval URL for ``ingest``, Mermaid's script for ``show``, the index for ``backup``) is an option
    of that command with its environment fallback (``atlas.cli``), declared there once."""


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load(settings_class: type[SettingsT]) -> SettingsT:
    """Read ``settings_class`` from the environment, or raise ConfigError naming each bad variable."""
    try:
        return settings_class()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            where = _variable_name(settings_class, field)
            detail = ".".join(str(part) for part in error["loc"][1:])
            problems.append(f"{where}{f' ({detail})' if detail else ''}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
    except SettingsError as exc:
        # pydantic-settings raises this when a complex value (ATLAS_LLM_CHAIN) is not valid JSON.
        raise ConfigError(f"invalid configuration: {exc}") from exc.__cause__


def _variable_name(settings_class: type[BaseSettings], field: str) -> str:
    if not field:
        return settings_class.__name__
    for name, info in settings_class.model_fields.items():
        choices = info.validation_alias.choices if isinstance(info.validation_alias, AliasChoices) else ()
        if field == name or field in choices:
            # pydantic reports a field read through an alias by the alias it tried first
            return " or ".join(str(c) for c in choices) if choices else f"{ENV_PREFIX}{name.upper()}"
    return f"{ENV_PREFIX}{field.upper()}"


def chain_to_env(entries: tuple[ChainEntry, ...]) -> str:
    """The ATLAS_LLM_CHAIN value that configures ``entries`` (used by the local stack and tests)."""
    return json.dumps([entry.model_dump(exclude_none=True) for entry in entries])
