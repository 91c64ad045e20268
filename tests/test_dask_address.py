"""A ``--dask`` address that cannot name a scheduler is one error line and exit 2, and
nothing after it: the half-built ``distributed.Client`` used to print an ``Exception
ignored in: <function Client.__del__>`` TimeoutError traceback about 20 s after the error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kamsim.errors import RunError

REPO = Path(__file__).resolve().parents[1]
BAD = ["notaurl", "127.0.0.1", "foo://host:8786", "tcp://host:port", "inproc://x"]

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("address", BAD)
def test_bad_address_is_refused_before_a_client_exists(address: str,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    import distributed

    from kamsim.cluster import _connect

    def no_client(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a Client was made for an address that cannot be valid")

    monkeypatch.setattr(distributed, "Client", no_client)
    with pytest.raises(RunError, match="is not a Dask scheduler address .*tcp://HOST:PORT"):
        _connect(address)


def test_cli_prints_one_line_and_nothing_after(tmp_path: Path) -> None:
    """In a fresh interpreter, as a user runs it: what the interpreter prints at exit
    (the Client's __del__) is part of the output. The timeout only bounds a hang."""
    res = subprocess.run(
        [sys.executable, "-m", "kamsim", "run", str(REPO / "scenarios" / "baseline.yaml"),
         "--dask", "notaurl", "--no-store", "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 'notaurl' is not a Dask scheduler"), \
        res.stderr
