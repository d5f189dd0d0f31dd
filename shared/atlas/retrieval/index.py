"""The knowledge index in Qdrant: one code path for local mode (a folder) and a managed cluster (URL).

Ingestion is idempotent per source: the chunks of a document are compared by id (a content hash) with
what the index holds for that source; new chunks are embedded and upserted, vanished ones deleted, and
unchanged ones left alone, so re-ingesting the same files embeds nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models

from atlas.errors import KnowledgeIndexError
from atlas.models import Source
from atlas.retrieval.chunking import Chunk, chunk_markdown
from atlas.retrieval.embedder import Embedder

DENSE = "dense"
UPSERT_BATCH = 64
SCROLL_PAGE = 1000


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    title: str | None = None


@dataclass(frozen=True)
class IngestReport:
    documents: int
    chunks: int
    added: int
    unchanged: int
    removed: int

    def as_dict(self) -> dict[str, int]:
        return self.__dict__.copy()


def open_qdrant(*, path: Path | None, url: str | None, api_key: str | None) -> QdrantClient:
    """A managed cluster when ``url`` is set, else local mode in ``path`` (one owner per folder)."""
    try:
        if url:
            return QdrantClient(url=url, api_key=api_key, timeout=30)
        assert path is not None
        path.mkdir(parents=True, exist_ok=True)
        return QdrantClient(path=str(path))
    except RuntimeError as exc:  # local mode: "already accessed by another instance"
        raise KnowledgeIndexError(f"cannot open the Qdrant folder {path}: {exc}") from exc


class KnowledgeIndex:
    def __init__(self, client: QdrantClient, collection: str, embedder: Embedder) -> None:
        self._client = client
        self._collection = collection
        self._embedder = embedder
        self._ensure_collection()

    @property
    def collection(self) -> str:
        return self._collection

    def _ensure_collection(self) -> None:
        if self._client.collection_exists(self._collection):
            return
        self._client.create_collection(
            self._collection,
            vectors_config={DENSE: models.VectorParams(size=self._embedder.dimension, distance=models.Distance.COSINE)},
        )
        with warnings.catch_warnings():
            # Local mode ignores payload indexes (and says so); a managed cluster needs this one for filters.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
            self._client.create_payload_index(self._collection, "source", models.PayloadSchemaType.KEYWORD)

    def count(self) -> int:
        return self._client.count(self._collection, exact=True).count

    def ingest(self, documents: Sequence[Document]) -> IngestReport:
        chunks_by_source: dict[str, list[Chunk]] = {}
        for document in documents:
            chunks_by_source[document.source] = chunk_markdown(document.source, document.text, title=document.title)
        added = unchanged = removed = 0
        to_embed: list[Chunk] = []
        stale: list[str] = []
        for source, chunks in chunks_by_source.items():
            existing = set(self._ids_for_source(source))
            wanted = {chunk.id for chunk in chunks}
            to_embed.extend(chunk for chunk in chunks if chunk.id not in existing)
            stale.extend(existing - wanted)
            unchanged += len(wanted & existing)
        for start in range(0, len(to_embed), UPSERT_BATCH):
            batch = to_embed[start : start + UPSERT_BATCH]
            vectors = self._embedder.embed_documents(chunk.embedding_text() for chunk in batch)
            self._client.upsert(
                self._collection,
                points=[
                    models.PointStruct(id=chunk.id, vector={DENSE: vector}, payload=chunk.payload())
                    for chunk, vector in zip(batch, vectors, strict=True)
                ],
            )
            added += len(batch)
        if stale:
            self._client.delete(self._collection, points_selector=models.PointIdsList(points=stale))
            removed = len(stale)
        return IngestReport(
            documents=len(chunks_by_source),
            chunks=sum(len(c) for c in chunks_by_source.values()),
            added=added,
            unchanged=unchanged,
            removed=removed,
        )

    def search(self, query: str, *, top_k: int, sources: Iterable[str] | None = None) -> list[Source]:
        query_filter = None
        wanted = list(sources or [])
        if wanted:
            query_filter = models.Filter(must=[models.FieldCondition(key="source", match=models.MatchAny(any=wanted))])
        response = self._client.query_points(
            self._collection,
            query=self._embedder.embed_query(query),
            using=DENSE,
            limit=top_k,
            query_filter=query_filter,
            with_payload=True,
        )
        return [_to_source(point.id, point.score, point.payload or {}) for point in response.points]

    def _ids_for_source(self, source: str) -> list[str]:
        ids: list[str] = []
        offset: Any = None
        source_filter = models.Filter(must=[models.FieldCondition(key="source", match=models.MatchValue(value=source))])
        while True:
            points, offset = self._client.scroll(
                self._collection,
                scroll_filter=source_filter,
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            ids.extend(str(point.id) for point in points)
            if offset is None:
                return ids


def _to_source(point_id: Any, score: float, payload: dict[str, Any]) -> Source:
    return Source(
        id=str(point_id),
        text=str(payload.get("text", "")),
        title=str(payload.get("title", "")),
        source=str(payload.get("source", "")),
        section=str(payload.get("section", "")),
        score=float(score),
    )
