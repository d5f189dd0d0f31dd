"""The judged task set is well-formed, and the task benchmark's metrics compute what they say."""

import importlib.util
import json
import re
import sys
from collections import Counter

import pytest

from stack import REPO

spec = importlib.util.spec_from_file_location("bench_tasks", REPO / "scripts" / "bench_tasks.py")
bench_tasks = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench_tasks  # its dataclasses look their module up
spec.loader.exec_module(bench_tasks)

TASKS_FILE = REPO / "tests" / "data" / "retrieval_tasks.json"
DATA = json.loads(TASKS_FILE.read_text(encoding="utf-8"))
TASKS = DATA["tasks"]


def test_the_task_file_says_how_it_was_judged_and_what_the_holdout_is_for():
    assert "holdout" in DATA["about"] and "final check" in DATA["about"]


def test_tasks_are_many_unique_and_each_has_a_primary_note():
    assert len(TASKS) >= 30
    assert len({t["id"] for t in TASKS}) == len(TASKS)
    assert len({t["prompt"] for t in TASKS}) == len(TASKS)
    for task in TASKS:
        assert set(task) <= {"id", "area", "prompt", "split", "relevance", "sections"}, task["id"]
        assert task["prompt"].strip() and task["split"] in ("tune", "holdout"), task["id"]
        assert set(task["relevance"].values()) <= {1, 2}, task["id"]
        assert 2 in task["relevance"].values(), task["id"]
    assert "Design a logging architecture for microservices" in {t["prompt"] for t in TASKS}


def test_every_judged_note_and_section_exists_in_the_knowledge_base():
    for task in TASKS:
        for source in task["relevance"]:
            assert source.startswith("knowledge/") and (REPO / source).is_file(), (task["id"], source)
        for source, graded in task.get("sections", {}).items():
            headings = set(re.findall(r"^##\s+(.+?)\s*$", (REPO / source).read_text(encoding="utf-8"), re.MULTILINE))
            assert source in task["relevance"], (task["id"], source)
            assert set(graded) <= headings, (task["id"], source, set(graded) - headings)
            assert max(graded.values()) == task["relevance"][source], (task["id"], source)  # a note's best section


def test_the_split_is_every_third_task_and_covers_every_area_on_both_sides():
    assert [t["split"] for t in TASKS] == ["holdout" if n % 3 == 0 else "tune" for n in range(1, len(TASKS) + 1)]
    splits = Counter(t["split"] for t in TASKS)
    assert splits["tune"] and splits["holdout"]
    for area in {t["area"] for t in TASKS}:
        assert {t["split"] for t in TASKS if t["area"] == area} == {"tune", "holdout"}, area


def test_every_note_is_primary_for_some_task():
    primary = {source for t in TASKS for source, grade in t["relevance"].items() if grade == 2}
    assert primary == {f"knowledge/{p.name}" for p in (REPO / "knowledge").glob("*.md")}


def test_on_topic_share_counts_every_returned_source_and_recall_counts_primary_notes_once():
    relevance = {"a.md": 2, "b.md": 2, "c.md": 1}
    score = bench_tasks.score_task(relevance, ["a.md", "a.md", "c.md", "x.md"])
    assert score.on_topic_share == pytest.approx(3 / 4)
    assert score.primary_recall == pytest.approx(1 / 2)
    assert score.sources == 4


def test_nothing_returned_is_nothing_on_topic_and_no_primary_found():
    score = bench_tasks.score_task({"a.md": 2}, [])
    assert (score.on_topic_share, score.primary_recall, score.sources) == (0.0, 0.0, 0)


def test_splits_are_summarised_as_means_over_their_tasks():
    tasks = [
        bench_tasks.Task("t1", "p1", "tune", {"a.md": 2}),
        bench_tasks.Task("t2", "p2", "tune", {"a.md": 2, "b.md": 2}),
        bench_tasks.Task("h1", "p3", "holdout", {"c.md": 2, "d.md": 1}),
    ]
    scores = [
        bench_tasks.score_task(tasks[0].relevance, ["a.md", "z.md"]),  # on topic 1/2, recall 1
        bench_tasks.score_task(tasks[1].relevance, ["b.md"]),  # on topic 1, recall 1/2
        bench_tasks.score_task(tasks[2].relevance, ["d.md", "d.md", "y.md", "c.md"]),  # on topic 3/4, recall 1
    ]
    report = bench_tasks.report_by_split(tasks, scores, "all")
    assert report["tune"] == {"tasks": 2, "on_topic_share": 0.75, "primary_recall": 0.75, "mean_sources": 1.5}
    assert report["holdout"] == {"tasks": 1, "on_topic_share": 0.75, "primary_recall": 1.0, "mean_sources": 4.0}
    assert report["all"]["tasks"] == 3 and report["all"]["primary_recall"] == pytest.approx(0.8333, abs=1e-4)
    assert list(bench_tasks.report_by_split(tasks[:2], scores[:2], "tune")) == ["tune"]


def test_the_benchmark_reads_the_task_file_with_its_header():
    tasks = bench_tasks.read_tasks(TASKS_FILE)
    assert len(tasks) == len(TASKS) and tasks[0].prompt == TASKS[0]["prompt"]
