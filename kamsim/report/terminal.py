"""Terminal rendering with rich: summaries and tables a person reads, not raw dumps."""

from __future__ import annotations

from typing import Any

__all__ = ["money", "signed_money", "decimal", "pct", "percent_label", "interval", "difference", "summary_table", "tier_table",
           "summary_notes", "NOTE_NO_ACCOUNTS", "NOTE_NO_INTERVAL", "MEASURE_NAMES",
           "ALL_ACCOUNTS", "difference_cells", "difference_notes", "is_number"]

#: what the headlines and the whole portfolio are called where a person reads them (run,
#: compare, sweep and the report say the same), not their data names (``clv``, ``all``),
#: which JSON and the tables keep
MEASURE_NAMES = {"retention": "retention", "revenue": "revenue", "profit": "profit",
                 "cost_to_serve": "cost to serve", "clv": "lifetime value / account"}
ALL_ACCOUNTS = "all accounts"

_SYMBOL = {"EUR": "€", "USD": "$", "GBP": "£", "CNY": "¥", "JPY": "¥"}


def money(x: float, currency: str = "EUR") -> str:
    """``x`` in the currency, shortened (€1.2M); one that rounds to €0 has no sign."""
    sym = _SYMBOL.get(currency, currency + " ")
    a = abs(x)
    sign = "-" if x < 0 and a >= 0.5 else ""
    if a >= 1e9:
        return f"{sign}{sym}{a / 1e9:.2f}B"
    if a >= 1e6:
        return f"{sign}{sym}{a / 1e6:.2f}M"
    if a >= 1e3:
        return f"{sign}{sym}{a / 1e3:.1f}k"
    return f"{sign}{sym}{a:.0f}"


def signed_money(x: float, currency: str = "EUR") -> str:
    """``money`` with its sign shown (a difference): +€1.2M, -€3.4k; €0 has none."""
    shown = money(abs(x), currency)
    if shown == money(0.0, currency):
        return shown
    return ("+" if x > 0 else "-") + shown


def decimal(x: float, digits: int = 1, *, sign: bool = False) -> str:
    """``x`` to ``digits`` decimals, with its plus too when ``sign`` (a difference). One that
    rounds to zero is 0.0 without a sign: a difference of -0.00004 shown as -0.0 would tell a
    direction the figure cannot show. Every table's percentages and points go through here."""
    text = f"{x:.{digits}f}"
    if float(text) == 0:
        return f"{0.0:.{digits}f}"
    return f"+{text}" if sign and x > 0 else text


def pct(x: float, digits: int = 1, *, sign: bool = False) -> str:
    """A share ``x`` as a percentage (0.123 -> 12.3%), as :func:`decimal` rounds."""
    return decimal(100 * x, digits, sign=sign) + "%"


def percent_label(x: float) -> str:
    """A share as a percent with the decimals it has and no more: 95%, 97.5%, 99.9%. The
    label of a confidence level (every table, verdict and chart says its level with this)
    and of a percent axis' ticks: rounding to whole percent called 0.999 "100%" and a
    97.5% tick "98%". Four decimals at most (float noise: 0.975 is 97.49999999999999), more
    only where four would round a level below 1 up to "100%" (0.9999999 is 99.99999%): a
    level that is not certainty never reads as one."""
    p = 100 * x
    digits = 4
    while digits < 17 and round(p, digits) >= 100 > p:
        digits += 1
    text = f"{round(p, digits) + 0.0:.{digits}f}".rstrip("0").rstrip(".")  # (+ 0.0: no "-0")
    return f"{text}%"


def is_number(value: Any) -> bool:
    """A number as JSON or YAML gives one (JSON's true/false are bools, which Python counts as
    ints: not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _missing(v: Any) -> bool:
    """No value: ``None`` (a summary, JSON) or NaN (a figure computed in this session)."""
    return v is None or v != v


def interval(stat: dict[str, Any], fmt: Any) -> str:
    """``mean ± half-width`` of a symmetric interval, ``mean (low–high)`` of one cut at a
    bound (a share's interval stops at 100%); just the mean when there is no interval (one
    replication), and ``n/a`` when there is no value (a share of a tier with no accounts)."""
    mean, low, high = stat["mean"], stat["ci_low"], stat["ci_high"]
    if _missing(mean):
        return "n/a"
    if stat.get("n", 2) < 2 or _missing(low) or _missing(high) or low == high:
        return fmt(mean)
    above, below = high - mean, mean - low
    if abs(above - below) > 1e-9 * max(abs(above), abs(below)):
        return f"{fmt(mean)} ({fmt(low)}–{fmt(high)})"
    return f"{fmt(mean)} ± {fmt((high - low) / 2.0)}"


def difference(mean: float, low: float, high: float, fmt: Any, unit: str = "") -> str:
    """``mean unit (low to high)`` of a difference: without the interval when there is none
    (one replication), ``n/a`` when the difference is undefined (a share of a tier with no
    accounts on one side)."""
    if _missing(mean):
        return "n/a"
    if _missing(low) or _missing(high):
        return f"{fmt(mean)}{unit}"
    return f"{fmt(mean)}{unit} ({fmt(low)} to {fmt(high)})"


def difference_cells(row: Any, currency: str) -> tuple[str, str, str, str, bool]:
    """Tier, measure, difference and relative difference of a row of
    :meth:`kamsim.compare.Comparison.table` as a person reads them (a share's difference in
    points, money in ``currency``; no relative cell where there is none), and whether the
    difference's interval excludes 0 (False without one, NaN): ``kamsim compare`` and the
    report show the same cells, and dim or colour them by that."""
    from kamsim.compare import ALL

    if row.metric == "retention":
        diff = difference(row.diff, row.diff_low, row.diff_high,
                          lambda v: decimal(100 * v, sign=True), " pts")
    else:
        diff = difference(row.diff, row.diff_low, row.diff_high,
                          lambda v: signed_money(v, currency))
    rel = ("" if row.rel != row.rel
           else difference(row.rel, row.rel_low, row.rel_high, lambda v: decimal(v, sign=True),
                           "%"))
    return (ALL_ACCOUNTS if row.tier == ALL else row.tier, MEASURE_NAMES[row.metric], diff,
            rel, bool(row.diff_low > 0 or row.diff_high < 0))


def difference_notes(cmp: Any, table: Any) -> list[str]:
    """The notes under ``table``, ``cmp``'s :meth:`kamsim.compare.Comparison.table` (``kamsim
    compare`` and the report say the same): which scenarios have no verdict and why, whose
    lifetime values are not comparable (:attr:`~kamsim.compare.Comparison.caveats`), and
    what its ``n/a`` and its differences without an interval mean."""
    notes = []
    for name, (why, rates) in cmp.caveats.items():
        # said under the table too, where the differences are read
        if why:
            notes.append(f"{name}: no verdict, {'; '.join(why)}")
        if rates:
            notes.append(f"{name}: lifetime values not comparable ({rates})")
    if ((table["diff"] == table["diff"]) & (table["diff_low"] != table["diff_low"])).any():
        notes.append(NOTE_NO_INTERVAL)
    if (table["diff"] != table["diff"]).any():
        notes.append(NOTE_NO_ACCOUNTS)
    return notes


def summary_table(summary: dict[str, Any]) -> Any:
    """A rich Table: one row per tier and one for the whole portfolio."""
    from rich.table import Table

    cur = summary.get("currency", "EUR")
    conf = percent_label(summary.get("confidence", 0.95))
    title = (f"{summary['scenario']}: {summary['replications']} replications, "
             f"{summary['horizon_months']:g} months, seed {summary['seed']} "
             f"(mean and {conf} interval)")
    t = Table(title=title, title_justify="left")
    t.add_column("tier")
    for col in MEASURE_NAMES.values():
        t.add_column(col, justify="right")

    def row(name: str, s: dict[str, Any], style: str | None = None) -> None:
        t.add_row(name, interval(s["retention"], pct),
                  interval(s["revenue"], lambda v: money(v, cur)),
                  interval(s["profit"], lambda v: money(v, cur)),
                  interval(s["cost_to_serve"], lambda v: money(v, cur)),
                  interval(s["clv"], lambda v: money(v, cur)), style=style)

    for tier, s in summary["by_tier"].items():
        row(tier, s)
    row(ALL_ACCOUNTS, summary, style="bold")
    notes = summary_notes(summary)
    if notes:
        t.caption, t.caption_justify = "; ".join(notes), "left"
    return t


#: what an ``n/a`` in a table means (run, compare, the report)
NOTE_NO_ACCOUNTS = "n/a: no accounts of the tier at the start (a share of none is undefined)"
#: what a value shown without its interval means
NOTE_NO_INTERVAL = "1 replication: no interval"


def summary_notes(summary: dict[str, Any]) -> list[str]:
    """The notes under a summary table (terminal and report): what its ``n/a`` and its
    values without an interval mean."""
    notes = []
    if any(_missing(s["retention"]["mean"]) for s in summary["by_tier"].values()):
        notes.append(NOTE_NO_ACCOUNTS)
    if summary.get("replications", 2) < 2:
        notes.append(NOTE_NO_INTERVAL)
    return notes


def tier_table(rows: list[dict[str, Any]], currency: str = "EUR") -> Any:
    from rich.table import Table

    t = Table(title="Tiers of the starting portfolio", title_justify="left")
    # revenue is the yearly rate at the start (wallet x share), not a horizon's total as in
    # the run tables: said in the header
    for col in ("tier", "accounts", "share", "revenue / year", "revenue share", "margin share",
                "protect", "manage risk", "cultivate", "reduce"):
        t.add_column(col, justify="left" if col == "tier" else "right")
    for r in rows:
        t.add_row(r["tier"], f"{r['accounts']:,}", pct(r["account_share"]),
                  money(r["revenue"], currency), pct(r["revenue_share"]),
                  pct(r["gross_profit_share"]), str(r["protect"]), str(r["manage_risk"]),
                  str(r["cultivate"]), str(r["reduce"]))
    return t

