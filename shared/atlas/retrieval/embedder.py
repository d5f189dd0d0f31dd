"""Dense embeddings with fastembed from a model folder built offline by ``scripts/build_embedding_model.py``.

fastembed would otherwise download the model from Hugging Face at run time, which a Cloud Run instance
should not depend on (and this project's machines cannot reach): the folder is built once by
``make setup`` and shipped with the retrieval bundle, and ``HF_HUB_OFFLINE`` makes any download attempt
fail at once instead of after a long timeout.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

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

    def embed_documents(self, texts: Iterable[str], *, batch_size: int = 32) -> list[list[float]]:
        return [vector.tolist() for vector in self._model.embed(list(texts), batch_size=batch_size)]

    def embed_query(self, text: str) -> list[float]:
        return next(iter(self._model.query_embed(text))).tolist()
