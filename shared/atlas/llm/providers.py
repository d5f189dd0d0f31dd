"""Reaching the providers of the chain: one openai SDK client per entry, its key, and whether it is usable.

Every provider that speaks the OpenAI chat-completions API is reached through ``base_url``: OpenAI, Azure
OpenAI (v1 API), Gemini's and Vertex AI's OpenAI-compatible endpoints, Ollama or vLLM. Keys come from
the environment variable an entry names (Secret Manager fills it in the cloud); Vertex AI needs no key
at all: a Google access token of the service account is fetched (and refreshed) per request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping

import openai

from atlas.config import ChainEntry

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
}
DEFAULT_BASE_URL = {"gemini": "https://generativelanguage.googleapis.com/v1beta/openai/"}
NO_KEY_NEEDED = "unused"  # the SDK insists on a key; local OpenAI-compatible servers ignore it
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def key_env_for(entry: ChainEntry) -> str | None:
    """The environment variable holding ``entry``'s API key: its own ``api_key_env`` or the provider's default."""
    return entry.api_key_env or DEFAULT_KEY_ENV.get(entry.provider)


def entry_is_configured(entry: ChainEntry, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``entry`` has what it needs to be tried (its API key, where it needs one)."""
    key_env = key_env_for(entry)
    if entry.provider in ("openai_compatible", "vertex"):
        return key_env is None or bool(environ.get(key_env))
    return bool(key_env and environ.get(key_env))


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


class Clients:
    """One client per entry, created on first use and shared by all request threads of the instance."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._clients: dict[ChainEntry, openai.OpenAI] = {}
        self._lock = threading.Lock()

    def get(self, entry: ChainEntry) -> openai.OpenAI:
        with self._lock:
            client = self._clients.get(entry)
            if client is None:
                client = openai.OpenAI(
                    api_key=self._api_key(entry),
                    base_url=entry.base_url or DEFAULT_BASE_URL.get(entry.provider),
                    timeout=entry.timeout_s,
                    max_retries=0,  # one retry loop only: ours (atlas.llm.retry)
                )
                self._clients[entry] = client
            return client

    def _api_key(self, entry: ChainEntry) -> str | Callable[[], str]:
        if entry.provider == "vertex" and entry.api_key_env is None:
            return _vertex_token_provider()
        key_env = key_env_for(entry)
        return (self._environ.get(key_env) if key_env else None) or NO_KEY_NEEDED
