"""Charts a strategist reads: each function takes results tables (one set per run, keyed by
the run's label) and returns a matplotlib Figure drawn with the Agg canvas (no pyplot, no
global state). Several runs are drawn side by side: one line (or bar group) per scenario.

Bands and error bars are Student-t intervals of the mean over replications, at the
``confidence`` the caller passes (the reference run's, as in the tables and in ``compare``).
Money is drawn in the ``currency`` the caller passes: runs in different currencies are not
drawn on one axis (the callers refuse them first, :func:`kamsim.compare.one_currency`).

Runs may have different tier sets (rule sets of their own): tiers are matched by name, never by
position, and a run without a tier draws nothing in that tier's panel. Time is in months on
every axis, and "per month" is per month whatever the run's period (a weekly run's sums per
period are divided by its period's length in months).

Every text is drawn as written (:data:`kamsim.drawtext.AS_WRITTEN`): scenario, tier, stage and
resource names are the user's, and "Q3 $\\alpha$ plan" is a name, not math (matplotlib read it
as math text: drawn as a Greek letter, or the chart failed on an unknown symbol).

matplotlib and pandas are imported inside the functions so importing kamsim stays fast."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kamsim.drawtext import as_written
from kamsim.report.terminal import ALL_ACCOUNTS, is_number
from kamsim.stats import t_two_sided

__all__ = ["CHARTS", "caption", "retention", "profit_over_time", "whale_curve", "cost_vs_profit",
           "churn_causes", "stage_mix", "stage_flows", "utilisation", "all_charts",
           "stage_flow_table", "inputs_table"]

Frames = Mapping[str, Any]  # table name -> DataFrame, for one run

_COLORS = ("#1f5f99", "#d9731a", "#2e8b57", "#9b3b8c", "#b8860b", "#5f6f7f")
_TIER_COLORS = ("#1f5f99", "#6fa8dc", "#b7c9d9", "#d9731a", "#f0b27a", "#888888")
_RESOURCES = ("account_managers", "executives", "specialists", "support")
FLOW_KINDS = ("up", "down", "lost", "new")
_BROKEN_COLOR = "#a8322d"  # the broken-down ("uncoupled") stage's band: apart from the ladder's


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)


def _money_axis(ax: Any, currency: str = "EUR") -> None:
    from matplotlib.ticker import FuncFormatter

    from kamsim.report.terminal import money

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: money(v, currency)))


def _pct_axis(ax: Any, axis: str = "y") -> None:
    """Shares as percents, each tick with the decimals it has (a 97.5% tick is not "98%")."""
    from matplotlib.ticker import FuncFormatter

    from kamsim.report.terminal import percent_label

    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _p: percent_label(v)))


def _mean_band(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, ...]:
    """Mean over axis 0 and its t-interval (the mean itself with one replication).

    NaN is a value that is undefined (a share of a tier with no starting accounts): it is
    left out, as in the summary's tables, and where no replication defines it the mean is
    NaN too, which matplotlib leaves undrawn rather than drawing a 0% nobody measured."""
    nan = np.isnan(values)
    if not nan.any():
        mean = values.mean(axis=0)
        n = values.shape[0]
        if n < 2:
            return mean, mean, mean
        half = t_two_sided(confidence, n - 1) * values.std(axis=0, ddof=1) / math.sqrt(n)
        return mean, mean - half, mean + half
    defined = (~nan).sum(axis=0)
    clean = np.where(nan, 0.0, values)
    mean = np.divide(clean.sum(axis=0), defined, out=np.full(defined.shape, np.nan),
                     where=defined > 0)
    sq = np.where(nan, 0.0, (values - mean) ** 2).sum(axis=0)
    lo, hi = mean.copy(), mean.copy()
    for n in np.unique(defined[defined >= 2]):
        at = defined == n
        half = t_two_sided(confidence, n - 1) * np.sqrt(sq[at] / (n - 1)) / math.sqrt(n)
        lo[at], hi[at] = mean[at] - half, mean[at] + half
    return mean, lo, hi


def _tiers(frames: Frames) -> list[str]:
    # the timeseries holds the tiers in rule order within each period
    return list(dict.fromkeys(frames["timeseries"]["tier"]))


def _all_tiers(runs: Mapping[str, Frames]) -> list[str]:
    """Every run's tiers by name: the reference's in its rule order, then those only later
    runs have (a run with a rule set of its own may name other tiers)."""
    return list(dict.fromkeys(t for f in runs.values() for t in _tiers(f)))


def _dt(ts: Any) -> float:
    """Months per period of a run (1 for months, 12/52 for weeks), from its timeseries;
    1 for a run of a single period, where the spacing cannot be seen."""
    months = np.sort(ts["month"].unique())
    return float(months[1] - months[0]) if months.shape[0] > 1 else 1.0


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 2) if n > 1 else 1
    return math.ceil(n / cols), cols


def _legend(fig: Any, ax: Any, runs: Sequence[str]) -> None:
    if len(runs) > 1:
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(runs), 4),
                   frameon=False)


def _lines_by_tier(runs: Mapping[str, Frames], values: dict[str, np.ndarray],
                   months: dict[str, np.ndarray], title: str, money: bool,
                   confidence: float = 0.95, currency: str = "EUR",
                   missing: str = "") -> Any:
    """One panel per tier (and one for all accounts); one line with a band per run.
    ``values[run]`` is (replications, periods, 1 + the run's own tiers), column 0 all
    accounts; a panel takes each run's column of its tier's name, and a run without that
    tier draws nothing in it. A run whose values are undefined (NaN) all along draws nothing
    either, and the panel says so: ``missing`` (with {tier}) tells why."""
    panels = [ALL_ACCOUNTS, *_all_tiers(runs)]
    rows, cols = _grid(len(panels))
    fig = _figure(10, 3.0 * rows + 0.6)
    fig.suptitle(title, x=0.02, ha="left", fontsize=12)
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False).ravel()
    for k, panel in enumerate(panels):
        ax = axes[k]
        _style(ax)
        undrawn = []
        for i, name in enumerate(runs):
            own = _tiers(runs[name])
            if k > 0 and panel not in own:
                continue  # not a tier of this run's rules
            mean, lo, hi = _mean_band(values[name][:, :, 0 if k == 0 else own.index(panel) + 1],
                                      confidence)
            if np.isnan(mean).all():
                undrawn.append(name)
                continue
            color = _COLORS[i % len(_COLORS)]
            ax.plot(months[name], mean, color=color, linewidth=1.8, label=name)
            if not money:  # shares: the interval of a few replications may leave [0, 1]
                lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
            ax.fill_between(months[name], lo, hi, color=color, alpha=0.18, linewidth=0)
        ax.set_title(panel, loc="left", fontsize=10)
        if undrawn and missing:
            who = "" if len(runs) == 1 else f" in {', '.join(undrawn)}"
            ax.text(0.02, 0.04, "n/a: " + missing.format(tier=panel) + who,
                    transform=ax.transAxes, ha="left", va="bottom", fontsize=9,
                    color="#5f6b7a")
        if money:
            _money_axis(ax, currency)
        else:
            _pct_axis(ax)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-cols:]:
        ax.set_xlabel("month")
    _legend(fig, axes[0], list(runs))
    return fig


@as_written
def retention(runs: Mapping[str, Frames], confidence: float = 0.95) -> Any:
    """Share of the starting accounts still active at the end of each month, by starting
    tier, from the ``accounts`` table (``churn_period`` < 0: never churned). A tier with no
    starting accounts has no share (docs/model.md, degenerate cases): no line, and its panel
    says n/a, where a line from 100% to 0% would read as every account lost at once."""
    values, months = {}, {}
    for name, f in runs.items():
        ts, acc = f["timeseries"], f["accounts"]
        tiers = _tiers(f)
        periods = int(ts["period"].max()) + 1
        dt = _dt(ts)
        start = acc[acc["starting"].astype(bool)]
        reps = np.sort(start["replication"].unique())
        r_ix = np.searchsorted(reps, start["replication"].to_numpy())
        t_ix = start["initial_tier"].map({t: i + 1 for i, t in enumerate(tiers)}).to_numpy(int)
        churn = start["churn_period"].to_numpy(int)
        churn = np.where(churn < 0, periods, churn)  # never churned: past the horizon
        lost = np.zeros((len(reps), periods + 1, len(tiers) + 1))
        np.add.at(lost, (r_ix, churn, t_ix), 1.0)
        lost[:, :, 0] = lost[:, :, 1:].sum(axis=2)
        n = np.zeros((len(reps), len(tiers) + 1))
        np.add.at(n, (r_ix, t_ix), 1.0)
        n[:, 0] = n[:, 1:].sum(axis=1)
        alive = n[:, None, :] - np.cumsum(lost[:, :periods, :], axis=1)
        # a share of no accounts is undefined (NaN), not 0
        share = np.divide(alive, n[:, None, :], out=np.full_like(alive, np.nan),
                          where=n[:, None, :] > 0)
        at_start = np.where(n > 0, 1.0, np.nan)[:, None, :]
        values[name] = np.concatenate([at_start, share], axis=1)
        months[name] = np.arange(periods + 1) * dt
    return _lines_by_tier(runs, values, months, "Retention of the starting accounts",
                          money=False, confidence=confidence,
                          missing="no {tier} accounts at the start")


def _per_period(ts: Any, column: str, tiers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(replications, periods, 1 + tiers) of a timeseries column per month (a weekly run's
    sums per period over its period's length in months), and the months. The tier is the
    timeseries': the one the accounts were in during the period."""
    piv = ts.pivot_table(index=["replication", "period"], columns="tier", values=column,
                         aggfunc="sum").reindex(columns=tiers).fillna(0.0).sort_index()
    reps = piv.index.get_level_values(0).unique()
    arr = piv.to_numpy().reshape(len(reps), -1, len(tiers))
    arr = np.concatenate([arr.sum(axis=2, keepdims=True), arr], axis=2)
    dt = _dt(ts)
    if dt != 1.0:  # (monthly runs keep their sums untouched)
        arr = arr / dt
    months = ts.groupby("period")["month"].first().sort_index().to_numpy()
    return arr, months


@as_written
def profit_over_time(runs: Mapping[str, Frames], confidence: float = 0.95,
                     currency: str = "EUR") -> Any:
    """Profit per month, mean over replications with its interval, by the tier accounts
    were in during that month: the only per-month split by tier the results keep (the
    timeseries is by current tier; the accounts table, by starting tier, holds totals over
    the horizon only). Re-tiering moves accounts between these lines, so a tier's line does
    not sum to the summary table's tier total; the "all accounts" panel does."""
    values, months = {}, {}
    for name, f in runs.items():
        values[name], months[name] = _per_period(f["timeseries"], "profit", _tiers(f))
    return _lines_by_tier(runs, values, months,
                          "Profit per month, by the tier accounts were in that month", money=True,
                          confidence=confidence, currency=currency)


@as_written
def whale_curve(runs: Mapping[str, Frames], points: int = 201) -> Any:
    """Cumulative share of total profit against share of accounts, most profitable first;
    the curve rises above 100% when some accounts lose money. The replications are
    pooled on a common grid of account shares: the mean cumulative profit over the mean
    total, the curve of the average future. (Averaging each replication's own shares let
    one future that barely broke even, its total near 0, blow the curve up to thousands of
    percent.)

    A run whose total profit is not positive in every replication has no curve, and the
    chart says so: a share of a loss (or of nothing) turns the curve upside down, and a
    pooled curve drawn over futures of either sign would hide the ones that lost money."""
    fig = _figure(10, 4.2)
    ax = fig.add_subplot()
    _style(ax)
    grid = np.linspace(0.0, 1.0, points)
    undrawn = []
    for i, (name, f) in enumerate(runs.items()):
        acc = f["accounts"]
        curves, totals, losing = [], [], 0
        for _rep, g in acc.groupby("replication"):
            p = np.sort(g["profit"].to_numpy(float))[::-1]
            total = p.sum()
            if p.size == 0:
                continue
            if not total > 0:
                losing += 1
                continue
            x = np.arange(p.size + 1) / p.size
            curves.append(np.interp(grid, x, np.r_[0.0, np.cumsum(p)]))
            totals.append(total)
        if losing:
            who = "" if len(runs) == 1 else f" for {name}"
            undrawn.append(f"no curve{who}: total profit was not positive in {losing} of "
                           f"{losing + len(curves)} simulated futures")
            continue
        if not curves:
            continue
        mean = np.mean(curves, axis=0) / np.mean(totals)  # sums over sums: pooled
        color = _COLORS[i % len(_COLORS)]
        ax.plot(grid, mean, color=color, linewidth=1.8, label=name)
        k = int(np.argmax(mean))
        ax.annotate(f"peak {mean[k]:.0%} at {grid[k]:.0%} of accounts", (grid[k], mean[k]),
                    textcoords="offset points", xytext=(8, 6 + 14 * i), fontsize=8,
                    color=color)
    if undrawn:
        ax.text(0.02, 0.04, "; ".join(undrawn) + " (a share of a loss means nothing)",
                transform=ax.transAxes, ha="left", va="bottom", fontsize=9, color="#5f6b7a",
                wrap=True)
    ax.axhline(1.0, color="#555555", linewidth=0.8, linestyle="--")
    ax.set_xlabel("share of accounts, most profitable first")
    ax.set_ylabel("cumulative share of total profit")
    _pct_axis(ax)
    _pct_axis(ax, "x")
    fig.suptitle("Where the profit comes from (whale curve)", x=0.02, ha="left", fontsize=12)
    if len(runs) > 1:
        ax.legend(frameon=False)
    return fig


def _tier_totals(acc: Any, column: str, tiers: list[str]) -> np.ndarray:
    """(replications, tiers) totals of an accounts column by starting tier."""
    piv = acc.pivot_table(index="replication", columns="initial_tier", values=column,
                          aggfunc="sum").reindex(columns=tiers).fillna(0.0)
    return piv.to_numpy()


@as_written
def cost_vs_profit(runs: Mapping[str, Frames], confidence: float = 0.95,
                   currency: str = "EUR") -> Any:
    """Cost to serve and profit over the horizon per starting tier, one bar per run; a run
    without a tier of that name has no bar there (not a bar of 0)."""
    tiers = _all_tiers(runs)
    fig = _figure(10, 3.8)
    axes = fig.subplots(1, 2)
    width = 0.8 / len(runs)
    x = np.arange(len(tiers))
    for ax, column, title in zip(axes, ("cost_to_serve", "profit"),
                                 ("Cost to serve", "Profit"), strict=True):
        _style(ax)
        for i, (name, f) in enumerate(runs.items()):
            own = _tiers(f)
            at = [k for k, t in enumerate(tiers) if t in own]  # the run's tiers, by name
            mean, lo, hi = _mean_band(_tier_totals(f["accounts"], column,
                                                   [tiers[k] for k in at]), confidence)
            ax.bar(x[at] + (i - (len(runs) - 1) / 2) * width, mean, width * 0.92,
                   yerr=[mean - lo, hi - mean], capsize=3, label=name,
                   color=_COLORS[i % len(_COLORS)], error_kw={"linewidth": 0.8})
        ax.set_xticks(x, tiers)
        ax.set_title(f"{title} over the horizon", loc="left", fontsize=10)
        ax.axhline(0, color="#555555", linewidth=0.6)
        _money_axis(ax, currency)
    fig.suptitle("Cost to serve against profit, by starting tier", x=0.02, ha="left",
                 fontsize=12)
    _legend(fig, axes[0], list(runs))
    return fig


@as_written
def churn_causes(runs: Mapping[str, Frames]) -> Any:
    """Accounts lost per replication by cause, largest first in each panel by that run's
    own sizes (a panel ordered by the runs' sum put a run's largest cause anywhere),
    stacked by the tier they were in when lost (the churn table's: not the starting tier
    the summary groups by); one panel per run. Every panel lists every run's causes (one a
    run never saw at 0, last). A tier has the same colour in every panel, by name (runs may
    have different tier sets)."""
    every = _all_tiers(runs)
    fig = _figure(10, 1.0 + 2.8 * len(runs))
    axes = np.atleast_1d(fig.subplots(len(runs), 1, sharex=True, squeeze=False).ravel())
    # accounts lost, cause (as first seen) x tier, and replications, of each run with any
    pivots = {name: (f["churn"].pivot_table(index="cause", columns="tier", values="accounts",
                                            aggfunc="sum", sort=False),
                     max(int(f["timeseries"]["replication"].nunique()), 1))
              for name, f in runs.items() if len(f["churn"])}
    # causes by size: accounts lost per replication, summed over the runs (each cause once:
    # a list of every churn row's cause drew one bar per row, a 1 MB SVG out of order)
    sizes: dict[str, float] = {}
    for piv, n_reps in pivots.values():
        for c, v in piv.sum(axis=1).items():
            sizes[c] = sizes.get(c, 0.0) + float(v) / n_reps
    causes_all = sorted(sizes, key=lambda c: -sizes[c])  # (stable: ties as first seen)
    for ax, (name, f) in zip(axes, runs.items(), strict=True):
        _style(ax)
        tiers = _tiers(f)
        causes = causes_all
        by_tier = None
        if name in pivots:
            piv, n_reps = pivots[name]
            own = piv.sum(axis=1)
            # this run's largest first; its ties and the causes it never saw in the runs'
            # combined order (sorted is stable)
            causes = sorted(causes_all, key=lambda c: -float(own.get(c, 0.0)))
            by_tier = piv.reindex(index=causes, columns=tiers).fillna(0.0) / n_reps
        left = np.zeros(len(causes))
        for tier in tiers:
            counts = (by_tier[tier].to_numpy() if by_tier is not None
                      else np.zeros(len(causes)))
            ax.barh([c.replace("_", " ") for c in causes], counts, left=left,
                    color=_TIER_COLORS[every.index(tier) % 6], label=tier)
            left += counts
        ax.set_title(name, loc="left", fontsize=10)
        ax.invert_yaxis()
    axes[-1].set_xlabel("accounts lost over the horizon (mean per replication)")
    legend: dict[str, Any] = {}  # every tier once, whichever run has it
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(lab, h)
    fig.legend([legend[t] for t in every if t in legend], [t for t in every if t in legend],
               loc="outside lower center", ncols=6, frameon=False, title="tier when lost",
               title_fontsize=9)
    fig.suptitle("Why accounts were lost", x=0.02, ha="left", fontsize=12)
    return fig


@as_written
def stage_mix(runs: Mapping[str, Frames], stages: Mapping[str, Sequence[str]]) -> Any:
    """Active accounts per relationship stage over time (all tiers, mean over
    replications), as a stacked area; one panel per run, in that run's own stages
    (``stages[run]``: the ladder bottom to top, then the broken-down stage, as
    :func:`kamsim.report.runs.stage_order` or :func:`all_charts` gives them). The
    broken-down stage is the last band, in a colour of its own. Runs
    whose stages differ (rule sets of their own) each have their own legend; else one is
    shared."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    orders = {name: list(stages[name]) for name in runs}
    shared = len({tuple(o) for o in orders.values()}) == 1
    fig = _figure(10, 1.0 + 2.8 * len(runs))
    axes = fig.subplots(len(runs), 1, sharex=True, squeeze=False).ravel()
    for ax, (name, f) in zip(axes, runs.items(), strict=True):
        mix = f["stage_mix"]
        order = orders[name]
        n_reps = max(int(mix["replication"].nunique()), 1)
        piv = (mix.pivot_table(index="month", columns="stage", values="accounts",
                               aggfunc="sum").reindex(columns=order).fillna(0.0) / n_reps)
        ladder = len(order) - 1
        colors = [cmap(0.1 + 0.8 * i / max(ladder - 1, 1)) for i in range(ladder)]
        ax.stackplot(piv.index.to_numpy(), piv.to_numpy().T, labels=order,
                     colors=[*colors, _BROKEN_COLOR][:len(order)], alpha=0.9)
        _style(ax)
        ax.set_title(name, loc="left", fontsize=10)
        ax.set_ylabel("accounts")
        if not shared:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    axes[-1].set_xlabel("month")
    if shared:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6),
                   frameon=False)
    fig.suptitle("Relationship stages over time", x=0.02, ha="left", fontsize=12)
    return fig


def _flows(flows: Any, stages: Sequence[str]) -> Any:
    """Stage-flow rows labelled up / down / lost / new (staying put is dropped). ``stages``
    is the ladder bottom to top, then the broken-down stage, which counts as below the
    bottom (as the engine's stage_frac does): a move into it is down, out of it up."""
    pos = {s: i + 1 for i, s in enumerate(stages[:-1])}
    if stages:
        pos[stages[-1]] = 0
    f = flows.copy()
    a = f["from_stage"].map(pos)
    b = f["to_stage"].map(pos)
    kind = np.where(f["from_stage"] == "new", "new",
                    np.where(f["to_stage"] == "lost", "lost",
                             np.where(b > a, "up", np.where(b < a, "down", ""))))
    f["kind"] = kind
    return f[f["kind"] != ""]


def stage_flow_table(runs: Mapping[str, Frames], stages: Mapping[str, Sequence[str]]) -> Any:
    """Accounts moving up, down, lost and new over the horizon, mean per replication, per
    run and tier (the tier accounts were in when they moved, as the stage_flows table has it,
    not the starting tier): columns scenario, tier, up, down, lost, new."""
    import pandas as pd

    rows = []
    for name, f in runs.items():
        fl = _flows(f["stage_flows"], stages[name])
        n_reps = max(int(f["timeseries"]["replication"].nunique()), 1)
        piv = fl.pivot_table(index="tier", columns="kind", values="accounts", aggfunc="sum")
        piv = piv.reindex(index=_tiers(f), columns=list(FLOW_KINDS)).fillna(0.0) / n_reps
        for tier, r in piv.iterrows():
            rows.append({"scenario": name, "tier": tier, **{k: float(r[k]) for k in FLOW_KINDS}})
    return pd.DataFrame(rows, columns=["scenario", "tier", *FLOW_KINDS])


@as_written
def stage_flows(runs: Mapping[str, Frames], stages: Mapping[str, Sequence[str]]) -> Any:
    """Accounts moving up, down, lost and new per month (mean over replications) against
    the month: one line per tier for a single run, one line per run (all tiers) for several.
    A weekly run's counts per period are over its period's length in months."""
    fig = _figure(10, 5.6)
    axes = fig.subplots(2, 2, sharex=True).ravel()
    single = len(runs) == 1
    for k, kind in enumerate(FLOW_KINDS):
        ax = axes[k]
        _style(ax)
        for i, (name, f) in enumerate(runs.items()):
            fl = _flows(f["stage_flows"], stages[name])
            fl = fl[fl["kind"] == kind]
            n_reps = max(int(f["timeseries"]["replication"].nunique()), 1)
            periods = np.arange(int(f["timeseries"]["period"].max()) + 1)
            dt = _dt(f["timeseries"])
            groups = [(t, fl[fl["tier"] == t]) for t in _tiers(f)] if single else [(name, fl)]
            for j, (label, sub) in enumerate(groups):
                y = (sub.groupby("period")["accounts"].sum().reindex(periods).fillna(0.0)
                     .to_numpy() / n_reps)
                if dt != 1.0:  # (monthly runs keep their counts untouched)
                    y = y / dt
                color = _TIER_COLORS[j % 6] if single else _COLORS[i % len(_COLORS)]
                ax.plot(periods * dt, y, color=color, linewidth=1.4, label=label)
        ax.set_title(f"moving {kind}" if kind in ("up", "down") else f"{kind} accounts",
                     loc="left", fontsize=10)
    for ax in axes[2:]:
        ax.set_xlabel("month")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6),
               frameon=False)
    fig.suptitle("Stage flows per month", x=0.02, ha="left", fontsize=12)
    return fig


@as_written
def utilisation(runs: Mapping[str, Frames], confidence: float = 0.95) -> Any:
    """Share of each team's hours in use per month, mean over replications with its
    interval; one panel per resource, one line per run."""
    fig = _figure(10, 5.6)
    axes = fig.subplots(2, 2, sharex=True, sharey=True).ravel()
    for k, res in enumerate(_RESOURCES):
        ax = axes[k]
        _style(ax)
        for i, (name, f) in enumerate(runs.items()):
            u = f["utilisation"]
            u = u[u["resource"] == res]
            piv = u.pivot_table(index="replication", columns="month", values="utilisation",
                                aggfunc="mean").sort_index(axis=1)
            mean, lo, hi = _mean_band(piv.to_numpy(), confidence)
            color = _COLORS[i % len(_COLORS)]
            ax.plot(piv.columns.to_numpy(), mean, color=color, linewidth=1.6, label=name)
            ax.fill_between(piv.columns.to_numpy(), lo, hi, color=color, alpha=0.18,
                            linewidth=0)
        ax.axhline(1.0, color="#555555", linewidth=0.8, linestyle="--")
        ax.set_title(res.replace("_", " "), loc="left", fontsize=10)
        _pct_axis(ax)
    for ax in axes[2:]:
        ax.set_xlabel("month")
    _legend(fig, axes[0], list(runs))
    fig.suptitle("Team utilisation (hours used / hours available)", x=0.02, ha="left",
                 fontsize=12)
    return fig


#: chart name -> (title, how to read it); ``{confidence}`` is the intervals' level ("95%")
#: (:func:`caption` fills it in)
CHARTS = {
    "retention": ("Retention by starting tier",
                  "Each line is the share of the accounts we started with that are still "
                  "customers, by the tier they started in; the band is the {confidence} "
                  "interval over the random futures."),
    "profit_over_time": ("Profit over time by current tier",
                         "Monthly profit after cost to serve, by the tier accounts were in "
                         "that month (re-tiering moves accounts between tiers, so a tier's "
                         "line does not add up to its total in the summary, which goes by "
                         "the tier accounts started in; all accounts does); a higher line "
                         "earns more, the band is the {confidence} interval."),
    "whale_curve": ("Whale curve",
                    "Accounts ranked from most to least profitable: where the curve peaks "
                    "above 100%, the accounts to its right lose money together. The "
                    "simulated futures are pooled: the mean cumulative profit over the mean "
                    "total profit, the curve of the average future. A scenario whose "
                    "portfolio lost money overall in any simulated future has no curve (a "
                    "share of a loss means nothing, and a pooled curve would hide that "
                    "future): the chart says so."),
    "cost_vs_profit": ("Cost to serve against profit",
                       "For each tier, what serving it cost (left) and what it earned "
                       "(right) over the horizon, by starting tier; whiskers are "
                       "{confidence} intervals."),
    "churn_causes": ("Churn causes",
                     "Why accounts left, averaged per random future, largest first in each "
                     "panel; longer bars are the causes to act on. Colours show the tier "
                     "accounts were in "
                     "when lost, not the tier they started in as in the summary (re-tiering "
                     "moves accounts between tiers)."),
    "stage_mix": ("Relationship stages over time",
                  "How many active accounts sit at each stage of the relationship, the "
                  "ladder from the bottom up and, on top in red, the relationships that "
                  "broke down; growth of the upper ladder bands means relationships are "
                  "deepening."),
    "stage_flows": ("Stage flows",
                    "Accounts per month moving up or down the relationship ladder (into "
                    "the broken-down stage is down, out of it up), lost, and newly won; the "
                    "table below totals them by the tier accounts were in when they moved, "
                    "not the tier they started in as in the summary."),
    "utilisation": ("Team utilisation",
                    "Share of each team's available hours in use; at the dashed 100% line "
                    "the team is fully booked and some accounts get less than planned; the "
                    "band is the {confidence} interval."),
}


def caption(name: str, confidence: float = 0.95) -> tuple[str, str]:
    """Title and how-to-read of chart ``name``, its intervals at ``confidence``."""
    title, how = CHARTS[name]
    from kamsim.report.terminal import percent_label

    return title, how.format(confidence=percent_label(confidence))


def all_charts(runs: Mapping[str, Frames], stages: Mapping[str, Sequence[str]] | None = None,
               *, confidence: float = 0.95, currency: str = "EUR") -> dict[str, Any]:
    """Every chart of :data:`CHARTS` for the runs (label -> tables), in that order.
    ``stages`` gives each run's stages: its ladder bottom to top, then its broken-down stage
    (default: as first seen in ``stage_mix``, which is that order);
    intervals are at ``confidence`` and money is in ``currency`` (the reference run's: the
    summary tables' and ``compare``'s)."""
    if not runs:
        raise ValueError("all_charts needs at least one run")
    stages = dict(stages or {})
    for name, f in runs.items():
        stages.setdefault(name, list(dict.fromkeys(f["stage_mix"]["stage"])))
    return {
        "retention": retention(runs, confidence),
        "profit_over_time": profit_over_time(runs, confidence, currency),
        "whale_curve": whale_curve(runs),
        "cost_vs_profit": cost_vs_profit(runs, confidence, currency),
        "churn_causes": churn_causes(runs),
        "stage_mix": stage_mix(runs, stages),
        "stage_flows": stage_flows(runs, stages),
        "utilisation": utilisation(runs, confidence),
    }


def _fmt(value: Any, spec: str = "g") -> str:
    """``value`` in ``spec``, or as text if it is not a number (a results folder's resolved
    scenario is the user's file: the report shows what it says rather than fail on it)."""
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _file_name(path: Any) -> str:
    """The name of a file a resolved scenario names (its last path part), as written if it is
    no text."""
    return path.replace("\\", "/").rsplit("/", 1)[-1] if isinstance(path, str) else str(path)


#: a file one run has and another has not (its row is empty in that run's column)
NO_FILE = "—"


def inputs_table(resolved: Mapping[str, dict[str, Any]],
                 summaries: Mapping[str, dict[str, Any]] | None = None) -> Any:
    """The inputs of each run, one column per run: strategy, capacity, portfolio, horizon,
    replications and seed (as run), and a short hash of every rule file and data file
    (an imported portfolio, a contact list). Runs of rule files of other names have a row
    per file, empty (:data:`NO_FILE`) in the columns of runs without it: a file one run
    lacks is no figure (pandas wrote it "nan")."""
    import pandas as pd

    from kamsim.report.terminal import money

    cols = {}
    files: dict[str, None] = {}  # the file rows in order: every run's rule files, then data
    for name, res in resolved.items():
        sc = res.get("scenario", {})
        summ = (summaries or {}).get(name, {})
        strat = sc.get("strategy", {}) or {}
        cap = sc.get("capacity", {}) or {}
        sup = cap.get("support", {}) or {}
        port = sc.get("portfolio", {}) or {}
        imported = port.get("import") if isinstance(port.get("import"), dict) else None
        size = (f"{_fmt(port['generate'].get('accounts'), ',')} generated accounts"
                if isinstance(port.get("generate"), dict)
                else f"imported from {_file_name(imported.get('path'))}" if imported
                else str(port.get("file") or port.get("accounts") or "from file"))
        budget = cap.get("budget_per_year")
        detail = ", ".join(f"{k} {v}" for k, v in strat.items()
                           if k != "name" and v is not None)
        col = {
            "strategy": f"{strat.get('name', '?')}" + (f" ({detail})" if detail else ""),
            "account managers": f"{_fmt(cap.get('account_managers', 0))} × "
                                f"{_fmt(cap.get('am_hours_per_month', 0))} h/month",
            "executives": f"{_fmt(cap.get('executives', 0))} × "
                          f"{_fmt(cap.get('exec_hours_per_month', 0))} h/month",
            "specialists": f"{_fmt(cap.get('specialists', 0))} × "
                           f"{_fmt(cap.get('specialist_hours_per_month', 0))} h/month",
            "support": f"{sup.get('agents', 0)} agents × {_fmt(sup.get('hours_per_month', 0))} h",
            # money as every table writes it (a number of another type as written)
            "budget per year": ("not limited" if not budget
                                else money(budget, str(summ.get("currency", "EUR")))
                                if is_number(budget)
                                else str(budget)),
            "portfolio": size,
            "horizon": f"{sc.get('horizon_months', '?')} months",
            "replications": str(summ.get("replications", sc.get("replications", "?"))),
            "seed": str(summ.get("seed", sc.get("seed", "?"))),
            "shocks": str(len(sc.get("shocks") or [])),
        }
        # the portfolio's and the contacts' CSV are hashed with the rule files: data files
        data = {_file_name(p) for p in (imported.get("path") if imported else None,
                                        sc.get("contacts")) if p}
        for path, digest in sorted((res.get("rule_hashes") or {}).items()):
            file = _file_name(path)
            row = f"{'data' if file in data else 'rules'}: {file}"
            col[row] = str(digest)[:12]
            files[row] = None
        cols[name] = col
    fixed = [r for r in next(iter(cols.values()), {}) if r not in files]
    rows = [*fixed, *sorted(files, key=lambda r: r.startswith("data: "))]  # (stable)
    return pd.DataFrame({name: [col.get(r, NO_FILE) for r in rows] for name, col in cols.items()},
                        index=rows)
