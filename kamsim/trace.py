"""The story of one account, month by month, in sentences a class can follow.

:func:`trace` plays one replication of a scenario with one account in focus (the engine
records its state every period) and returns a :class:`Trace`. ``Trace.sentences()`` narrates
what happened: the start, tier and stage changes (with the rule that moved the stage), service
shortfalls, complaints, competitor offers, key-person departures, trust moves, champions and
red flags, a yearly money line and the end. Quiet months are skipped. The same scenario, seed
and replication always give the same text.

* The opening is the account at the start of the run, before month 0's events (as ``kamsim dmu
  show`` shows it without ``--month``); what happens in month 0 follows as events, like any
  month's, after "then, during month 0:".
* A service shortfall is the contact delivered against what the account's own tier asks for
  (its service ratio), and says whose it is: the strategy's when it offers a lower level than
  the tier's (``equal``), the team's when it delivered less than was asked, or both.
* Attitudes and coverage are told by the rule of ``kamsim dmu show``'s labels: the nearest
  level, "almost a supporter" ("almost briefly covered") when short of it, so that nobody
  called a supporter (briefly covered) falls short of what kamsim.dmu.metrics counts a
  champion (a covered economic buyer, a thread) by.
* Trust is told when it has moved ``TRUST_STEP`` since it was last told (or since the
  opening): over the month ("trust rose 0.55 → 0.61", from its start, the end of the month
  before) or, when the move added up over several months, over them ("trust rose 0.55 → 0.61
  over months 2-4", from the start of month 2). No value is told as a month's start that was
  not; the event's ``before`` is always the trust at the month's start.
* The yearly money lines cover every month, the year of a loss and a last part-year included,
  so they add up to the account's total.
* Only accounts of the starting portfolio can be followed: whether and when an account is won
  during the run (and so what it is) depends on the replication.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kamsim.dmu.arrays import attitude_label, coverage_label
from kamsim.dmu.metrics import FLAG_TEXT, KEY_INFLUENCE, NEWCOMER_MONTHS
from kamsim.spec.load import ScenarioSpec, load_scenario

__all__ = ["Trace", "Moment", "trace", "CAUSE_TEXT", "ROLE_TEXT", "TRUST_STEP",
           "SERVICE_SHORT"]

#: a move of trust at least this large since it was last told is narrated
TRUST_STEP = 0.05
#: a service ratio below this is "short" (a tenth of the asked contact missing)
SERVICE_SHORT = 0.9
_EPS = 1e-9  # as kamsim.dmu.arrays.EPS: the slack of every comparison with a level
_COVERED = 1.0 / 3.0 - _EPS  # "brief" or better
#: each attitude and coverage level (kamsim.dmu.arrays' labels) in a sentence's words
_ATT_WORDS = {"enemy": "an enemy", "non_supporter": "a non-supporter", "neutral": "neutral",
              "supporter": "a supporter", "mentor": "a mentor"}
_COV_WORDS = {"none": "not covered", "brief": "briefly covered",
              "multiple": "covered by several contacts", "in_depth": "covered in depth"}

#: the seven causes of key-account loss (domain.md section 6), in words
CAUSE_TEXT = {
    "strategy_change": "the account's own strategy changed (it left the line)",
    "supplier_consolidation": "it consolidated its suppliers and dropped us",
    "unresolved_complaints": "complaints went unresolved and it lost patience",
    "competitor_unfair": "a competitor squeezed us out by unfair means",
    "stronger_competitor": "a stronger competitor won it with a lower price",
    "key_person_or_trust": "trust ran out (a key-person change or a lack of mutual trust)",
    "financial_failure": "it failed financially (bankruptcy)",
}
#: how a role is named in a sentence
ROLE_TEXT = {
    "economic_buyer": "the economic buyer", "technical_evaluator": "the technical evaluator",
    "user": "a user", "purchaser": "the purchaser", "influencer": "the influencer",
    "champion": "the champion",
}
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")


def _words(label: Any, words: dict[str, str]) -> str:
    # "almost supporter" -> "almost a supporter"
    text = str(label[()])
    almost = text.startswith("almost ")
    return ("almost " if almost else "") + words[text.removeprefix("almost ")]


def attitude_words(value: float) -> str:
    """The attitude of ``value`` in words ("a supporter"), by the rule of ``kamsim dmu show``'s
    labels (kamsim.dmu.arrays.attitude_label): the nearest level, "almost a supporter" when
    short of a level off neutral, so that nobody the story calls a supporter (a mentor, a
    non-supporter) fails the threshold kamsim.dmu.metrics counts a champion (a mentor, a
    hostile person) by."""
    return _words(attitude_label(value), _ATT_WORDS)


def coverage_words(value: float) -> str:
    """The coverage of ``value`` in words ("briefly covered"), by the rule of the labels
    (kamsim.dmu.arrays.coverage_label): "almost briefly covered" is short of a brief contact,
    so not a covered economic buyer or a thread."""
    return _words(coverage_label(value), _COV_WORDS)


def _role(role: str) -> str:
    return ROLE_TEXT.get(role, "the " + role.replace("_", " "))


def _num(x: float) -> str:
    return f"{x:.2f}"


def _value(x: float | bool) -> str:
    if isinstance(x, bool):
        return "yes" if x else "no"
    return f"{x:g}" if float(x).is_integer() else _num(x)


def _a(word: str) -> str:
    vowel = word[:1] in "aeio" or (word[:1] == "u" and not word.startswith("us"))
    return ("an " if vowel else "a ") + word


def _money(x: float, currency: str) -> str:
    return f"{currency} {x:,.0f}"


def _hours(x: float) -> str:
    # (rounded first: the tier's need and the level asked are the same sums in another
    # order, 3.7499999 and 3.75 must both read 3.8)
    return f"{round(x, 9):.1f}"


def _month(m: float) -> str:
    return f"{m:g}"


def _is_champion(p: dict[str, Any]) -> bool:
    """A supportive champion or a mentor of any role (as kamsim.dmu.metrics counts one)."""
    return p["attitude"] >= 1.0 - 1e-9 or (p["role"] == "champion"
                                            and p["attitude"] >= 0.5 - 1e-9)


def _flags(rec: dict[str, Any]) -> set[str]:
    """The decision unit's red flags, read off one record (as kamsim.dmu.metrics sets them)."""
    people = rec.get("people", [])
    key = [p for p in people if p["influence"] >= KEY_INFLUENCE - 1e-9]
    out = set()
    if not rec.get("champion", False):
        out.add("no_champion")
    if not rec.get("dm_covered", False):
        out.add("eb_uncovered")
    if any(p["attitude"] <= -0.5 + 1e-9 for p in key):
        out.add("hostile_influencer")
    if any(p["months_in_post"] < NEWCOMER_MONTHS for p in key):
        out.add("newcomer_in_key_role")
    if rec.get("multithreading", 0.0) <= 1.0:
        out.add("single_threaded")
    return out


@dataclass(frozen=True)
class Moment:
    """One narrated month: what happened (``events``, plain data), the state at its end and
    the sentence."""

    period: int
    month: float
    events: list[dict[str, Any]]
    state: dict[str, Any]
    sentence: str


@dataclass
class Trace:
    """Everything recorded about one account in one replication, and its narration.

    ``records`` are the engine's per-period records (kamsim.engine.step._trace); ``rules``
    holds each stage's up/down conditions so a stage change can be explained."""

    scenario: str
    account: str
    seed: int
    replication: int
    records: list[dict[str, Any]]
    stages: tuple[str, ...]
    rules: dict[str, dict[str, str | None]] = field(default_factory=dict)
    uncoupled: str = "uncoupled"
    currency: str = "EUR"
    horizon_months: float = 0.0
    dt: float = 1.0
    strategy: str = "tiered"

    # ------------------------------------------------------------------ narration

    def timeline(self) -> list[Moment]:
        """Every narrated month, in order (quiet months are left out)."""
        out: list[Moment] = []
        short_anchor: tuple[float, str] | None = None
        prev: dict[str, Any] | None = None
        year_rev = year_profit = 0.0
        year_first: float | None = None
        for i, rec in enumerate(self.records):
            events: list[dict[str, Any]] = []
            if prev is None:
                # the opening is the account before the month's events; they follow as
                # events, measured against it
                prev = _start_state(rec)
                events.append(self._start(prev))
                # trust is told when it has moved TRUST_STEP since it was last told (or since
                # the opening): its value then, and the first month it has moved over since
                trust_anchor, trust_since = prev["trust"], rec["month"]
            events += self._tier(prev, rec)
            events += self._stage(prev, rec)
            events += self._departures(prev, rec)
            short_anchor, ev = self._service(rec, short_anchor,
                                             retiered=rec["tier"] != prev["tier"])
            events += ev
            events += self._complaints(rec)
            events += self._offer(rec)
            events += self._champion_and_flags(prev, rec)
            if abs(rec["trust"] - trust_anchor) >= TRUST_STEP - 1e-12:
                # ``before`` is the trust at the month's start (the end of the month before);
                # a move that added up over several months is told over them, from the trust
                # at the start of the first (``since``, ``since_month``): the months between
                # may have shown their own trust values (a stage change's)
                events.append({"kind": "trust", "before": prev["trust"], "after": rec["trust"],
                               "since": trust_anchor, "since_month": trust_since})
                trust_anchor = rec["trust"]
                trust_since = None  # from the next month on
            if trust_since is None and i + 1 < len(self.records):
                trust_since = self.records[i + 1]["month"]
            # the money by year: every month counted once, the year of a loss and a last
            # part-year included, so the yearly lines add up to the account's total
            if year_first is None:
                year_first = rec["month"]
            year_rev += rec["revenue"]
            year_profit += rec["profit"]
            months_done = (rec["period"] + 1) * self.dt
            year_end = abs(months_done / 12.0 - round(months_done / 12.0)) < 1e-9
            last = i == len(self.records) - 1
            if year_end or last:
                events.append({"kind": "year", "year": int(year_first // 12) + 1,
                               "first": year_first, "last": rec["month"],
                               "part": not year_end, "revenue": year_rev,
                               "profit": year_profit})
                year_rev = year_profit = 0.0
                year_first = None
            if last:
                events.append(self._end(rec))
            prev = rec
            if events:
                out.append(Moment(period=rec["period"], month=rec["month"], events=events,
                                  state=_state(rec), sentence=self._sentence(rec, events)))
        return out

    def start(self) -> dict[str, Any]:
        """The account at the start of the run, before month 0's events (what ``kamsim dmu
        show`` shows without ``--month``): tier, stage, trust, the unit's metrics and
        people."""
        return _start_state(self.records[0])

    def opening(self) -> str:
        """The opening of the story alone, without month 0's events: the account at the
        start of the run (the lesson page's "start" position tells it)."""
        return self._words(self._start(self.start()), self.records[0]["month"])

    def sentences(self) -> list[str]:
        """The narrated timeline: one sentence per month in which something happened."""
        return [m.sentence for m in self.timeline()]

    def to_json(self) -> list[dict[str, Any]]:
        """The same timeline as data: ``[{month, period, events, state, sentence}, ...]``."""
        return [{"month": m.month, "period": m.period, "events": m.events, "state": m.state,
                 "sentence": m.sentence} for m in self.timeline()]

    def text(self) -> str:
        """The sentences, one per line (what the golden file holds)."""
        return "".join(s + "\n" for s in self.sentences())

    # ------------------------------------------------------------------ event readers

    def _start(self, start: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "start", "tier": start["tier"], "stage": start["stage"],
                "trust": start["trust"], "coverage": start["coverage"],
                "multithreading": start["multithreading"], "champion": start["champion"],
                "people": [{"id": p["id"], "role": p["role"], "attitude": p["attitude"],
                            "coverage": p["coverage"]} for p in start["people"]]}

    def _tier(self, prev: dict[str, Any], rec: dict[str, Any]) -> list[dict[str, Any]]:
        # re-tiering happens at a period's start: the record's tier is the one it was served as
        if rec["tier"] == prev["tier"]:
            return []
        return [{"kind": "tier", "from": prev["tier"], "to": rec["tier"],
                 "needed": rec.get("hours_needed", rec["hours_asked"])}]

    def _stage(self, prev: dict[str, Any], rec: dict[str, Any]) -> list[dict[str, Any]]:
        before, after = rec["stage_start"], rec["stage"]
        if before == after:
            return []
        if after == self.uncoupled:
            direction, rule = "uncoupled", self.rules.get(self.uncoupled, {}).get("when")
        elif before == self.uncoupled:
            direction, rule = "recovered", self.rules.get(self.uncoupled, {}).get("recover")
        elif self._rank(after) > self._rank(before):
            direction, rule = "up", self.rules.get(before, {}).get("up")
        else:
            direction, rule = "down", self.rules.get(before, {}).get("down")
        values = {}
        for name in dict.fromkeys(_FIELD.findall(rule or "")):
            if name in rec and isinstance(rec[name], int | float | bool):
                values[name] = rec[name]
        return [{"kind": "stage", "direction": direction, "from": before, "to": after,
                 "rule": rule, "values": values}]

    def _rank(self, stage: str) -> int:
        return self.stages.index(stage) if stage in self.stages else -1

    def _departures(self, prev: dict[str, Any], rec: dict[str, Any]
                    ) -> list[dict[str, Any]]:
        # whom else we covered is counted as the month began (``prev``), as the coverage
        # before is: the opening's "we cover N" and "one of N people we cover" agree
        out = []
        for d in rec.get("departed", []):
            covered = d["coverage"] >= _COVERED
            others = sum(1 for p in prev["people"]
                         if p["id"] != d["person"] and p["coverage"] >= _COVERED)
            out.append({"kind": "departure", "person": d["person"], "role": d["role"],
                        "covered": covered, "only_covered": covered and others == 0,
                        "coverage_person": d["coverage"],
                        "coverage_before": rec["coverage_before"],
                        "coverage_after": rec["coverage"], "others_covered": others})
        return out

    def _service(self, rec: dict[str, Any], anchor: tuple[float, str] | None,
                 retiered: bool = False
                 ) -> tuple[tuple[float, str] | None, list[dict[str, Any]]]:
        """A shortfall against the tier's need, and whose it is: the strategy's (it offers a
        lower level than the tier's), the team's (it delivered less than was asked) or both.
        Told again when the ratio moves by a tenth, the reason changes or the tier changed."""
        ratio = rec["service_ratio"]
        needed = rec.get("hours_needed", rec["hours_asked"])
        asked, delivered = rec["hours_asked"], rec["hours_delivered"]
        if needed <= 1e-12:
            return anchor, []
        if ratio < SERVICE_SHORT:
            by_strategy = asked < needed * (1.0 - 1e-9)
            by_team = delivered < asked * (1.0 - 1e-9)
            why = ("both" if by_strategy and by_team else "strategy" if by_strategy
                   else "team")
            if anchor is None or abs(ratio - anchor[0]) >= 0.1 or why != anchor[1] \
                    or retiered:
                return (ratio, why), [{"kind": "service_short", "ratio": ratio, "why": why,
                                       "needed": needed, "asked": asked,
                                       "delivered": delivered, "tier": rec["tier"],
                                       "level": rec.get("level", rec["tier"])}]
            return anchor, []
        if anchor is not None:
            return None, [{"kind": "service_restored", "ratio": ratio}]
        return None, []

    def _complaints(self, rec: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        if rec["complaints_resolved"]:
            out.append({"kind": "complaint", "in_time": True, "count": rec["complaints_resolved"]})
        if rec["complaints_unresolved"]:
            out.append({"kind": "complaint", "in_time": False,
                        "count": rec["complaints_unresolved"]})
        return out

    def _offer(self, rec: dict[str, Any]) -> list[dict[str, Any]]:
        if not rec.get("offer"):
            return []
        return [{"kind": "offer", "gap": rec["offer_gap"], "outcome": rec["offer_outcome"],
                 "share": rec["share"]}]

    def _champion_and_flags(self, prev: dict[str, Any], rec: dict[str, Any]
                            ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if rec["champion"] != prev["champion"]:
            side = rec if rec["champion"] else prev
            who = [p for p in side["people"] if _is_champion(p)]
            person = who[0] if who else None
            now = ({p["id"]: p for p in rec["people"]}.get(person["id"]) if person else None)
            left = person is not None and any(d["person"] == person["id"]
                                              for d in rec.get("departed", []))
            out.append({"kind": "champion", "gained": bool(rec["champion"]),
                        "person": person["id"] if person else None,
                        "role": person["role"] if person else None, "left": left,
                        "attitude": now["attitude"] if now else None})
        new = sorted(_flags(rec) - _flags(prev))
        if new:
            out.append({"kind": "red_flags", "new": new, "count": rec["red_flags"]})
        return out

    def _end(self, rec: dict[str, Any]) -> dict[str, Any]:
        if rec["churned"]:
            return {"kind": "lost", "cause": rec["cause"], "stage": rec["stage_start"],
                    "trust": rec["trust"]}
        return {"kind": "active_at_end", "stage": rec["stage"], "trust": rec["trust"],
                "share": rec["share"], "horizon": self.horizon_months}

    # ------------------------------------------------------------------ words

    def _sentence(self, rec: dict[str, Any], events: list[dict[str, Any]]) -> str:
        parts = [p for p in (self._words(e, rec["month"]) for e in events) if p]
        if events[0]["kind"] == "start" and len(parts) > 1:
            # the opening is the unit before the month; what follows happened during it (an
            # economic buyer "briefly covered" at the start, uncovered by the month's end)
            parts[1] = f"then, during month {_month(rec['month'])}: {parts[1]}"
        return f"month {_month(rec['month'])}: " + "; ".join(parts)

    def _words(self, e: dict[str, Any], month: float) -> str:  # noqa: C901 - one per kind
        k = e["kind"]
        if k == "start":
            covered = [p for p in e["people"] if p["coverage"] >= _COVERED]
            count: dict[str, int] = {}
            for p in e["people"]:
                count[p["role"]] = count.get(p["role"], 0) + 1
            who = ", ".join(
                f"{_role(p['role']) if count[p['role']] == 1 else _a(p['role'].replace('_', ' '))}"
                f" ({attitude_words(p['attitude'])}"
                f", {coverage_words(p['coverage'])})"
                for p in e["people"])
            champ = "with a champion" if e["champion"] else "without a champion"
            opening = (f"{self.account} starts as {_a(e['tier'])} account at the "
                       f"{e['stage']} stage, trust {_num(e['trust'])}, {champ}; ")
            if not e["people"]:  # (a unit template may give a segment 0 people)
                return opening + "its decision unit has no people, so there is no one to cover"
            return (opening + f"its decision unit has {len(e['people'])} people: {who}; "
                    f"we cover {len(covered)} of them (coverage {_num(e['coverage'])}, "
                    f"{e['multithreading']:g} influential "
                    f"thread{'s' if e['multithreading'] != 1 else ''})")
        if k == "stage":
            vals = ", ".join(f"{n} {_value(v)}" for n, v in e["values"].items())
            why = f" ({e['rule']}: {vals})" if e["rule"] and vals else ""
            verb = {"up": "moved up from", "down": "fell back from",
                    # (not "uncoupled:": the rule set names that stage, and `to` says it)
                    "uncoupled": "the relationship broke down from",
                    "recovered": "recovered from"}[e["direction"]]
            return f"{verb} {e['from']} to {e['to']}{why}"
        if k == "departure":
            if e["only_covered"]:
                tag = ", our only covered contact,"
            elif e["covered"]:
                tag = f", one of {e['others_covered'] + 1} people we cover,"
            else:
                tag = ", someone we did not cover,"
            before, after = _num(e["coverage_before"]), _num(e["coverage_after"])
            if float(after) < float(before):
                cov = f"coverage fell from {before} to {after}"
            else:
                cov = f"coverage {before} → {after}" if before != after else f"coverage {after}"
            return (f"{_role(e['role'])} ({e['person']}){tag} left and a neutral newcomer "
                    f"took the post; {cov}")
        if k == "tier":
            return (f"re-tiered from {e['from']} to {e['to']} (its tier now asks for "
                    f"{_hours(e['needed'])} hours of contact this month)")
        if k == "service_short":
            head = (f"received {e['ratio']:.0%} of the contact its tier asks for "
                    f"({_hours(e['delivered'])} of {_hours(e['needed'])} hours)")
            offer = (f"the {self.strategy} strategy offers it only the {e['level']} level "
                     f"({_hours(e['asked'])} hours)")
            if e["why"] == "strategy":
                return (f"{head}: {offer}, all of it delivered: the shortfall is the "
                        f"strategy's choice, not the team's capacity")
            if e["why"] == "both":
                return (f"{head}: {offer}, and the team is stretched: it delivered "
                        f"{_hours(e['delivered'])} of those")
            return f"{head}: the team is stretched"
        if k == "service_restored":
            return f"back to {min(e['ratio'], 1.0):.0%} of the contact its tier asks for"
        if k == "complaint":
            n = e["count"]
            what = "a complaint was" if n == 1 else f"{n} complaints were"
            if e["in_time"]:
                return f"{what} answered in time"
            return f"{what} answered late, past the tier's target"
        if k == "offer":
            head = f"a competitor offered a price {e['gap']:.0%} lower"
            tail = {"stay": "the account stayed",
                    "trim": f"the account moved part of its buying away (our share now "
                            f"{_num(e['share'])})",
                    "defect": "the account defected to the competitor"}.get(
                e["outcome"] or "stay", "")
            return f"{head}; {tail}"
        if k == "champion":
            who = f"{_role(e['role'])} ({e['person']})" if e["person"] else "someone"
            if e["gained"] and e["role"] == "champion":
                return (f"{who} warmed to {attitude_words(e['attitude'] or 0.5)} and now sells "
                        f"for us inside the account")
            if e["gained"]:
                return f"{who} became a mentor who sells for us inside the account"
            if e["left"]:
                return "we no longer have a champion: our champion left"
            if e["attitude"] is not None:
                return (f"we no longer have a champion: {who} cooled to "
                        f"{attitude_words(e['attitude'])}")
            return "we no longer have a champion"
        if k == "red_flags":
            return "red flag: " + "; red flag: ".join(FLAG_TEXT[f] for f in e["new"])
        if k == "trust":
            verb = "rose" if e["after"] > e["since"] else "fell"
            if e["since"] == e["before"]:  # over this month alone
                return f"trust {verb} {_num(e['before'])} → {_num(e['after'])}"
            # (from the month's start alone, a slow drift read "rose 0.93 → 0.93")
            return (f"trust {verb} {_num(e['since'])} → {_num(e['after'])} over months "
                    f"{_month(e['since_month'])}-{_month(month)}")
        if k == "year":
            months = f"months {_month(e['first'])}-{_month(e['last'])}"
            if e["part"]:
                months += ", part of the year"
            return (f"year {e['year']} ({months}): revenue "
                    f"{_money(e['revenue'], self.currency)}, "
                    f"profit {_money(e['profit'], self.currency)}")
        if k == "lost":
            return (f"the account was lost at the {e['stage']} stage: "
                    f"{CAUSE_TEXT.get(e['cause'], str(e['cause']))}")
        if k == "active_at_end":
            return (f"still active at the end, at the {e['stage']} stage, trust "
                    f"{_num(e['trust'])}, share of wallet {_num(e['share'])}")
        return ""


def _start_state(rec: dict[str, Any]) -> dict[str, Any]:
    """The account before the first recorded period's events (the record's ``start``, see
    kamsim.engine.step._trace); a record without one stands for itself."""
    if "start" in rec:
        return dict(rec["start"])
    return {"tier": rec["tier"], "stage": rec["stage_start"], "trust": rec["trust"],
            "coverage": rec["coverage_before"], "multithreading": rec["multithreading"],
            "champion": rec["champion"], "dm_covered": rec["dm_covered"],
            "red_flags": rec["red_flags"], "people": rec["people"]}


def _state(rec: dict[str, Any]) -> dict[str, Any]:
    keys = ("tier", "stage", "trust", "coverage", "sentiment", "multithreading", "champion",
            "dm_covered", "red_flags", "service_ratio", "share", "revenue", "profit")
    return {k: rec[k] for k in keys if k in rec}


def stage_rules(spec: ScenarioSpec) -> tuple[dict[str, dict[str, str | None]], str]:
    """Each stage's up/down condition text, and the uncoupled stage's (``when``,
    ``recover``), keyed by stage name; and the uncoupled stage's name."""
    st = spec.stages
    rules: dict[str, dict[str, str | None]] = {
        s.name: {"up": s.up_when, "down": s.down_when} for s in st.stages}
    rules[st.uncoupled.name] = {"when": st.uncoupled.when, "recover": st.uncoupled.recover_when}
    return rules, st.uncoupled.name


def trace(scenario: ScenarioSpec | str | Path, account: str, *, seed: int | None = None,
          replication: int = 0, overrides: Sequence[str] = ()) -> Trace:
    """Play replication ``replication`` of ``scenario`` (the same random future as replication
    r of ``kamsim run`` with that seed) with ``account`` in focus, and return its
    :class:`Trace`. Raises :class:`~kamsim.errors.RunError` for an account not in the
    starting portfolio (the message gives the id range, and says so for the id of an account
    won during the run) or a negative replication."""
    from kamsim.engine.core import EngineOptions, run_replication
    from kamsim.engine.rng import replication_seeds
    from kamsim.errors import RunError
    from kamsim.experiment import prepared, starting_account

    spec = (scenario if isinstance(scenario, ScenarioSpec)
            else load_scenario(scenario, list(overrides)))
    if seed is not None:  # the scenario's seed, as for kamsim.simulate: the portfolio too
        spec = spec.with_seed(seed)
    sc = spec.scenario
    seed = sc.seed
    if replication < 0:
        raise RunError(f"replication ({replication}) must be 0 or more")
    prep = prepared(spec)
    focus = starting_account(prep, account, sc.name)
    seq = replication_seeds(seed, replication + 1)[replication]
    out = run_replication(prep, seq, replication,
                          EngineOptions(record_events=False, focus=focus))
    rules, uncoupled = stage_rules(spec)
    return Trace(scenario=sc.name, account=account, seed=seed, replication=replication,
                 records=list(out.trace or []), stages=tuple(s.name for s in spec.stages.stages),
                 rules=rules, uncoupled=uncoupled, currency=spec.service.currency,
                 horizon_months=float(sc.horizon_months), dt=out.dt,
                 strategy=sc.strategy.name)
