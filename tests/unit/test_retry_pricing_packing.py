"""The retry policy's arithmetic, the price table, and the context budget."""

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from atlas.design.packing import pack_sources
from atlas.llm.pricing import Price, PriceTable, Usage, default_prices
from atlas.llm.retry import Cooldowns, Deadline, Failure, FailureKind, RetryPolicy, retry_after
from atlas.llm.tokens import estimate_tokens
from atlas.models import Source


def test_retry_after_reads_milliseconds_seconds_and_http_dates():
    assert retry_after({"retry-after-ms": "1500"}) == 1.5
    assert retry_after({"Retry-After": "7"}) == 7.0
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8 <= retry_after({"retry-after": in_ten}) <= 10
    assert retry_after({}) is None and retry_after({"retry-after": "soon"}) is None


def test_backoff_has_jitter_within_a_doubling_capped_ceiling():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=4.0)
    rng = random.Random(1)
    transient = Failure(FailureKind.TRANSIENT, "x", retryable=True)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = {policy.delay(attempt, transient, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1


def test_retry_after_is_honoured_up_to_the_cap():
    policy = RetryPolicy(retry_after_cap_s=5.0)
    rng = random.Random(1)
    assert 3.0 <= policy.delay(1, Failure(FailureKind.TRANSIENT, "", True, 3.0), rng) <= 3.1
    assert 5.0 <= policy.delay(1, Failure(FailureKind.TRANSIENT, "", True, 600.0), rng) <= 5.1


def test_deadline_and_cooldown_follow_their_clock():
    now = [100.0]
    deadline = Deadline(10, clock=lambda: now[0])
    cooldowns = Cooldowns(clock=lambda: now[0])
    cooldowns.put("openai/m", 5)
    now[0] += 4
    assert deadline.remaining() == 6 and cooldowns.active("openai/m")
    now[0] += 7
    assert deadline.expired and not cooldowns.active("openai/m")


def test_cached_input_is_priced_at_the_cached_rate():
    price = Price(input=2.0, cached_input=0.5, output=8.0)
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=250_000)
    assert price.cost(usage) == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 0.25 * 8.0)


def test_prices_are_looked_up_by_provider_and_model_then_model_then_provider():
    table = default_prices()
    assert table.price_for("openai", "gpt-4o-mini") == Price(0.15, 0.075, 0.6)
    assert table.price_for("openai_compatible", "llama3.1") == Price(0.0, 0.0, 0.0)
    assert table.price_for("azure_openai", "my-deployment") is None
    custom = PriceTable.from_json({"prices": {"vertex/m": {"input": 1, "cached_input": 1, "output": 1}}})
    assert custom.price_for("vertex", "m") and custom.price_for("openai", "m") is None


def src(i, text=None):
    return Source(id=f"c{i}", text=text or f"source number {i} " + "word " * 100, title="t", source="s.md", score=1.0)


def test_token_estimate_is_conservative():
    english = "The collector batches log records and ships them to the managed store every five seconds."
    assert estimate_tokens(english) >= len(english.split()) * 1.2
    assert estimate_tokens("") == 0


def test_packing_drops_duplicates_and_keeps_rank_order_within_budget():
    sources = [src(1), src(1), src(2, text=src(1).text.upper()), src(3), src(4)]
    one = estimate_tokens(src(1).text) + 40
    packed = pack_sources(sources, budget_tokens=2 * one + 10)
    assert [s.id for s in packed.sources] == ["c1", "c3"]
    assert packed.duplicates == 2 and packed.dropped == 1 and packed.truncated == 0
    assert packed.tokens <= 2 * one + 10


def test_packing_cuts_the_first_source_that_does_not_fit_when_enough_room_remains():
    long = src(2, text="word " * 2000)
    packed = pack_sources([src(1), long, src(3)], budget_tokens=1000)
    assert [s.id for s in packed.sources] == ["c1", "c2"] and packed.truncated == 1 and packed.dropped == 1
    assert packed.sources[1].text.endswith("[…]") and packed.tokens <= 1000
