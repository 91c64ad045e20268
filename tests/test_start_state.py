"""The first tiering reads the real starting state (docs/model.md, "The start of a run"): the
decision units, the starting trust and stage; a tiering file may not read what the tiering
itself works out (tier, quadrant, score outside the table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kamsim.errors import InputError
from kamsim.examples import copy_examples

KEY_ROW = "rank_pct(score) >= 0.92 or (cum_share(revenue) <= 0.5 and payment_risk < 0.4)"


def _workspace(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the shipped scenarios and rules with ``old`` replaced in the tiering file."""
    copy_examples(tmp_path)  # (the shipped rules/ and scenarios/)
    tiering = tmp_path / "rules" / "tiering.yaml"
    text = tiering.read_text()
    assert old in text
    tiering.write_text(text.replace(old, new))
    return tmp_path / "scenarios" / "tiered.yaml"


def test_first_tiering_reads_the_decision_units(tmp_path: Path) -> None:
    from kamsim.dmu import metrics, select_accounts
    from kamsim.experiment import prepared
    from kamsim.spec.load import load_scenario
    from kamsim.tiering import tier_portfolio

    scenario = _workspace(tmp_path, f'"{KEY_ROW}"', '"dm_covered and champion"')
    spec = load_scenario(scenario, ["portfolio.generate.accounts=300"])
    prep = prepared(spec)
    start = select_accounts(prep.units, np.arange(prep.n_start))
    m = metrics(start, spec.stakeholders.influence_threshold)
    want = m.dm_covered & m.champion
    assert 0 < want.sum() < prep.n_start
    res = tier_portfolio(spec)
    assert np.array_equal(res.tier == 0, want)  # `kamsim tier` tells the run's start
    assert np.array_equal(prep.tier[:prep.n_start] == 0, want)


def test_first_tiering_reads_the_starting_stage(tmp_path: Path) -> None:
    from kamsim.experiment import prepared
    from kamsim.spec.load import load_scenario

    scenario = _workspace(tmp_path, f'"{KEY_ROW}"', '"stage_index >= 1 and trust > 0.5"')
    spec = load_scenario(scenario, ["portfolio.generate.accounts=300"])
    prep = prepared(spec)
    k = prep.n_start
    want = (prep.stage[:k] >= 1) & (prep.trust[:k] > 0.5)
    assert 0 < want.sum() < k
    assert np.array_equal(prep.tier[:k] == 0, want)


@pytest.mark.parametrize(("old", "new", "col", "message"), [
    (f'"{KEY_ROW}"', "\"quadrant == 'protect'\"", 14, "quadrant is worked out by the tiering"),
    (f'"{KEY_ROW}"', "\"tier == 'key' or score > 0.9\"", 14, "tier is worked out by the tiering"),
    ("volume: rank_pct(revenue)", "volume: score", 11, "the score is worked out from the "),
    ("{expr: revenue,  ", "{expr: score,    ", 31, "the score is worked out from the "),
])
def test_tiering_outputs_are_refused_in_the_tiering_file(tmp_path: Path, old: str, new: str,
                                                         col: int, message: str) -> None:
    from kamsim.spec.load import load_scenario

    scenario = _workspace(tmp_path, old, new)
    with pytest.raises(InputError) as err:
        load_scenario(scenario)
    [problem] = err.value.problems
    assert problem.loc.path.endswith("tiering.yaml") and problem.loc.col == col
    assert message in problem.message


@pytest.mark.parametrize("reads_units", [True, False])
def test_prepare_measures_the_units_only_for_a_tiering_that_reads_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads_units: bool) -> None:
    """The first tiering measures the decision units' metrics only when it reads one of their
    fields, and the Prepared keeps none: each replication measures its own start. (Keeping
    the start's metrics on the Prepared for every replication saved one measurement a
    replication but held ~200 MB through a 1M-account run: its peak rose from 3.74 to
    3.95 GB, against a 4 GB target.)"""
    import dataclasses
    import sys

    from kamsim.compile import compile_model
    from kamsim.dmu.metrics import Metrics
    from kamsim.engine.core import EngineOptions, run_replication
    from kamsim.engine.prepare import Prepared, prepare
    from kamsim.engine.rng import replication_seeds
    from kamsim.spec.load import load_scenario

    whole = []  # the metrics measured of every account (not a period's stretch)
    for name in ("kamsim.dmu.metrics", "kamsim.dmu.context"):
        module = sys.modules[name]
        real = module._metrics_span

        def spy(units, st, threshold, sp, previous, threads, *rest, real=real):  # type: ignore[no-untyped-def]
            out = real(units, st, threshold, sp, previous, threads, *rest)
            if previous is None:
                whole.append(out)
            return out

        monkeypatch.setattr(module, "_metrics_span", spy)
    when = '"dm_covered and champion"' if reads_units else '"revenue > 0"'
    scenario = _workspace(tmp_path, f'"{KEY_ROW}"', when)
    spec = load_scenario(scenario, ["portfolio.generate.accounts=200", "horizon_months=2"])
    prep = prepare(compile_model(spec))
    assert len(whole) == int(reads_units)
    assert not any(isinstance(getattr(prep, f.name), Metrics)
                   for f in dataclasses.fields(Prepared))
    seqs = replication_seeds(spec.scenario.seed, 3)
    for r in range(3):
        run_replication(prep, seqs[r], r, EngineOptions())
    assert len(whole) == int(reads_units) + 3
