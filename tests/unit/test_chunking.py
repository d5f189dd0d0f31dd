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


def test_last_paragraph_is_carried_into_the_next_chunk_as_overlap():
    paragraphs = [f"Paragraph {i} " + "filler " * 20 for i in range(6)]
    text = "# Doc\n\n## Body\n\n" + "\n\n".join(paragraphs)
    chunks = chunk_markdown("doc.md", text, max_chars=400, overlap_chars=200)
    assert len(chunks) > 1
    for previous, current in zip(chunks, chunks[1:], strict=False):
        last = previous.text.split("\n\n")[-1]
        assert current.text.startswith(last)  # the paragraph boundary overlap
    assert all(c.section == "Body" for c in chunks)


def test_each_section_is_chunked_on_its_own():
    text = "# Doc\n\n## A\n\n" + "alpha " * 150 + "\n\n## B\n\nbeta."
    chunks = chunk_markdown("doc.md", text, max_chars=300, overlap_chars=50)
    assert {c.section for c in chunks} == {"A", "B"}
    assert not any("alpha" in c.text and "beta" in c.text for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_tags_are_kept_in_the_payload_and_change_the_chunk_ids():
    plain = chunk_markdown("a.md", DOC)
    tagged = chunk_markdown("a.md", DOC, tags=("gcp", "caching"))
    retagged = chunk_markdown("a.md", DOC, tags=("caching", "gcp", "gcp"))
    assert tagged[0].payload()["tags"] == ["caching", "gcp"]
    assert [c.id for c in tagged] == [c.id for c in retagged]
    assert not {c.id for c in plain} & {c.id for c in tagged}
