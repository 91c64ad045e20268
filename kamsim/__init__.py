"""kamsim: a rule engine and simulation framework for key-account strategy planning.

The public API is imported lazily so that ``import kamsim`` (and ``kamsim --help``) stay fast:
the names below, and every module of the package as an attribute (``kamsim.store.open(...)``,
``kamsim.dmu.report.describe_unit(...)``), imported when first used.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

__version__ = "0.2.0"

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


def _submodule(package: str, name: str) -> ModuleType | None:
    """The submodule ``package.name``, imported now, or None if the package has none.

    Every package's ``__getattr__`` calls this, so that each dotted name the docs give
    (``kamsim.dmu.report.describe_unit``, ``kamsim.spec.load.load_any``) works after a bare
    ``import kamsim``, as it does after ``import kamsim.dmu.report``; only what is used is
    imported, so ``import kamsim`` stays light."""
    if name.startswith("__"):  # probes (__wrapped__, __path__ ...): never a module
        return None
    import importlib
    import importlib.util

    full = f"{package}.{name}"
    spec = importlib.util.find_spec(full)
    if spec is None or spec.origin is None:  # (origin None: a data folder, e.g. templates)
        return None
    return importlib.import_module(full)


def _submodules_of(package: str) -> Callable[[str], ModuleType]:
    """The module ``__getattr__`` of a subpackage: its modules as attributes, on first use
    (``kamsim.dmu.report`` after a bare ``import kamsim``)."""

    def __getattr__(name: str) -> ModuleType:
        module = _submodule(package, name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return module

    return __getattr__


def _submodule_names(path: list[str]) -> set[str]:
    import pkgutil

    return {m.name for m in pkgutil.iter_modules(path)}


def __getattr__(name: str) -> Any:
    # the lazy functions first: kamsim.compare and kamsim.sweep are these functions (their
    # modules are callable, for whichever is imported first)
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    module = _submodule(__name__, name)
    if module is None:
        raise AttributeError(f"module 'kamsim' has no attribute {name!r}")
    return module


def __dir__() -> list[str]:
    # the lazy names and the submodules too, so that dir(kamsim) and tab completion show
    # the API
    return sorted(set(globals()) | set(_LAZY) | _submodule_names(__path__))


def _callable_module(name: str, fn: Any) -> None:
    """Make module ``name`` callable as ``fn``: importing ``kamsim.compare`` (or
    ``kamsim.sweep``) binds the module over the lazy function of the same name on this
    package, so ``kamsim.compare([...])`` works whichever was imported first."""
    import sys
    import types

    class _Callable(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

    sys.modules[name].__class__ = _Callable

