"""BM25 sparse vectors with fastembed's ``Qdrant/bm25``, offline, with our own stop-word list.

fastembed would download the model's stop-word files from Hugging Face; the only file it needs is
``english.txt`` (one stop word a line, the 179-word NLTK English list), which ships in this package
(``bm25_model/``). Documents get BM25 term-frequency weights (k=1.2, b=0.75), queries get 1 per token;
the IDF factor is applied at query time by the engine (``Modifier.IDF`` on the sparse vector), over the
live collection.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_NAME = "Qdrant/bm25"
MODEL_DIR = Path(__file__).with_name("bm25_model")
DEFAULT_AVG_LEN = 256.0


@dataclass(frozen=True)
class SparseVector:
    """BM25 document or query weights keyed by token hash, indices ascending."""

    indices: np.ndarray  # int64
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.indices)


class Bm25Encoder:
    """Stemmed, stop-word-filtered token hashes with BM25 document weights; pure Python, thread-safe."""

    def __init__(self, *, avg_len: float = DEFAULT_AVG_LEN) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from fastembed import SparseTextEmbedding

        self._model = SparseTextEmbedding(MODEL_NAME, specific_model_path=str(MODEL_DIR), avg_len=avg_len)

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return [_to_sparse(e.indices, e.values) for e in self._model.embed(list(texts), batch_size=256)]

    def encode_query(self, text: str) -> SparseVector:
        embedding = next(iter(self._model.query_embed(text)))
        return _to_sparse(embedding.indices, embedding.values)


def _to_sparse(indices: np.ndarray, values: np.ndarray) -> SparseVector:
    order = np.argsort(indices, kind="stable")
    return SparseVector(indices=np.asarray(indices, np.int64)[order], values=np.asarray(values, np.float64)[order])
