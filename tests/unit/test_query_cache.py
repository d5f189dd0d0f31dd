"""The per-instance LRU + TTL cache of search results."""

from atlas.retrieval.query_cache import QueryCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_repeated_key_is_a_hit():
    cache: QueryCache[str] = QueryCache(10, 60)
    assert cache.get("q") is None
    cache.put("q", "answer")
    assert cache.get("q") == "answer"
    assert (cache.hits, cache.misses) == (1, 1)


def test_an_entry_expires_after_its_ttl():
    clock = FakeClock()
    cache: QueryCache[str] = QueryCache(10, 30, clock=clock)
    cache.put("q", "answer")
    clock.now += 29.9
    assert cache.get("q") == "answer"
    clock.now += 0.2
    assert cache.get("q") is None and len(cache) == 0


def test_the_least_recently_used_entry_is_evicted_first():
    cache: QueryCache[int] = QueryCache(2, 60)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_clear_drops_entries_and_a_value_computed_before_it():
    cache: QueryCache[str] = QueryCache(10, 60)
    cache.put("q", "old")
    generation = cache.generation
    cache.clear()  # an ingest happened while "q" was being recomputed
    cache.put("q", "computed before the ingest", generation=generation)
    assert cache.get("q") is None
    cache.put("q", "fresh", generation=cache.generation)
    assert cache.get("q") == "fresh"


def test_size_zero_disables_caching():
    cache: QueryCache[str] = QueryCache(0, 60)
    cache.put("q", "answer")
    assert cache.get("q") is None
