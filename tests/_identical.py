"""Exact comparison of simulation outputs (bit for bit), shared by the determinism tests
(tests/test_parallel.py, tests/test_dask.py)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Every place where ``a`` and ``b`` differ: arrays by dtype, shape and bytes, floats
    exactly (NaN equals NaN), containers and dataclasses recursively. Empty if identical."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b):
            return [f"{path}: {type(a).__name__} vs {type(b).__name__}"]
        return [d for f in dataclasses.fields(a)
                for d in differences(getattr(a, f.name), getattr(b, f.name),
                                     f"{path}.{f.name}")]
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype != b.dtype or a.shape != b.shape:
            return [f"{path}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"]
        if a.dtype == object:
            return [] if a.tolist() == b.tolist() else [f"{path}: object arrays differ"]
        return [] if a.tobytes() == b.tobytes() else [f"{path}: values differ"]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} vs {sorted(b)}"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}[{k!r}]")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    # a numpy scalar equals the Python number of the same kind and value (the local pool
    # hands replication numbers out as numpy integers; the value is what must match)
    if isinstance(a, np.generic) or isinstance(b, np.generic):
        x, y = np.asarray(a), np.asarray(b)
        same_kind = x.dtype.kind == y.dtype.kind or {x.dtype.kind, y.dtype.kind} <= {"i", "u"}
        return [] if same_kind and x.tobytes() == y.astype(x.dtype).tobytes() and x == y \
            else [f"{path}: {a!r} vs {b!r}"]
    if type(a) is not type(b) or a != b:
        return [f"{path}: {a!r} vs {b!r}"]
    return []


def assert_identical_results(a: Any, b: Any) -> None:
    """Two :class:`kamsim.results.Result` are the same study, bit for bit: every array of
    every replication output, the per-replication figures and the summary."""
    assert a.replications == b.replications and a.seed == b.seed
    diffs = differences(a.outputs, b.outputs, "outputs")
    diffs += differences(a.per_replication(), b.per_replication(), "per_replication")
    diffs += differences(a.summary(), b.summary(), "summary")
    assert not diffs, "results differ:\n" + "\n".join(diffs[:20])
