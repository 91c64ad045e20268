"""kamsim: a rule engine and simulation framework for key-account strategy planning.

The public API is imported lazily so that ``import kamsim`` (and ``kamsim --help``) stay fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__", "load_scenario", "simulate", "compare", "sweep", "tier_portfolio",
    "InputError", "KamsimError",
    # modules: kamsim.trace.trace(...), kamsim.store.open(...), kamsim.lessons.run_lesson(...)
    "trace", "store", "lessons",
]

_LAZY = {
    "load_scenario": ("kamsim.spec.load", "load_scenario"),
    "simulate": ("kamsim.experiment", "simulate"),
    "compare": ("kamsim.compare", "compare"),
    "sweep": ("kamsim.sweep", "sweep"),
    "tier_portfolio": ("kamsim.tiering", "tier_portfolio"),
    "InputError": ("kamsim.errors", "InputError"),
    "KamsimError": ("kamsim.errors", "KamsimError"),
}


#: submodules reachable as attributes (``kamsim.store.open(...)``, ``kamsim.trace.trace(...)``)
_SUBMODULES = {"store", "report", "experiment", "results", "dmu", "rules", "spec", "engine",
               "trace", "lessons", "tiering"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"kamsim.{name}")
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'kamsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    # the lazy names too, so that dir(kamsim) and tab completion show the API
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
