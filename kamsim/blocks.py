"""A cache that lives for a ``with`` block: opened on entry, dropped on exit, and joined by
any block opened inside it (the outermost block's cache serves them all).
:func:`kamsim.spec.load.reading_once` (files read once) and
:func:`kamsim.rules.functions.shared_sorts` (sorts made once) are such blocks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["cache_block"]


@contextmanager
def cache_block(var: ContextVar[dict[Any, Any] | None]) -> Iterator[None]:
    """Open an empty cache in ``var`` for the block, or join the one already open."""
    if var.get() is not None:
        yield
        return
    token = var.set({})
    try:
        yield
    finally:
        var.reset(token)
