"""Token estimates: conservative counts from UTF-8 bytes, for the context budget and for attempts whose stream
never reported usage.

tiktoken cannot download its tables here (and other providers tokenize differently anyway), so token
counts are estimated from UTF-8 bytes: one token per three bytes. Real tokenizers average about four
characters of English per token, so the estimate runs high by about a third, which is the safe side for
a budget: a prompt packed to N estimated tokens is well under N real ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators of one chat message


def estimate_tokens(text: str) -> int:
    """A conservative token count for ``text`` (rounds up; never below the real count for English)."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def estimate_message_tokens(messages: Iterable[dict[str, str]]) -> int:
    return sum(estimate_tokens(m.get("content", "")) + MESSAGE_OVERHEAD_TOKENS for m in messages)
