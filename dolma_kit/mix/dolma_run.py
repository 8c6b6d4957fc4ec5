"""A Dolma mixer stream run with Dolma 1.2.1's semantics: what `dolma mix` keeps, and what it writes.

A stream read from a Dolma mixer config keeps its own rules (`DolmaRules`, below) instead of being translated
into our filter language, because the two differ on purpose in places a user can see (a missing attribute,
`[]`, integer scores) and a drop-in must decide every document as `dolma mix` does. Per document, in Dolma's
order (`src/shard.rs` in Dolma):

1. every attribute row is merged into the document's `attributes` object (later experiments win);
2. `filter.include` (any must match; none given: all) then `filter.exclude` (none may match), each a JSONPath
   (`mix.jsonpath`) or, with `syntax: jq`, a jq program (the `jq` package, as Dolma's Python side uses);
3. `span_replacement`: spans with `min_score <= score < max_score`, sorted by start; a span that starts inside
   an earlier one is skipped, a span running past the end of the text ends there (Dolma's paragraph spans end
   one character past it), `{}` in the replacement is the replaced text, and `''` removes exactly the span;
4. `output.discard_fields` are removed, a document whose stripped text is shorter than
   `output.min_text_length` (UTF-8 bytes) is dropped, and `metadata.provenance` = `<input file name>:<line>`
   is set (Dolma's token provenance reads it).

Where Dolma 1.2.1 is arguably wrong we keep our rule and say so in the run's output; `dolma_compatible` (the
`--dolma-compatible` option) reproduces Dolma's instead, and the output says how often that changed a decision.
"""

from __future__ import annotations

import functools
import json
import posixpath
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from dolma_kit.documents import dumps
from dolma_kit.errors import DolmaKitError
from dolma_kit.mix import jsonpath
from dolma_kit.mix.rows import LateAttributes

NOT_INCLUDED = "include: none matched"
TOO_SHORT = "shorter than min_text_length"
PAST_END = "span past the end of the text, ends there"
OVERLAP = "span inside an earlier one, skipped"


@dataclass(frozen=True, kw_only=True)
class DolmaSpan:
    """One entry of a Dolma stream's `span_replacement` (Dolma's keys)."""

    span: str
    """JSONPath (or jq, with `syntax: jq`) of the spans: `$.attributes.pii__email`, `$.attributes.pii.email`."""
    min_score: float | None = None
    max_score: float | None = None
    """Spans with `min_score <= score < max_score` are replaced (Dolma requires one of the two)."""
    replacement: str = ""
    """Replaces each span; `{}` in it is the replaced text; empty removes the span."""
    syntax: str = "jsonpath"


@dataclass(frozen=True, kw_only=True, eq=False)  # hashed by identity: workers cache what they compile
class DolmaRules:
    """A Dolma mixer stream's own filter, span and output keys, run with Dolma's semantics (module docstring)."""

    syntax: str = "jsonpath"
    """`jsonpath` or `jq`: how `include` and `exclude` are written."""
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    span_replacement: list[DolmaSpan] = field(default_factory=list)
    discard_fields: list[str] = field(default_factory=list)
    """Top-level fields removed from each written document (`attributes` in Dolma's own configs)."""
    min_text_length: int = 0
    """Documents whose stripped text has fewer UTF-8 bytes are dropped (Dolma counts bytes)."""


@dataclass(frozen=True, kw_only=True)
class DolmaPlan:
    """What a worker needs to run a Dolma stream (frozen, picklable; compiled once per process)."""

    rules: DolmaRules
    dolma_compatible: bool
    names: frozenset[str] | None
    """Attribute names decoded from attribute rows (the rules read only these); None: every one."""
    late: frozenset[str] = frozenset()
    """Of `names`, those only `span_replacement` reads: decoded for kept documents alone (`rows.LateAttributes`)."""
    referenced: frozenset[str] | None = None
    """Attribute names the JSONPath queries read (None: not known, jq); the run says which no row had."""


# --------------------------------------------------------------------------------------------- jq


def jq_program(text: str) -> Any:
    """A compiled jq program; `ValueError` with jq's message when it does not compile (or jq is missing)."""
    try:
        import jq
    except ImportError:
        raise ValueError("`syntax: jq` needs the jq package: pip install jq") from None
    return jq.compile(str(text))


def _jq_truth(value: Any) -> bool:
    """Dolma's truth of one jq output (jaq values): null, false, 0, "", [], {} are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float | str | list | dict):
        return bool(value)
    return True


# --------------------------------------------------------------------------------------------- compile


_JQ_ERROR = "__dolma_kit_jq_error__"


@dataclass(frozen=True)
class _Compiled:
    include: tuple[tuple[str, Any], ...]
    """(query text, test); with jq syntax the test is the filter's index in `jq_filters`' output."""
    exclude: tuple[tuple[str, Any], ...]
    spans: tuple[tuple[str, Any, float, float, str], ...]
    jq_filters: Any
    """With `syntax: jq`, one program answering every filter: `[(try [F] catch {error}), …]`, so a document is
    parsed by jq once, not once a filter (a filter that fails is an error only if Dolma would run it)."""
    jq: bool
    """Whether jq reads the document (filters or span selectors): it gets the document as JSON text."""


@functools.cache
def compile_plan(plan: DolmaPlan) -> _Compiled:
    rules = plan.rules
    jq = rules.syntax == "jq"
    queries = [*rules.include, *rules.exclude]
    if jq:
        tests: list[Any] = list(range(len(queries)))
        for text in queries:
            jq_program(text)  # each compiles alone (the driver checked): the combined one then does too
        combined = ", ".join(f'(try [({q})] catch {{"{_JQ_ERROR}": .}})' for q in queries)
        jq_filters = jq_program(f"[{combined}]") if queries else None
    else:
        tests = [
            jsonpath.compile_query(jsonpath.parse(q), dolma_numbers=plan.dolma_compatible) for q in queries
        ]
        jq_filters = None
    spans = []
    for s in rules.span_replacement:
        lo = float("-inf") if s.min_score is None else float(s.min_score)
        hi = float("inf") if s.max_score is None else float(s.max_score)
        selector = jq_program(s.span) if s.syntax == "jq" else jsonpath.parse(s.span)
        spans.append((str(s.span), selector, lo, hi, str(s.replacement)))
    n = len(rules.include)
    return _Compiled(
        include=tuple(zip(map(str, rules.include), tests[:n], strict=True)),
        exclude=tuple(zip(map(str, rules.exclude), tests[n:], strict=True)),
        spans=tuple(spans),
        jq_filters=jq_filters,
        jq=jq or any(s.syntax == "jq" for s in rules.span_replacement),
    )


# --------------------------------------------------------------------------------------------- per document


class DolmaDocuments:
    """Decides and rewrites one shard's documents as `dolma mix` does; counts what Dolma does differently."""

    def __init__(self, plan: DolmaPlan, doc_path: str, has_attributes: bool) -> None:
        self.plan = plan
        self.compiled = compile_plan(plan)
        self.file_name = posixpath.basename(doc_path.rstrip("/"))
        self.doc_path = doc_path
        self.has_attributes = has_attributes
        self.notes: dict[str, int] = {}
        """Documents per quirk met (`jsonpath.INT_FLOAT`, `PAST_END`, `OVERLAP`)."""
        self.spans_replaced: dict[str, int] = {str(s.span): 0 for s in plan.rules.span_replacement}
        self.seen: set[str] = set()
        """Attribute names the documents had (so the run can name those no document had)."""

    def _note(self, what: set[str] | list[str]) -> None:
        for name in set(what):
            self.notes[name] = self.notes.get(name, 0) + 1

    def _matches(
        self,
        name: str,
        test: Any,
        doc: dict[str, Any],
        answers: list[Any],
        line: int,
        *,
        exclude: bool = False,
    ) -> bool:
        """Whether one filter holds. A jq filter can give several outputs: Dolma includes a document when all
        are true (and there is one), and excludes it when any is true."""
        if not isinstance(test, int):
            return bool(test(doc, self._hits))
        out = answers[test]
        if isinstance(out, dict) and _JQ_ERROR in out:
            raise DolmaKitError(f"{self.doc_path}:{line}: jq filter {name!r} failed: {out[_JQ_ERROR]}")
        if exclude:
            return any(_jq_truth(v) for v in out)
        return bool(out) and all(_jq_truth(v) for v in out)

    def process(
        self,
        obj: dict[str, Any],
        attrs: dict[str, Any],
        line: int,
        raw: bytes | None = None,
        late: LateAttributes | None = None,
    ) -> tuple[str | None, bytes | None]:
        """(removal reason, None) or (None, the line to write) for one document and its merged attribute rows;
        `raw` is the document's line as read (jq then reads it with the attributes spliced in); `late` holds the
        rows' span lists (`DolmaPlan.late`), decoded only once the filters have kept the document."""
        self._hits: list[str] = []
        c = self.compiled
        text = _jq_input(obj, attrs, raw, self.has_attributes) if c.jq else None
        if self.has_attributes:
            own = obj.get("attributes")
            obj["attributes"] = {**own, **attrs} if isinstance(own, dict) else attrs
        if isinstance(obj.get("attributes"), dict):
            self.seen.update(obj["attributes"])
            if late is not None:
                self.seen.update(late.present(self.seen))  # names seen before need no search
        if c.jq and text is None:
            text = dumps(obj)
        answers = c.jq_filters.input_text(text).first() if c.jq_filters is not None else []
        reason = None
        if c.include and not any(self._matches(n, t, obj, answers, line) for n, t in c.include):
            reason = NOT_INCLUDED
        else:
            reason = next(
                (n for n, t in c.exclude if self._matches(n, t, obj, answers, line, exclude=True)), None
            )
        if self._hits:
            self._note(self._hits)
        if reason is not None:
            return reason, None
        if late is not None and isinstance(obj.get("attributes"), dict):
            obj["attributes"].update(late.decode())  # the rows' values win over the document's own, as above
        if c.spans:
            obj["text"] = self._replace(obj, text, line)
        for name in self.plan.rules.discard_fields:
            obj.pop(name, None)
        body = obj.get("text")
        if self.plan.rules.min_text_length and (
            not isinstance(body, str) or len(body.strip().encode("utf-8")) < self.plan.rules.min_text_length
        ):
            return TOO_SHORT, None
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        obj["metadata"]["provenance"] = f"{self.file_name}:{line}"
        return None, dumps(obj).encode("utf-8")

    def _replace(self, obj: dict[str, Any], text: str | None, line: int) -> str:
        found: list[tuple[int, int, str]] = []
        for name, selector, lo, hi, replacement in self.compiled.spans:
            if isinstance(selector, jsonpath.Query):
                value = jsonpath.select(selector, obj)
            else:
                try:
                    out = selector.input_text(text).all()
                except ValueError as exc:
                    raise DolmaKitError(f"{self.doc_path}:{line}: jq span {name!r} failed: {exc}") from None
                value = None if not out else out[0] if len(out) == 1 else out
            if value is None:
                continue
            if not isinstance(value, list):
                raise DolmaKitError(
                    f"{self.doc_path}:{line} (id {obj.get('id')!r}): span_replacement {name!r} found "
                    f"{json.dumps(value)[:80]}, not a list of [start, end, score] spans"
                )
            for span in value:
                if not (
                    type(span) is list
                    and len(span) >= 3
                    and type(span[0]) in _NUMBERS
                    and type(span[1]) in _NUMBERS
                    and type(span[2]) in _NUMBERS
                ):
                    raise DolmaKitError(
                        f"{self.doc_path}:{line} (id {obj.get('id')!r}): span_replacement {name!r}: "
                        f"{json.dumps(span)[:80]} is not a [start, end, score] span"
                    )
                if lo <= span[2] < hi:
                    found.append((int(span[0]), int(span[1]), replacement))
                    self.spans_replaced[name] += 1
        body = obj.get("text")
        if not found or not isinstance(body, str):
            return body  # type: ignore[return-value]
        new, notes = replace_spans(body, found)
        if notes:
            self._note(notes)
        return new


_NUMBERS = (int, float)  # not bool
_START = itemgetter(0)


def _jq_input(obj: dict[str, Any], attrs: dict[str, Any], raw: bytes | None, merge: bool) -> str | None:
    """The merged document as JSON text for jq, made from the line as read (the text is not encoded again: on
    long documents that is most of a jq stream's cost), or None when the line cannot be reused."""
    if raw is None or (merge and "attributes" in obj):
        return None
    text = raw.decode("utf-8").rstrip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    if not merge:
        return text
    head = text[:-1].rstrip()
    comma = "" if head == "{" else ","
    return f'{head}{comma}"attributes":{dumps(attrs)}}}'


def replace_spans(text: str, spans: list[tuple[int, int, str]]) -> tuple[str, set[str]]:
    """Dolma's span replacement over code-point offsets (module docstring, step 3), and the quirks it met.

    Dolma walks the text a character at a time; this walks it a span at a time with the same outcome in every
    corner (a span past the end, one starting inside another, touching spans, `{}`), so a 50 M-character
    document costs a few slices, not a Python loop per character. Empty spans ([i, i)), where Dolma's walk
    does odd things (it drops the character at i and repeats the replacement at the end), take
    `_replace_by_character`, the walk itself.
    """
    spans = sorted(spans, key=_START)  # stable: equal starts keep the config's order
    n = len(text)
    notes: set[str] = set()
    plain = True  # every span non-empty, starting inside the text and after the one before ends
    previous_end = 0
    for start, end, _ in spans:
        if start < 0 or end < start:
            raise DolmaKitError(f"span [{start}, {end}) is not a span (start < 0 or end < start)")
        if end > n:
            notes.add(PAST_END)
        if start < previous_end:
            notes.add(OVERLAP)
            plain = False
        elif start == end or start >= n:
            plain = False
        previous_end = end
    if plain:  # Dolma's walk then replaces each span in place: one slice and one replacement per span
        out: list[str] = []
        at = 0
        for start, end, replacement in spans:
            out.append(text[at:start])
            if replacement:
                out.append(replacement.replace("{}", text[start:end]) if "{}" in replacement else replacement)
            at = end
        out.append(text[at:])
        return "".join(out), notes
    if any(start == end for start, end, _ in spans):
        return _replace_by_character(text, spans), notes
    out: list[str] = []
    index, count, start_at, i = 0, len(spans), 0, 0
    while i < n and index < count:
        start, end, replacement = spans[index]
        if i < start:  # copy up to the span (or the end of the text)
            stop = min(start, n)
            out.append(text[i:stop])
            i = stop
            continue
        start_at, i = start, min(end, n)  # i == start: skip the span's characters
        if i == n:
            break
        if replacement:
            out.append(replacement.replace("{}", text[start_at:end]))
        while index < count and spans[index][0] < end:
            index += 1  # spans that started inside this one are skipped
        if index < count and spans[index][0] == end:
            continue  # the next span starts right here
        out.append(text[end])
        i = end + 1
    if index < count:
        if spans[index][2]:  # the text ended inside (or before) a span: Dolma still writes its replacement
            out.append(spans[index][2].replace("{}", text[start_at:]))
    else:
        out.append(text[i:])
    return "".join(out), notes


def _replace_by_character(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Dolma's character walk as it is (`src/shard.rs`, 1.2.1), for the spans `replace_spans` does not jump."""
    out: list[str] = []
    index, count, start_at = 0, len(spans), 0
    for i, char in enumerate(text):
        if index >= count:
            out.append(char)
            continue
        start, end, replacement = spans[index]
        if i == start:
            start_at = i
        if start <= i < end:
            continue
        if i == end:
            if replacement:
                out.append(replacement.replace("{}", text[start_at:i]))
            while index < count and spans[index][0] < i:
                index += 1
        if index < count and spans[index][0] == i:
            start_at = i
        else:
            out.append(char)
    if index < count and spans[index][2]:
        out.append(spans[index][2].replace("{}", text[start_at:]))
    return "".join(out)
