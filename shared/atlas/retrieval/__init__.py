"""The retrieval side of Atlas: chunking, embedding and the Qdrant index (only the retrieval function imports it)."""
