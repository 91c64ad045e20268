"""The rule expression language: parse, type-check and compile to numpy closures.

User text never reaches Python's code execution: it is parsed with ``ast.parse`` and only a
whitelist of node types is turned into a tree of closures that evaluate over all accounts at
once. Everything not on the whitelist is a located :class:`ExprProblem`. See docs/rules.md.
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from kamsim.errors import Location, Problem
from kamsim.rules import functions as F
from kamsim.rules.functions import FIELD_TYPES, FUNCTION_NAMES, FieldType, infer_length

__all__ = [
    "FieldType",
    "ExprProblem",
    "ExprErrors",
    "Expr",
    "compile_expr",
    "problems_at",
    "infer_length",
    "MAX_SOURCE_CHARS",
    "MAX_DEPTH",
    "FUNCTION_NAMES",
]

MAX_SOURCE_CHARS = 2000
#: Maximum nesting of sub-expressions and of parentheses; keeps every recursion shallow. A
#: chain of one operator after another (``a + b - c + ...``) is one level, however long: the
#: compiler walks it in a loop.
MAX_DEPTH = 50

# `if` is a Python keyword, so `if(` is rewritten to this name of the same length before
# parsing: every column offset stays exact. Only the rewritten places are if(...): an `IF`
# the user wrote is an unknown name like any other.
_IF = "IF"

#: how many closest names an unknown name's message suggests
_SUGGESTED = 5

_GOT = {"number": "a number", "bool": "a true/false value", "str": "a string"}
_EXPECTED = {"number": "a number", "bool": "a true/false condition", "str": "a string"}


class ExprProblem(Exception):
    """One problem in an expression: 0-based character ``offset`` into the source."""

    def __init__(self, offset: int, message: str, expected: str | None = None) -> None:
        super().__init__(offset, message, expected)
        self.offset = offset
        self.message = message
        self.expected = expected

    def __str__(self) -> str:
        tail = f" ({self.expected})" if self.expected else ""
        return f"column {self.offset + 1}: {self.message}{tail}"


class ExprErrors(Exception):
    """All problems found in one expression, ordered by offset."""

    def __init__(self, problems: Iterable[ExprProblem], source: str = "") -> None:
        self.problems: list[ExprProblem] = sorted(problems, key=lambda p: (p.offset, p.message))
        self.source = source
        super().__init__(self.problems, source)

    def __str__(self) -> str:
        lines = [f"in expression {self.source!r}:"] + [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def problems_at(err: ExprErrors, loc: Location) -> list[Problem]:
    """``err``'s problems as kamsim Problems; ``loc`` is where the expression's text starts."""
    return [Problem(loc.shifted(p.offset), p.message, p.expected) for p in err.problems]


# --- evaluation -------------------------------------------------------------------------


class _Context:
    """What the closures of one evaluation read (a plain class with slots: it is built on
    every call of an expression, so it must cost little)."""

    __slots__ = ("env", "n", "mask", "base", "whole", "rows")

    def __init__(self, env: Mapping[str, np.ndarray], n: int, mask: np.ndarray | None,
                 base: _Context | None = None, whole: _Context | None = None,
                 rows: np.ndarray | None = None) -> None:
        self.env = env
        self.n = n
        self.mask = mask
        # with moved fields (Expr's ``moved``): the evaluation over the unmoved ones, whose
        # values are the population a portfolio helper measures each moved row against
        self.base = base
        # evaluated at some rows only (Expr's ``rows``): ``env`` holds those rows' values,
        # and ``whole`` is the evaluation over every row, which a portfolio helper measures
        # (then takes at ``rows``)
        self.whole = whole
        self.rows = rows


def _at_rows(helper: Fn) -> Fn:
    """A portfolio helper's node evaluated at some rows only: worked out over the whole
    portfolio, then taken at the rows (a scalar, quantile's, as it is)."""

    def at(ctx: _Context) -> Any:
        whole = ctx.whole
        if whole is None:
            return helper(ctx)
        value = helper(whole)
        return value[ctx.rows] if np.ndim(value) else value

    return at


Fn = Callable[[_Context], Any]


@dataclass(frozen=True)
class _Node:
    kind: FieldType | None  # None: a problem was already reported inside this node
    fn: Fn
    # the array ``fn`` gives is always a new one that nothing else holds (the result of a
    # numpy operation), so an expression can hand it out without copying it
    fresh: bool = False


def _error_fn(ctx: _Context) -> Any:  # pragma: no cover - never called: errors abort compiling
    raise AssertionError("an expression with problems was evaluated")


_ERROR = _Node(None, _error_fn)


_DTYPES: dict[FieldType, Any] = {"number": np.float64, "bool": np.bool_, "str": object}
_BOOL = np.dtype(np.bool_)


class Expr:
    """A compiled, type-checked expression; call it to evaluate over all accounts."""

    __slots__ = ("source", "kind", "names", "uses_portfolio", "_fn", "_fields", "_expect",
                 "_sorted_names", "_dtype", "_result_dtype", "_columns", "_fresh", "_quiet")

    def __init__(
        self,
        source: str,
        kind: FieldType,
        names: frozenset[str],
        uses_portfolio: bool,
        fn: Fn,
        fields: Mapping[str, FieldType],
        expect: FieldType | None,
        fresh: bool = False,
        quiet: bool = False,
    ) -> None:
        self.source = source
        self.kind: FieldType = kind
        self.names = names
        self.uses_portfolio = uses_portfolio
        self._fn = fn
        self._fields = {name: fields[name] for name in names}
        self._expect = expect
        self._sorted_names = sorted(names)
        self._dtype = _DTYPES[kind]
        self._result_dtype = np.dtype(self._dtype)
        # (name, kind, the dtype a column of that kind has): a field that is already a plain
        # array of that dtype and length is used as it is (what F.column would give)
        self._columns = tuple((name, k, np.dtype(_DTYPES[k])) for name, k in self._fields.items())
        self._fresh = fresh  # see _Node.fresh
        # no arithmetic or function: nothing to silence (np.errstate costs ~1 us a call)
        self._quiet = quiet

    def __call__(
        self,
        env: Mapping[str, np.ndarray],
        n: int | None = None,
        mask: np.ndarray | None = None,
        moved: Mapping[str, np.ndarray] | None = None,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Evaluate over ``n`` accounts; returns a fresh 1-D array of length ``n``.

        number -> float64, bool -> bool, str -> object. ``mask`` (bool[n]) selects the
        accounts that portfolio helpers see. Never emits numpy warnings.

        ``moved``: number fields with other values, each row's value as if that account
        alone were moved (re-tiering hysteresis nudges each account's score). Row by row
        the expression reads the moved values; a portfolio helper gives each row its value
        in the portfolio where only that row is moved and every other account keeps its
        ``env`` value (``rank_pct(score)`` of a nudged score against the others' scores).

        ``rows`` (indices): the value at those rows only, in their order (an array of their
        length), each what the evaluation over every row gives there: the row-by-row
        operations work on those rows' values, and a portfolio helper over every row (then
        taken at them). A re-tiering's nudged tables need only the accounts that may move.
        """
        # (the checks and conversions cost more than a small portfolio's arithmetic: the
        # usual case, plain arrays of the right dtype and length, is told apart first)
        if type(n) is not int or n < 0:
            n = infer_length(env, n, self._sorted_names)
        shape = (n,)
        columns: dict[str, np.ndarray] = {}
        for name, kind, dtype in self._columns:
            try:
                arr = env[name]
            except KeyError:
                arr = None
            if type(arr) is np.ndarray and arr.dtype is dtype and arr.shape == shape:
                columns[name] = arr
            else:  # converted, or the reason why not
                columns[name] = F.column(env, name, kind, n)
        if mask is not None and not (type(mask) is np.ndarray and mask.dtype is _BOOL
                                     and mask.shape == shape):
            mask = np.asarray(mask)
            if mask.shape != shape or mask.dtype != np.bool_:
                raise ValueError(f"mask must be bool[{n}], got {mask.dtype}{list(mask.shape)}")
        ctx = _Context(columns, n, mask)
        if moved is not None and not moved.keys().isdisjoint(columns):
            ctx = _Context({**columns, **{name: F.column(moved, name, "number", n)
                                          for name in moved if name in columns}},
                           n, mask, ctx)
        if rows is not None:
            ctx = _Context({name: column[rows] for name, column in ctx.env.items()},
                           rows.shape[0], mask, whole=ctx, rows=rows)
            shape = (rows.shape[0],)
        # Overflow to inf and inf - inf = NaN are defined results here, not events to report.
        if self._quiet:
            value = self._fn(ctx)
        else:
            with np.errstate(all="ignore"):
                value = self._fn(ctx)
        if isinstance(value, np.ndarray) and value.shape == shape:
            if self._fresh and value.dtype is self._result_dtype:
                return value  # a new array: nobody else holds it
            return np.array(value, dtype=self._dtype)  # a copy: it may be a field's own array
        return np.array(np.broadcast_to(np.asarray(value), shape), dtype=self._dtype)

    def __repr__(self) -> str:
        return f"Expr({self.source!r}, kind={self.kind!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Closures do not pickle; the source and field types are enough to rebuild.
        return (_rebuild, (self.source, dict(self._fields), self._expect))


def _rebuild(source: str, fields: dict[str, FieldType], expect: FieldType | None) -> Expr:
    return compile_expr(source, fields, expect=expect)


# --- parsing ----------------------------------------------------------------------------


class _Source:
    """The text handed to ``ast.parse`` and the map from its columns back to the user's."""

    def __init__(self, source: str) -> None:
        # One line, so AST columns are all on line 1; newline -> space keeps every offset.
        flat = source.replace("\r", " ").replace("\n", " ")
        body = flat.lstrip()
        self.lead = len(flat) - len(body)  # ast.parse rejects leading blanks as an indent
        self.problems: list[ExprProblem] = []
        self.ifs: set[int] = set()  # offsets (in the user's source) of the `if(` rewritten
        self.fatal = False  # a problem that keeps the text from being parsed
        self.text = self._scan(body)
        self.encoded = self.text.encode("utf-8")

    def offset(self, node: ast.AST) -> int:
        """0-based character offset in the user's source of ``node`` (AST counts bytes)."""
        col = getattr(node, "col_offset", 0)
        return self.lead + len(self.encoded[:col].decode("utf-8", errors="ignore"))

    def _scan(self, body: str) -> str:
        """Rewrite ``if(`` to the reserved name; reject over-deep parentheses and the
        Python literals the language leaves out (hexadecimal, octal and binary numbers,
        strings side by side, which Python would join)."""
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(body).readline))
        except (tokenize.TokenError, SyntaxError):
            return body  # ast.parse reports the same problem, located
        depth = 0
        prev: tokenize.TokenInfo | None = None
        for tok, nxt in zip(tokens, tokens[1:], strict=False):
            if tok.type == tokenize.NUMBER and tok.string[:2].lower() in _BASES:
                self.problems.append(ExprProblem(
                    self.lead + tok.start[1],
                    f"{_BASES[tok.string[:2].lower()]} numbers are not part of the language, "
                    f"got {tok.string!r}", "a decimal number such as 16, 0.5 or 1e6"))
            if (tok.type == tokenize.STRING and prev is not None
                    and prev.type == tokenize.STRING):
                self.problems.append(ExprProblem(
                    self.lead + tok.start[1],
                    "two strings side by side; strings are not joined",
                    "one string such as 'ab': there is no concatenation"))
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
                if depth > MAX_DEPTH:
                    self.problems.append(
                        ExprProblem(
                            self.lead + tok.start[1],
                            f"too many nested parentheses (more than {MAX_DEPTH})",
                        )
                    )
                    self.fatal = True
                    return body
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
            operand_position = (
                prev is None
                or (prev.type == tokenize.OP and prev.string not in ")]}")
                or (prev.type == tokenize.NAME and prev.string in ("and", "or", "not", "in"))
            )
            if (
                tok.type == tokenize.NAME
                and tok.string == "if"
                and nxt.string == "("
                and operand_position
            ):
                col = tok.start[1]
                body = body[:col] + _IF + body[col + 2 :]
                self.ifs.add(self.lead + col)
            prev = tok
        return body


_BASES = {"0x": "hexadecimal", "0o": "octal", "0b": "binary"}


def _deepest(tree: ast.AST) -> ast.AST | None:
    """The first expression node nested deeper than MAX_DEPTH (iteratively: no recursion).

    The left operand of an operation that is itself an operation is not a level deeper:
    Python nests ``a + b + c`` as ``(a + b) + c``, a level per term, but the chain is flat
    to the user and to the compiler (which walks it in a loop)."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            depth += 1
            if depth > MAX_DEPTH:
                return node
        for child in ast.iter_child_nodes(node):
            chained = (isinstance(node, ast.BinOp) and child is node.left
                       and isinstance(child, ast.BinOp))
            stack.append((child, depth - 1 if chained else depth))
    return None


def _parse(source: str) -> tuple[ast.expr | None, _Source, list[ExprProblem]]:
    """Parse to an AST, or report why not. Never raises."""
    if len(source) > MAX_SOURCE_CHARS:
        problem = ExprProblem(
            MAX_SOURCE_CHARS,
            f"expression is too long ({len(source)} characters)",
            f"at most {MAX_SOURCE_CHARS}",
        )
        return None, _Source(""), [problem]
    src = _Source(source)
    if src.fatal:
        return None, src, src.problems
    # (the scan's other problems, literals the language leaves out, are told along with
    # every other problem of the text)
    if not src.text.strip():
        return None, src, [ExprProblem(0, "empty expression", "a rule such as 'revenue > 1e6'")]
    try:
        tree = ast.parse(src.text, mode="eval")
    except SyntaxError as e:
        # offset is 1-based in characters; 0/None means "at the end of the input".
        at = (e.offset - 1) if e.offset else len(src.text)
        at = min(max(at, 0), len(src.text))
        msg = "syntax error" if e.msg == "invalid syntax" else f"syntax error: {e.msg}"
        if "null bytes" in str(e):
            msg, at = "syntax error: the text contains a NUL character", 0
        return None, src, [*src.problems, ExprProblem(src.lead + at, msg)]
    except (RecursionError, MemoryError, ValueError):
        return None, src, [ExprProblem(src.lead, "expression is nested too deeply")]
    deep = _deepest(tree.body)
    if deep is not None:
        message = f"expression is nested too deeply (more than {MAX_DEPTH} levels)"
        return None, src, [*src.problems, ExprProblem(src.offset(deep), message)]
    return tree.body, src, src.problems


def _literal(node: ast.expr) -> tuple[Any, FieldType] | None:
    """The value of a literal usable in an ``in`` list or as a quantile level, else None."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
        if not (isinstance(node, ast.Constant) and type(node.value) in (int, float)):
            return None
    if isinstance(node, ast.Name) and node.id in ("true", "false"):
        return node.id == "true", "bool"
    if not isinstance(node, ast.Constant):
        return None
    value = node.value
    if isinstance(value, bool):
        return value, "bool"
    if isinstance(value, int | float):  # bool was handled above
        try:
            return sign * float(value), "number"
        except OverflowError:
            return None
    if isinstance(value, str):
        return value, "str"
    return None


# --- type checking and compiling ----------------------------------------------------------


class _Compiler:
    """Walks a parsed AST once: type-checks, collects every problem, builds closures."""

    def __init__(self, src: _Source, fields: Mapping[str, FieldType],
                 values: Mapping[str, Sequence[str]] | None = None) -> None:
        self.src = src
        self.fields = fields
        self.values = values or {}
        self.problems: list[ExprProblem] = []
        self.names: set[str] = set()
        self.portfolio = False
        # whether an operation that may raise a floating-point warning (arithmetic or a
        # function) occurs: comparisons, logic, `in` and if() never do, even on NaN
        self.arithmetic = False

    def fail(self, node: ast.AST, message: str, expected: str | None = None) -> _Node:
        self.problems.append(ExprProblem(self.src.offset(node), message, expected))
        return _ERROR

    def need(self, node: ast.AST, got: _Node, kind: FieldType, message: str) -> bool:
        """True if ``got`` has ``kind``; reports ``message`` (+ what it got) otherwise."""
        if got.kind is None or got.kind == kind:
            return got.kind is not None
        self.fail(node, f"{message}, got {_GOT[got.kind]}")
        return False

    def operands(self, nodes: list[ast.expr], kind: FieldType, message: str
                 ) -> list[Any] | None:
        """Compile every operand and check each has ``kind`` (all problems reported); their
        functions, or None if any was wrong."""
        parts = [self.visit(n) for n in nodes]
        oks = [self.need(n, part, kind, message) for n, part in zip(nodes, parts, strict=True)]
        return [part.fn for part in parts] if all(oks) else None

    def visit(self, node: ast.expr) -> _Node:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is not None:
            result: _Node = method(node)
            return result
        bad = F.FORBIDDEN_NODES.get(type(node), f"{type(node).__name__} is not allowed in a rule")
        return self.fail(node, bad)

    def visit_Constant(self, node: ast.Constant) -> _Node:
        literal = _literal(node)
        if literal is None:
            if isinstance(node.value, int | float):
                return self.fail(node, "number literal is too large")
            what = "complex numbers" if isinstance(node.value, complex) else repr(node.value)
            return self.fail(node, f"{what} cannot be used in a rule")
        value, kind = literal
        constant = np.float64(value) if kind == "number" else value
        return _Node(kind, lambda ctx: constant)

    def visit_Name(self, node: ast.Name) -> _Node:
        name = node.id
        if name in ("true", "false"):
            value = name == "true"
            return _Node("bool", lambda ctx: value)
        if name.startswith("__"):
            return self.fail(node, f"names starting with '__' are not allowed, got {name!r}")
        if name in self.fields:
            self.names.add(name)
            return _Node(self.fields[name], lambda ctx: ctx.env[name])
        if name in F.FUNCTIONS or self.is_if(node, name):
            shown = "if" if name == _IF else name
            return self.fail(node, f"{shown!r} is a function; call it like {shown}(...)")
        return self.unknown(node, name, "name", [*self.fields, *FUNCTION_NAMES])

    def known_value(self, field: ast.expr, literal: ast.expr) -> None:
        """Report ``literal`` if ``field`` is a text field whose values are known (tier,
        stage, ...) and the literal is none of them: ``tier == 'kye'`` is never true, so a
        misspelt name would silently switch the rule off. The empty text is let through:
        it is what `tier` and `stage` hold before they are first set (docs/rules.md)."""
        if not (isinstance(field, ast.Name) and field.id in self.values
                and isinstance(literal, ast.Constant) and isinstance(literal.value, str)
                and literal.value):
            return
        names, value = list(self.values[field.id]), literal.value
        if value in names:
            return
        close = difflib.get_close_matches(value, names, n=1)
        if not close:  # ('Enterprise', 'KEY': only the case or the spaces differ)
            close = [n for n in names if n.lower() == value.strip().lower()][:1]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.fail(literal, f"unknown {field.id} {value!r}{hint}",
                  f"one of: {', '.join(names)}" if names else f"no {field.id} is declared")

    def is_if(self, node: ast.AST, name: str) -> bool:
        """True if ``name`` at ``node`` is an ``if(`` the scan rewrote (not the user's IF)."""
        return name == _IF and self.src.offset(node) in self.src.ifs

    def unknown(self, node: ast.AST, name: str, what: str, candidates: list[str]) -> _Node:
        close = difflib.get_close_matches(name, candidates, n=1)
        if not close and name.lower() in candidates:  # (IF, Revenue: only the case differs)
            close = [name.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return self.fail(node, f"unknown {what} {name!r}{hint}",
                         self.fields_hint(name) if what == "name" else None)

    def fields_hint(self, name: str) -> str:
        """The fields closest to ``name`` and how many others there are: the whole list is
        too long for one line (docs/rules.md, "Fields", has it)."""
        if not self.fields:
            return "no fields are declared here"
        closest = difflib.get_close_matches(name, list(self.fields), n=_SUGGESTED, cutoff=0.0)
        more = len(self.fields) - len(closest)
        rest = f" ({more} more)" if more else ""
        return f"a field such as {', '.join(closest)}{rest}"

    def visit_UnaryOp(self, node: ast.UnaryOp) -> _Node:
        if type(node.op) in F.BAD_OPERATORS:
            return self.fail(node, F.BAD_OPERATORS[type(node.op)])
        operand = self.visit(node.operand)
        f = operand.fn
        if isinstance(node.op, ast.Not):
            if not self.need(node.operand, operand, "bool", "`not` needs a true/false operand"):
                return _ERROR
            return _Node("bool", lambda ctx: np.logical_not(f(ctx)), fresh=True)
        sym = "-" if isinstance(node.op, ast.USub) else "+"
        if not self.need(node.operand, operand, "number", f"`{sym}` needs a number"):
            return _ERROR
        if sym == "-":
            return _Node("number", lambda ctx: np.negative(f(ctx)), fresh=True)
        return operand

    def visit_BinOp(self, node: ast.BinOp) -> _Node:
        # A chain such as a + b - c * d + ... nests to the left, one level per operation:
        # it is walked in a loop from its first operand, so that a sum of hundreds of terms
        # recurses no deeper than one of two (compiling and evaluating), with the same
        # operations in the same order, and the same problems, as one level at a time.
        chain = [node]
        while isinstance(chain[-1].left, ast.BinOp):
            chain.append(chain[-1].left)
        chain.reverse()  # first operation first
        # an unsupported operator: it and everything before it are left out, as a node
        # whose own operator is wrong is not looked into
        bad = [i for i, b in enumerate(chain) if type(b.op) in F.BAD_OPERATORS]
        if bad:
            b = chain[bad[-1]]
            left = self.fail(b, F.BAD_OPERATORS[type(b.op)])
            chain = chain[bad[-1] + 1:]
        else:
            left = self.visit(chain[0].left)
        first = left.fn
        steps: list[tuple[Callable[[Any, Any], Any], Fn]] = []
        for b in chain:
            sym, op = F.ARITHMETIC[type(b.op)]
            self.arithmetic = True
            right = self.visit(b.right)
            ok_left = self.need(b.left, left, "number", f"`{sym}` needs numbers")
            ok_right = self.need(b.right, right, "number", f"`{sym}` needs numbers")
            left = _Node("number", _error_fn) if ok_left and ok_right else _ERROR
            steps.append((op, right.fn))
        if left.kind is None:
            return _ERROR
        if len(steps) == 1:  # one operation (the usual case): no loop
            ((op1, rf),) = steps
            return _Node("number", lambda ctx: op1(first(ctx), rf(ctx)), fresh=True)

        def run(ctx: _Context) -> Any:
            value = first(ctx)
            for op, f in steps:
                value = op(value, f(ctx))
            return value

        return _Node("number", run, fresh=True)

    def visit_BoolOp(self, node: ast.BoolOp) -> _Node:
        word = "and" if isinstance(node.op, ast.And) else "or"
        fns = self.operands(node.values, "bool", f"`{word}` needs true/false operands")
        if fns is None:
            return _ERROR
        combine = np.logical_and if word == "and" else np.logical_or
        if len(fns) == 2:  # the usual case, without the generator and reduce
            f0, f1 = fns
            return _Node("bool", lambda ctx: combine(f0(ctx), f1(ctx)), fresh=True)
        return _Node("bool", lambda ctx: reduce(combine, (f(ctx) for f in fns)), fresh=True)

    def visit_Compare(self, node: ast.Compare) -> _Node:
        for op in node.ops:
            if type(op) in F.BAD_OPERATORS:
                return self.fail(node, F.BAD_OPERATORS[type(op)])
        if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            if len(node.ops) > 1:
                return self.fail(node, "`in` cannot be chained; combine with `and`")
            return self.compare_in(node)
        operands = [node.left, *node.comparators]
        parts = [self.visit(operand) for operand in operands]
        ok = True
        told: set[int] = set()  # operands already reported (a middle one of a < b < c)
        for i, op in enumerate(node.ops):
            sym, _ = F.COMPARISONS[type(op)]
            a, b = parts[i], parts[i + 1]
            if sym in ("==", "!="):
                self.known_value(operands[i], operands[i + 1])
                self.known_value(operands[i + 1], operands[i])
                if a.kind is not None and b.kind is not None and a.kind != b.kind:
                    ok = False
                    self.fail(
                        operands[i + 1],
                        f"cannot compare {_GOT[a.kind]} with {_GOT[b.kind]} using `{sym}`",
                    )
            else:
                # one problem per comparison: in `region < 'b'` both sides are text, but the
                # mistake is the one comparison, told at its first wrong operand
                for j in (i, i + 1):
                    if j in told or (j == i + 1 and i in told):
                        ok &= parts[j].kind == "number"
                        continue
                    if not self.need(operands[j], parts[j], "number", f"`{sym}` needs numbers"):
                        ok = False
                        if parts[j].kind is not None:  # None: its own problem is told
                            told.add(j)
        if not ok or any(part.kind is None for part in parts):
            return _ERROR
        ops = [F.COMPARISONS[type(op)][1] for op in node.ops]
        fns = [part.fn for part in parts]
        if len(ops) == 1:  # one comparison (the usual case): no list, generator or reduce
            (cmp,), (lf, rf) = ops, fns
            return _Node("bool", lambda ctx: cmp(lf(ctx), rf(ctx)), fresh=True)

        def compare(ctx: _Context) -> Any:
            values = [f(ctx) for f in fns]  # each operand once, as in Python's chaining
            pairs = (op(values[i], values[i + 1]) for i, op in enumerate(ops))
            return reduce(np.logical_and, pairs)

        return _Node("bool", compare, fresh=True)

    def compare_in(self, node: ast.Compare) -> _Node:
        negate = isinstance(node.ops[0], ast.NotIn)
        left = self.visit(node.left)
        items = node.comparators[0]
        if not isinstance(items, ast.List):
            return self.fail(items, "`in` needs a list of literals on its right, like [1, 2]")
        values: list[Any] = []
        for item in items.elts:
            literal = _literal(item)
            if literal is None:
                self.fail(item, "`in` lists may only hold literal numbers, strings or true/false")
            elif left.kind is not None and literal[1] != left.kind:
                self.fail(
                    item,
                    f"this list item is {_GOT[literal[1]]} but the left side is {_GOT[left.kind]}",
                )
            else:
                values.append(literal[0])
                self.known_value(node.left, item)
        if left.kind is None or len(values) != len(items.elts):
            return _ERROR
        f = left.fn

        def member(ctx: _Context) -> Any:
            x = f(ctx)
            hit = reduce(np.logical_or, (np.equal(x, v) for v in values), np.zeros_like(x, bool))
            return np.logical_not(hit) if negate else hit

        return _Node("bool", member, fresh=True)

    def visit_Call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name):
            return (
                self.visit(node.func)
                if isinstance(node.func, ast.Attribute)
                else self.fail(node, "only the built-in functions can be called")
            )
        name = node.func.id
        is_if = self.is_if(node.func, name)
        shown = "if" if is_if else name
        for kw in node.keywords:
            self.fail(kw, f"keyword arguments are not allowed in {shown}(...)")
        if name.startswith("__"):
            return self.fail(node, f"names starting with '__' are not allowed, got {name!r}")
        if name in self.fields:
            return self.fail(node, f"{name!r} is a field, not a function")
        if not is_if and name not in F.FUNCTIONS:
            for arg in node.args:  # report unknown names inside, too
                self.visit(arg)
            return self.unknown(node, name, "function", sorted(FUNCTION_NAMES))
        if node.keywords:
            return _ERROR
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                return self.fail(arg, F.FORBIDDEN_NODES[ast.Starred])
        if is_if:
            return self.call_if(node)
        self.arithmetic = True
        spec = F.FUNCTIONS[name]
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            return self.fail(node, f"{spec.signature} cannot take {count} argument(s)")
        if name == "quantile":
            return self.call_quantile(node)
        fns = self.operands(node.args, "number", f"{name}(...) needs numbers")
        if fns is None:
            return _ERROR
        impl = spec.impl
        if spec.portfolio:
            self.portfolio = True
            (g,) = fns
            moved = spec.moved
            assert moved is not None  # every portfolio helper has its moved kernel

            def helper(ctx: _Context) -> Any:
                if ctx.base is None:
                    return impl(g(ctx), ctx.n, ctx.mask)
                # each moved row against the others' unmoved values (see Expr.__call__)
                return moved(g(ctx.base), g(ctx), ctx.n, ctx.mask)

            return _Node("number", _at_rows(helper))
        # (min, max, abs, log, exp, clip: each gives a new array)
        return _Node("number", lambda ctx: impl(*(g(ctx) for g in fns)), fresh=True)

    def call_if(self, node: ast.Call) -> _Node:
        if len(node.args) != 3:
            return self.fail(node, f"if(cond, a, b) cannot take {len(node.args)} argument(s)")
        cond, a, b = (self.visit(arg) for arg in node.args)
        ok = self.need(node.args[0], cond, "bool", "if(...) needs a true/false condition")
        if a.kind is not None and b.kind is not None and a.kind != b.kind:
            self.fail(
                node.args[2],
                f"if(...) branches must have the same type: {_GOT[a.kind]} and {_GOT[b.kind]}",
            )
            return _ERROR
        if not ok or a.kind is None or b.kind is None:
            return _ERROR
        fc, fa, fb = cond.fn, a.fn, b.fn
        if a.kind == "str":  # object arrays, so strings of any length mix and compare alike
            return _Node(
                "str",
                lambda ctx: np.where(
                    fc(ctx), np.asarray(fa(ctx), dtype=object), np.asarray(fb(ctx), dtype=object)
                ),
                fresh=True,
            )
        return _Node(a.kind, lambda ctx: np.where(fc(ctx), fa(ctx), fb(ctx)), fresh=True)

    def call_quantile(self, node: ast.Call) -> _Node:
        x = self.visit(node.args[0])
        ok = self.need(node.args[0], x, "number", "quantile(...) needs numbers")
        literal = _literal(node.args[1])
        if literal is None or literal[1] != "number" or not 0.0 <= literal[0] <= 1.0:
            got = ast.get_source_segment(self.src.text, node.args[1]) or "?"
            self.fail(
                node.args[1],
                f"quantile level must be a number literal between 0 and 1, got {got!r}",
            )
            return _ERROR
        if not ok:
            return _ERROR
        q, g = float(literal[0]), x.fn
        self.portfolio = True

        spec = F.FUNCTIONS["quantile"]
        impl, moved = spec.impl, spec.moved
        assert moved is not None

        def helper(ctx: _Context) -> Any:
            if ctx.base is None:
                return impl(g(ctx), q, ctx.n, ctx.mask)
            return moved(g(ctx.base), g(ctx), q, ctx.n, ctx.mask)

        return _Node("number", _at_rows(helper))


#: the expressions compiled in this process, by source, field types and expected type: a
#: scenario's rules are compiled when it is loaded (to check them, with ``values``) and
#: again when its model is compiled, and a sweep's points share their rules. An Expr keeps
#: no state between calls, so one serves them all. (Emptied when it reaches _KEPT_MAX.)
_KEPT: dict[tuple[Any, ...], Expr] = {}
_KEPT_MAX = 4096


def compile_expr(
    source: str, fields: Mapping[str, FieldType], *, expect: FieldType | None = None,
    values: Mapping[str, Sequence[str]] | None = None,
) -> Expr:
    """Parse, type-check and compile ``source`` over ``fields``; raises ExprErrors.

    With ``expect``, a result of another type is a problem at offset 0 of the expression.
    ``values`` gives the names some text fields can hold (``{"tier": ["key", ...]}``, as the
    loader knows them): a string compared with such a field (``==``, ``!=``, ``in``) that is
    none of them is a problem at the string. It only checks; the compiled rule is the same,
    so an expression compiled before with the same fields and ``expect`` (``values`` or
    not) is given again without ``values``; with them it is checked again.
    """
    for name, kind in fields.items():
        if kind not in FIELD_TYPES:
            raise ValueError(f"field {name!r} has type {kind!r}, expected one of {FIELD_TYPES}")
    key = (source, tuple(sorted(fields.items())), expect)
    if values is None:
        kept = _KEPT.get(key)
        if kept is not None:
            return kept
    expr = _compile(source, fields, expect, values)
    if len(_KEPT) >= _KEPT_MAX:
        _KEPT.clear()
    _KEPT[key] = expr
    return expr


def _compile(source: str, fields: Mapping[str, FieldType], expect: FieldType | None,
             values: Mapping[str, Sequence[str]] | None) -> Expr:
    """:func:`compile_expr`, every time."""
    body, src, problems = _parse(source)
    if body is None:
        raise ExprErrors(problems, source)
    compiler = _Compiler(src, fields, values)
    compiler.problems += problems
    node = compiler.visit(body)
    if expect is not None and node.kind is not None and node.kind != expect:
        message = f"expected {_EXPECTED[expect]}, got {_GOT[node.kind]}"
        compiler.problems.append(ExprProblem(src.lead, message))
    if compiler.problems or node.kind is None:
        raise ExprErrors(compiler.problems, source)
    return Expr(
        source,
        node.kind,
        frozenset(compiler.names),
        compiler.portfolio,
        node.fn,
        fields,
        expect,
        node.fresh,
        not compiler.arithmetic,
    )
