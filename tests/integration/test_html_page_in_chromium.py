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
