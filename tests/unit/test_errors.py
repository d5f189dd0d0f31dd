"""One root for every error Atlas raises on purpose: ``AtlasError`` (errors.py), whichever module raises it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import atlas
from atlas.errors import AtlasError, InvalidOutputError, StreamBroken


def _atlas_modules() -> list[object]:
    return [importlib.import_module(info.name) for info in pkgutil.walk_packages(atlas.__path__, "atlas.")]


def test_every_exception_class_atlas_defines_is_an_atlas_error():
    stray = [
        f"{module.__name__}.{name}"
        for module in _atlas_modules()
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module.__name__
        and not issubclass(value, AtlasError)
    ]
    assert stray == []


def test_llm_output_and_stream_errors_carry_a_code_and_what_arrived():
    broken = StreamBroken("the stream stalled after 12 characters", "partial text")
    assert isinstance(broken, AtlasError) and isinstance(InvalidOutputError("bad"), AtlasError)
    assert (broken.code, broken.reason, broken.text) == ("broken_stream", str(broken), "partial text")
    assert InvalidOutputError.code == "invalid_output"
