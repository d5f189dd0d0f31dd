"""Dense embeddings with fastembed from a model folder built offline by ``scripts/build_embedding_model.py``.

fastembed would otherwise download the model from Hugging Face at run time, which a Cloud Run instance
should not depend on (and this project's machines cannot reach): the folder is built once by
``make setup`` and shipped with the retrieval bundle, and ``HF_HUB_OFFLINE`` makes any download attempt
fail at once instead of after a long timeout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from atlas.errors import EmbeddingModelMissingError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
REQUIRED_FILES = ("model.onnx", "tokenizer.json", "config.json", "tokenizer_config.json")


class Embedder:
    """all-MiniLM-L6-v2 through fastembed's ONNX runtime; thread-safe for concurrent ``embed`` calls."""

    dimension = DIMENSION

    def __init__(self, model_dir: Path, *, threads: int | None = None) -> None:
        missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
        if missing:
            raise EmbeddingModelMissingError(
                f"the embedding model at {model_dir} is missing {', '.join(missing)}: "
                "build it with `make setup` (scripts/build_embedding_model.py) and point "
                "ATLAS_EMBEDDING_MODEL_DIR at the folder"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from fastembed import TextEmbedding

        self.model_dir = model_dir
        self._model = TextEmbedding(MODEL_NAME, specific_model_path=str(model_dir), threads=threads)

    def embed_documents(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Unit vectors, one row per text, in the order given.

        The texts are embedded shortest first, so each batch pads to a similar length (the model's cost
        grows with the longest text of a batch); the rows are put back in the caller's order.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        embedded = self._model.embed([texts[i] for i in order], batch_size=batch_size)
        for position, vector in zip(order, embedded, strict=True):
            vectors[position] = vector
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(next(iter(self._model.query_embed(text))), dtype=np.float32)
