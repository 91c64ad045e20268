"""Presentation: terminal tables, charts and the HTML report. Reads results, never the engine.

The writers, one per command that writes a file: :func:`write_report` (``kamsim report``),
:func:`write_charts` (``kamsim plot``), :func:`write_lesson_page` (``kamsim lesson page``).
"""

from __future__ import annotations

from typing import Any

from kamsim import _submodules_of

__all__ = ["write_report", "write_charts", "write_lesson_page"]

_LAZY = {
    "write_report": "kamsim.report.html",
    "write_charts": "kamsim.report.figfiles",
    "write_lesson_page": "kamsim.report.lesson_page",
}

_modules = _submodules_of(__name__)


def __getattr__(name: str) -> Any:
    # the writers, and every module of this package as an attribute (kamsim.report.html),
    # imported on first use: matplotlib and jinja2 only when a chart or page is made
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    return _modules(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
