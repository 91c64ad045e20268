"""``kamsim dmu show`` and ``kamsim dmu stats`` on a small baseline portfolio."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from kamsim.cli import commands  # noqa: F401  (registers the command groups)
from kamsim.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")
SMALL = ["--set", "portfolio.generate.accounts=120", "--set", "horizon_months=24",
         "--set", "replications=2"]
ACCOUNT = "A007"


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["dmu", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def prep():
    from kamsim.experiment import prepared
    from kamsim.spec.load import load_scenario

    sets = [s for s in SMALL if s != "--set"]
    return prepared(load_scenario(BASELINE, sets))


def people_of(prep, account_id: str) -> list[str]:
    a = int(list(prep.accounts.account_id[: prep.n_start]).index(account_id))
    return [str(p) for p in prep.units.person_id[prep.units.offsets[a]:prep.units.offsets[a + 1]]]


def test_show_lists_people_metrics_and_flags(prep):
    from kamsim.dmu.metrics import FLAG_TEXT
    from kamsim.dmu_maps import account_map
    from kamsim.spec.load import load_scenario

    res = invoke("show", BASELINE, "--account", ACCOUNT, *SMALL)
    assert res.exit_code == 0, res.output
    for person in people_of(prep, ACCOUNT):
        assert person in res.output
    for word in ("coverage", "multithreading", "sentiment", "champion",
                 "single-point-of-failure"):
        assert word in res.output
    # the flags printed are exactly the account's flags, in words
    amap = account_map(load_scenario(BASELINE, [s for s in SMALL if s != "--set"]), ACCOUNT)
    flags = [f["flag"] for f in amap.description["flags"]]
    for name, text in FLAG_TEXT.items():
        assert (text in res.output) == (name in flags), name
    if not flags:
        assert "red flags: none" in res.output


def test_show_attitude_and_coverage_labels_match_values():
    res = invoke("show", BASELINE, "--account", ACCOUNT, *SMALL)
    pairs = re.findall(r"(enemy|non_supporter|neutral|supporter|mentor) \(([+-]\d\.\d\d)\)",
                       res.output)
    assert pairs
    levels = {"enemy": -1.0, "non_supporter": -0.5, "neutral": 0.0, "supporter": 0.5,
              "mentor": 1.0}
    for label, value in pairs:
        nearest = min(levels, key=lambda k: (abs(levels[k] - float(value)), levels[k]))
        assert abs(levels[nearest] - float(value)) <= abs(levels[label] - float(value)) + 0.006


def test_show_labels_agree_with_the_flags_on_the_same_screen():
    """QA: A03's economic buyer at 0.31 was `brief (0.31)` next to "economic buyer covered
    no" and the red flag "economic buyer not covered (not even a brief contact)"."""
    trainer = str(ROOT / "scenarios" / "trainer_single_account.yaml")
    res = invoke("show", trainer, "--account", "A03", "--month", "0")
    assert res.exit_code == 0, res.output
    eb = next(ln for ln in res.output.splitlines() if "A03-economic_buyer-1" in ln)
    assert "almost brief (0.31)" in eb
    assert "economic buyer covered no" in res.output
    assert "economic buyer not covered" in res.output


def test_show_draws_svg(tmp_path):
    out = tmp_path / "map.svg"
    res = invoke("show", BASELINE, "--account", ACCOUNT, *SMALL, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 0
    assert ET.parse(out).getroot().tag.endswith("svg")
    assert str(out) in res.output
    assert not list(tmp_path.glob(".map*"))  # no temporary file left behind


def test_show_draws_png(tmp_path):
    out = tmp_path / "map.png"
    res = invoke("show", BASELINE, "--account", ACCOUNT, *SMALL, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_show_bad_out_suffix_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "map.pdf"
    res = invoke("show", BASELINE, "--account", ACCOUNT, *SMALL, "--out", str(out))
    assert res.exit_code == 2
    assert ".svg or .png" in res.stderr
    assert not out.exists()


def test_show_out_in_a_missing_folder_exits_2_and_creates_nothing(tmp_path):
    out = tmp_path / "nonexist" / "a.svg"
    res = invoke("show", BASELINE, "--account", ACCOUNT, *SMALL, "--out", str(out))
    assert res.exit_code == 2
    assert res.stderr == f"error: --out {out}: folder {out.parent} does not exist\n"
    assert not out.parent.exists()


def test_show_month_12_shows_the_unit_later(prep):
    from kamsim.dmu_maps import account_map
    from kamsim.spec.load import load_scenario

    res = invoke("show", BASELINE, "--account", ACCOUNT, *SMALL, "--month", "12")
    assert res.exit_code == 0, res.output
    assert "end of month 12" in res.output or "lost in month" in res.output
    spec = load_scenario(BASELINE, [s for s in SMALL if s != "--set"])
    start, later = account_map(spec, ACCOUNT), account_map(spec, ACCOUNT, month=12)
    # the same posts (newcomers keep the id), but a year of contact has moved the people
    assert [p["id"] for p in later.description["people"]] == people_of(prep, ACCOUNT)
    assert [p["role"] for p in later.description["people"]] == \
        [p["role"] for p in start.description["people"]]
    moved = [abs(a["coverage"] - b["coverage"]) + abs(a["attitude"] - b["attitude"])
             for a, b in zip(start.description["people"], later.description["people"],
                             strict=True)]
    assert max(moved) > 0
    if later.note is None:
        assert later.month == 12


def test_show_month_beyond_horizon_exits_2():
    res = invoke("show", BASELINE, "--account", ACCOUNT, *SMALL, "--month", "99")
    assert res.exit_code == 2
    assert "horizon" in res.stderr


# ---------------------------------------------------------------- one meaning of "month M"
# `kamsim trace` says "month M: ..." of the period that starts at month M, the accounts table's
# churn_period is that period, and the lesson page's slider shows that period's record; `dmu
# show --month M` must show the same state: the unit at the end of month M.

TRAINER = str(ROOT / "scenarios" / "trainer_single_account.yaml")


@pytest.fixture(scope="module")
def trainer():
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario
    from kamsim.trace import trace

    spec = load_scenario(TRAINER, [])
    accounts = simulate(spec, replications=1, workers=1).outputs[0].accounts
    ids = ("A01", "A03")
    return spec, {a: trace(spec, a).records for a in ids}, accounts


def _people(records_people):
    return [(p["id"], round(p["attitude"], 9), round(p["coverage"], 9),
             round(p["months_in_post"], 9)) for p in records_people]


@pytest.mark.parametrize("account", ["A01", "A03"])
def test_month_m_is_the_end_of_the_traces_month_m(trainer, account):
    from kamsim.dmu_maps import account_map

    spec, records, accounts = trainer
    recs = records[account]
    by_month = {int(r["month"]): r for r in recs}
    slot = int(account[1:]) - 1
    churn = int(accounts["churn_period"][list(accounts["slot"]).index(slot)])
    for month in (0, 1, 4, 5, 6, 7, 12, 20, 35):
        amap = account_map(spec, account, month=month)
        rec = by_month.get(month, recs[-1])
        people = [(p["id"], round(p["attitude"], 9), round(p["coverage"], 9),
                   round(p["months_in_post"], 9)) for p in amap.description["people"]]
        assert people == _people(rec["people"]), (account, month)
        assert amap.description["metrics"]["coverage"] == pytest.approx(rec["coverage"])
        assert amap.description["metrics"]["multithreading"] == rec["multithreading"]
        if 0 <= churn < month:
            assert amap.note is not None and f"lost in month {churn};" in amap.note
            assert amap.month == churn and amap.when == f"end of month {churn}"
        else:
            assert amap.note is None and amap.month == month
            assert amap.when == f"end of month {month}"


def test_trainer_accounts_lost_and_left_as_the_trace_says(trainer):
    """The QA repro: A01 is lost in month 7 (churn_period 7), A03's purchaser leaves in month 5."""
    _, records, accounts = trainer
    slot = list(accounts["slot"]).index(0)
    assert int(accounts["churn_period"][slot]) == 7 == records["A01"][-1]["month"]
    assert records["A01"][-1]["churned"]
    left = [r["month"] for r in records["A03"]
            if any(d["person"] == "A03-purchaser-1" for d in r.get("departed", []))]
    assert left[:1] == [5]


def test_show_month_5_shows_the_newcomer_of_month_5(trainer):
    _, records, _ = trainer
    rec = records["A03"][5]
    res = invoke("show", TRAINER, "--account", "A03", "--month", "5")
    assert res.exit_code == 0, res.output
    assert "A03 (general), end of month 5" in res.output
    assert f"coverage {rec['coverage']:.2f} " in res.output
    row = next(line for line in res.output.splitlines() if "A03-purchaser-1" in line)
    assert row.rstrip(" │").split()[-1] == "1"  # a month in post: the newcomer of month 5


def test_show_lost_account_note_names_the_churn_month():
    res = invoke("show", TRAINER, "--account", "A01", "--month", "20")
    assert res.exit_code == 0, res.output
    assert "A01 (general), end of month 7" in res.output
    assert "note: the account was lost in month 7;" in res.output


def test_show_without_month_is_the_start_and_month_0_is_a_month_played(trainer):
    from kamsim.dmu_maps import account_map

    spec, records, _ = trainer
    start = invoke("show", TRAINER, "--account", "A03")
    assert start.exit_code == 0, start.output
    assert "A03 (general), start of the run (before month 0)" in start.output
    month0 = invoke("show", TRAINER, "--account", "A03", "--month", "0")
    assert month0.exit_code == 0, month0.output
    assert "A03 (general), end of month 0" in month0.output
    assert account_map(spec, "A03").month is None
    rec = records["A03"][0]
    assert f"coverage {rec['coverage']:.2f} " in month0.output
    # month 0 has been played: a month of contact has moved the people since the start
    assert start.output.split("\n", 1)[1] != month0.output.split("\n", 1)[1]


def test_show_last_month_is_the_horizons_last_and_the_next_exits_2():
    from kamsim.dmu_maps import last_month
    from kamsim.spec.load import load_scenario

    assert last_month(load_scenario(TRAINER, [])) == 35
    assert last_month(load_scenario(TRAINER, ["period=week"])) == 35
    res = invoke("show", TRAINER, "--account", "A03", "--month", "36")
    assert res.exit_code == 2
    assert "months run from 0 to 35" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_weekly_month_m_ends_with_the_last_week_starting_in_it():
    from kamsim.dmu_maps import account_map
    from kamsim.spec.load import load_scenario
    from kamsim.trace import trace

    spec = load_scenario(TRAINER, ["period=week", "horizon_months=12"])
    recs = trace(spec, "A03").records
    for month in (0, 4, 11):
        amap = account_map(spec, "A03", month=month)
        inside = [r for r in recs if int(r["month"] + 1e-9) == month]
        if not inside:
            continue  # lost before
        assert _people(inside[-1]["people"]) == [
            (p["id"], round(p["attitude"], 9), round(p["coverage"], 9),
             round(p["months_in_post"], 9)) for p in amap.description["people"]]


def test_show_unknown_account_exits_2_cleanly():
    res = invoke("show", BASELINE, "--account", "NOPE-1", *SMALL)
    assert res.exit_code == 2
    assert "no account 'NOPE-1'" in res.stderr
    assert "Traceback" not in res.stderr + res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_stats_has_every_tier(prep):
    res = invoke("stats", BASELINE, *SMALL)
    assert res.exit_code == 0, res.output
    rows = {line.split("│")[1].strip(): line for line in res.output.splitlines()
            if line.startswith("│")}
    assert set(prep.model.tiers) | {"all"} == set(rows)
    # tier account counts add up to the portfolio
    counts = {t: int(r.split("│")[2]) for t, r in rows.items()}
    assert sum(v for t, v in counts.items() if t != "all") == counts["all"] == prep.n_start


def test_stats_bad_scenario_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kamsim: 1\nkind: scenario\nname: x\n")
    res = invoke("stats", str(bad))
    assert res.exit_code == 2
    assert str(bad) in res.stderr
