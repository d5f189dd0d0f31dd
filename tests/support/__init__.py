"""Test support: a local OpenAI-compatible server, the in-process retriever, shared constants."""

TEST_PROJECT = "test-atlas"
