"""The top-level API: ``import kamsim`` stays light, and its lazy names are listed."""

from __future__ import annotations

import subprocess
import sys

import kamsim


def test_dir_lists_the_lazy_api() -> None:
    names = dir(kamsim)
    for name in kamsim.__all__:
        assert name in names, name
    for name in ("simulate", "load_scenario", "compare", "tier_portfolio", "trace", "store"):
        assert name in names, name


def test_listing_the_api_imports_nothing_heavy() -> None:
    code = ("import sys, kamsim; names = dir(kamsim); "
            "print(sorted(m for m in ('numpy', 'pydantic', 'simpy', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_listed_name_resolves() -> None:
    for name in kamsim.__all__:
        assert getattr(kamsim, name) is not None, name
