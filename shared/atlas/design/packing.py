"""The context budget: deduplicate retrieved sources and pack them, in rank order, into the input budget.

Tokens are the conservative estimates of :mod:`atlas.llm.tokens` (about a third above the real count).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from atlas.llm.tokens import BYTES_PER_TOKEN, estimate_tokens
from atlas.models import Source

MIN_TRUNCATED_TOKENS = 150  # below this, a cut-down source is not worth its citation


@dataclass(frozen=True)
class Packed:
    """The sources that fit, in rank order, and what was left out."""

    sources: list[Source]
    duplicates: int
    dropped: int
    truncated: int
    tokens: int

    def as_dict(self) -> dict[str, int]:
        return {
            "kept": len(self.sources),
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "truncated": self.truncated,
            "estimated_tokens": self.tokens,
        }


def _fingerprint(text: str) -> str:
    return " ".join(text.lower().split())


def pack_sources(sources: Sequence[Source], *, budget_tokens: int, per_source_overhead: int = 40) -> Packed:
    """Keep the best-ranked distinct sources whose estimated tokens fit in ``budget_tokens``.

    A source repeating an earlier one (same id, or the same text up to case and whitespace) is dropped.
    The first source that does not fit is cut to the remaining budget when enough remains to be useful;
    everything ranked below it is dropped (packing never reorders, so S1 stays the best match).
    """
    seen_ids: set[str] = set()
    seen_text: set[str] = set()
    kept: list[Source] = []
    duplicates = dropped = truncated = used = 0
    full = False
    for source in sources:
        fingerprint = _fingerprint(source.text)
        if source.id in seen_ids or fingerprint in seen_text:
            duplicates += 1
            continue
        seen_ids.add(source.id)
        seen_text.add(fingerprint)
        cost = estimate_tokens(source.text) + per_source_overhead
        if not full and used + cost <= budget_tokens:
            kept.append(source)
            used += cost
            continue
        room = budget_tokens - used - per_source_overhead
        if not full and room >= MIN_TRUNCATED_TOKENS:
            kept.append(source.model_copy(update={"text": _cut(source.text, room)}))
            used += estimate_tokens(kept[-1].text) + per_source_overhead
            truncated = 1
        else:
            dropped += 1
        full = True
    return Packed(sources=kept, duplicates=duplicates, dropped=dropped, truncated=truncated, tokens=used)


def _cut(text: str, tokens: int) -> str:
    """``text`` cut at a word boundary to at most ``tokens`` estimated tokens, marked as cut."""
    marker = " […]"
    limit = tokens * BYTES_PER_TOKEN - len(marker.encode("utf-8"))
    encoded = text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
    return encoded.rsplit(" ", 1)[0] + marker
