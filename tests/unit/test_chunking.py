import pytest

from atlas.retrieval.chunking import chunk_markdown

DOC = """# Caching Strategies

Intro paragraph about caches.

## Cache-aside

Read from the cache, fall back to the database.

```python
# not a heading
x = 1
```

## TTLs

Short TTLs for volatile data.
"""


def test_chunks_keep_title_and_section():
    chunks = chunk_markdown("knowledge/caching.md", DOC)
    assert [(c.title, c.section) for c in chunks] == [
        ("Caching Strategies", ""),
        ("Caching Strategies", "Cache-aside"),
        ("Caching Strategies", "TTLs"),
    ]
    assert "# not a heading" in chunks[1].text
    assert chunks[1].embedding_text().startswith("Caching Strategies — Cache-aside\n")


def test_chunk_ids_are_stable_and_content_addressed():
    first = [c.id for c in chunk_markdown("a.md", DOC)]
    again = [c.id for c in chunk_markdown("a.md", DOC)]
    changed = [c.id for c in chunk_markdown("a.md", DOC.replace("Short TTLs", "Long TTLs"))]
    other_source = [c.id for c in chunk_markdown("b.md", DOC)]
    assert first == again
    assert first[:2] == changed[:2] and first[2] != changed[2]
    assert not set(first) & set(other_source)


def test_long_sections_are_split_with_overlap_and_size_limit():
    paragraph = " ".join(f"word{i}" for i in range(600))
    chunks = chunk_markdown("long.md", f"# Long\n\n## Body\n\n{paragraph}", max_chars=500, overlap_chars=100)
    assert len(chunks) > 5
    assert all(len(c.text) <= 500 for c in chunks)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert previous.text.split()[-1] in current.text  # the windows overlap


def test_document_without_heading_is_titled_from_its_file_name():
    chunks = chunk_markdown("notes/queue-tips.md", "Use idempotency keys.")
    assert chunks[0].title == "queue tips"


def test_overlap_must_be_smaller_than_chunk():
    with pytest.raises(ValueError):
        chunk_markdown("a.md", DOC, max_chars=100, overlap_chars=100)
