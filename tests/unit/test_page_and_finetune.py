
import pytest
from fake_openai import design_for

from atlas.cli.export import finetune_example
from atlas.cli.page import MERMAID_CDN, task_page
from atlas.tasks.document import TaskDocument, TaskDocumentError

SOURCE = {"id": "a", "label": "S1", "title": "Logging", "source": "knowledge/l.md", "text": "t", "score": 1.0}


def stored(**design_changes):
    design = {**design_for('<source id="S1"'), **design_changes}
    return {
        "task_id": "t-1",
        "status": "succeeded",
        "prompt": "Design logging",
        "hints": {"cloud": "gcp"},
        "sources": [SOURCE],
        "result": {"kind": "design", **design},
    }


def succeeded(**design_changes):
    return TaskDocument.parse(stored(**design_changes))


def test_page_escapes_what_the_model_and_the_sources_wrote():
    document = stored(title="<script>alert(1)</script>", summary="a & b")
    document["sources"] = [{**SOURCE, "text": "<img src=x onerror=alert(1)>"}]
    page = task_page(TaskDocument.parse(document))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "a &amp; b" in page


def test_page_uses_the_local_mermaid_script_when_given_and_a_cdn_otherwise(tmp_path):
    script = tmp_path / "mermaid.min.js"
    script.write_text("")
    assert script.as_uri() in task_page(succeeded(), mermaid_js=script)
    assert MERMAID_CDN in task_page(succeeded())
    failed = TaskDocument.parse({"task_id": "x", "status": "failed", "error": {"code": "c", "message": "m"}})
    assert "<script" not in task_page(failed)


def test_finetune_example_is_the_prompt_the_model_saw_and_the_design():
    example = finetune_example(succeeded())
    system, user, assistant = example["messages"]
    assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
    assert "Design logging" in user["content"] and '"cloud": "gcp"' in user["content"] and 'id="S1"' in user["content"]
    assert '"title"' in assistant["content"]


def test_only_succeeded_designs_are_exported():
    assert finetune_example(TaskDocument.parse({**stored(), "status": "degraded"})) is None
    assert finetune_example(TaskDocument.parse({**stored(), "result": None})) is None


def test_a_stored_design_that_is_not_a_design_is_named_when_read():
    broken = stored()
    broken["result"]["components"] = []
    with pytest.raises(TaskDocumentError, match=r"task t-1 .*result\.design\.components"):
        TaskDocument.parse(broken)


def test_self_contained_page_carries_mermaid_itself_and_cannot_be_cut_short_by_it(tmp_path):
    script = tmp_path / "mermaid.min.js"
    script.write_text('window.mermaid = {}; const s = "</script><b>";')
    page = task_page(succeeded(), mermaid_js=script, inline_mermaid=True)
    assert script.as_uri() not in page and MERMAID_CDN not in page
    assert 'window.mermaid = {}; const s = "<\\/script><b>";' in page
    assert page.count("</script>") == 2  # the inlined script's and the initialize call's own


def test_show_self_contained_without_a_local_script_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    from atlas import cli

    monkeypatch.setenv("ATLAS_PROJECT", "p")
    monkeypatch.delenv("ATLAS_MERMAID_JS", raising=False)
    missing = tmp_path / "nowhere.js"
    argv = ["show", "t-1", "--html", str(tmp_path / "p.html"), "--self-contained", "--mermaid-js", str(missing)]
    code = cli.main(argv)
    assert code == cli.EXIT_USAGE
    assert "make setup" in capsys.readouterr().err and not (tmp_path / "p.html").exists()


def test_list_and_export_reject_limits_and_times_that_make_no_sense(capsys):

    from atlas import cli

    for argv in (["list", "--limit", "0"], ["export-finetune", "--out", "x", "--since", "last week"]):
        assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "Invalid value for '--limit': 0 is not in the range x>=1" in err
    assert "Invalid value for '--since': 'last week' is not an ISO 8601 date or time" in err


def test_show_finds_the_mermaid_script_make_setup_fetched_when_run_in_the_repository(tmp_path, monkeypatch):
    from atlas.cli.task_commands import mermaid_from_setup

    monkeypatch.chdir(tmp_path)
    assert mermaid_from_setup() is None  # elsewhere: the page falls back to the CDN
    fetched = tmp_path / ".atlas" / "mermaid" / "mermaid.min.js"
    fetched.parent.mkdir(parents=True)
    fetched.write_text("")
    assert mermaid_from_setup() == fetched.resolve()
