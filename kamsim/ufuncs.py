"""numpy ufuncs called directly, for the per-period path.

``np.clip`` is a Python function that checks its arguments and then calls the ``clip`` ufunc:
a few microseconds a call, which adds up over a small portfolio's periods. The ufunc gives
the same values (it is what ``np.clip`` calls). It lives in numpy's private ``_core.umath``;
if a numpy moves it, ``np.clip`` is used instead (same values, a little slower).
"""

from __future__ import annotations

import numpy as np

__all__ = ["clip"]

try:
    from numpy._core.umath import clip  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other numpy layouts
    clip = np.clip
