"""One streamed chat completion: text as it grows, and a clear verdict on how the stream ended.

A stream can fail after it started: the server cuts the connection, stops sending (a stall, caught by
the read timeout), or ends without saying why it stopped. Each of these raises :class:`StreamBroken`
carrying the text received so far, so the chain can move to the next entry and replace that text.
Errors before the first chunk are the SDK's own exceptions, which the retry policy classifies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import httpx2
import openai

from atlas.config import ChainEntry
from atlas.errors import StreamBroken
from atlas.llm.pricing import Usage

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam
    from openai.types.shared_params import ResponseFormatJSONSchema

CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Completion:
    content: str
    finish_reason: str
    refusal: str
    usage: Usage | None
    model: str


def stream_completion(
    client: openai.OpenAI,
    entry: ChainEntry,
    messages: list[dict[str, str]],
    *,
    response_format: dict[str, Any],
    time_limit_s: float,
    stall_s: float,
    on_text: Callable[[str], None],
) -> Completion:
    """Stream one completion from ``entry``, calling ``on_text`` with the whole text after each chunk."""
    started = time.monotonic()
    limit = min(entry.timeout_s, time_limit_s)
    timeout = httpx2.Timeout(limit, connect=min(CONNECT_TIMEOUT_S, limit), read=min(stall_s, limit))
    stream = client.chat.completions.create(
        model=entry.model,
        # Plain dictionaries of the shapes the SDK's TypedDicts describe.
        messages=cast("list[ChatCompletionMessageParam]", messages),
        max_completion_tokens=entry.max_output_tokens,
        response_format=cast("ResponseFormatJSONSchema", response_format),
        stream=True,
        stream_options={"include_usage": True},
        timeout=timeout,
    )
    parts: list[str] = []
    refusal: list[str] = []
    finish_reason = ""
    usage: Usage | None = None
    model = entry.model
    try:
        for chunk in stream:
            model = chunk.model or model
            if chunk.usage is not None:
                usage = _usage(chunk.usage)
            for choice in chunk.choices[:1]:
                delta = choice.delta
                if delta is not None and delta.content:
                    parts.append(delta.content)
                    on_text("".join(parts))
                if delta is not None and delta.refusal:
                    refusal.append(delta.refusal)
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
            if time.monotonic() - started > limit:
                raise StreamBroken(f"the stream ran past its time limit of {limit:.0f} s", "".join(parts))
    except openai.APIError as exc:  # a connection error, a timeout (stall), or an error event in the stream
        kind = "stalled" if isinstance(exc, openai.APITimeoutError) else "broke"
        raise StreamBroken(f"the stream {kind} after {len(''.join(parts))} characters: {exc}", "".join(parts)) from exc
    finally:
        stream.close()
    if not finish_reason:
        raise StreamBroken("the stream ended before the model said it had finished", "".join(parts))
    return Completion("".join(parts), finish_reason, "".join(refusal), usage, model)


def _usage(usage: Any) -> Usage:
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(
        input_tokens=int(usage.prompt_tokens or 0),
        cached_input_tokens=int(cached),
        output_tokens=int(usage.completion_tokens or 0),
    )
