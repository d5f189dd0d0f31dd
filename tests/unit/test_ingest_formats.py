"""Each format `atlas ingest` reads becomes Markdown that the one chunker splits along the file's own structure."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from atlas import cli
from atlas.errors import DocumentParseError, UnreadableDocumentError, UnsupportedDocumentError
from atlas.retrieval.chunking import Chunk, chunk_markdown
from atlas.retrieval.formats import Skipped, find_files, load_document, load_file
from support.documents import CLOUDBUILD, HTML_PAGE, KUBERNETES, TERRAFORM, TEXT, pdf_bytes, write_mixed_folder


def chunks_of(path: Path, source: str | None = None) -> list[Chunk]:
    document = load_document(path, source or path.name)
    return chunk_markdown(document.source, document.text, title=document.title)


def sections(chunks: list[Chunk]) -> list[str]:
    return list(dict.fromkeys(chunk.section for chunk in chunks))


def test_html_is_split_at_its_headings_without_scripts_styles_or_navigation(tmp_path):
    page = tmp_path / "runbook.html"
    page.write_text(HTML_PAGE, encoding="utf-8")
    chunks = chunks_of(page)
    assert {chunk.title for chunk in chunks} == {"Queue Runbook"}
    assert sections(chunks) == ["", "Dead letters", "Escalation"]
    text = "\n".join(chunk.text for chunk in chunks)
    assert "do-not-index-this-script" not in text and "color: red" not in text
    assert "Operations" not in text and "Last edited" not in text
    assert chunks[0].text == "How the platform team handles dead letters."
    assert "- Fix the cause\n- Replay in batches" in chunks[1].text
    assert "```bash\ngcloud pubsub subscriptions pull atlas-tasks-dlq-inspect\n# then replay\n```" in chunks[1].text
    assert chunks[-1].text == "tier | who\n1 | on-call"


def test_html_without_h1_is_titled_by_its_title_tag(tmp_path):
    page = tmp_path / "page.htm"
    page.write_text("<html><head><title>Cost review</title></head><body><p>Budgets per team.</p></body></html>")
    document = load_document(page, "page.htm")
    assert document.title == "Cost review"
    assert document.text == "# Cost review\n\nBudgets per team.\n"


def test_pdf_pages_become_sections_titled_from_the_metadata(tmp_path):
    pdf = tmp_path / "dr.pdf"
    pdf.write_bytes(
        pdf_bytes([["Restore drills", "Restore a backup every quarter."], ["Fail over twice a year."]], "DR")
    )
    chunks = chunks_of(pdf)
    assert [(c.title, c.section) for c in chunks] == [("DR", "page 1"), ("DR", "page 2")]
    assert chunks[0].text == "Restore drills\nRestore a backup every quarter."
    assert chunks[1].text == "Fail over twice a year."


def test_pdf_sections_follow_its_outline_and_the_title_falls_back_to_the_first_line(tmp_path):
    writer = PdfWriter(clone_from=io.BytesIO(pdf_bytes([["Atlas handbook", "Intro."], ["Queues."], ["More queues."]])))
    writer.add_outline_item(title="Queues", page_number=1)
    out = io.BytesIO()
    writer.write(out)
    pdf = tmp_path / "handbook.pdf"
    pdf.write_bytes(out.getvalue())
    assert PdfReader(pdf).outline  # the outline is really there
    chunks = chunks_of(pdf)
    assert {c.title for c in chunks} == {"Atlas handbook"}
    assert sections(chunks) == ["page 1", "Queues (page 2)", "Queues (page 3)"]


def test_text_is_titled_by_its_file_name_and_kept_in_paragraphs(tmp_path):
    notes = tmp_path / "handover.txt"
    notes.write_text(TEXT, encoding="utf-8")
    chunks = chunks_of(notes)
    assert [(c.title, c.section) for c in chunks] == [("handover.txt", "")]
    assert chunks[0].text == (
        "On-call handover notes.\n\n\\# Not a heading: the pager rotates on Mondays.\n"
        "Escalate to the database team after 30 minutes."
    )


def test_terraform_is_split_into_its_top_level_blocks(tmp_path):
    module = tmp_path / "pubsub.tf"
    module.write_text(TERRAFORM, encoding="utf-8")
    chunks = chunks_of(module, "terraform/pubsub.tf")
    assert {c.title for c in chunks} == {"Pub/Sub topics of the task pipeline"}
    assert sections(chunks) == [
        'variable "project"',
        'resource "google_pubsub_topic" "tasks"',
        'resource "google_pubsub_topic" "dead_letter"',
    ]
    tasks = chunks[1].text
    assert tasks.startswith('```hcl\n# Tasks wait here for the worker.\nresource "google_pubsub_topic" "tasks" {')
    assert "allowed_persistence_regions" in tasks and tasks.endswith("}\n```")
    assert '{ "type": "record" }' in chunks[2].text  # the heredoc stays inside its block


def test_terraform_without_a_leading_comment_is_titled_by_its_path(tmp_path):
    module = tmp_path / "main.tf"
    module.write_text('# Copyright 2026 Example\n\nterraform {\n  required_version = ">= 1.6"\n}\n')
    document = load_document(module, "terraform/main.tf")
    assert document.title == "terraform/main.tf"
    assert "## terraform\n" in document.text


def test_unbalanced_terraform_is_a_parse_error(tmp_path):
    module = tmp_path / "broken.tf"
    module.write_text('resource "google_pubsub_topic" "tasks" {\n  name = "x"\n')
    with pytest.raises(DocumentParseError, match="line 1 is not closed"):
        load_document(module, "broken.tf")


def test_kubernetes_objects_of_a_multi_document_file_are_sections_by_kind_and_name(tmp_path):
    manifest = tmp_path / "checkout.yaml"
    manifest.write_text(KUBERNETES, encoding="utf-8")
    chunks = chunks_of(manifest, "k8s/checkout.yaml")
    assert {c.title for c in chunks} == {"Checkout service"}
    assert sections(chunks) == ["Deployment/checkout", "Service/checkout", "HorizontalPodAutoscaler/checkout"]
    assert "image: europe-docker.pkg.dev/shop/checkout:1.4.2" in chunks[0].text
    assert chunks[1].text.startswith("```yaml\napiVersion: v1\nkind: Service")
    assert "maxReplicas: 30" in chunks[2].text and "kind: Service" not in chunks[2].text


def test_cloud_build_steps_are_sections_by_id_and_builder(tmp_path):
    build = tmp_path / "cloudbuild.yaml"
    build.write_text(CLOUDBUILD, encoding="utf-8")
    chunks = chunks_of(build, "cloudbuild.yaml")
    assert {c.title for c in chunks} == {"cloudbuild.yaml"}
    assert sections(chunks) == [
        "step 1: unit-tests (python:3.11)",
        "step 2: gcr.io/cloud-builders/docker",
        "step 3: deploy (gcr.io/google.com/cloudsdktool/cloud-sdk)",
        "timeout",
        "options",
    ]
    assert chunks[1].text == (
        "```yaml\n# build and push the image\n- name: gcr.io/cloud-builders/docker\n"
        '  args: ["build", "-t", "europe-docker.pkg.dev/shop/checkout:$SHORT_SHA", "."]\n```'
    )


def test_long_code_is_cut_into_whole_fenced_pieces(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("env:\n" + "".join(f"  VARIABLE_{i}: value-{i}\n" for i in range(200)), encoding="utf-8")
    chunks = chunks_of(values)
    assert len(chunks) > 3 and sections(chunks) == ["env"]
    for chunk in chunks:
        assert chunk.text.startswith("```yaml\n") and chunk.text.endswith("\n```") and len(chunk.text) <= 1200
    joined = "\n".join(chunk.text for chunk in chunks)
    assert all(f"VARIABLE_{i}: value-{i}\n" in joined for i in range(200))


def test_a_fence_inside_code_does_not_end_the_block():
    text = "# T\n\n## one\n\n````md\n```\n# not a heading\n```\n````\n\n## two\n\nbody\n"
    assert [c.section for c in chunk_markdown("a.md", text)] == ["one", "two"]


def test_invalid_yaml_broken_pdf_and_unknown_extensions_raise_their_own_errors(tmp_path):
    (tmp_path / "bad.yaml").write_text("key: [unclosed\n")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf body")
    (tmp_path / "slides.pptx").write_bytes(b"PK")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DocumentParseError, match="not valid YAML"):
        load_document(tmp_path / "bad.yaml", "bad.yaml")
    with pytest.raises(DocumentParseError, match="not a readable PDF"):
        load_document(tmp_path / "bad.pdf", "bad.pdf")
    with pytest.raises(UnsupportedDocumentError, match=r"unsupported extension \.pptx"):
        load_document(tmp_path / "slides.pptx", "slides.pptx")
    with pytest.raises(UnreadableDocumentError, match="not UTF-8"):
        load_document(tmp_path / "latin1.txt", "latin1.txt")


def test_a_pdf_without_a_text_layer_gives_an_empty_document(tmp_path):
    blank = tmp_path / "scan.pdf"
    blank.write_bytes(pdf_bytes([[]]))
    assert load_document(blank, "scan.pdf").text == ""


def test_markdown_is_read_as_before(tmp_path):
    note = tmp_path / "note.md"
    note.write_text("# Note\n\nText.\n", encoding="utf-8")
    document = load_document(note, "notes/note.md")
    assert (document.source, document.text, document.title) == ("notes/note.md", "# Note\n\nText.\n", None)


def test_folders_are_searched_for_supported_files_leaving_out_hidden_ones(tmp_path):
    write_mixed_folder(tmp_path / "kb")
    (tmp_path / "kb" / ".git").mkdir()
    (tmp_path / "kb" / ".git" / "notes.md").write_text("# hidden\n")
    (tmp_path / "kb" / "diagram.png").write_bytes(b"\x89PNG")
    files, skipped = find_files([tmp_path / "kb", tmp_path / "missing.md"])
    assert [f.name for f in files] == [
        "checkout.yaml", "cloudbuild.yaml", "dr-guide.pdf", "handover.txt", "pubsub.tf", "queues.md", "runbook.html"
    ]  # fmt: skip
    assert [(s.path.name, s.kind) for s in skipped] == [("diagram.png", "unsupported"), ("missing.md", "unreadable")]
    document = load_file(tmp_path / "kb" / "pubsub.tf", root=tmp_path)
    assert not isinstance(document, Skipped) and document.source == "kb/pubsub.tf"


class FakeRetrievalClient:
    """The retrieval service's ingestion contract, chunk ids and all, without the embedding model."""

    ids: dict[str, set[str]] = {}
    batches: list[list[dict[str, str]]] = []

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        pass

    def ingest(self, documents: list[dict[str, str]]) -> dict[str, int]:
        self.batches.append(documents)
        report = {"documents": len(documents), "chunks": 0, "added": 0, "unchanged": 0, "removed": 0}
        for document in documents:
            ids = {c.id for c in chunk_markdown(document["source"], document["text"], title=document.get("title"))}
            before = self.ids.get(document["source"], set())
            report["chunks"] += len(ids)
            report["added"] += len(ids - before)
            report["unchanged"] += len(ids & before)
            report["removed"] += len(before - ids)
            self.ids[document["source"]] = ids
        return report


@pytest.fixture
def fake_service(monkeypatch):
    import atlas.tasks.retrieval_client

    monkeypatch.setattr(FakeRetrievalClient, "ids", {})
    monkeypatch.setattr(FakeRetrievalClient, "batches", [])
    monkeypatch.setattr(atlas.tasks.retrieval_client, "RetrievalClient", FakeRetrievalClient)
    monkeypatch.setenv("ATLAS_PROJECT", "p")
    return FakeRetrievalClient


def test_ingest_reports_broken_files_and_goes_on_with_the_rest(tmp_path, monkeypatch, capsys, fake_service):
    folder = write_mixed_folder(tmp_path / "kb")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")
    (folder / "broken.yaml").write_text("steps:\n  - name: a\n   bad: indentation\n")
    (folder / "empty.txt").write_text("\n")
    (folder / "slides.key").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)

    assert cli.main(["ingest", "--quiet", "kb"]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    totals = json.loads(out.splitlines()[-1])
    sent = {d["source"]: d for batch in fake_service.batches for d in batch}
    assert sorted(sent) == [
        "kb/checkout.yaml", "kb/cloudbuild.yaml", "kb/dr-guide.pdf", "kb/empty.txt", "kb/handover.txt",
        "kb/pubsub.tf", "kb/queues.md", "kb/runbook.html",
    ]  # fmt: skip
    assert (
        sent["kb/pubsub.tf"]["title"] == "Pub/Sub topics of the task pipeline" and "title" not in sent["kb/queues.md"]
    )
    assert sent["kb/empty.txt"]["text"] == ""  # sent empty, so an earlier version's chunks go away
    assert "atlas: skipped kb/broken.pdf: parse error: not a readable PDF" in err
    assert "atlas: skipped kb/broken.yaml: parse error: not valid YAML" in err
    assert "atlas: skipped kb/slides.key: unsupported: unsupported extension .key" in err
    assert "atlas: empty kb/empty.txt: no text to index" in err
    assert "atlas: 3 files skipped (parse error: 2, unsupported: 1), 1 empty" in err
    assert totals["skipped"] == 3 and totals["skipped_by_reason"] == {"parse_error": 2, "unsupported": 1}
    assert totals["documents"] == 8 and totals["added"] == totals["chunks"] > 15

    assert cli.main(["ingest", "--quiet", "kb"]) == cli.EXIT_OK
    again = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert again["added"] == 0 and again["removed"] == 0 and again["unchanged"] == totals["chunks"]


def test_ingest_of_nothing_readable_is_a_usage_error(tmp_path, capsys, fake_service):
    (tmp_path / "only.docx").write_bytes(b"PK")
    assert cli.main(["ingest", str(tmp_path)]) == cli.EXIT_USAGE
    assert "nothing to ingest" in capsys.readouterr().err


def test_a_leading_comment_gives_its_first_sentence_as_the_title_unless_it_is_a_divider(tmp_path):
    module = tmp_path / "iam.tf"
    module.write_text("# Identities, one per job. Each with only what it needs.\n# More.\n\nlocals {}\n")
    assert load_document(module, "iam.tf").title == "Identities, one per job."
    module.write_text('# --- Where ----------\n\nvariable "region" {}\n')
    assert load_document(module, "terraform/variables.tf").title == "terraform/variables.tf"
