"""Test support: the in-process retriever, shared constants (the fake OpenAI server: infra/local/fake_openai.py)."""

TEST_PROJECT = "test-atlas"
