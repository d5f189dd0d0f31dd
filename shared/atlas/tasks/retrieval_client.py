"""The worker's HTTP client for the retrieval service.

In the cloud the retrieval service is private: every call carries a Google ID token for the service's
URL (the worker's service account holds ``roles/run.invoker``), fetched and refreshed by
``google.oauth2.id_token`` credentials. Locally the service is plain ``http://`` and calls go without a
token (``ATLAS_RETRIEVAL_AUTH=auto`` decides by the scheme).
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import requests

from atlas.errors import RetrievalRequestError, RetrievalUnavailableError
from atlas.models import Source


def _id_token_session(audience: str) -> requests.Session:
    """A session that adds an ID token for ``audience`` to every request (refreshing it as it expires)."""
    import google.auth.transport.requests
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2 import id_token

    credentials = id_token.fetch_id_token_credentials(audience, request=google.auth.transport.requests.Request())
    return AuthorizedSession(credentials)


class RetrievalClient:
    """Talks to the retrieval service: search (the worker) and ingest (the CLI)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        auth: Literal["auto", "none", "id_token"] = "auto",
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._use_id_token = auth == "id_token" or (auth == "auto" and self._base_url.startswith("https://"))
        self._session: requests.Session | None = None
        self._lock = threading.Lock()

    def _get_session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = _id_token_session(self._base_url) if self._use_id_token else requests.Session()
            return self._session

    def search(self, query: str, *, top_k: int, filter: dict[str, Any] | None = None) -> list[Source]:
        body: dict[str, Any] = {"query": query, "top_k": top_k}
        if filter:
            body["filter"] = filter
        payload = self._post("/search", body)
        try:
            return [Source.model_validate(hit) for hit in payload["results"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise RetrievalRequestError(f"the retrieval service answered an unexpected shape: {exc}") from exc

    def ingest(self, documents: list[dict[str, str]]) -> dict[str, Any]:
        """Send Markdown documents (``source``, ``text``, optional ``title``) to be chunked and indexed."""
        return self._post("/ingest", {"documents": documents})

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._base_url}{path}"
        try:
            response = self._get_session().post(url, json=body, timeout=self._timeout_s)
        except requests.Timeout as exc:
            raise RetrievalUnavailableError(f"retrieval timed out after {self._timeout_s}s ({url})") from exc
        except requests.RequestException as exc:
            raise RetrievalUnavailableError(f"retrieval unreachable at {url}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise RetrievalUnavailableError(f"retrieval answered {response.status_code}: {response.text[:300]}")
        if response.status_code >= 400:
            raise RetrievalRequestError(
                f"retrieval rejected the request ({response.status_code}): {response.text[:300]}"
            )
        try:
            payload: dict[str, Any] = response.json()
        except ValueError as exc:
            raise RetrievalUnavailableError(f"retrieval answered non-JSON: {response.text[:200]}") from exc
        return payload
