"""The JSONPath that Dolma 1.2.1 mixer configs are written in, evaluated the way Dolma's mixer evaluates it.

Dolma's mixer (Rust, `jsonpath-rust` 0.3) keeps or drops a document when a query over the whole document finds
anything: `$.attributes[?(@.a && @.a[0] && @.a[0][2] >= 0.5)]`, `$.metadata[?(@.lang == 'en')]`, or a bare
path such as `$.attributes.pii.email`. The document it queries is the input line with every attribute row merged
into its `attributes` object, so one query language reaches attributes, metadata and text alike. This module
parses that language once (a file:line error naming the construct for anything outside it) and evaluates it with
Dolma's rules, measured against `dolma mix` 1.2.1:

- a path step that finds nothing makes the query (or a filter's operand) *absent*; a bare operand (`@.a`) is true
  when present, even as `[]`; `!x` is true when `x` is absent;
- `[?(…)]` on an object tests the object itself, on an array each element; `$.x[?(…)]` matches when any passes;
- `<`, `>` compare numbers only (anything else is false); `==` is JSON equality; `<=`/`>=` are `<`/`>` or `==`;
  `!=` is not `==`, so it is true when an operand is absent;
- Dolma's `==` tells JSON integers from floats: `1 >= 1.0` and `1 == 1.0` are false there. Ours compares numbers
  by value unless `dolma_numbers` is set (`--dolma-compatible`); either way every comparison where the two rules
  disagree is noted in `hits`, so the run can say how many documents it decided differently from Dolma.

Not accepted (Dolma 1.2.1 fails on them at run time, or they never occur in its configs): double-quoted strings,
negative indexes, wildcards `*`, recursive descent `..`, slices, filters in the middle of a path, functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INT_FLOAT = "integer vs equal float"
"""The name of Dolma's number quirk in `hits` and in the run's output."""

_ABSENT = object()

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>'[^']*')
  | (?P<dq>"[^"]*")
  | (?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|\[\?\(|\]|\[|\.\.|\.|\$|@|\*|:|,|-)
  | (?P<name>[A-Za-z_][A-Za-z0-9_\-]*|\d+)
    """,
    re.VERBOSE,
)


class PathError(ValueError):
    """A query outside the accepted language; `offset` is where in the query text, for the caret."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset


# --------------------------------------------------------------------------------------------- tree

Step = str | int  # an object key or an array index


@dataclass(frozen=True, slots=True)
class Path:
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Cmp:
    op: str
    left: Path | Literal
    right: Path | Literal


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "&&" | "||" | "!" | "exists"
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Query:
    """`$` + steps (+ a filter on what they reach): what one Dolma include/exclude string or span path is."""

    steps: tuple[Step, ...]
    predicate: Any = None

    def attribute_names(self) -> set[str] | None:
        """The top-level attribute names the query reads (empty: none), or None when it reads the `attributes`
        object whole; the mixer then decodes every attribute of a row instead of only these."""
        if not self.steps:  # `$[?(…)]`: operands are paths from the document itself
            return _names_below(_operand_paths(self.predicate), 1)
        if self.steps[0] != "attributes":
            return set()
        if len(self.steps) > 1:
            return {self.steps[1]} if isinstance(self.steps[1], str) else None
        if self.predicate is None:
            return None
        return _names_below([("attributes", *p) for p in _operand_paths(self.predicate)], 1)


def _operand_paths(node: Any) -> list[tuple[Step, ...]]:
    if isinstance(node, Path):
        return [node.steps]
    if isinstance(node, Cmp):
        return _operand_paths(node.left) + _operand_paths(node.right)
    if isinstance(node, Logic):
        return [p for item in node.items for p in _operand_paths(item)]
    return []


def _names_below(paths: list[tuple[Step, ...]], depth: int) -> set[str] | None:
    """Names at `depth` of the paths that go through `attributes` (None if one stops at it or indexes it)."""
    names: set[str] = set()
    for path in paths:
        if path[:1] != ("attributes",):
            continue
        if len(path) <= depth or not isinstance(path[depth], str):
            return None
        names.add(path[depth])
    return names


# --------------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise PathError(pos, f"unexpected character {text[pos]!r} in a JSONPath query")
            kind = m.lastgroup or ""
            if kind == "dq":
                raise PathError(pos, "double-quoted string: Dolma 1.2.1 rejects it; write 'single quotes'")
            if kind != "space":
                tokens_kind = "op" if kind == "op" else kind
                self.tokens.append((tokens_kind, m.group(), pos))
            pos = m.end()
        self.tokens.append(("end", "", len(text)))
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, token: tuple[str, str, int], message: str) -> PathError:
        return PathError(token[2], message)

    def expect(self, text: str) -> None:
        token = self.take()
        if token[1] != text:
            found = f"'{token[1]}'" if token[1] else "the end of the query"
            raise self.fail(token, f"expected '{text}', found {found}")

    def query(self) -> Query:
        self.expect("$")
        if self.peek()[1] == "@":  # Dolma's configs also write `$@.attributes[…]`
            self.take()
        steps = self.steps(root=True)
        predicate = None
        if self.peek()[1] == "[?(":
            self.take()
            predicate = self.or_()
            self.expect(")")
            self.expect("]")
        token = self.peek()
        if token[0] != "end":
            where = "after a filter" if predicate is not None else "here"
            raise self.fail(token, f"'{token[1]}' {where} is not supported (a filter must end the query)")
        return Query(tuple(steps), predicate)

    def steps(self, *, root: bool) -> list[Step]:
        out: list[Step] = []
        while True:
            kind, text, pos = self.peek()
            if text == ".":
                self.take()
                name = self.take()
                if name[0] != "name":
                    raise self.fail(name, f"expected a field name after '.', found '{name[1]}'")
                out.append(name[1])
            elif text == "[":
                self.take()
                inner = self.take()
                if inner[0] == "string":
                    out.append(inner[1][1:-1])
                elif inner[1].isdigit():
                    out.append(int(inner[1]))
                elif inner[0] == "number" and inner[1].startswith("-"):
                    raise self.fail(inner, "negative index: Dolma 1.2.1 fails on it; count from the start")
                else:
                    raise self.fail(inner, f"'[{inner[1]}' is not supported (an index [0] or a key ['name'])")
                self.expect("]")
            elif text in ("..", "*"):
                raise self.fail(self.peek(), f"'{text}' (wildcard or recursive descent) is not supported")
            else:
                return out
            del kind, pos

    def or_(self) -> Any:
        items = [self.and_()]
        while self.peek()[1] == "||":
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Logic("||", tuple(items))

    def and_(self) -> Any:
        items = [self.unary()]
        while self.peek()[1] == "&&":
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else Logic("&&", tuple(items))

    def unary(self) -> Any:
        token = self.peek()
        if token[1] == "!":
            self.take()
            return Logic("!", (self.unary(),))
        if token[1] == "(":
            self.take()
            node = self.or_()
            self.expect(")")
            return node
        left = self.operand()
        if self.peek()[1] in ("==", "!=", "<", "<=", ">", ">="):
            op = self.take()[1]
            return Cmp(op, left, self.operand())
        if isinstance(left, Literal):
            raise self.fail(token, f"a constant {token[1]} alone is not a test")
        return Logic("exists", (left,))

    def operand(self) -> Path | Literal:
        token = self.take()
        kind, text, _ = token
        if text == "@":
            return Path(tuple(self.steps(root=False)))
        if kind == "number":
            return Literal(float(text) if any(c in text for c in ".eE") else int(text))
        if kind == "string":
            return Literal(text[1:-1])
        if kind == "name" and text in ("true", "false", "null"):
            return Literal({"true": True, "false": False, "null": None}[text])
        found = f"'{text}'" if text else "the end of the query"
        raise self.fail(token, f"expected @.path, a number or a 'string', found {found}")


def parse(text: str) -> Query:
    """Parse one Dolma JSONPath query; raises `PathError` (with the offset) for anything not accepted."""
    return _Parser(str(text)).query()


# --------------------------------------------------------------------------------------------- evaluation


_NUMBERS = (int, float)  # `type(x) in _NUMBERS` leaves out bool, which JSON keeps apart from numbers


def walk(value: Any, steps: tuple[Step, ...]) -> Any:
    """The value `steps` reach from `value`, or `_ABSENT` (JSON values only: plain dicts and lists)."""
    try:
        for step in steps:
            if type(step) is str:
                if type(value) is not dict:
                    return _ABSENT
            elif type(value) is not list:
                return _ABSENT
            value = value[step]
    except (KeyError, IndexError):
        return _ABSENT
    return value


def _number(value: Any) -> bool:
    return type(value) in _NUMBERS


def _equal(lv: Any, rv: Any, dolma_numbers: bool, hits: list[str]) -> bool:
    if _number(lv) and _number(rv) and lv == rv and isinstance(lv, int) != isinstance(rv, int):
        hits.append(INT_FLOAT)  # the one place Dolma's answer and ours differ
        return not dolma_numbers
    if isinstance(lv, bool) != isinstance(rv, bool):
        return False
    return lv == rv


def _compare(op: str, lv: Any, rv: Any, dolma_numbers: bool, hits: list[str]) -> bool:
    if op == "!=":
        return lv is _ABSENT or rv is _ABSENT or not _equal(lv, rv, dolma_numbers, hits)
    if lv is _ABSENT or rv is _ABSENT:
        return False
    if op == "==":
        return _equal(lv, rv, dolma_numbers, hits)
    numbers = _number(lv) and _number(rv)
    if op == "<":
        return numbers and lv < rv
    if op == ">":
        return numbers and lv > rv
    strict = numbers and (lv < rv if op == "<=" else lv > rv)
    return strict or _equal(lv, rv, dolma_numbers, hits)


Test = Callable[[Any, list[str]], bool]


def _guards_only(items: tuple[Any, ...]) -> bool:
    """Whether every item but the last is an existence test of a prefix of the path the last compares
    (`@.a && @.a[0] && @.a[0][2] > x`) by `<` or `>` with a number: the last can hold only where that path,
    and so each prefix, exists, so it alone decides (and records no `hits`: no equality is tested)."""
    last = items[-1]
    if not (
        isinstance(last, Cmp)
        and last.op in ("<", ">")
        and isinstance(last.left, Path)
        and isinstance(last.right, Literal)
        and _number(last.right.value)
    ):
        return False
    steps = last.left.steps
    return all(
        isinstance(item, Logic)
        and item.op == "exists"
        and isinstance(item.items[0], Path)
        and steps[: len(item.items[0].steps)] == item.items[0].steps
        for item in items[:-1]
    )


def _compile_predicate(node: Any, dolma_numbers: bool) -> Test:
    if isinstance(node, Logic):
        if node.op == "exists":
            steps = node.items[0].steps
            return lambda at, hits: walk(at, steps) is not _ABSENT
        items = tuple(_compile_predicate(i, dolma_numbers) for i in node.items)
        if node.op == "!":
            (item,) = items
            return lambda at, hits: not item(at, hits)
        if node.op == "&&":
            if _guards_only(node.items):  # Dolma's usual `@.a && @.a[0] && @.a[0][2] > x`: the last alone
                return items[-1]
            if len(items) == 3:  # without a generator
                a, b, c = items
                return lambda at, hits: a(at, hits) and b(at, hits) and c(at, hits)
            return lambda at, hits: all(f(at, hits) for f in items)
        return lambda at, hits: any(f(at, hits) for f in items)
    op = node.op
    left, right = node.left, node.right
    if op in ("<", ">") and isinstance(left, Path) and isinstance(right, Literal) and _number(right.value):
        steps, const = left.steps, right.value  # the common case, kept flat: no equality, so no quirk

        if op == "<":
            return lambda at, hits: type(v := walk(at, steps)) in _NUMBERS and v < const
        return lambda at, hits: type(v := walk(at, steps)) in _NUMBERS and v > const
    lv: Callable[[Any], Any] = (
        (lambda at, s=left.steps: walk(at, s)) if isinstance(left, Path) else (lambda at, v=left.value: v)
    )
    rv: Callable[[Any], Any] = (
        (lambda at, s=right.steps: walk(at, s)) if isinstance(right, Path) else (lambda at, v=right.value: v)
    )
    return lambda at, hits: _compare(op, lv(at), rv(at), dolma_numbers, hits)


def compile_query(query: Query, *, dolma_numbers: bool) -> Test:
    """`f(document, hits) -> bool`: does the query find anything in the (attribute-merged) document."""
    steps = query.steps
    if query.predicate is None:
        return lambda doc, hits: walk(doc, steps) is not _ABSENT
    test = _compile_predicate(query.predicate, dolma_numbers)

    def matches(doc: Any, hits: list[str]) -> bool:
        node = walk(doc, steps)
        if isinstance(node, dict):
            return test(node, hits)
        if isinstance(node, list):
            return any(test(item, hits) for item in node)
        return False

    return matches


def select(query: Query, doc: Any) -> Any:
    """What a span path (`$.attributes.pii.email`) reaches in the document, or None."""
    value = walk(doc, query.steps)
    return None if value is _ABSENT else value
