"""The reranking and selection stage over knowledge/ with the real model: what the worker gets."""

import json

import pytest

from atlas.retrieval.index import KnowledgeIndex
from atlas.retrieval.rerank import Reranker, Reranking
from stack import REPO

TASKS = json.loads((REPO / "tests" / "data" / "retrieval_tasks.json").read_text(encoding="utf-8"))["tasks"]
DEMO_PROMPT = "Design a logging architecture for microservices"  # scripts/demo.py's task


@pytest.fixture(scope="module")
def reranked(knowledge_index, embedder):
    """The same shard as ``knowledge_index`` (the engine alone), searched through the stage as configured."""
    return KnowledgeIndex(knowledge_index.backend, embedder, reranker=Reranker(Reranking()))


def test_the_demos_task_gets_only_on_topic_sources_and_all_its_primary_notes(reranked):
    judged = next(task for task in TASKS if task["prompt"] == DEMO_PROMPT)["relevance"]
    hits = reranked.search(DEMO_PROMPT, top_k=6)
    assert hits, "the stage always keeps the best candidate"
    off_topic = [f"{h.source} › {h.section}" for h in hits if judged.get(h.source, 0) < 1]
    assert off_topic == []
    assert {source for source, grade in judged.items() if grade == 2} <= {h.source for h in hits}


def test_a_narrow_question_gets_fewer_than_top_k_best_first(reranked):
    hits = reranked.search("exponential backoff with jitter", top_k=6)
    assert 1 <= len(hits) < 6
    assert hits[0].source == "knowledge/retries-backoff-and-dead-letters.md"
    scores = [h.score for h in hits]
    assert all(0 < score < 1 for score in scores) and scores == sorted(scores, reverse=True)


def test_one_retriever_alone_is_not_reranked(reranked, knowledge_index):
    for mode in ("dense", "bm25"):
        expected = knowledge_index.search("dead-letter queue replay", top_k=6, mode=mode)
        assert reranked.search("dead-letter queue replay", top_k=6, mode=mode) == expected


def test_a_ranking_is_reranked_but_not_cut(reranked):
    hits = reranked.rank("exponential backoff with jitter", top_k=40)
    assert len(hits) == 40 and len({h.id for h in hits}) == 40


def test_a_batch_answers_as_its_queries_one_by_one(knowledge_index):
    backend = knowledge_index.backend
    hybrid = knowledge_index.query("dead-letter queue replay", top_k=8)
    dense = knowledge_index.query("dead-letter queue replay", top_k=8, mode="dense")
    nothing = knowledge_index.query("the of and", top_k=8, mode="bm25")  # stop words only: nothing to ask
    batch = backend.query_batch([hybrid, nothing, dense], with_payload=[True, False, ["source"]])
    assert batch[0] == backend.query(hybrid, with_payload=True) and len(batch[0]) == 8
    assert batch[1] == []
    assert batch[2] == backend.query(dense, with_payload=["source"])
