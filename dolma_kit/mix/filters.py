"""The filter language of mix recipes: small, typed, checked before any data is read, never `eval`ed.

A filter is one expression over a document's attributes, e.g.

    gopher.pass == 0 or lid.en < 0.5 or count(pii.email_address) > 5

Grammar (precedence from loosest to tightest; comparisons do not chain):

    expr     := and_expr ('or' and_expr)*
    and_expr := not_expr ('and' not_expr)*
    not_expr := 'not' not_expr | compare
    compare  := operand (('==' | '!=' | '<' | '<=' | '>' | '>=') operand)?
    operand  := NUMBER | '-' NUMBER | 'true' | 'false' | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'

A NAME is an attribute reference: dotted short names (`gopher.pass`, `demo.gopher.pass`, an alias from the
recipe), the full name (`demo__gopher__pass`) or a backquoted full name. `Resolver` maps it to exactly one
attribute the experiments can write (their `attributes_schema.json`), or the parse fails with the position.

Values have three types. An attribute (its spans) used as a number is its *document score*: the score of its
first span (Dolma's `[0][2]`; document-level attributes have one span over the whole text); used as a boolean it
is that score != 0. An attribute with no span has no score: every comparison with it is false (SQL's NULL), so
`exists()`/`count()` say what "absent" should mean. Functions: `count(a)`, `count(a OP x)`, `any(a OP x)`,
`all(a OP x)` (per span), `exists(a)`, `sum(a)`, `max(a)`, `min(a)`, `chars(a)` (characters covered), `score(a, i)`.

Parsing yields a tree of frozen dataclasses (picklable: the driver checks, workers compile); `compile_filter`
turns it into nested closures so the per-document cost is a few dict lookups and comparisons.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dolma_kit.config import ConfigError
from dolma_kit.mix.filter_names import Resolver

Spans = list[list[float]]
Attrs = dict[str, Spans]


@dataclass(frozen=True, slots=True)
class Location:
    """Where an expression starts in its recipe (1-based line and column), for error messages."""

    file: str = "<expression>"
    line: int = 1
    column: int = 1
    origin: str = ""
    """The text the expression was translated from (a Dolma JSONPath), when it was."""

    def error(self, expr: str, offset: int, message: str, token: str = "") -> ConfigError:
        text, col = expr, self.column + offset
        if self.origin:  # point into what the user wrote, not into our translation of it
            found = self.origin.find(token.strip("`")) if token else -1
            text, col = self.origin, self.column + max(found, 0)
            offset = max(found, 0)
        caret = " " * offset + "^"
        return ConfigError(f"{self.file}:{self.line}:{col}: {message}\n    {text}\n    {caret}")


# --------------------------------------------------------------------------------------------- tree

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
FUNCTIONS = ("count", "any", "all", "exists", "sum", "max", "min", "chars", "score")
MAX_DEPTH = 100  # levels of `(`, `not` and calls; ~7 parser frames each, well inside Python's 1,000


@dataclass(frozen=True, slots=True)
class Num:
    value: float


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool


@dataclass(frozen=True, slots=True)
class Attr:
    name: str
    """The full attribute name, `<experiment>__<tagger>__<name>`."""


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call:
    fn: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Num | Bool | Attr | Compare | Call | And | Or | Not


def attributes_of(node: Node) -> set[str]:
    """Every attribute name a tree reads (mix loads only the experiments that hold them)."""
    if isinstance(node, Attr):
        return {node.name}
    children: tuple[Node, ...] = ()
    if isinstance(node, Compare):
        children = (node.left, node.right)
    elif isinstance(node, Call):
        children = node.args
    elif isinstance(node, And | Or):
        children = node.items
    elif isinstance(node, Not):
        children = (node.item,)
    return set().union(*(attributes_of(c) for c in children)) if children else set()


def unparse(node: Node) -> str:
    """The canonical text of a tree, fully resolved (what `mix --explain` prints)."""
    if isinstance(node, Num):
        return f"{node.value:g}"
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Attr):
        return node.name
    if isinstance(node, Compare):
        return f"{unparse(node.left)} {node.op} {unparse(node.right)}"
    if isinstance(node, Call):
        return f"{node.fn}({', '.join(unparse(a) for a in node.args)})"
    if isinstance(node, Not):
        return f"not {_wrap(node.item)}"
    sep = " and " if isinstance(node, And) else " or "
    return sep.join(_wrap(i) for i in node.items)


def _wrap(node: Node) -> str:
    return f"({unparse(node)})" if isinstance(node, And | Or) else unparse(node)


# --------------------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<quoted>`[^`]+`)
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[(),\-])
  """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "true", "false"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | name | quoted | op | punct | keyword | end
    text: str
    offset: int


def tokenize(expr: str, where: Location) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            hint = " (use and/or/not)" if expr[pos] in "&|!" else ""
            raise where.error(expr, pos, f"unexpected character {expr[pos]!r}{hint}", expr[pos])
        kind = m.lastgroup or ""
        if kind != "space":
            text = m.group()
            if kind == "name" and text in _KEYWORDS:
                kind = "keyword"
            if kind == "number" and not math.isfinite(float(text)):  # `1e999` would silently be inf
                raise where.error(expr, pos, f"number out of range: {text[:40]}", text)
            tokens.append(Token(kind, text, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(expr)))
    return tokens


# --------------------------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the grammar in the module docstring; checks types as it builds the tree."""

    def __init__(self, expr: str, where: Location, resolver: Resolver) -> None:
        self.expr = expr
        self.where = where
        self.resolver = resolver
        self.tokens = tokenize(expr, where)
        self.i = 0
        self.depth = 0

    def enter(self, token: Token) -> None:
        """One level deeper (leave with `self.depth -= 1`); past MAX_DEPTH a recipe error, not a RecursionError."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(token, f"expression nested deeper than {MAX_DEPTH} levels")

    def fail(self, token: Token, message: str) -> ConfigError:
        return self.where.error(self.expr, token.offset, message, token.text)

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.take()
        if token.text != text:
            found = f"'{token.text}'" if token.text else "end of expression"
            raise self.fail(token, f"expected '{text}', found {found}")
        return token

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.fail(self.peek(), "empty expression")
        start = self.peek()
        node = self.or_expr()
        token = self.peek()
        if token.kind != "end":
            hint = " (comparisons do not chain: use 'and')" if token.kind == "op" else ""
            raise self.fail(token, f"unexpected '{token.text}'{hint}")
        self.boolean(node, start)
        return node

    def boolean(self, node: Node, token: Token) -> None:
        if _type(node) == "num":
            raise self.fail(token, "a number where true/false is needed: compare it (e.g. `... > 0`)")

    def or_expr(self) -> Node:
        return self._chain("or", self.and_expr, Or)

    def and_expr(self) -> Node:
        return self._chain("and", self.not_expr, And)

    def _chain(self, word: str, sub: Callable[[], Node], cls: type[And] | type[Or]) -> Node:
        start = self.peek()
        items = [sub()]
        while self.peek().text == word and self.peek().kind == "keyword":
            if len(items) == 1:
                self.boolean(items[0], start)
            self.take()
            token = self.peek()
            items.append(sub())
            self.boolean(items[-1], token)
        return items[0] if len(items) == 1 else cls(tuple(items))

    def not_expr(self) -> Node:
        if self.peek().kind == "keyword" and self.peek().text == "not":
            self.enter(self.take())
            token = self.peek()
            item = self.not_expr()
            self.boolean(item, token)
            self.depth -= 1
            return Not(item)
        return self.compare()

    def compare(self) -> Node:
        start = self.peek()
        left = self.operand()
        if self.peek().kind != "op":
            return left
        op = self.take()
        right_token = self.peek()
        right = self.operand()
        lt, rt = _type(left), _type(right)
        if op.text in ("==", "!=") and ({lt, rt} <= {"bool", "attr"} or {lt, rt} <= {"num", "attr"}):
            return Compare(op.text, left, right)
        if op.text not in ("==", "!=") and lt != "bool" and rt != "bool":
            return Compare(op.text, left, right)
        bad = start if lt == "bool" else right_token
        raise self.fail(bad, f"type error: cannot compare {_NAMES[lt]} with {_NAMES[rt]} using '{op.text}'")

    def operand(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return Num(float(token.text))
        if token.text == "-" and self.peek().kind == "number":
            return Num(-float(self.take().text))
        if token.kind == "keyword" and token.text in ("true", "false"):
            return Bool(token.text == "true")
        if token.text == "(":
            self.enter(token)
            node = self.or_expr()
            self.expect(")")
            self.depth -= 1
            return node
        if token.kind == "name" and self.peek().text == "(":
            return self.call(token)
        if token.kind in ("name", "quoted"):
            ref = token.text.strip("`")
            name, reason = self.resolver.resolve(ref)
            if name is None:
                raise self.fail(token, reason)
            return Attr(name)
        found = f"'{token.text}'" if token.text else "end of expression"
        raise self.fail(token, f"expected a number, true/false, an attribute or '(', found {found}")

    def call(self, fn: Token) -> Node:
        if fn.text not in FUNCTIONS:
            raise self.fail(fn, f"unknown function '{fn.text}' (known: {', '.join(FUNCTIONS)})")
        self.enter(fn)
        self.expect("(")
        args, tokens = [], []
        while True:
            tokens.append(self.peek())
            args.append(self.or_expr())
            if self.peek().text != ",":
                break
            self.take()
        self.expect(")")
        self.depth -= 1
        _check_call(self, fn, tuple(args), tokens)
        return Call(fn.text, tuple(args))


_NAMES = {"num": "a number", "bool": "a boolean", "attr": "an attribute"}


def _type(node: Node) -> str:
    if isinstance(node, Num):
        return "num"
    if isinstance(node, Attr):
        return "attr"
    if isinstance(node, Call):
        return "bool" if node.fn in ("any", "all", "exists") else "num"
    return "bool"


def _per_span(node: Node) -> bool:
    """`attr OP number` (or `number OP attr`): the form any/all/count apply to every span."""
    if not isinstance(node, Compare):
        return False
    kinds = {_type(node.left), _type(node.right)}
    return kinds == {"attr", "num"} and (isinstance(node.left, Num) or isinstance(node.right, Num))


def _check_call(p: _Parser, fn: Token, args: tuple[Node, ...], tokens: list[Token]) -> None:
    name, n = fn.text, len(args)
    usage = {
        "count": "count(attr) or count(attr OP number)",
        "any": "any(attr) or any(attr OP number)",
        "all": "all(attr OP number)",
        "score": "score(attr) or score(attr, index)",
    }.get(name, f"{name}(attr)")
    ok = False
    if name in ("count", "any"):
        ok = n == 1 and (isinstance(args[0], Attr) or _per_span(args[0]))
    elif name == "all":
        ok = n == 1 and _per_span(args[0])
    elif name == "score":
        ok = 1 <= n <= 2 and isinstance(args[0], Attr)
        ok = ok and (n == 1 or (isinstance(args[1], Num) and args[1].value == int(args[1].value) >= 0))
    else:
        ok = n == 1 and isinstance(args[0], Attr)
    if not ok:
        raise p.fail(tokens[0] if tokens else fn, f"type error: {name}() takes {usage}")


def parse_filter(expr: str, resolver: Resolver, where: Location | None = None) -> Node:
    """Parse and type-check one filter; raises `ConfigError` pointing at the recipe's file:line:col."""
    return _Parser(str(expr), where or Location(), resolver).parse()


# --------------------------------------------------------------------------------------------- compile

Evaluator = Callable[[Attrs], Any]


def compile_filter(node: Node) -> Callable[[Attrs], bool]:
    """A closure answering the filter for one document's attributes (missing attributes have no score)."""
    fn = _compile(node)
    if isinstance(node, Attr):
        return lambda a: bool(fn(a))
    return fn


def _compile(node: Node) -> Evaluator:
    if isinstance(node, Num | Bool):
        value = node.value
        return lambda a: value
    if isinstance(node, Attr):
        return _doc_score(node.name)
    if isinstance(node, Not):
        item = _truth(node.item)
        return lambda a: not item(a)
    if isinstance(node, And):
        items = tuple(_truth(i) for i in node.items)
        return lambda a: all(f(a) for f in items)
    if isinstance(node, Or):
        items = tuple(_truth(i) for i in node.items)
        return lambda a: any(f(a) for f in items)
    if isinstance(node, Compare):
        return _compile_compare(node)
    return _compile_call(node)


def _doc_score(name: str) -> Evaluator:
    def score(a: Attrs) -> float | None:
        spans = a.get(name)
        return spans[0][2] if spans else None

    return score


def _truth(node: Node) -> Evaluator:
    fn = _compile(node)
    if isinstance(node, Attr):
        return lambda a: bool(fn(a))  # None (absent) and 0.0 are false
    return fn


def _compile_compare(node: Compare) -> Evaluator:
    op = OPS[node.op]
    left, right = node.left, node.right
    if isinstance(left, Attr) and isinstance(right, Num):  # the common case, kept flat
        name, const = left.name, right.value
        return lambda a: op(s[0][2], const) if (s := a.get(name)) else False
    lf, rf = _compile(left), _compile(right)
    if "bool" in (_type(left), _type(right)):  # == / != on truth values; an absent attribute is still NULL

        def compare_truth(a: Attrs) -> bool:
            lv, rv = lf(a), rf(a)
            return lv is not None and rv is not None and op(bool(lv), bool(rv))

        return compare_truth

    def compare(a: Attrs) -> bool:
        lv, rv = lf(a), rf(a)
        return lv is not None and rv is not None and op(lv, rv)

    return compare


def _span_test(node: Node) -> tuple[str, Callable[[float], bool]]:
    """(attribute, score test) for `attr OP n` or `n OP attr`; a bare attribute tests nothing."""
    if isinstance(node, Attr):
        return node.name, lambda s: True
    assert isinstance(node, Compare)
    op = OPS[node.op]
    if isinstance(node.left, Attr):
        name, const = node.left.name, node.right.value  # type: ignore[union-attr]
        return name, lambda s: op(s, const)
    name, const = node.right.name, node.left.value  # type: ignore[union-attr]
    return name, lambda s: op(const, s)


def _compile_call(node: Call) -> Evaluator:
    fn = node.fn
    if fn in ("count", "any", "all"):
        name, test = _span_test(node.args[0])
        if fn == "count":
            return lambda a: sum(1 for s in a.get(name) or () if test(s[2]))
        if fn == "any":
            return lambda a: any(test(s[2]) for s in a.get(name) or ())
        return lambda a: all(test(s[2]) for s in a.get(name) or ())
    name = node.args[0].name  # type: ignore[union-attr]
    if fn == "exists":
        return lambda a: bool(a.get(name))
    if fn == "sum":
        return lambda a: sum(s[2] for s in a.get(name) or ())
    if fn == "chars":
        return lambda a: sum(s[1] - s[0] for s in a.get(name) or ())
    if fn in ("max", "min"):
        agg = max if fn == "max" else min
        return lambda a: agg(s[2] for s in spans) if (spans := a.get(name)) else None
    index = int(node.args[1].value) if len(node.args) > 1 else 0  # type: ignore[union-attr]
    return lambda a: spans[index][2] if (spans := a.get(name)) and len(spans) > index else None
