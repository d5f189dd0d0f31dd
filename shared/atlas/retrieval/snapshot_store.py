"""The embedded index's store of record: one snapshot object in a GCS bucket, moved whole, by generation.

Each retrieval instance keeps its own copy of the index; this module only moves the archive and tells which
generation it is. Publishing is a compare-and-swap on the object's generation (``if_generation_match``), so
two instances that ingest at once cannot overwrite each other: the loser gets :class:`SnapshotConflictError`
and starts again from the newer generation. Every other failure is a :class:`SnapshotStoreError`; no
google.api_core, google.auth or requests exception leaves this module.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage import exceptions as storage_exceptions
from google.cloud.storage.retry import DEFAULT_RETRY

from atlas.errors import SnapshotConflictError, SnapshotStoreError

# Set on every snapshot we upload: when a retried upload meets its own first attempt (which landed but whose
# answer was lost), the precondition fails, and this marker shows the race was won, not lost.
_PUBLISH_ID = "atlas-publish-id"
_FAILURES = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    requests.RequestException,
    storage_exceptions.InvalidResponse,
    storage_exceptions.DataCorruption,
)


class SnapshotStore:
    """One snapshot object, ``gs://bucket/object_name``; thread-safe (the calls share one client, made lazily).

    ``timeout_s`` bounds each HTTP request; ``retry_deadline_s`` bounds the client's retries of 429, 5xx and
    network errors (keep it short where a request waits on it). With ``STORAGE_EMULATOR_HOST`` set the client
    talks to that emulator anonymously, as ``project``; otherwise it uses the default credentials.
    """

    def __init__(
        self,
        bucket: str,
        object_name: str,
        *,
        project: str | None = None,
        timeout_s: float = 60.0,
        retry_deadline_s: float = 120.0,
    ) -> None:
        self.bucket = bucket
        self.object_name = object_name
        self._project = project
        # Uploads are safe to retry too: every one carries a generation precondition.
        self._request = {"timeout": timeout_s, "retry": DEFAULT_RETRY.with_timeout(retry_deadline_s)}
        self._client: storage.Client | None = None
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.object_name}"

    def latest_generation(self) -> int | None:
        """The current snapshot's generation, or None before the first publish (one metadata GET)."""
        try:
            blob = self._current_blob()
        except _FAILURES as exc:
            raise self._failure("read the generation of", exc) from exc
        return None if blob is None else int(blob.generation)

    def download(self, dest_file: Path) -> int:
        """Write the current snapshot to ``dest_file`` and return its generation. The bytes are those of that
        generation even if another publish lands meanwhile; ``dest_file`` appears only once complete."""
        partial = dest_file.with_name(f".{dest_file.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            blob = self._current_blob()
            if blob is None:
                raise SnapshotStoreError(f"{self.uri} does not exist yet: nothing has been published")
            pinned = self._client_().bucket(self.bucket).blob(self.object_name, generation=blob.generation)
            pinned.download_to_filename(str(partial), **self._request)
            os.replace(partial, dest_file)
            return int(blob.generation)
        except _FAILURES as exc:
            raise self._failure("download", exc) from exc
        finally:
            partial.unlink(missing_ok=True)

    def publish(self, archive: Path, *, if_generation_match: int) -> int:
        """Upload ``archive`` as the new snapshot if the current generation is ``if_generation_match`` (0: no
        snapshot exists yet) and return the new generation; otherwise raise SnapshotConflictError."""
        if if_generation_match < 0:
            raise ValueError(f"if_generation_match must be 0 or a generation, not {if_generation_match}")
        publish_id = uuid.uuid4().hex
        try:
            blob = self._client_().bucket(self.bucket).blob(self.object_name)
            blob.metadata = {_PUBLISH_ID: publish_id}
            try:
                blob.upload_from_filename(
                    str(archive),
                    content_type="application/gzip",
                    if_generation_match=if_generation_match,
                    **self._request,
                )
                return int(blob.generation)
            except api_exceptions.PreconditionFailed:
                current = self._current_blob()
        except _FAILURES as exc:
            raise self._failure("publish", exc) from exc
        if current is not None and (current.metadata or {}).get(_PUBLISH_ID) == publish_id:
            return int(current.generation)
        generation = None if current is None else int(current.generation)
        raise SnapshotConflictError(
            f"{self.uri} is at generation {generation}, not {if_generation_match}: another instance published first",
            expected=if_generation_match,
            current=generation,
        )

    def _client_(self) -> storage.Client:
        with self._lock:
            if self._client is None:
                if os.environ.get("STORAGE_EMULATOR_HOST"):
                    from google.auth.credentials import AnonymousCredentials

                    self._client = storage.Client(project=self._project, credentials=AnonymousCredentials())
                else:
                    self._client = storage.Client(project=self._project)
            return self._client

    def _current_blob(self) -> storage.Blob | None:
        """The live object's metadata. A missing object and a missing bucket both answer 404 to a GET; only
        when that happens (before the first publish) does a one-item listing tell them apart."""
        bucket = self._client_().bucket(self.bucket)
        blob = bucket.get_blob(self.object_name, **self._request)
        if blob is None:
            try:
                list(bucket.list_blobs(prefix=self.object_name, max_results=1, **self._request))
            except api_exceptions.NotFound:
                raise SnapshotStoreError(f"the bucket of {self.uri} does not exist (ATLAS_INDEX_BUCKET)") from None
        return blob

    def _failure(self, action: str, exc: BaseException) -> SnapshotStoreError:
        return SnapshotStoreError(f"cannot {action} {self.uri}: {type(exc).__name__}: {exc}")
