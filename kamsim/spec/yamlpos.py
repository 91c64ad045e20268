"""Safe YAML loading that keeps the ``file:line:col`` of every key and value.

The document is composed with PyYAML's *safe* composer (no Python tags can construct
anything), then walked by hand: only the core YAML tags are accepted, alias expansion is
counted (a "billion laughs" document is an error, not a hang), nesting depth and file size
are capped. The result is plain Python data plus a position index keyed by the value's path
(a tuple of keys and list indices), which is exactly the shape of pydantic's error ``loc``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kamsim.errors import InputError, Location, Problem

__all__ = ["Limits", "Document", "load_yaml", "load_yaml_text", "DEFAULT_LIMITS"]

PathKey = tuple[str | int, ...]

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _odd_number(text: str) -> str | None:
    """What YAML 1.1 makes of a plain number that reads as something else to a person, or
    None. ``20:30`` is the base-60 number 1230 (YAML 1.1 reads times that way) and ``012``
    the octal 10: a range typed in a --vary/--set value or a zero-padded figure in a file
    would silently become another number."""
    digits = text.lstrip("+-")
    if ":" in digits:
        value = yaml.safe_load(text)
        return f"the base-60 number {value:g}"
    if re.fullmatch(r"0[0-7_]+", digits) and digits.strip("0_"):
        return f"the octal number {yaml.safe_load(text)}"
    return None


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 5_000_000
    max_depth: int = 32
    max_nodes: int = 200_000  # nodes visited, aliases included: bounds alias expansion


DEFAULT_LIMITS = Limits()


@dataclass
class Document:
    """Plain data loaded from one YAML file, with the location of every path in it."""

    path: str
    data: Any
    values: dict[PathKey, Location] = field(default_factory=dict)
    keys: dict[PathKey, Location] = field(default_factory=dict)
    # for scalars: how many characters precede the text itself (1 for a quoted string)
    quote: dict[PathKey, int] = field(default_factory=dict)
    # for string scalars: (start, end) character indices in ``source`` and the YAML style,
    # so a column inside a multi-line or escaped string can be mapped back to the file
    spans: dict[PathKey, tuple[int, int, str | None]] = field(default_factory=dict)
    source: str = ""
    # problems that did not stop the reading (a duplicate key: its first value is kept), for
    # the loader to report with the rest of the file's problems (``keep_going=True`` only)
    problems: list[Problem] = field(default_factory=list)
    # the paths of values that are one of ``problems`` (a .inf or .nan): read as null, so
    # the loader's checks leave them alone rather than report them a second time
    unreadable: set[PathKey] = field(default_factory=set)

    def locate(self, path: PathKey, *, key: bool = False, offset: int = 0) -> Location:
        """The location of ``path``: its key (``key=True``) or its value; ``offset`` moves
        right inside a scalar's text (a column inside an expression). Unknown paths fall back
        to the nearest located ancestor."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                loc = table[p]
                if not key and offset:
                    loc = loc.shifted(self.quote.get(p, 0) + offset)
                return loc
            if key and p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), Location(self.path, 1, 1))

    def locate_text(self, path: PathKey, offset: int) -> Location:
        """The location of character ``offset`` of the string at ``path``, following the
        text across lines (block and folded scalars) and escapes (quoted scalars). Falls back
        to shifting the scalar's start when the text cannot be followed."""
        p = tuple(path)
        span = self.spans.get(p)
        value = self.data
        try:
            for part in p:
                value = value[part]
        except (KeyError, IndexError, TypeError):
            value = None
        if span is None or not isinstance(value, str):
            return self.locate(p).shifted(self.quote.get(p, 0) + offset)
        index = _follow(self.source, span, value, offset)
        if index is None:
            return self.locate(p).shifted(self.quote.get(p, 0) + offset)
        line = self.source.count("\n", 0, index) + 1
        col = index - (self.source.rfind("\n", 0, index) + 1) + 1
        return Location(self.path, line, col)


_ESCAPE_WIDTH = {"x": 4, "u": 6, "U": 10}


def _follow(source: str, span: tuple[int, int, str | None], value: str, offset: int
            ) -> int | None:
    """Index in ``source`` of character ``offset`` of the scalar ``value`` whose text spans
    ``span``: runs of blanks in the value match any run of blanks and line breaks in the
    file (YAML folds lines), other characters must match one to one. None if they do not."""
    start, end, style = span
    i = start
    if style in ("|", ">"):  # the text starts on the line after the block indicator
        i = source.find("\n", start, end) + 1
        if i <= 0:
            return None
        while i < end and source[i] == " " and not value[:1].isspace():
            i += 1  # the block's indentation
    elif style in ("'", '"'):
        i += 1
    j = 0
    while j < offset and j < len(value) and i < end:
        if value[j].isspace():
            while j < offset and j < len(value) and value[j].isspace():
                j += 1
            while i < end:
                if source[i].isspace():
                    i += 1
                elif style == '"' and source[i] == "\\" and source[i + 1:i + 2] in "tn \n":
                    i += 2  # an escaped blank or line break
                else:
                    break
            continue
        if style == '"' and source[i] == "\\":
            i += _ESCAPE_WIDTH.get(source[i + 1:i + 2], 2)
        elif style == "'" and source.startswith("''", i):
            i += 2
        elif source[i] == value[j]:
            i += 1
        else:
            return None
        j += 1
    while i < end and source[i].isspace() and j < len(value) and not value[j].isspace():
        i += 1  # the offset is the first character of a folded line: skip the indentation
    return i if j == offset else None


class _TooDeep(Exception):
    """Raised by :class:`_ShallowLoader` at a node nested far past the limit."""

    def __init__(self, mark: Any) -> None:
        super().__init__()
        self.mark = mark


class _ShallowLoader(yaml.SafeLoader):
    """The safe loader with a composer that does not build nodes deeper than ``max_depth``.

    PyYAML's composer recurses once per nesting level, so a 1 KB file of 500 brackets
    overflowed Python's stack (a RecursionError) before :class:`_Walker` could count the
    levels. Past ``max_depth`` this one reads a node's events in a loop and leaves a null
    scalar where the node began: the walker reports it as "nesting is too deep", in the
    place and the words it uses at any depth, with the document's other problems. Past twice
    the limit it stops reading (:class:`_TooDeep`): PyYAML's scanner spends time in
    proportion to the open levels on every token, so reading on would let a file of a few
    MB of brackets take hours; there only that one line is reported.
    """

    def __init__(self, text: str, max_depth: int) -> None:
        super().__init__(text)
        self.max_depth = max_depth
        self.depth = -1  # the root node is at depth 0, as the walker counts

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self.depth += 1
        try:
            if self.depth > self.max_depth and not self.check_event(AliasEvent):
                return self._skip()
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _skip(self) -> Node:
        """Read one node's events (no recursion) and stand a null in its place; the anchors
        in it name the null, so an alias to one still resolves."""
        first = self.peek_event()
        node = ScalarNode("tag:yaml.org,2002:null", "", first.start_mark, first.end_mark)
        open_ = 0
        while True:
            event = self.get_event()
            if getattr(event, "anchor", None) is not None and not isinstance(event, AliasEvent):
                self.anchors[event.anchor] = node
            if isinstance(event, CollectionStartEvent):
                open_ += 1  # (this collection is at depth self.depth + open_ - 1)
                if self.depth + open_ > 2 * self.max_depth + 1:
                    raise _TooDeep(first.start_mark)
            elif isinstance(event, CollectionEndEvent):
                open_ -= 1
            if open_ == 0:
                node.end_mark = event.end_mark
                return node


class _Walker:
    def __init__(self, doc: Document, limits: Limits):
        self.doc = doc
        self.limits = limits
        self.nodes = 0
        self.problems: list[Problem] = []
        # duplicate keys (the first value of the key is kept) and numbers that are not finite
        # (read as null, their paths in doc.unreadable): the data is still whole, so they
        # need not stop the checks of the rest of the file
        self.kept: list[Problem] = []
        self.ctor = yaml.SafeLoader("")  # used only to construct core scalars
        self.bombed = False

    def loc(self, node: Node) -> Location:
        m = node.start_mark
        return Location(self.doc.path, m.line + 1, m.column + 1)

    def problem(self, node: Node, message: str, expected: str | None = None) -> None:
        self.problems.append(Problem(self.loc(node), message, expected))

    def walk(self, node: Node, path: PathKey, depth: int, seen: set[int]) -> Any:
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            if not self.bombed:
                self.bombed = True
                self.problem(
                    node,
                    "document expands to too many nodes (an alias bomb?)",
                    f"at most {self.limits.max_nodes} nodes after alias expansion",
                )
            return None
        if depth > self.limits.max_depth:
            self.problem(node, "nesting is too deep", f"at most {self.limits.max_depth} levels")
            return None
        if id(node) in seen:
            self.problem(node, "recursive alias", "an alias may not contain itself")
            return None
        self.doc.values.setdefault(path, self.loc(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self.problem(node, f"tag {node.tag!r} is not allowed", "plain YAML lists")
                return None
            seen = seen | {id(node)}
            return [self.walk(n, (*path, i), depth + 1, seen) for i, n in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                self.problem(node, f"tag {node.tag!r} is not allowed", "plain YAML mappings")
                return None
            seen = seen | {id(node)}
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    self.problem(knode, "merge keys (<<) are not supported", "explicit keys")
                    continue
                if not isinstance(knode, ScalarNode):
                    self.problem(knode, "a key must be a plain scalar", "a name")
                    continue
                key = str(knode.value)
                if key in out:
                    first = self.doc.keys[(*path, key)].line
                    self.kept.append(Problem(
                        self.loc(knode), f"duplicate key {key!r}",
                        f"each key once per mapping; the first, on line {first}, is the one "
                        "checked"))
                    continue
                self.doc.keys[(*path, key)] = self.loc(knode)
                out[key] = self.walk(vnode, (*path, key), depth + 1, seen)
            return out
        self.problem(node, "unsupported YAML node")
        return None

    def scalar(self, node: ScalarNode, path: PathKey) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self.problem(
                node, f"tag {node.tag!r} is not allowed", "plain strings, numbers and booleans"
            )
            return None
        if node.style in ("'", '"'):
            self.doc.quote[path] = 1
        if node.tag == "tag:yaml.org,2002:str":
            self.doc.spans[path] = (node.start_mark.index, node.end_mark.index, node.style)
        if node.style is None and node.tag in _NUMBER_TAGS:
            odd = _odd_number(node.value)
            if odd:
                self.problem(node, f"{node.value!r} would be read as {odd}",
                             "a decimal number, or quoted text")
                return None
        try:
            value = self.ctor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # e.g. a malformed int
            self.problem(node, f"bad scalar: {exc}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.kept.append(Problem(self.loc(node), f"{node.value!r} is not a finite number",
                                     "a finite number"))
            self.doc.unreadable.add(path)
            return None
        return value


def load_yaml_text(text: str, path: str, limits: Limits = DEFAULT_LIMITS, *,
                   keep_going: bool = False) -> Document:
    """Load YAML text (already read) as a located :class:`Document`; raise
    :class:`InputError` with every problem found.

    ``keep_going``: a duplicate key (its first value kept) or a number that is not finite
    (read as null, its path in :attr:`Document.unreadable`) alone does not raise but is left
    in :attr:`Document.problems`, so that a loader which reports them checks the rest of the
    file too: all problems at once. Any other problem (a syntax error, a refused tag, ...)
    still raises, with those found."""
    doc = Document(path=path, data=None, source=text)
    if "\x00" in text:
        raise InputError([Problem(Location(path, 1, 1), "file is binary", "a YAML text file")])
    try:
        loader = _ShallowLoader(text, limits.max_depth)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except _TooDeep as exc:
        loc = Location(path, exc.mark.line + 1, exc.mark.column + 1)
        raise InputError([Problem(loc, "nesting is too deep",  # (the walker's words)
                                  f"at most {limits.max_depth} levels")]) from None
    except yaml.MarkedYAMLError as exc:
        raise InputError([_syntax_problem(exc, path, text)]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(Location(path, 1, 1), f"YAML error: {exc}")]) from None
    if node is None:
        raise InputError([Problem(Location(path, 1, 1), "file is empty", "a YAML mapping")])
    walker = _Walker(doc, limits)
    doc.data = walker.walk(node, (), 0, set())
    if walker.problems or (walker.kept and not keep_going):
        raise InputError(walker.problems + walker.kept)
    doc.problems = walker.kept
    return doc


def _syntax_problem(exc: yaml.MarkedYAMLError, path: str, text: str) -> Problem:
    """A YAML syntax error, located where the user can fix it. PyYAML marks where it gave up
    (``problem_mark``) and what it was reading (``context_mark``): a quote that is not
    closed is noticed far below it (at the end of the file, or where the next quote closes
    it and the text after that makes no sense), so it is reported at the quote that opens
    it; a flow list or mapping that is not closed is reported where the reader got lost,
    naming where the bracket opened."""
    problem, context = exc.problem_mark, exc.context_mark
    what = exc.problem or exc.context or "YAML syntax error"
    ctx = exc.context or ""
    mark = problem or context
    opened = _quote_ending_at(text, problem) if problem is not None else None
    if context is not None and "quoted scalar" in ctx and "end of stream" in what:
        mark = context
        quote = "a quote" if not context.buffer else repr(context.buffer[context.pointer])
        what = f"{quote} opens text here that is never closed (the file ends inside it)"
    elif opened is not None and problem is not None:
        mark = opened
        what = (f"the text quoted here ({text[opened.index]}) runs on to line "
                f"{problem.line + 1}, where YAML then fails ({what}): is its closing quote "
                f"missing?")
    elif context is not None and problem is not None and "flow" in ctx:
        bracket = "list" if "sequence" in ctx else "mapping"
        what = (f"{what} (in the {bracket} opened at line {context.line + 1}, column "
                f"{context.column + 1}: a missing bracket or comma?)")
    loc = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path, 1, 1)
    return Problem(loc, f"YAML syntax error: {what}", "valid YAML")


def _quote_ending_at(text: str, problem: yaml.Mark) -> yaml.Mark | None:
    """Where quoted text starts that runs over several lines and ends on the line of a
    syntax error (``problem``): the sign of a missing closing quote, whose text ran on until
    the next quote. None if there is none."""
    found = None
    try:
        for tok in yaml.scan(text, Loader=yaml.SafeLoader):
            if tok.start_mark.index >= problem.index:
                break
            if (isinstance(tok, yaml.ScalarToken) and tok.style in ('"', "'")
                    and tok.start_mark.line < tok.end_mark.line == problem.line):
                found = tok.start_mark
    except yaml.YAMLError:
        pass
    return found


def load_yaml(path: str | Path, limits: Limits = DEFAULT_LIMITS, *, display: str | None = None,
              keep_going: bool = False) -> Document:
    """Read and load one YAML file. ``display`` is the path shown in messages;
    ``keep_going`` as for :func:`load_yaml_text`."""
    p = Path(path)
    shown = display or str(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InputError([Problem(Location(shown, 1, 1), f"cannot read file: {exc.strerror}",
                                  "an existing, readable file")]) from None
    if size > limits.max_bytes:
        raise InputError([Problem(Location(shown, 1, 1), f"file is too large ({size} bytes)",
                                  f"at most {limits.max_bytes} bytes")])
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError([Problem(Location(shown, 1, 1), f"cannot read file: {exc.strerror}",
                                  "an existing, readable file")]) from None
    if b"\x00" in raw:
        raise InputError([Problem(Location(shown, 1, 1), "file is binary", "a YAML text file")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # located at the bad byte: the text before it is valid, so lines and columns count
        before = raw[:exc.start].decode("utf-8")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        raise InputError([Problem(Location(shown, line, col),
                                  f"file is not UTF-8 text (byte {exc.start}, "
                                  f"0x{raw[exc.start]:02x})", "a UTF-8 YAML file")]) from None
    return load_yaml_text(text, shown, limits, keep_going=keep_going)
