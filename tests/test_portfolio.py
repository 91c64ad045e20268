"""Portfolios: generated ones are reproducible, heavy-tailed and inside their declared
bounds; imported ones map columns, draw what the export lacks, and report bad rows at
file:row:column, all at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kamsim.errors import InputError
from kamsim.portfolio import (
    DRAWN_FIELDS,
    Accounts,
    accounts_from_import,
    fingerprint,
    generate_portfolio,
    read_portfolio_csv,
    sample,
)
from kamsim.spec.models import Distribution, PortfolioGenerate, PortfolioImport

ROOT = Path(__file__).resolve().parents[1]
UNIT = ["share", "margin", "loyalty", "purchase_regularity", "influence", "feedback",
        "payment_risk", "strategic_fit", "price_sensitivity"]


def _same(a, b) -> bool:  # type: ignore[no-untyped-def]
    return (np.array_equal(a.account_id, b.account_id)
            and all(np.array_equal(a.numbers[k], b.numbers[k]) for k in a.numbers)
            and np.array_equal(a.segment, b.segment) and np.array_equal(a.industry, b.industry))


def test_same_seed_same_portfolio() -> None:
    gen = PortfolioGenerate(accounts=500)
    assert _same(generate_portfolio(gen, 7), generate_portfolio(gen, 7))


def test_different_seed_different_portfolio() -> None:
    gen = PortfolioGenerate(accounts=500)
    a, b = generate_portfolio(gen, 7), generate_portfolio(gen, 8)
    assert not np.array_equal(a.numbers["wallet"], b.numbers["wallet"])
    assert not np.array_equal(a.segment, b.segment)


def test_changing_one_distribution_leaves_the_others() -> None:
    """Each field has its own random stream (paired comparisons stay paired)."""
    a = generate_portfolio(PortfolioGenerate(accounts=300), 3)
    b = generate_portfolio(PortfolioGenerate(
        accounts=300, loyalty=Distribution(dist="uniform", minimum=0, maximum=1)), 3)
    assert not np.array_equal(a.numbers["loyalty"], b.numbers["loyalty"])
    for k in DRAWN_FIELDS:
        if k != "loyalty":
            assert np.array_equal(a.numbers[k], b.numbers[k]), k


def test_default_wallets_are_heavy_tailed() -> None:
    acc = generate_portfolio(PortfolioGenerate(accounts=20_000), 11)
    revenue = np.sort(acc.env()["revenue"])[::-1]
    top = revenue[: revenue.size // 5].sum() / revenue.sum()
    assert top > 0.6, f"top 20% hold only {top:.0%} of revenue"
    wallet = np.sort(acc.numbers["wallet"])[::-1]
    assert wallet[: wallet.size // 5].sum() / wallet.sum() > 0.6
    # the median is near the declared one (lognormal median 120000)
    assert 100_000 < np.median(acc.numbers["wallet"]) < 140_000


def test_fields_respect_clips_and_unit_ranges() -> None:
    gen = PortfolioGenerate(
        accounts=5000,
        margin=Distribution(dist="normal", mean=0.3, sigma=0.5, clip=(0.05, 0.6)),
        loyalty=Distribution(dist="normal", mean=0.5, sigma=2.0),  # must still land in [0,1]
        tenure_months=Distribution(dist="normal", mean=0, sigma=50),  # never negative
    )
    acc = generate_portfolio(gen, 5)
    m = acc.numbers["margin"]
    assert m.min() >= 0.05 and m.max() <= 0.6
    assert (m == 0.05).any() and (m == 0.6).any()  # the clip did bite
    for k in UNIT:
        v = acc.numbers[k]
        assert v.min() >= 0.0 and v.max() <= 1.0, k
    assert acc.numbers["tenure_months"].min() >= 0.0
    assert acc.numbers["wallet"].min() >= 0.0
    for v in acc.numbers.values():
        assert np.isfinite(v).all()


def test_segment_mix_follows_the_declared_shares() -> None:
    acc = generate_portfolio(PortfolioGenerate(accounts=20_000), 2)
    share = np.mean(acc.segment == "enterprise")
    assert abs(share - 0.2) < 0.02


@pytest.mark.parametrize("dist", [
    {"dist": "pareto", "alpha": 1.5, "minimum": 1000},
    {"dist": "uniform", "minimum": 2, "maximum": 3},
    {"dist": "fixed", "value": 4},
    {"dist": "beta", "alpha": 2, "beta": 2},
])
def test_sample_respects_support(dist: dict) -> None:  # type: ignore[type-arg]
    d = Distribution.model_validate(dist)
    x = sample(d, 4000, np.random.default_rng(0))
    lo = {"pareto": 1000, "uniform": 2, "fixed": 4, "beta": 0}[d.dist]
    hi = {"pareto": np.inf, "uniform": 3, "fixed": 4, "beta": 1}[d.dist]
    assert x.min() >= lo and x.max() <= hi


# ------------------------------------------------------------------ CSV import


def test_csv_import_with_mapping_and_drawn_defaults(tmp_path: Path) -> None:
    f = tmp_path / "crm.csv"
    f.write_text("Customer,Annual spend,Our share,segment,Notes\n"
                 "C1,1000000,0.5,enterprise,big\n"
                 "C2,50000,0.1,small,\n"
                 "\n"
                 "C3,250000,0.3,midmarket,x\n")
    spec = PortfolioImport(path="crm.csv", columns={
        "account_id": "Customer", "wallet": "Annual spend", "share": "Our share"})
    table = read_portfolio_csv(f, spec)
    assert list(table.account_id) == ["C1", "C2", "C3"]
    acc = accounts_from_import(table, spec, seed=1)
    assert acc.n == 3
    assert list(acc.numbers["wallet"]) == [1_000_000, 50_000, 250_000]
    assert list(acc.numbers["share"]) == [0.5, 0.1, 0.3]
    assert list(acc.segment) == ["enterprise", "small", "midmarket"]
    # fields the export lacks are drawn from the defaults: reproducibly, in range
    again = accounts_from_import(read_portfolio_csv(f, spec), spec, seed=1)
    assert np.array_equal(acc.numbers["loyalty"], again.numbers["loyalty"])
    assert ((acc.numbers["loyalty"] >= 0) & (acc.numbers["loyalty"] <= 1)).all()
    assert set(acc.industry) <= {"manufacturing", "retail", "telecom", "utilities", "services"}


def test_scenario_with_an_imported_portfolio(tmp_path: Path) -> None:
    from kamsim.spec.load import load_scenario
    from kamsim.tiering import tier_portfolio

    ws = tmp_path / "ws"
    (ws / "rules").mkdir(parents=True)
    for p in (ROOT / "rules").glob("*.yaml"):
        (ws / "rules" / p.name).write_text(p.read_text())
    rows = "\n".join(f"A{i},{1000 * (i + 1) ** 2},0.4" for i in range(30))
    (ws / "accounts.csv").write_text("id,wallet,share\n" + rows + "\n")
    sc = (ROOT / "scenarios" / "baseline.yaml").read_text().replace("../rules/", "rules/")
    sc = sc.replace("  generate:\n    accounts: 2000\n", "  import:\n    path: accounts.csv\n"
                    "    columns: {account_id: id}\n")
    sc = "\n".join(ln for ln in sc.splitlines() if "wallet: {dist" not in ln) + "\n"
    (ws / "s.yaml").write_text(sc)
    spec = load_scenario(ws / "s.yaml")
    assert str(ws / "accounts.csv") in {str(Path(k).resolve()) for k in spec.hashes}
    result = tier_portfolio(spec)
    assert result.account_id.size == 30
    assert sum(r["accounts"] for r in result.summary()) == 30


def test_bad_csv_reports_every_cell_at_once(tmp_path: Path) -> None:
    f = tmp_path / "crm.csv"
    f.write_text("account_id,wallet,loyalty,segment\n"
                 "A1,100,0.5,small\n"
                 "A2,-1,0.5,small\n"
                 "A3,ten,1.5,\n"
                 "A1,inf,0.2,small\n")
    with pytest.raises(InputError) as exc:
        read_portfolio_csv(f, PortfolioImport(path="crm.csv"), display="crm.csv")
    got = [p.format().split(" (")[0] for p in exc.value.problems]
    assert got == [
        "crm.csv:3:2: wallet: '-1' is out of range",
        "crm.csv:4:2: wallet: 'ten' is not a number",
        "crm.csv:4:3: loyalty: '1.5' is out of range",
        "crm.csv:4:4: empty segment",
        "crm.csv:5:1: duplicate account id 'A1'",
        "crm.csv:5:2: wallet: 'inf' is out of range",
    ]


def test_bad_mapping_is_reported_with_a_suggestion(tmp_path: Path) -> None:
    f = tmp_path / "crm.csv"
    f.write_text("id,Wallet\nA1,3\n")
    spec = PortfolioImport(path="crm.csv", columns={"account_id": "id", "walet": "Wallet",
                                                    "share": "Share"})
    with pytest.raises(InputError) as exc:
        read_portfolio_csv(f, spec, display="crm.csv")
    text = str(exc.value)
    assert "unknown field 'walet'" in text and "did you mean 'wallet'?" in text
    assert "no column 'Share' in the header" in text


@pytest.mark.parametrize("content, message", [
    (b"", "file is empty"),
    (b"wallet,share\n1,0.5\n", "no account id column"),
    (b"account_id,wallet\n", "no accounts"),
    (b"account_id,wallet\nA1,1\xff\xfe\n", "crm.csv:2:5: byte 0xff is not UTF-8 text"),
])
def test_degenerate_csv_files(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "crm.csv"
    f.write_bytes(content)
    with pytest.raises(InputError) as exc:
        read_portfolio_csv(f, PortfolioImport(path="crm.csv"), display="crm.csv")
    assert message in str(exc.value)
    assert str(exc.value).startswith("crm.csv:")


def test_repeated_column_and_ragged_rows_are_refused_all_at_once(tmp_path: Path) -> None:
    # a repeated name made the last column win; an extra field shifted the row's values into
    # the next fields: both were accepted silently
    f = tmp_path / "crm.csv"
    f.write_text("account_id,wallet,share,wallet,loyalty\n"
                 "A1,100,0.5,1,0.3\n"
                 "A2,200,0.5,2,0.3,0.9\n"
                 "A3,300,0.5\n"
                 "A4,400,0.5,4,0.3\n")
    with pytest.raises(InputError) as exc:
        read_portfolio_csv(f, PortfolioImport(path="crm.csv"), display="crm.csv")
    got = [p.format() for p in exc.value.problems]
    assert got == [
        "crm.csv:1:4: column 'wallet' repeats (first in column 2) (each column name once)",
        "crm.csv:3:6: the row has 6 fields (5, like the header)",
        "crm.csv:4:4: the row has 3 fields (5, like the header)",
    ]


@pytest.mark.parametrize("scenario, sets", [
    ("baseline.yaml", ["portfolio.generate.accounts=1234"]),
    ("crm_import.yaml", []),
])
def test_starting_ids_are_the_built_portfolios(scenario: str, sets: list[str]) -> None:
    # a lesson checks its focus account with them before anything runs
    from kamsim.portfolio import build_portfolio, starting_ids
    from kamsim.spec.load import load_scenario

    spec = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / scenario, sets)
    assert list(starting_ids(spec)) == list(build_portfolio(spec).account_id)


def test_a_repeated_mapped_column_is_reported_once_not_per_row(tmp_path: Path) -> None:
    # its cells were checked against the first of the two columns: one false problem per row
    f = tmp_path / "crm.csv"
    f.write_text("id,spend,name,spend\nC1,Nordwerk,100,1\nC2,Halvorsen,200,2\n")
    spec = PortfolioImport(path="crm.csv", columns={"account_id": "id", "wallet": "spend"})
    with pytest.raises(InputError) as exc:
        read_portfolio_csv(f, spec, display="crm.csv")
    assert [p.format() for p in exc.value.problems] == [
        "crm.csv:1:4: column 'spend' repeats (first in column 2) (each column name once)"]


@pytest.mark.parametrize("n", [1, 9, 10, 99, 100, 2000])
def test_numbered_ids_are_read_back_by_the_one_format(n: int) -> None:
    """A generated portfolio's ids are written and read in one place (numbered_id): the
    loader's check of the stakeholder file's explicit maps knows exactly the ids the
    portfolio gets, without drawing it."""
    from kamsim.portfolio import numbered_id, numbered_ids, numbered_index

    ids = numbered_ids("A", n).tolist()
    assert ids == [numbered_id("A", i, n) for i in range(1, n + 1)]
    assert [numbered_index("A", n, a) for a in ids] == list(range(1, n + 1))
    width = len(ids[0]) - 1
    wrong_width = "A1" if width > 1 else "A01"
    for other in ("A" + "0" * width, f"A{n + 1:0{width}d}", wrong_width,
                  "A" + "１".rjust(width, "0"), "B" + ids[0][1:], ids[0] + " ", "A"):
        assert numbered_index("A", n, other) is None, other


def _plain_fingerprint(accounts: Accounts, k: int) -> str:
    """The fingerprint as first written (each value's str): a stored run's portfolio
    fingerprint must stay what it was, or runs stored before would no longer pair."""
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    for col in (accounts.account_id, accounts.segment, accounts.industry):
        h.update("\x1f".join(map(str, col[:k])).encode())
        h.update(b"\x1e")
    for name in sorted(accounts.numbers):
        h.update(name.encode())
        h.update(np.ascontiguousarray(accounts.numbers[name][:k], dtype="<f8").tobytes())
    return h.hexdigest()


def test_the_fingerprint_is_the_plain_one_whatever_the_columns_hold() -> None:
    gen = PortfolioGenerate(accounts=300)
    accounts = generate_portfolio(gen, 7)
    for k in (0, 1, 300):
        assert fingerprint(accounts, k) == _plain_fingerprint(accounts, k)
    # ids that are not text (numbers, numpy's strings, a mix), and text columns as numpy's
    n = accounts.n
    for ids in (np.arange(n), np.arange(n).astype(object), np.arange(n).astype(str),
                np.array([np.str_(f"A{i}") for i in range(n)], dtype=object),
                np.array([i if i % 2 else f"A{i}" for i in range(n)], dtype=object)):
        other = Accounts(ids, accounts.numbers, accounts.segment.astype(str),
                         accounts.industry)
        assert fingerprint(other) == _plain_fingerprint(other, n)
