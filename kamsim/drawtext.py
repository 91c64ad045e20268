"""Drawing user text as written: the matplotlib settings the report's charts and the decision
unit maps are drawn under (scenario, tier and stage names, person ids and roles are the
user's, and "Q3 $\\alpha$ plan" is a name, not math text).

Its own small module, so that :mod:`kamsim.dmu` need not import :mod:`kamsim.report` for it;
matplotlib is imported only when a figure is drawn."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["AS_WRITTEN", "as_written"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: matplotlib settings under which a text is drawn as written: no math text ("$...$"), no TeX
#: (a matplotlibrc may turn it on). A text takes them when it is made, a tick label when the
#: figure is drawn: figures are made, and saved (:mod:`kamsim.report.figfiles`), under them.
AS_WRITTEN: dict[Any, Any] = {"text.parse_math": False, "text.usetex": False}


def as_written(fn: _F) -> _F:
    """``fn`` makes its figure under :data:`AS_WRITTEN`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(AS_WRITTEN):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
