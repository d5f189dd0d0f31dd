"""The LLM provider chain: the openai SDK, one client per entry of ``ATLAS_LLM_CHAIN``, tried in order.

Every provider that speaks the OpenAI chat-completions API is reached through ``base_url``: OpenAI,
Azure OpenAI (v1 API), Gemini's and Vertex AI's OpenAI-compatible endpoints, Ollama or vLLM. An entry
whose credentials are absent is skipped as "not configured"; when no entry is configured the caller
gets :class:`NoProvider` and writes a retrieval-only brief instead of a design.

Errors are classified by the SDK's exception classes, never by parsing messages: an entry that fails is
recorded as a fallback (with the reason) and the next entry is tried. If every entry failed and at least
one failure was transient (429, 5xx, network), :class:`~atlas.errors.LLMUnavailableError` asks Pub/Sub
to retry the task later.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import openai

from atlas.config import ChainEntry
from atlas.errors import LLMUnavailableError

T = TypeVar("T")

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
}
DEFAULT_BASE_URL = {"gemini": "https://generativelanguage.googleapis.com/v1beta/openai/"}
NO_KEY_NEEDED = "unused"  # the SDK insists on a key; local OpenAI-compatible servers ignore it
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

_PERMANENT_FOR_ENTRY = (
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
    openai.BadRequestError,
    openai.UnprocessableEntityError,
)


class InvalidOutputError(ValueError):
    """The model answered, but not with what was asked (bad JSON, schema violation, invented citation)."""


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(frozen=True)
class Fallback:
    """An entry that was tried and failed, and why."""

    entry: str
    kind: str  # permanent | transient | invalid_output
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"entry": self.entry, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class Generation(Generic[T]):
    value: T
    provider: str
    model: str
    usage: Usage
    fallbacks: list[Fallback] = field(default_factory=list)


@dataclass(frozen=True)
class NoProvider:
    """No entry could produce a result; ``reason`` says why in a sentence meant for the task document."""

    reason: str
    fallbacks: list[Fallback] = field(default_factory=list)


def _vertex_token_provider() -> Callable[[], str]:
    """An api_key callable that returns a fresh Google access token (no API key at all on GCP)."""
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    lock = threading.Lock()

    def token() -> str:
        with lock:
            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())
            return str(credentials.token)

    return token


def key_env_for(entry: ChainEntry) -> str | None:
    """The environment variable holding ``entry``'s API key: its own ``api_key_env`` or the provider's default."""
    return entry.api_key_env or DEFAULT_KEY_ENV.get(entry.provider)


def entry_is_configured(entry: ChainEntry, environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether ``entry`` has what it needs to be tried (its API key, where it needs one)."""
    key_env = key_env_for(entry)
    if entry.provider in ("openai_compatible", "vertex"):
        return key_env is None or bool(environ.get(key_env))
    return bool(key_env and environ.get(key_env))


class ProviderChain:
    """Tries each configured entry in order; one openai client per entry, created once and shared."""

    def __init__(self, entries: tuple[ChainEntry, ...], environ: dict[str, str] | None = None) -> None:
        self._entries = entries
        self._environ = dict(os.environ if environ is None else environ)
        self._clients: dict[ChainEntry, openai.OpenAI] = {}
        self._lock = threading.Lock()

    @property
    def configured(self) -> list[ChainEntry]:
        return [entry for entry in self._entries if entry_is_configured(entry, self._environ)]

    def _client(self, entry: ChainEntry) -> openai.OpenAI:
        with self._lock:
            client = self._clients.get(entry)
            if client is None:
                client = openai.OpenAI(
                    api_key=self._api_key(entry),
                    base_url=entry.base_url or DEFAULT_BASE_URL.get(entry.provider),
                    timeout=entry.timeout_s,
                    max_retries=0,
                )
                self._clients[entry] = client
            return client

    def _api_key(self, entry: ChainEntry) -> str | Callable[[], str]:
        if entry.provider == "vertex" and entry.api_key_env is None:
            return _vertex_token_provider()
        key_env = key_env_for(entry)
        return (self._environ.get(key_env) if key_env else None) or NO_KEY_NEEDED

    def generate_json(
        self,
        messages: list[dict[str, str]],
        *,
        schema_name: str,
        schema: dict[str, Any],
        parse: Callable[[str], T],
    ) -> Generation[T] | NoProvider:
        """Ask each entry in turn for JSON matching ``schema``; ``parse`` validates (InvalidOutputError)."""
        configured = self.configured
        if not configured:
            names = ", ".join(entry.label for entry in self._entries) or "none"
            return NoProvider(f"no LLM provider is configured (chain entries without credentials: {names}).")
        fallbacks: list[Fallback] = []
        for entry in configured:
            try:
                return self._generate_with(entry, messages, schema_name, schema, parse, fallbacks)
            except InvalidOutputError as exc:
                fallbacks.append(Fallback(entry.label, "invalid_output", str(exc)[:500]))
            except _PERMANENT_FOR_ENTRY as exc:
                fallbacks.append(Fallback(entry.label, "permanent", _describe(exc)))
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                fallbacks.append(Fallback(entry.label, "transient", _describe(exc)))
        if any(f.kind == "transient" for f in fallbacks):
            raise LLMUnavailableError(
                "every LLM provider failed: " + "; ".join(f"{f.entry}: {f.reason}" for f in fallbacks)
            )
        return NoProvider(
            "every configured LLM provider failed: " + "; ".join(f"{f.entry}: {f.reason}" for f in fallbacks),
            fallbacks,
        )

    def _generate_with(
        self,
        entry: ChainEntry,
        messages: list[dict[str, str]],
        schema_name: str,
        schema: dict[str, Any],
        parse: Callable[[str], T],
        fallbacks: list[Fallback],
    ) -> Generation[T]:
        response = self._client(entry).chat.completions.create(
            model=entry.model,
            messages=messages,  # type: ignore[arg-type]
            max_completion_tokens=entry.max_output_tokens,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": False},
            },
        )
        if not response.choices:
            raise InvalidOutputError("the response has no choices")
        choice = response.choices[0]
        content = choice.message.content or ""
        if choice.finish_reason == "length":
            raise InvalidOutputError(f"the output was cut at max_output_tokens={entry.max_output_tokens}")
        if getattr(choice.message, "refusal", None):
            raise InvalidOutputError(f"the model refused: {choice.message.refusal}")
        value = parse(content)
        return Generation(
            value=value,
            provider=entry.provider,
            model=response.model or entry.model,
            usage=_usage(response.usage),
            fallbacks=list(fallbacks),
        )


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(
        input_tokens=int(usage.prompt_tokens or 0),
        cached_input_tokens=int(cached),
        output_tokens=int(usage.completion_tokens or 0),
    )


def _describe(exc: openai.OpenAIError) -> str:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    return f"{name}{f' {status}' if status else ''}: {message}"[:500]


def parse_json_object(content: str) -> dict[str, Any]:
    """Parse ``content`` as a JSON object, tolerating a Markdown code fence around it."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOutputError(f"the output is not JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidOutputError("the output is not a JSON object")
    return value
