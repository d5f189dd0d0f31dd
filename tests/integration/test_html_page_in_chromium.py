"""The page of `atlas show --html --self-contained`, opened alone in headless Chromium: Mermaid, copied into
the page, draws the design's diagram as an SVG with no other file and no network."""

import pytest
from fake_openai import design_for

from atlas.cli.page import task_page
from atlas.tasks.document import TaskDocument
from support.browser import mermaid_js, rendered_dom

pytestmark = pytest.mark.integration


def test_self_contained_page_draws_its_diagram_with_nothing_beside_it(tmp_path):
    design = design_for('<source id="S1"')
    assert design["diagram_mermaid"].startswith("flowchart")
    document = {
        "task_id": "page-1",
        "status": "succeeded",
        "prompt": "Design a logging architecture for microservices",
        "sources": [{"id": "a", "label": "S1", "title": "Logging", "source": "l.md", "text": "t", "score": 1.0}],
        "result": {"kind": "design", **design},
    }
    page = tmp_path / "alone" / "page.html"
    page.parent.mkdir()
    html = task_page(TaskDocument.parse(document), mermaid_js=mermaid_js(), inline_mermaid=True)
    page.write_text(html, encoding="utf-8")
    assert [p.name for p in page.parent.iterdir()] == ["page.html"]
    dom = rendered_dom(page)
    diagram = dom[dom.index('<pre class="mermaid"') :]
    diagram = diagram[: diagram.index("</pre>")]
    assert 'data-processed="true"><svg' in diagram and 'aria-roledescription="flowchart' in diagram
    assert "Syntax error" not in diagram and ">Log store<" in diagram  # drawn, not Mermaid's error picture


def test_citations_link_to_their_sources_cited_and_uncited_apart_markdown_stripped_excerpts_cut(tmp_path):
    from stack import REPO

    collectors = (
        "Log collectors tail, parse, enrich, buffer and forward logs:\n"
        "- **Fluent Bit**: lightweight C agent, common as a Kubernetes DaemonSet.\n"
        "- **OpenTelemetry Collector**: one agent for logs, metrics and traces, see [OTLP](https://otel.io).\n"
        "Enable disk-backed buffers so a backend outage causes backpressure and delay rather than data loss, "
        "and alert on dropped-record counters. " * 3
    )
    schema = "## Schema\n\n| field | type |\n|---|---|\n| `timestamp` | RFC 3339 |\n\nUse `severity` and _message_."
    document = {
        "task_id": "page-2",
        "status": "succeeded",
        "prompt": "Design a logging architecture for microservices",
        "sources": [
            {
                "id": "a",
                "label": "S1",
                "title": "Logging Pipelines",
                "section": "Collectors",
                "source": "knowledge/logging-pipelines.md",
                "text": collectors,
                "score": 0.9,
            },
            {
                "id": "b",
                "label": "S2",
                "title": "Elsewhere",
                "source": "https://example.com/guide",
                "text": schema,
                "score": 0.5,
            },
            {
                "id": "c",
                "label": "S3",
                "title": "Gone",
                "source": "no/such/file.md",
                "text": "A short one.",
                "score": 0.1,
            },
        ],  # fmt: skip
        "result": {"kind": "design", **design_for('<source id="S1"')},
    }
    document["result"]["citations"] = [{"source_id": "S1", "supports": "collectors"}]
    page = tmp_path / "page.html"
    html = task_page(TaskDocument.parse(document), mermaid_js=mermaid_js())
    page.write_text(html, encoding="utf-8")
    dom = rendered_dom(page)
    cited = dom[dom.index('<ol class="sources cited">') :].split("</ol>")[0]
    uncited = dom[dom.index('<ol class="sources uncited">') :].split("</ol>")[0]
    assert 'id="S1"' in cited and 'id="S2"' not in cited and 'id="S2"' in uncited and 'id="S3"' in uncited
    assert '<span class="badge cited">cited</span>' in cited and "not cited" in uncited
    assert 'href="#S1"' in dom  # the citation in the design links to its source
    origin = (REPO / "knowledge/logging-pipelines.md").resolve().as_uri()
    assert f'class="origin" href="{origin}"' in cited  # the file in the repository
    assert 'href="https://example.com/guide"' in uncited and 'href="no/such' not in dom
    excerpt = cited[cited.index('<p class="excerpt">') + len('<p class="excerpt">') :].split("</p>")[0]
    assert excerpt.endswith(("…", ". …")) and len(excerpt) <= 330
    assert excerpt[:-1].rstrip(" .").split()[-1] in collectors  # a whole word, not half of one
    chunk = cited[cited.index('<div class="chunk">') :].split("</div>")[0]
    assert "alert on dropped-record counters" in chunk and "• Fluent Bit: lightweight" in chunk
    text = dom[dom.index("<h2>Sources cited") :]
    for raw in ("**", "](", "## ", "|---", "`timestamp`", "_message_"):
        assert raw not in text, raw
    assert "timestamp · RFC 3339" in uncited and "Use severity and message." in uncited
