"""A study on a real Dask cluster (a scheduler and two workers started here as processes)
gives exactly the local results, through the library and through the CLI, and survives
losing a worker in the middle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import distributed  # noqa: F401  (a test dependency: fail, never skip, when missing)
import pytest
from _identical import assert_identical_results, differences

from kamsim.errors import KamsimWarning
from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"
SMALL = ["portfolio.generate.accounts=300", "horizon_months=18", "replications=5"]
#: long enough to lose a worker mid-study: ~0.4 s per replication
LONG = ["replications=12"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask(*args: str, log: Path) -> subprocess.Popen[bytes]:
    # `python -m distributed.cli.dask_*` is what the `dask` command runs; using this
    # interpreter guarantees the workers import the same kamsim
    out = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", *args], stdout=out,
                            stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)


class Cluster:
    def __init__(self, address: str, scheduler: subprocess.Popen[bytes],
                 workers: list[subprocess.Popen[bytes]]):
        self.address = address
        self.scheduler = scheduler
        self.workers = workers


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A scheduler and two single-threaded workers without nannies (a killed worker stays
    dead), on 127.0.0.1; always terminated."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_dask("distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                           "--port", str(port), "--no-dashboard", log=tmp_path / "sched.log"))
        for i in range(2):
            procs.append(_dask("distributed.cli.dask_worker", address, "--nworkers", "1",
                               "--nthreads", "1", "--no-nanny", "--no-dashboard",
                               "--host", "127.0.0.1", "--name", f"w{i}",
                               log=tmp_path / f"worker{i}.log"))
        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield Cluster(address, procs[0], procs[1:])
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def test_cluster_matches_local_run(cluster: Cluster) -> None:
    spec = load_scenario(BASELINE, SMALL)
    local = simulate(spec, workers=1, record_events=True)
    seen: list[int] = []
    with warnings.catch_warnings():
        # workers on this machine: the platform check must find nothing to warn about
        warnings.simplefilter("error", KamsimWarning)
        remote = simulate(spec, dask=cluster.address, record_events=True,
                          progress=lambda d, t: seen.append(d))
    assert seen and seen[-1] == 5
    assert_identical_results(local, remote)
    # and the check is able to fail: another seed on the cluster is another future
    other = simulate(spec, dask=cluster.address, seed=local.seed + 1, record_events=True)
    assert differences(local.outputs, other.outputs)


def test_cli_on_cluster_matches_local_run(cluster: Cluster) -> None:
    from click.testing import CliRunner

    from kamsim.cli import commands  # noqa: F401  (registers every command)
    from kamsim.cli.main import cli

    spec = load_scenario(BASELINE, SMALL)
    local = json.loads(json.dumps(simulate(spec, workers=1).summary()))
    sets = [a for s in SMALL for a in ("--set", s)]
    res = CliRunner().invoke(cli, ["run", str(BASELINE), *sets, "--dask", cluster.address,
                                   "--json", "--no-store", "--quiet"])
    assert res.exit_code == 0, res.output
    remote = json.loads(res.stdout)
    remote.pop("run_id", None)
    assert remote == local
    # KAMSIM_DASK is the same as --dask
    res = CliRunner(env={"KAMSIM_DASK": cluster.address}).invoke(
        cli, ["run", str(BASELINE), *sets, "--json", "--no-store", "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == local


def test_cli_sweep_on_cluster_matches_local_run(cluster: Cluster) -> None:
    """A sweep's points go to the cluster in one submission, and come back as the local
    run's figures (bit for bit: the JSON compares every mean, interval and difference)."""
    from click.testing import CliRunner

    from kamsim.cli import commands  # noqa: F401  (registers every command)
    from kamsim.cli.main import cli

    args = ["sweep", str(BASELINE), "--vary", "capacity.account_managers=1,8", "-r", "2",
            "--set", "portfolio.generate.accounts=300", "--set", "horizon_months=12",
            "--json", "--no-store", "--quiet"]
    local = CliRunner().invoke(cli, [*args, "-w", "1"])
    assert local.exit_code == 0, local.output
    remote = CliRunner().invoke(cli, [*args, "--dask", cluster.address])
    assert remote.exit_code == 0, remote.output
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert len(b["points"]) == 2 and b["rows"]
    assert a == b


def test_study_survives_a_killed_worker(cluster: Cluster) -> None:
    spec = load_scenario(BASELINE, LONG)
    killed: list[int] = []

    def kill_one(done: int, total: int) -> None:
        if not killed:  # after the first chunk came back, one worker dies without notice
            victim = cluster.workers[0]
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            killed.append(done)

    remote = simulate(spec, dask=cluster.address, record_events=False, progress=kill_one)
    assert killed and killed[0] < 12, "the worker must die while the study is running"
    assert cluster.workers[0].returncode == -signal.SIGKILL
    local = simulate(spec, workers=2, record_events=False)
    assert_identical_results(local, remote)


def test_unreachable_scheduler_is_a_clear_error() -> None:
    from kamsim.errors import RunError

    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(RunError, match=r"cannot reach the Dask scheduler at tcp://127"):
        simulate(load_scenario(BASELINE, SMALL), dask=address)


class _FakeClient:
    """Answers ``client.run(platform)`` with given worker platforms."""

    def __init__(self, platforms: dict[str, tuple[str, ...]]):
        self.platforms = platforms

    def run(self, fn: object) -> dict[str, tuple[str, ...]]:
        return self.platforms


def test_platform_check_warns_when_figures_cannot_repeat() -> None:
    from kamsim.cluster import _check_platforms, platform

    here = platform()
    assert here[0].startswith("numpy ")
    other = (here[0], "X86_V3")  # the same numpy without its AVX-512 kernels
    with warnings.catch_warnings():
        warnings.simplefilter("error", KamsimWarning)
        _check_platforms(_FakeClient({"a": here, "b": here}), "tcp://x:1")  # silent
    with pytest.warns(KamsimWarning, match="depend on the worker that runs it"):
        _check_platforms(_FakeClient({"a": here, "b": other}), "tcp://x:1")
    if other != here:
        with pytest.warns(KamsimWarning, match="differ in the last bits from a local run"):
            _check_platforms(_FakeClient({"a": other, "b": other}), "tcp://x:1")


def test_cli_prints_a_kamsim_warning_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from kamsim.cli.main import _show_warning

    _show_warning(KamsimWarning("the workers differ"), KamsimWarning, "x.py", 1)
    assert capsys.readouterr().err == "warning: the workers differ\n"
